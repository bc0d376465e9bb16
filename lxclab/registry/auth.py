"""The registry token dance, as an `httpx.Auth` flow that reads top to bottom.

1. The first time, ask `GET /v2/`: a registry that wants tokens answers 401 with a challenge
   naming its token server (`realm`) and its own name (`service`).
2. Before each request, work out the scopes it needs (`repository:lab/app:pull`), and get a
   token for exactly those from the realm, with basic credentials if we have them.
   Tokens are cached per set of scopes until they expire.
3. Send the request with `Authorization: Bearer <token>`. If the registry still answers 401
   (the token expired early, or was revoked: `error="invalid_token"`), forget the token,
   get a fresh one and send the request once more.

Getting the token *before* sending matters for uploads: a 401 would consume the body.

Credentials go only where they belong: to a realm on the registry's own host (or one the
user names, or auth.docker.io for Docker Hub), and never over plain HTTP when the registry
itself is HTTPS. A challenge naming any other realm raises UntrustedRealm.
"""

from __future__ import annotations

import base64
import email.utils
import re
import time
from dataclasses import dataclass
from typing import Generator

import httpx

from ..errors import AuthenticationError, RegistryBusy, RegistryError, UntrustedRealm
from .bounded import TOKEN_LIMIT, limit_extension
from .challenge import Challenge, parse_challenge

_REPOSITORY_PATH = re.compile(r"/v2/(?P<name>.+?)/(?:manifests|blobs|tags|referrers)/")
_ACTIONS = {"GET": "pull", "HEAD": "pull", "DELETE": "delete"}  # anything else writes: pull,push
DEFAULT_EXPIRES_IN = 60  # seconds; the token spec's default when the server gives none
MAX_RETRY_AFTER = 30.0  # seconds; a longer Retry-After is cut to this
KNOWN_REALMS = {"registry-1.docker.io": ("auth.docker.io",)}  # registries whose token server lives elsewhere


@dataclass(frozen=True)
class Token:
    """A bearer token and the moment (time.monotonic) after which it must not be used."""

    value: str
    renew_at: float

    @property
    def expired(self) -> bool:
        """True when the token is too close to its expiry to be sent."""
        return time.monotonic() >= self.renew_at


def scopes_for(method: str, url: httpx.URL) -> tuple[str, ...]:
    """The scopes a registry request needs: pull to read, pull,push to write, delete to delete, pull on a mount's source."""
    match = _REPOSITORY_PATH.match(url.path)
    if not match:
        return ()
    actions = _ACTIONS.get(method.upper(), "pull,push")
    scopes = [f"repository:{match['name']}:{actions}"]
    source = url.params.get("from")
    if source and "mount" in url.params:
        scopes.append(f"repository:{source}:pull")
    return tuple(scopes)


def realm_is_trusted(realm_host: str, registry_host: str, trusted: tuple[str, ...] = ()) -> bool:
    """True if a token realm on `realm_host` may receive the credentials meant for `registry_host`."""
    allowed = {registry_host, *trusted, *KNOWN_REALMS.get(registry_host, ())}
    return realm_host.lower() in {host.lower() for host in allowed}


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), capped at MAX_RETRY_AFTER."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def basic_authorization(credentials: tuple[str, str]) -> str:
    """The value of an `Authorization: Basic` header for a username and password."""
    user, password = credentials
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class RegistryAuth(httpx.Auth):
    """Authenticate registry requests the way Docker does: Bearer tokens from the challenged realm, or Basic."""

    def __init__(self, credentials: tuple[str, str] | None = None, trusted_realms: tuple[str, ...] = ()):
        self.credentials = credentials
        self.trusted_realms = tuple(trusted_realms)
        self.registry_url: httpx.URL | None = None
        self.challenge: Challenge | None = None
        self._pinged = False
        self._tokens: dict[tuple[str, ...], Token] = {}
        self.token_requests = 0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Ping once to learn the challenge, authorize up front, and retry once after a 401."""
        if not self._pinged:
            self.registry_url = request.url
            ping = yield httpx.Request("GET", request.url.copy_with(path="/v2/", query=None),
                                       headers={"Accept-Encoding": "identity"})
            self._learn(ping)
            self._pinged = True
        scopes = scopes_for(request.method, request.url)
        yield from self._authorize(request, scopes)
        response = yield request
        if response.status_code != 401:
            return
        self._learn(response)
        self._forget(scopes or self._challenge_scopes())
        yield from self._authorize(request, scopes)
        yield request

    def _learn(self, response: httpx.Response) -> None:
        """Remember the challenge of a 401 answer (a 200 from /v2/ means no authentication)."""
        if response.status_code == 401:
            self.challenge = parse_challenge(response.headers.get_list("www-authenticate"))

    def _authorize(self, request: httpx.Request, scopes: tuple[str, ...]) -> Generator[httpx.Request, httpx.Response, None]:
        """Set the Authorization header the challenge asks for, fetching a token if needed."""
        if self.challenge is None:
            return
        if self.challenge.scheme == "basic" and self.credentials:
            request.headers["Authorization"] = basic_authorization(self.credentials)
        elif self.challenge.scheme == "bearer":
            scopes = scopes or self._challenge_scopes()
            token = self._tokens.get(scopes)
            if token is None or token.expired:
                token = yield from self._fetch_token(scopes)
                self._tokens[scopes] = token
            request.headers["Authorization"] = f"Bearer {token.value}"

    def _fetch_token(self, scopes: tuple[str, ...]) -> Generator[httpx.Request, httpx.Response, Token]:
        """Ask the challenge's realm for a token covering exactly `scopes`."""
        realm = self.challenge.realm
        if not realm or not realm.startswith(("http://", "https://")):
            raise AuthenticationError(f"registry sent a Bearer challenge without a usable realm ({realm!r})")
        send_credentials = self._realm_takes_credentials(httpx.URL(realm))
        response = yield self._token_request(realm, scopes, send_credentials)
        response.read()
        self.token_requests += 1
        return self._token_from(response, realm, scopes)

    def _realm_takes_credentials(self, realm: httpx.URL) -> bool:
        """True if our credentials may go to `realm`; UntrustedRealm if nothing may (or the credentials may not)."""
        registry = self.registry_url
        if registry is not None and registry.scheme == "https" and realm.scheme != "https":
            raise UntrustedRealm(
                f"registry {registry.host} is HTTPS but its challenge names the plain HTTP token realm {realm}: "
                "refused (a token or password sent there could be read or forged on the way)"
            )
        if not self.credentials:
            return False
        if registry is not None and realm_is_trusted(realm.host, registry.host, self.trusted_realms):
            return True
        raise UntrustedRealm(
            f"registry {registry and registry.host} asks for tokens from {realm.host}, another host: lxclab does "
            f"not send your credentials there; if you trust it, name it in LXCLAB_TOKEN_REALMS={realm.host} and try again"
        )

    def _token_request(self, realm: str, scopes: tuple[str, ...], send_credentials: bool) -> httpx.Request:
        """The GET to the token server: service, one `scope` parameter per scope, basic credentials if allowed."""
        params = [("service", self.challenge.service)] if self.challenge.service else []
        params += [("scope", scope) for scope in scopes]
        headers = {"Accept-Encoding": "identity"}
        if send_credentials:
            params.append(("account", self.credentials[0]))
            headers["Authorization"] = basic_authorization(self.credentials)
        return httpx.Request("GET", realm, params=params, headers=headers, extensions=limit_extension(TOKEN_LIMIT))

    def _token_from(self, response: httpx.Response, realm: str, scopes: tuple[str, ...]) -> Token:
        """Read the token server's JSON answer, or raise a clear error."""
        who = f"user {self.credentials[0]!r}" if self.credentials else "anonymous access"
        if response.status_code in (401, 403):
            raise AuthenticationError(
                f"token server {realm} refused {who} for {' '.join(scopes) or 'registry access'} "
                f"({response.status_code}): check the username and password (`lxclab login`)"
            )
        if response.status_code == 429 or response.status_code >= 500:
            raise RegistryBusy(f"token server {realm} answered {response.status_code}", retry_after(response))
        try:
            body = response.json()
            value = body.get("token") or body["access_token"]
        except (ValueError, KeyError, AttributeError):
            raise RegistryError(f"token server {realm} answered {response.status_code} without a token") from None
        expires_in = max(int(body.get("expires_in") or DEFAULT_EXPIRES_IN), 1)
        return Token(value, time.monotonic() + expires_in - min(10, expires_in / 10))

    def _forget(self, scopes: tuple[str, ...]) -> None:
        self._tokens.pop(scopes, None)

    def _challenge_scopes(self) -> tuple[str, ...]:
        return self.challenge.scopes if self.challenge else ()
