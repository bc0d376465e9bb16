"""Size limits on what a registry or token server sends back, enforced before the bytes are kept.

A hostile or broken server can answer a manifest request with gigabytes, or a 401 with an
endless error page; a client that reads the whole answer before looking at it runs out of
memory. `BoundedTransport` wraps the HTTP transport: each answer gets a byte limit (an
error status gets ERROR_LIMIT, a request may name its own with `limit_extension`), a
`Content-Length` above it is refused before the body is read, and a body that grows past
it stops at the limit with ResponseTooLarge. Blob downloads carry no limit here: the
client stops them at the size their descriptor gives.
"""

from __future__ import annotations

from typing import Iterator

import httpx

from ..errors import RegistryError, ResponseTooLarge

KiB, MiB = 1024, 1024 * 1024
MANIFEST_LIMIT = 4 * MiB  # a manifest or index, as Docker and containerd bound them
CONFIG_LIMIT = 8 * MiB  # an image config (its history and settings)
TOKEN_LIMIT = 1 * MiB  # a token server's JSON answer
ERROR_LIMIT = 64 * KiB  # the body of any 4xx or 5xx answer
API_LIMIT = 4 * MiB  # any other JSON answer of the API (the tag list, /v2/)
LIMIT_KEY = "lxclab.limit"  # the request extension naming a request's own limit (None: no limit)


def limit_extension(limit: int | None) -> dict[str, int | None]:
    """The `extensions` argument that gives a request its own limit on the answer's size."""
    return {LIMIT_KEY: limit}


def limit_of(request: httpx.Request, status: int) -> int | None:
    """The most bytes an answer to `request` with `status` may carry (None: the caller bounds it, or no body comes)."""
    if request.method == "HEAD":  # no body; its Content-Length is the size of what a GET would send
        return None
    if status >= 400:
        return ERROR_LIMIT
    return request.extensions.get(LIMIT_KEY, API_LIMIT)


class _BoundedStream(httpx.SyncByteStream):
    """A response body that raises ResponseTooLarge once more than `limit` bytes have come."""

    def __init__(self, inner: httpx.SyncByteStream, limit: int, what: str):
        self._inner, self._limit, self._what = inner, limit, what

    def __iter__(self) -> Iterator[bytes]:
        seen = 0
        for chunk in self._inner:
            seen += len(chunk)
            if seen > self._limit:
                raise too_large(self._what, self._limit, f"more than {self._limit} bytes")
            yield chunk

    def close(self) -> None:
        """Close the underlying stream (and its connection)."""
        self._inner.close()


def too_large(what: str, limit: int, size: str) -> ResponseTooLarge:
    """The error for an answer (or a declared blob) larger than its limit."""
    return ResponseTooLarge(
        f"{what}: the answer is {size}, above lxclab's limit of {limit} bytes; "
        "it was not read further: the server is broken or hostile"
    )


class BoundedTransport(httpx.BaseTransport):
    """An HTTP transport whose answers are cut off at their size limit with a named error."""

    def __init__(self, inner: httpx.BaseTransport | None = None):
        self._inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request; bound the answer's body (refuse it at once when its length is declared too big)."""
        response = self._inner.handle_request(request)
        limit = limit_of(request, response.status_code)
        if limit is None:
            return response
        what = f"{request.method} {request.url.copy_with(query=None)} ({response.status_code})"
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            response.close()
            raise too_large(what, limit, f"{declared} bytes (its Content-Length)")
        encoding = response.headers.get("Content-Encoding", "identity").lower()
        if encoding not in ("", "identity"):
            response.close()
            raise RegistryError(f"{what}: the answer is compressed ({encoding}) although lxclab asked for identity; "
                                   "its size cannot be bounded before decompression, so it was not read")
        response.stream = _BoundedStream(response.stream, limit, what)
        return response

    def close(self) -> None:
        """Close the wrapped transport."""
        self._inner.close()
