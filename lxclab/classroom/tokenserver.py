"""The classroom's token server: Docker Hub's auth.docker.io protocol, on one machine.

`GET /token?service=S&scope=repository:NAME:pull,push` (Basic credentials optional) answers
`{"token", "access_token", "expires_in", "issued_at"}` with an ES256 JWT that the registry
trusts. Anonymous callers get `pull` only; wrong credentials get a 401 JSON error.
`GET /healthz` tells a starting classroom that the server is up.

A classroom's token server faces a whole room: at most MAX_WORKERS requests are served at
once (the rest wait in the kernel's listen queue), and each client address may ask for
`rate` tokens a second with bursts of `burst`; beyond that it gets 429 and Retry-After.
With `--tls-cert`/`--tls-key` it serves HTTPS, the TLS handshake done in the worker thread,
and `GET /ca.crt` hands out the classroom CA's certificate (learners check its fingerprint).

Run it as `python -m lxclab.classroom --state-dir DIR --host H --port P`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime
import json
import math
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from . import access, jwt, keys, tls, users

SERVICE = jwt.CLASSROOM
ISSUER = jwt.CLASSROOM
DEFAULT_TTL = 300
DEFAULT_RATE = 10.0  # token requests a second per client address, sustained
DEFAULT_BURST = 100  # requests a client address may make at once (a whole pull, a test run)
MAX_WORKERS = 32  # requests served at once; scrypt itself is limited to 4 at once (users.py)


class TokenIssuer:
    """Turns one token request (credentials and scopes) into an HTTP status and a JSON body."""

    def __init__(self, state_dir: Path, ttl: int = DEFAULT_TTL, service: str = SERVICE, issuer: str = ISSUER):
        """Issue tokens signed with the key in `state_dir`, for accounts in its users.json."""
        self.state_dir = state_dir
        self.signing_key = keys.load(state_dir)
        self.ttl, self.service, self.issuer = ttl, service, issuer

    def issue(self, authorization: str | None, query: dict[str, list[str]]) -> tuple[int, dict]:
        """Answer a token request: 200 and a token, 400 for another service, 401 for bad credentials."""
        service = query.get("service", [self.service])[0]
        if service != self.service:
            return 400, _error("UNSUPPORTED", f"this token server serves {self.service!r}, not {service!r}")
        try:
            subject, role = self._authenticate(authorization)
        except PermissionError as exc:
            return 401, _error("UNAUTHORIZED", str(exc))
        granted = access.grant(access.parse_scopes(query.get("scope", [])), subject, role)
        return 200, self._token_response(subject, granted)

    def _authenticate(self, authorization: str | None) -> tuple[str, str | None]:
        """(subject, role) of the caller: ("", None) when anonymous; PermissionError if refused."""
        if not authorization:
            return access.ANONYMOUS, None
        scheme, _, encoded = authorization.partition(" ")
        try:
            name, _, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            name = password = ""
        if scheme.lower() != "basic" or not name:
            raise PermissionError("send Basic credentials (username:password), or none for anonymous pull")
        role = users.check_password(users.load_users(self.state_dir), name, password)
        if role is None:
            raise PermissionError("incorrect username or password")
        return name, role

    def _token_response(self, subject: str, granted: list[dict]) -> dict:
        """The JSON body Docker's token servers send: the JWT twice, its lifetime and issue time."""
        now = time.time()
        token_claims = jwt.claims(
            issuer=self.issuer, subject=subject, audience=self.service,
            access=granted, issued_at=int(now), ttl=self.ttl,
        )
        token = jwt.encode(jwt.header(self.signing_key.certificate_der), token_claims, self.signing_key.private_key)
        issued_at = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
        return {
            "token": token,
            "access_token": token,
            "expires_in": self.ttl,
            "issued_at": issued_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        }


def _error(code: str, message: str) -> dict:
    """An error body readable by both kinds of client: registry `errors` and Docker Hub `details`."""
    return {"errors": [{"code": code, "message": message, "detail": None}], "details": message}


class RateLimiter:
    """A token bucket per client address: `rate` requests a second on average, `burst` at once."""

    def __init__(self, rate: float = DEFAULT_RATE, burst: int = DEFAULT_BURST):
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens left, when counted)
        self._lock = threading.Lock()

    def admit(self, address: str) -> float:
        """0 if `address` may be served now (and count it), else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.get(address, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if tokens < 1:
                self._buckets[address] = (tokens, now)
                return (1 - tokens) / self.rate
            self._buckets[address] = (tokens - 1, now)
            if len(self._buckets) > 10_000:
                self._forget_idle(now)
            return 0.0

    def _forget_idle(self, now: float) -> None:
        """Drop the buckets that have refilled: those addresses are back to a full burst anyway."""
        full = [a for a, (tokens, then) in self._buckets.items() if tokens + (now - then) * self.rate >= self.burst]
        for address in full:
            del self._buckets[address]


class TokenRequestHandler(BaseHTTPRequestHandler):
    """HTTP front of a TokenIssuer: /token and /healthz, JSON answers, one log line per request."""

    protocol_version = "HTTP/1.1"
    server_version = "lxclab-tokenserver"
    timeout = 10  # an idle keep-alive connection holds a worker only this long
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    issuer: TokenIssuer  # set on a subclass by make_server
    server: TokenServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        """Route a GET to the token endpoint (rate-limited per address) or the health check."""
        url = urlsplit(self.path)
        headers = {}
        if url.path == "/token":
            wait = self.server.limiter.admit(self.client_address[0])
            if wait:
                headers["Retry-After"] = str(math.ceil(wait))
                status, body = 429, _error("TOOMANYREQUESTS", f"too many token requests from {self.client_address[0]}; "
                                                              f"retry after {headers['Retry-After']} s")
            else:
                status, body = self.issuer.issue(self.headers.get("Authorization"), parse_qs(url.query))
        elif url.path == "/healthz":
            status, body = 200, {"status": "ok", "service": self.issuer.service}
        elif url.path == "/ca.crt" and self.server.tls is not None:
            return self._send(200, tls.files(self.issuer.state_dir).ca_cert.read_bytes(),
                              {"Content-Type": "application/x-pem-file"})
        else:
            status, body = 404, _error("NOT_FOUND", f"no such endpoint {url.path}; ask /token")
        self._send(status, json.dumps(body).encode("utf-8"), {"Content-Type": "application/json", **headers})

    def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        """Send `payload` with a Content-Length, so the connection can be kept alive."""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class HangUpTolerantServer(ThreadingHTTPServer):
    """A threading HTTP server for which a client that hangs up mid-request is ordinary, not a traceback on stderr."""

    def handle_error(self, request, client_address) -> None:
        """Say nothing of a connection the client closed or reset; report anything else as the base server does."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class TokenServer(HangUpTolerantServer):
    """At most MAX_WORKERS threads at once, a deep listen queue, and a rate limit per client address."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 limiter: RateLimiter | None = None, workers: int = MAX_WORKERS, tls: ssl.SSLContext | None = None):
        super().__init__(address, handler)
        self.limiter = limiter or RateLimiter()
        self.tls = tls
        self._workers = threading.BoundedSemaphore(workers)

    def finish_request(self, request, client_address) -> None:
        """Serve one connection (in its worker thread), after the TLS handshake if the server speaks TLS."""
        if self.tls is not None:
            request.settimeout(TokenRequestHandler.timeout)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return  # a client that cannot speak TLS (or gives up) gets nothing more
        super().finish_request(request, client_address)

    def process_request(self, request, client_address) -> None:
        """Hand the connection to a worker thread, waiting (not accepting) while all of them are busy."""
        self._workers.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._workers.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        """Serve one connection in a worker thread, then free the worker."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._workers.release()


class TokenServer6(TokenServer):
    """The token server on an IPv6 address."""

    address_family = socket.AF_INET6


def make_server(state_dir: Path, host: str, port: int, ttl: int = DEFAULT_TTL,
                rate: float = DEFAULT_RATE, burst: int = DEFAULT_BURST, workers: int = MAX_WORKERS,
                tls: ssl.SSLContext | None = None) -> TokenServer:
    """A token server bound to host:port, issuing tokens with the key and users of `state_dir`."""
    handler = type("BoundTokenRequestHandler", (TokenRequestHandler,), {"issuer": TokenIssuer(state_dir, ttl)})
    server_class = TokenServer6 if ":" in host else TokenServer
    return server_class((host.strip("[]"), port), handler, RateLimiter(rate, burst), workers, tls)


def main(argv: list[str] | None = None) -> int:
    """Serve tokens until killed (the classroom stops it with SIGTERM)."""
    parser = argparse.ArgumentParser(prog="python -m lxclab.classroom", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, required=True, help="classroom state: signing key and users.json")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5001, help="port to bind (default 5001)")
    parser.add_argument("--ttl", type=int, default=DEFAULT_TTL, help="token lifetime in seconds")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="token requests a second per client address")
    parser.add_argument("--burst", type=int, default=DEFAULT_BURST, help="token requests at once per client address")
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", type=Path, help="the certificate's private key (PEM)")
    args = parser.parse_args(argv)
    context = tls.server_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    server = make_server(args.state_dir, args.host, args.port, args.ttl, args.rate, args.burst, tls=context)
    scheme = "https" if context else "http"
    print(f"token server for {SERVICE} on {scheme}://{args.host}:{args.port}/token", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0

