"""A registry client speaking the OCI distribution API: manifests, blobs, uploads, mounts.

Every byte that comes back is checked against the digest it was asked for; blobs stream
into the content store, resume after a cut connection, and retry transient failures (429
honouring Retry-After, 5xx, resets) a bounded number of times. Authentication is the
`RegistryAuth` flow, so the same code talks to the classroom registry and to Docker Hub.
"""

from __future__ import annotations

import ssl
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import httpx

from .. import __version__
from ..errors import AuthenticationError, DigestMismatch, NotFound, RegistryBusy, RegistryError
from ..manifest import ACCEPT, CONFIG_TYPES, Descriptor, Index, Manifest, parse_manifest, sha256_digest, verify_digest
from ..progress import Progress
from ..reference import registry_base_url
from ..store import Ingest, Store
from . import credentials as saved_credentials
from .auth import RegistryAuth, retry_after
from .bounded import CONFIG_LIMIT, MANIFEST_LIMIT, BoundedTransport, limit_extension, too_large
from .challenge import parse_challenge

TRIES = 4  # attempts per operation before giving up
BACKOFF = 0.25  # seconds before the second attempt; doubled for each further one
READ_CHUNK = 1 << 20
T = TypeVar("T")


class FileBody:
    """A byte range of a file as a request body that can be sent again (after a 401 or a retry)."""

    def __init__(self, path: Path, start: int, length: int):
        self.path, self.start, self.length = path, start, length

    def __iter__(self) -> Iterator[bytes]:
        with open(self.path, "rb") as source:
            source.seek(self.start)
            left = self.length
            while left > 0 and (chunk := source.read(min(READ_CHUNK, left))):
                left -= len(chunk)
                yield chunk


class RegistryClient:
    """Talks to one registry (`127.0.0.1:5000`, `docker.io`) with verified reads and writes."""

    def __init__(
        self,
        registry: str,
        credentials: tuple[str, str] | None = None,
        insecure: bool = False,
        transport: httpx.BaseTransport | None = None,
        token_realms: tuple[str, ...] | None = None,
    ):
        """`token_realms`: hosts besides the registry's own that may receive `credentials` (default: LXCLAB_TOKEN_REALMS)."""
        self.registry = registry
        realms = saved_credentials.named_realms() if token_realms is None else token_realms
        self.auth = RegistryAuth(credentials, realms)
        ca_file = saved_credentials.ca_file(registry)
        base_url = registry_base_url(registry, insecure)
        if ca_file is not None:  # a registry with its own CA speaks TLS, even on loopback
            base_url = "https://" + base_url.partition("://")[2]
        self._http = httpx.Client(
            base_url=base_url,
            auth=self.auth,
            transport=BoundedTransport(transport or TrustOnDemand(ca_file)),
            follow_redirects=True,
            timeout=httpx.Timeout(60.0, connect=10.0),
            headers={"User-Agent": f"lxclab/{__version__}", "Accept-Encoding": "identity"},
        )

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Close the client's connections."""
        self._http.close()

    def ping(self) -> None:
        """Check that the registry answers and accepts our credentials (an authorized GET /v2/)."""
        self._request("GET", "/v2/", f"registry {self.registry}")

    # --- manifests ------------------------------------------------------------------------
    def get_manifest(self, repository: str, identifier: str) -> Manifest | Index:
        """Fetch a manifest or index by tag or digest, checking its digest and parsing it."""
        what = f"manifest {_name(repository, identifier)} on {self.registry}"
        response = self._request("GET", f"/v2/{repository}/manifests/{identifier}", what, headers={"Accept": ACCEPT},
                                 extensions=limit_extension(MANIFEST_LIMIT))
        raw = response.content
        if identifier.startswith("sha256:"):
            verify_digest(raw, identifier, what)
        announced = response.headers.get("Docker-Content-Digest")
        if announced:
            verify_digest(raw, announced, f"{what} (its Docker-Content-Digest header)")
        return parse_manifest(raw, response.headers.get("Content-Type"))

    def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> str:
        """Upload a manifest or index under a tag or digest (its blobs or children first); returns its digest."""
        digest = sha256_digest(raw)
        what = f"manifest {_name(repository, reference)} to {self.registry}"
        headers = {"Content-Type": media_type}
        response = self._request("PUT", f"/v2/{repository}/manifests/{reference}", what, content=raw, headers=headers)
        _check_announced(response, digest, what)
        return digest

    def list_tags(self, repository: str) -> list[str]:
        """The tags of a repository."""
        what = f"tags of {repository} on {self.registry}"
        return self._request("GET", f"/v2/{repository}/tags/list", what).json().get("tags") or []

    # --- blobs: download ------------------------------------------------------------------
    def fetch_blob(self, repository: str, descriptor: Descriptor, store: Store, progress: Progress | None = None) -> Path:
        """Stream a blob into the store (resuming a partial one), verify it, and return its path."""
        if store.has(descriptor.digest):
            return store.path(descriptor.digest)
        what = f"blob {descriptor.digest} of {repository} on {self.registry}"
        if descriptor.media_type in CONFIG_TYPES and descriptor.size > CONFIG_LIMIT:
            raise too_large(f"image config {what}", CONFIG_LIMIT, f"{descriptor.size} bytes (its descriptor)")
        with store.ingest(descriptor.digest, descriptor.size) as ingest:
            if ingest.done:
                return store.path(descriptor.digest)
            if progress:
                progress.start(descriptor.digest, descriptor.digest[7:19], descriptor.size)
            try:
                self._with_retries(lambda: self._download(repository, descriptor, ingest, progress), what)
                return ingest.commit()
            finally:
                if progress:
                    progress.finish(descriptor.digest)

    def _download(self, repository: str, descriptor: Descriptor, ingest: Ingest, progress: Progress | None) -> None:
        """One attempt: GET the blob from the partial file's offset (Range) and append what arrives."""
        if ingest.offset == descriptor.size:
            return
        headers = {"Accept-Encoding": "identity"}
        if ingest.offset:
            headers["Range"] = f"bytes={ingest.offset}-"
        url = f"/v2/{repository}/blobs/{descriptor.digest}"
        request = self._http.build_request("GET", url, headers=headers, extensions=limit_extension(None))
        response = self._http.send(request, stream=True)
        try:
            self._check(response, f"blob {descriptor.digest} of {repository} on {self.registry}")
            if response.status_code != 206 and ingest.offset:
                ingest.restart()
            for chunk in response.iter_raw():  # as they arrive: a chunk buffer would lose bytes on a cut
                ingest.write(chunk)
                if progress:
                    progress.update(descriptor.digest, ingest.offset)
                if ingest.offset > descriptor.size:
                    break
        finally:
            response.close()

    def blob_exists(self, repository: str, digest: str) -> bool:
        """True if the repository already has this blob (a HEAD request)."""
        what = f"blob {digest} of {repository} on {self.registry}"
        response = self._request("HEAD", f"/v2/{repository}/blobs/{digest}", what, accept=(404,))
        return response.status_code != 404

    # --- blobs: upload --------------------------------------------------------------------
    def push_blob(self, repository: str, digest: str, source: bytes | Path, chunk_size: int | None = None) -> bool:
        """Upload a blob in one PUT, or in PATCH chunks of `chunk_size` bytes; False if the repository had it."""
        if isinstance(source, bytes):
            verify_digest(source, digest, f"blob {digest} to push")
        if self.blob_exists(repository, digest):
            return False
        what = f"upload of blob {digest} to {self.registry}/{repository}"
        self._with_retries(lambda: self._upload(repository, digest, source, chunk_size), what)
        return True

    def _upload(self, repository: str, digest: str, source: bytes | Path, chunk_size: int | None) -> None:
        """One attempt: POST for an upload URL, PATCH the chunks (following each new Location), PUT ?digest=."""
        what = f"upload of blob {digest} to {self.registry}/{repository}"
        location = self._start_upload(repository, what)
        size = len(source) if isinstance(source, bytes) else source.stat().st_size
        final_body: bytes | FileBody = b""
        if chunk_size:
            for start in range(0, size, chunk_size):
                body, length = _body(source, start, min(chunk_size, size - start))
                headers = _octets(length) | {"Content-Range": f"{start}-{start + length - 1}"}
                response = self._send_once("PATCH", location, what, content=body, headers=headers)
                location = self._location(response, what)
        else:
            final_body, size = _body(source, 0, size)
        url = httpx.URL(location).copy_merge_params({"digest": digest})
        length = 0 if chunk_size else size
        response = self._send_once("PUT", url, what, content=final_body, headers=_octets(length))
        _check_announced(response, digest, what)

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Ask the registry to link a blob from another repository; False if it would not (then upload it).

        On refusal the registry opens an ordinary upload session instead (202); it is left to
        the registry's purge of stale uploads, since cancelling it would need `delete` access.
        """
        what = f"mount of blob {digest} from {from_repository} into {self.registry}/{repository}"
        params = {"mount": digest, "from": from_repository}
        response = self._request("POST", f"/v2/{repository}/blobs/uploads/", what, params=params, headers=_octets(0))
        return response.status_code == 201

    def _start_upload(self, repository: str, what: str) -> str:
        response = self._send_once("POST", f"/v2/{repository}/blobs/uploads/", what, headers=_octets(0))
        return self._location(response, what)

    def _location(self, response: httpx.Response, what: str) -> str:
        """The absolute URL in a Location header (registries may send it relative)."""
        location = response.headers.get("Location")
        if not location:
            raise RegistryError(f"{what}: the registry answered {response.status_code} without a Location header")
        return str(self._http.base_url.join(location))

    # --- sending, checking and retrying ---------------------------------------------------
    def _request(self, method: str, url: str | httpx.URL, what: str, accept: tuple[int, ...] = (), **kwargs) -> httpx.Response:
        """Send a request, retrying transient failures; raise a named error for any other failure."""
        return self._with_retries(lambda: self._send_once(method, url, what, accept, **kwargs), what)

    def _send_once(self, method: str, url: str | httpx.URL, what: str, accept: tuple[int, ...] = (), **kwargs) -> httpx.Response:
        response = self._http.request(method, url, **kwargs)
        self._check(response, what, accept)
        return response

    def _check(self, response: httpx.Response, what: str, accept: tuple[int, ...] = ()) -> None:
        """Raise the error that an unsuccessful status means (RegistryBusy for 429 and 5xx)."""
        status = response.status_code
        if response.is_success or status in accept:
            return
        response.read()
        detail = f"{status} {_registry_errors(response)}"
        if status == 429 or status >= 500:
            raise RegistryBusy(f"{what}: {detail}", retry_after(response))
        if status == 404:
            raise NotFound(f"{what}: not found ({detail}); check the repository name, tag or digest")
        if status == 400 and "HTTPS server" in response.text:
            raise RegistryError(f"{what}: the registry speaks HTTPS; trust its CA in "
                                f"$LXCLAB_HOME/certs.d/{self.registry}/ca.crt (a classroom's is its tls/ca.crt)")
        if status in (401, 403):
            raise AuthenticationError(
                f"{what}: access denied ({detail}{_missing_scope(response)}); "
                f"pushing needs credentials: run `lxclab login {self.registry}`"
            )
        raise RegistryError(f"{what}: the registry refused it ({detail})")

    def _with_retries(self, attempt: Callable[[], T], what: str) -> T:
        """Run `attempt` up to TRIES times, sleeping between tries (Retry-After if given, else backoff)."""
        for number in range(TRIES):
            try:
                return attempt()
            except RegistryBusy as exc:
                failure, delay = exc, exc.retry_after
            except httpx.TransportError as exc:
                failure, delay = exc, None
            if number + 1 < TRIES:
                time.sleep(delay if delay is not None else BACKOFF * 2**number)
        raise RegistryError(f"{what}: gave up after {TRIES} tries; last failure: {_describe(failure)}")


class TrustOnDemand(httpx.BaseTransport):
    """Plain HTTP through a pool that never loads a CA; HTTPS through one made with the CAs on its first request.

    Loading the CA bundle costs about 30 ms, every `lxclab pull` of a loopback registry
    paid it for TLS it never spoke. The plain pool's context trusts nothing, so TLS through
    it could only fail; every https:// URL (a redirect included) goes to the verified pool.
    """

    def __init__(self, ca_file: Path | None):
        self._ca_file = ca_file
        self._plain = httpx.HTTPTransport(verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
        self._tls: httpx.HTTPTransport | None = None
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request through the pool for its scheme."""
        return self._pool(request.url.scheme).handle_request(request)

    def _pool(self, scheme: str) -> httpx.HTTPTransport:
        if scheme != "https":
            return self._plain
        with self._lock:  # layers download in threads: make the verified pool once
            if self._tls is None:
                self._tls = httpx.HTTPTransport(verify=_trust(self._ca_file))
            return self._tls

    def close(self) -> None:
        """Close both pools."""
        self._plain.close()
        if self._tls is not None:
            self._tls.close()


def _trust(ca_file: Path | None) -> ssl.SSLContext | bool:
    """httpx's default trust, or the system's CAs plus the registry's own CA when the user trusts one."""
    if ca_file is None:
        return True
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=str(ca_file))
    return context


def _name(repository: str, identifier: str) -> str:
    return f"{repository}@{identifier}" if ":" in identifier else f"{repository}:{identifier}"


def _body(source: bytes | Path, start: int, length: int) -> tuple[bytes | FileBody, int]:
    if isinstance(source, bytes):
        return source[start : start + length], length
    return FileBody(source, start, length), length


def _octets(length: int) -> dict[str, str]:
    return {"Content-Type": "application/octet-stream", "Content-Length": str(length)}


def _check_announced(response: httpx.Response, digest: str, what: str) -> None:
    announced = response.headers.get("Docker-Content-Digest")
    if announced and announced != digest:
        raise DigestMismatch(f"{what}: the registry stored {announced}, but we sent {digest}")


def _registry_errors(response: httpx.Response) -> str:
    """The registry's error codes and messages from its JSON body, else the reason phrase."""
    try:
        errors = response.json()["errors"]
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
    except (ValueError, KeyError, TypeError, AttributeError):
        return response.reason_phrase


def _missing_scope(response: httpx.Response) -> str:
    """What the registry's challenge says the token lacked, like `; insufficient_scope for repository:x:push`."""
    challenge = parse_challenge(response.headers.get_list("www-authenticate"))
    if not challenge or not challenge.params.get("error"):
        return ""
    scope = challenge.sorted_scopes
    return f"; {challenge.params['error']}" + (f" for {scope}" if scope else "")


def _describe(failure: Exception) -> str:
    if isinstance(failure, httpx.ConnectError) and "CERTIFICATE_VERIFY_FAILED" in str(failure):
        return (f"its TLS certificate is not trusted ({failure}); for a classroom registry, put the classroom's "
                "ca.crt in $LXCLAB_HOME/certs.d/<host:port>/ca.crt after checking its fingerprint")
    if isinstance(failure, httpx.ConnectError):
        return f"cannot connect ({failure}); is the registry running?"
    return str(failure) or type(failure).__name__
