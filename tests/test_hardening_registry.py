"""The registry client against hostile servers: credentials stay with their registry, answers stay small.

A "hostile realm" is a token server on loopback under another host name (`localhost`
while the registry is `127.0.0.1`): the fault proxy in front of the real classroom
registry rewrites the registry's challenge to name it. It records what it receives and
forwards to the classroom's real token server, so that naming it explicitly still ends in
a real pull with real JWTs.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import httpx
import pytest
from faultproxy import Fault, FaultProxy, proxy  # noqa: F401 (proxy is a fixture)
from fixture_images import push_image, random_image, unique_repository

from lxclab import manifest as m
from lxclab.classroom.tokenserver import HangUpTolerantServer
from lxclab.engine import pull
from lxclab.errors import RegistryError, ResponseTooLarge, UntrustedRealm
from lxclab.registry import RegistryClient, credentials
from lxclab.registry.auth import RegistryAuth
from lxclab.registry.bounded import CONFIG_LIMIT, ERROR_LIMIT, MANIFEST_LIMIT, TOKEN_LIMIT
from lxclab.store import Store


class Realm:
    """A token server on loopback that logs each request's Authorization and answers as told."""

    def __init__(self, upstream: str | None = None, body: bytes | None = None, endless: bool = False):
        self.upstream, self.body, self.endless = upstream, body, endless
        self.seen: list[str | None] = []
        self.sent = 0
        self._server = HangUpTolerantServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        """The realm's URL under the host name `localhost` (not the registry's `127.0.0.1`)."""
        return f"http://localhost:{self._server.server_address[1]}/token"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, path: str, authorization: str | None) -> tuple[int, bytes]:
        if self.body is not None:
            return 200, self.body
        connection = http.client.HTTPConnection(self.upstream, timeout=10)
        try:
            connection.request("GET", path, headers={"Authorization": authorization} if authorization else {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        realm = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                realm.seen.append(self.headers.get("Authorization"))
                if realm.endless:
                    return self._endless()
                status, data = realm._answer(self.path, self.headers.get("Authorization"))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _endless(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                chunk = b'{"token": "' + b"A" * 65536
                try:
                    while realm.sent < 512 * 1024 * 1024:
                        self.wfile.write(chunk)
                        realm.sent += len(chunk)
                except OSError:
                    pass

        return Handler


@pytest.fixture
def realm_factory(classroom) -> Iterator:
    made: list[Realm] = []

    def make(**options) -> Realm:
        options.setdefault("upstream", urlsplit(classroom.token_url).netloc)
        made.append(Realm(**options))
        return made[-1]

    yield make
    for realm in made:
        realm.close()


def challenge_naming(proxy: FaultProxy, realm: Realm) -> Fault:
    """Make the proxy's registry challenge every request with `realm` as its token server."""
    original = proxy.challenge()
    rewritten = original.replace(original.split('realm="')[1].split('"')[0], realm.url)
    return proxy.add(Fault("GET", r"^/v2/$", times=1000, reply=(401, {"WWW-Authenticate": rewritten}, b"")))


def test_credentials_are_not_sent_to_a_realm_on_another_host(proxy, pushed_image, classroom, realm_factory, tmp_path):
    realm = realm_factory()
    challenge_naming(proxy, realm)
    reference = f"{proxy.host}/{pushed_image.repository}:{pushed_image.tag}"
    with pytest.raises(UntrustedRealm, match=r"localhost.*another host.*LXCLAB_TOKEN_REALMS=localhost"):
        pull(reference, store=Store(tmp_path / "a"), credentials=classroom.teacher)
    assert realm.seen == []
    anonymous = pull(reference, store=Store(tmp_path / "b"))  # nothing to leak: anonymous tokens may come from anywhere
    assert anonymous.digest == pushed_image.image.digest and realm.seen and not any(realm.seen)


def test_a_realm_the_user_names_receives_the_credentials(proxy, pushed_image, classroom, realm_factory, tmp_path,
                                                         monkeypatch, lxclab_home):
    realm = realm_factory()
    challenge_naming(proxy, realm)
    monkeypatch.setenv("LXCLAB_TOKEN_REALMS", "auth.example, localhost")
    reference = f"{proxy.host}/{pushed_image.repository}:{pushed_image.tag}"
    assert pull(reference, store=Store(tmp_path / "s"), credentials=classroom.teacher).digest == pushed_image.image.digest
    assert realm.seen and all(seen and seen.startswith("Basic ") for seen in realm.seen)


def test_the_environment_login_is_bound_to_one_registry(proxy, pushed_image, classroom, monkeypatch, lxclab_home, tmp_path):
    monkeypatch.setenv("LXCLAB_USERNAME", classroom.teacher[0])
    monkeypatch.setenv("LXCLAB_PASSWORD", classroom.teacher[1])
    with pytest.raises(RegistryError, match="LXCLAB_REGISTRY"):
        pull(pushed_image.ref, store=Store(tmp_path / "a"))
    monkeypatch.setenv("LXCLAB_REGISTRY", classroom.registry_host)
    assert credentials.lookup(classroom.registry_host) == classroom.teacher
    pull(f"{proxy.host}/{pushed_image.repository}:{pushed_image.tag}", store=Store(tmp_path / "b"))
    assert not any(e.authorization and e.authorization.startswith("Basic ") for e in proxy.log)


@pytest.mark.parametrize("registry, realm, has_credentials, trusted, verdict", [
    ("https://r.example/v2/", "https://r.example:8443/token", True, (), True),
    ("https://r.example/v2/", "https://auth.example/token", True, (), UntrustedRealm),
    ("https://r.example/v2/", "https://auth.example/token", True, ("auth.example",), True),
    ("https://r.example/v2/", "https://auth.example/token", False, (), False),
    ("https://r.example/v2/", "http://r.example/token", True, (), UntrustedRealm),
    ("https://r.example/v2/", "http://r.example/token", False, ("r.example",), UntrustedRealm),
    ("https://registry-1.docker.io/v2/", "https://auth.docker.io/token", True, (), True),
    ("https://registry-1.docker.io/v2/", "https://auth.docker.io.evil/token", True, (), UntrustedRealm),
    ("http://127.0.0.1:5000/v2/", "http://127.0.0.1:5001/token", True, (), True),
    ("http://127.0.0.1:5000/v2/", "http://localhost:5001/token", True, (), UntrustedRealm),
])
def test_which_realm_may_have_the_credentials(registry, realm, has_credentials, trusted, verdict):
    auth = RegistryAuth(("ada", "s3cret") if has_credentials else None, trusted)
    auth.registry_url = httpx.URL(registry)
    if verdict is UntrustedRealm:
        with pytest.raises(UntrustedRealm):
            auth._realm_takes_credentials(httpx.URL(realm))
    else:
        assert auth._realm_takes_credentials(httpx.URL(realm)) is verdict


def test_an_oversized_manifest_is_refused_by_its_length(proxy, pushed_image, tmp_path):
    big = b" " * (MANIFEST_LIMIT + 1)
    proxy.add(Fault("GET", r"/manifests/", reply=(200, {"Content-Type": m.OCI_MANIFEST}, big)))
    with pytest.raises(ResponseTooLarge, match=rf"manifests/1 \(200\).*{MANIFEST_LIMIT + 1} bytes \(its Content-Length\)"):
        pull(f"{proxy.host}/{pushed_image.repository}:1", store=Store(tmp_path / "s"))


def test_an_endless_token_is_not_read_past_the_limit(proxy, pushed_image, realm_factory, tmp_path):
    realm = realm_factory(endless=True)
    challenge_naming(proxy, realm)
    started = time.monotonic()
    with pytest.raises(ResponseTooLarge, match=rf"token \(200\).*more than {TOKEN_LIMIT} bytes"):
        pull(f"{proxy.host}/{pushed_image.repository}:1", store=Store(tmp_path / "s"))
    time.sleep(0.2)
    assert realm.sent < TOKEN_LIMIT + 16 * 1024 * 1024, "the client kept reading past the limit"
    assert time.monotonic() - started < 10


def test_an_oversized_error_body_is_refused(proxy, pushed_image, tmp_path):
    proxy.add(Fault("GET", r"/manifests/", reply=(404, {"Content-Type": "application/json"}, b"x" * (ERROR_LIMIT + 1))))
    with pytest.raises(ResponseTooLarge, match=r"\(404\)"):
        pull(f"{proxy.host}/{pushed_image.repository}:1", store=Store(tmp_path / "s"))


def test_a_compressed_answer_is_not_decompressed_unbounded(proxy, pushed_image, tmp_path):
    import gzip
    bomb = gzip.compress(b" " * (64 * 1024 * 1024))
    proxy.add(Fault("GET", r"/manifests/", reply=(200, {"Content-Encoding": "gzip", "Content-Type": m.OCI_MANIFEST}, bomb)))
    with pytest.raises(RegistryError, match="compressed \\(gzip\\) although lxclab asked for identity"):
        pull(f"{proxy.host}/{pushed_image.repository}:1", store=Store(tmp_path / "s"))


def test_an_oversized_config_is_refused_before_download(classroom, proxy, tmp_path):
    image = random_image((1000,))
    config = json.loads(image.config)
    config["history"][0]["comment"] = "x" * CONFIG_LIMIT
    raw_config = json.dumps(config).encode()
    manifest = json.loads(image.manifest)
    manifest["config"] |= {"digest": m.sha256_digest(raw_config), "size": len(raw_config)}
    image.config, image.manifest = raw_config, json.dumps(manifest).encode()
    repository = unique_repository()
    push_image(classroom.registry_host, classroom.teacher, repository, "big", image)
    with pytest.raises(ResponseTooLarge, match=rf"image config blob .* {len(raw_config)} bytes \(its descriptor\)"):
        pull(f"{proxy.host}/{repository}:big", store=Store(tmp_path / "s"))
    assert proxy.requests("GET", "/blobs/") == []
