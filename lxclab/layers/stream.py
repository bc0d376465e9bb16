"""Open a layer blob as an uncompressed tar stream whose sha256 (the DiffID) is computed as it is read.

A layer is gzip, zstd or plain tar. The first bytes decide (gzip starts 1f 8b, zstd
28 b5 2f fd); the media type is checked against them, and a disagreement only warns,
because registries have served plain tars under a gzip media type. The DiffID is the
sha256 of the whole uncompressed stream, including tar's trailing zero blocks.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import zstandard

from ..errors import DigestMismatch, LayerError, UnsupportedMediaType

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
PLAIN, GZIP, ZSTD = "tar", "tar+gzip", "tar+zstd"
_CHUNK = 1 << 20
_STREAM_ERRORS = (EOFError, zlib.error, zstandard.ZstdError, tarfile.TarError, gzip.BadGzipFile)


class DigestingReader:
    """A file-like reader that hashes (sha256) and counts every byte read through it."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        """Read up to `size` bytes (all when -1), hashing them."""
        data = self._raw.read(size)
        self._hash.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Read to the end, so the digest covers the whole stream (tar's padding too)."""
        while self.read(_CHUNK):
            pass

    @property
    def digest(self) -> str:
        """`sha256:<hex>` of everything read so far."""
        return "sha256:" + self._hash.hexdigest()


class _Prefixed:
    """A reader that first returns bytes already read (the magic), then the rest of the source."""

    def __init__(self, prefix: bytes, rest: BinaryIO):
        self._prefix, self._rest = prefix, rest

    def read(self, size: int = -1) -> bytes:
        """Read up to `size` bytes (all when -1): the prefix first."""
        if not self._prefix:
            return self._rest.read(size)
        if size < 0:
            data, self._prefix = self._prefix + self._rest.read(), b""
            return data
        data, self._prefix = self._prefix[:size], self._prefix[size:]
        return data + (self._rest.read(size - len(data)) if size > len(data) else b"")


def compression_of(media_type: str | None) -> str | None:
    """The compression a layer media type announces (None if no media type was given)."""
    if media_type is None:
        return None
    if media_type.endswith(("+gzip", ".tar.gzip", ".tar.gz")):
        return GZIP
    if media_type.endswith("+zstd"):
        return ZSTD
    if media_type.endswith(".tar") or media_type.endswith("tar"):
        return PLAIN
    raise UnsupportedMediaType(
        f"layer media type {media_type!r} is not a tar layer: lxclab applies tar, tar+gzip and tar+zstd layers"
    )


def detect(magic: bytes) -> str:
    """The compression the first bytes of a blob reveal."""
    if magic.startswith(GZIP_MAGIC):
        return GZIP
    if magic.startswith(ZSTD_MAGIC):
        return ZSTD
    return PLAIN


@contextlib.contextmanager
def open_layer(source: Path | BinaryIO, media_type: str | None, name: str,
               warnings: list[str]) -> Iterator[DigestingReader]:
    """Yield the layer's uncompressed tar stream as a DigestingReader; close what was opened."""
    announced = compression_of(media_type)
    with contextlib.ExitStack() as stack:
        raw = stack.enter_context(open(source, "rb")) if isinstance(source, (str, Path)) else source
        magic = raw.read(4)
        actual = detect(magic)
        if announced and announced != actual:
            warnings.append(f"layer {name}: media type {media_type} says {announced} but the bytes are {actual}")
        readable = _Prefixed(magic, raw)
        if actual == GZIP:
            readable = stack.enter_context(gzip.GzipFile(fileobj=readable, mode="rb"))
        elif actual == ZSTD:
            decompressor = zstandard.ZstdDecompressor()
            readable = stack.enter_context(decompressor.stream_reader(readable, read_across_frames=True))
        yield DigestingReader(readable)


@contextlib.contextmanager
def tar_stream(reader: DigestingReader, name: str) -> Iterator[tarfile.TarFile]:
    """A streaming TarFile over `reader` that turns corrupt input into LayerError."""
    try:
        with tarfile.open(fileobj=reader, mode="r|", errorlevel=2) as archive:
            yield archive
    except _STREAM_ERRORS as exc:
        raise LayerError(f"layer {name} is not a readable tar stream: {exc}; the blob is corrupt or truncated") from exc


def verify_diff_id(reader: DigestingReader, expected: str | None, name: str) -> str:
    """Read to the end and check the DiffID; DigestMismatch if it is not the one expected."""
    try:
        reader.drain()
    except _STREAM_ERRORS as exc:
        raise LayerError(f"layer {name}: the stream ends badly after the tar: {exc}") from exc
    if expected is not None and reader.digest != expected:
        raise DigestMismatch(
            f"layer {name}: DiffID expected {expected}, got {reader.digest} (sha256 of the uncompressed tar); "
            "the layer was not applied: pull the image again"
        )
    return reader.digest
