"""A fault-injecting HTTP proxy on 127.0.0.1, in front of a real registry, for bad-input tests.

The registry itself cannot misbehave on demand, so tests put this proxy between lxclab and
the classroom registry. It forwards every request unchanged, except those matched by a
fault: a fault can answer instead of the registry (429, 500, malformed JSON), rewrite the
registry's answer (corrupt a blob, change a manifest), cut the connection after some bytes,
delay it, or declare a token expired. Every exchange is logged so tests can see what happened.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Callable, Iterator

import pytest

from lxclab.classroom.tokenserver import HangUpTolerantServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass
class Exchange:
    """One request the proxy saw and the status it answered."""

    method: str
    path: str
    status: int
    authorization: str | None
    range: str | None
    at: float
    location: str | None = None  # the Location header of the answer


@dataclass
class Fault:
    """Something to do to the next `times` requests whose method and path match."""

    method: str
    path: str  # a regular expression searched in the request path
    times: int = 1
    reply: tuple[int, dict, bytes] | None = None  # answer this instead of forwarding
    rewrite: Callable[[bytes], bytes] | None = None  # change the registry's body (headers kept)
    cut_after: int | None = None  # send this many body bytes, then close the connection
    expire_token: bool = False  # the token this request carries is expired from now on
    delay: float = 0.0  # seconds to wait before forwarding
    used: int = field(default=0, init=False)

    def matches(self, method: str, path: str) -> bool:
        """True if this fault applies to the request and has uses left."""
        return self.used < self.times and method == self.method and re.search(self.path, path) is not None


class FaultProxy:
    """A threaded reverse proxy to `upstream` (host:port) that applies the faults it is given."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.faults: list[Fault] = []
        self.log: list[Exchange] = []
        self.expired_tokens: set[str] = set()
        self._lock = threading.Lock()
        self._server = HangUpTolerantServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        """The proxy as a registry name, like `127.0.0.1:40123`."""
        return f"127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def add(self, fault: Fault) -> Fault:
        """Apply `fault` to the next matching requests."""
        with self._lock:
            self.faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, counted as used."""
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.used += 1
                    return fault
        return None

    def requests(self, method: str, pattern: str) -> list[Exchange]:
        """The logged exchanges with this method whose path matches `pattern`."""
        return [e for e in self.log if e.method == method and re.search(pattern, e.path)]

    def challenge(self) -> str:
        """The registry's own WWW-Authenticate challenge (from an anonymous GET /v2/)."""
        connection = http.client.HTTPConnection(self.upstream, timeout=10)
        try:
            connection.request("GET", "/v2/")
            return connection.getresponse().getheader("WWW-Authenticate", "")
        finally:
            connection.close()


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._handle()

        do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        def _handle(self) -> None:
            body = self._read_body()
            fault = proxy.take(self.command, self.path)
            authorization = self.headers.get("Authorization")
            if fault and fault.delay:
                time.sleep(fault.delay)
            if fault and fault.expire_token and authorization:
                proxy.expired_tokens.add(authorization)
            if authorization in proxy.expired_tokens:
                challenge = proxy.challenge() + ',error="invalid_token"'
                status, headers, data = 401, {"WWW-Authenticate": challenge, "Content-Type": "application/json"}, b"{}"
            elif fault and fault.reply:
                status, headers, data = fault.reply
            else:
                status, headers, data = self._forward(body)
                if fault and fault.rewrite:
                    data = fault.rewrite(data)
            location = next((v for k, v in headers.items() if k.lower() == "location"), None)
            proxy.log.append(
                Exchange(self.command, self.path, status, authorization, self.headers.get("Range"), time.monotonic(), location)
            )
            self._send(status, headers, data, fault.cut_after if fault else None)

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _forward(self, body: bytes) -> tuple[int, dict, bytes]:
            connection = http.client.HTTPConnection(proxy.upstream, timeout=30)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"content-length"}}
                headers["Content-Length"] = str(len(body))
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                kept = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP}
                return response.status, kept, data
            finally:
                connection.close()

        def _send(self, status: int, headers: dict, data: bytes, cut_after: int | None) -> None:
            self.send_response(status)
            length = str(len(data))
            for name, value in headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
                elif self.command == "HEAD":
                    length = value
            self.send_header("Content-Length", length)
            self.end_headers()
            if self.command == "HEAD":
                return
            if cut_after is not None:
                self.wfile.write(data[:cut_after])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(data)

    return Handler


@pytest.fixture
def proxy(classroom) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the session's classroom registry."""
    with FaultProxy(classroom.registry_host) as running:
        yield running
