"""Open a layer blob as an uncompressed tar stream whose sha256 (the DiffID) is computed as it is read.

A layer is gzip, zstd or plain tar. The first bytes decide (gzip starts 1f 8b, zstd
28 b5 2f fd); the media type is checked against them, and a disagreement only warns,
because registries have served plain tars under a gzip media type. The DiffID is the
sha256 of the whole uncompressed stream, including tar's trailing zero blocks. Like Go's
archive/tar, the stream may end at a member boundary without those blocks, even without
the last member's padding; it may not end inside a header or a member's data.

Two bounds keep a hostile layer from exhausting memory or disk: a GNU long-name/long-link
or PAX header larger than MAX_HEADER_BYTES is refused before it is read (tarfile would
hold it in memory whole), and a layer whose uncompressed stream passes `max_bytes`
(default LXCLAB_MAX_LAYER_BYTES, else DEFAULT_MAX_LAYER_BYTES) stops there: a compression
bomb raises LayerTooLarge naming the layer.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import sys
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


from ..errors import DigestMismatch, LayerError, LayerTooLarge, UnsupportedMediaType

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
PLAIN, GZIP, ZSTD = "tar", "tar+gzip", "tar+zstd"
CHUNK = 64 << 10  # bytes per read and copy; under glibc's 128 KiB mmap threshold, so a fresh process reuses its buffers
# (1 MiB chunks were each mapped and faulted in anew: 60,000 page faults, a third of a CLI unpack's time)
_STREAM_ERRORS = (EOFError, zlib.error, tarfile.TarError, gzip.BadGzipFile)
MAX_HEADER_BYTES = 1 << 20  # a GNU long name/link or PAX header; PATH_MAX is 4096, xattrs 64 KiB each
DEFAULT_MAX_LAYER_BYTES = 32 << 30  # uncompressed bytes per layer; the largest real layers are a few GiB
MAX_LAYER_VARIABLE = "LXCLAB_MAX_LAYER_BYTES"
_EXTENDED_HEADERS = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
                     tarfile.SOLARIS_XHDTYPE)


def _stream_errors() -> tuple[type[BaseException], ...]:
    """The errors a corrupt layer stream raises; zstandard's too once a zstd layer has loaded it."""
    zstd = sys.modules.get("zstandard")
    return _STREAM_ERRORS + ((zstd.ZstdError,) if zstd else ())


def max_layer_bytes() -> int:
    """The bound on a layer's uncompressed bytes: LXCLAB_MAX_LAYER_BYTES if set, else DEFAULT_MAX_LAYER_BYTES."""
    value = os.environ.get(MAX_LAYER_VARIABLE, "").strip()
    if not value:
        return DEFAULT_MAX_LAYER_BYTES
    if not value.isdigit() or int(value) == 0:
        raise LayerError(f"{MAX_LAYER_VARIABLE}={value!r} is not a positive number of bytes (like 17179869184)")
    return int(value)


class _OversizedHeader(Exception):
    """Raised inside tarfile for an extended header above MAX_HEADER_BYTES; tar_stream names the layer."""

    def __init__(self, info: tarfile.TarInfo):
        super().__init__(f"a {info.type.decode(errors='replace')!r} tar header of {info.size} bytes")


class BoundedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses a GNU long-name/long-link or PAX header larger than MAX_HEADER_BYTES, unread."""

    def _proc_member(self, tarfile_):
        if self.type in _EXTENDED_HEADERS and self.size > MAX_HEADER_BYTES:
            raise _OversizedHeader(self)
        return super()._proc_member(tarfile_)


class DigestingReader:
    """A file-like reader that hashes (sha256) and counts every byte read through it, up to `limit` bytes."""

    def __init__(self, raw: BinaryIO, limit: int | None = None, name: str = "layer"):
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0
        self.at_end = False
        self.limit, self.name = limit, name

    def read(self, size: int = -1) -> bytes:
        """Read up to `size` bytes (all when -1), hashing them; LayerTooLarge past the limit."""
        if self.limit is not None and (size < 0 or size > self.limit + 1 - self.size):
            size = self.limit + 1 - self.size  # never decompress more than one byte past the limit
        data = self._raw.read(size)
        self.at_end = self.at_end or (size != 0 and not data)
        self._hash.update(data)
        self.size += len(data)
        if self.limit is not None and self.size > self.limit:
            raise LayerTooLarge(
                f"layer {self.name}: its uncompressed stream is larger than {self.limit} bytes, the limit per layer "
                f"(a compression bomb?); nothing of it was applied. Raise {MAX_LAYER_VARIABLE} if the image is genuine"
            )
        return data

    def drain(self) -> None:
        """Read to the end, so the digest covers the whole stream (tar's padding too)."""
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        """`sha256:<hex>` of everything read so far."""
        return "sha256:" + self._hash.hexdigest()


class LayerTarFile(tarfile.TarFile):
    """A streaming TarFile that ends where Go's archive/tar (umoci, containerd) ends a layer.

    The stream may stop at a member boundary without tar's end-of-archive blocks, even
    right after the last member's data without its padding (umoci 0.4.7's `insert` writes
    such layers); a stream cut inside a header or a member's data is still refused.
    """

    source: DigestingReader | None = None  # set by tar_stream once open (opening reads the first header)

    def next(self) -> tarfile.TarInfo | None:
        """The next member, or None at a clean end of the stream; ReadError if it stops inside one."""
        try:
            info = super().next()
        except tarfile.ReadError:
            if not self._ends_after_last_data():
                raise
            self._loaded = True
            return None
        if info is None and self._ends_inside_a_header():
            raise tarfile.ReadError("unexpected end of data inside a tar header")
        return info

    def _ends_after_last_data(self) -> bool:
        source = self.source
        last = self.members[-1] if self.members else None
        return source is not None and source.at_end and last is not None and \
            source.size == last.offset_data + last.size

    def _ends_inside_a_header(self) -> bool:
        source = self.source
        return source is not None and source.at_end and 0 < source.size - self.offset < tarfile.BLOCKSIZE


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
               warnings: list[str], max_bytes: int | None = None) -> Iterator[DigestingReader]:
    """Yield the layer's uncompressed tar stream as a DigestingReader bounded to `max_bytes`; close what was opened."""
    announced = compression_of(media_type)
    with contextlib.ExitStack() as stack:
        raw = stack.enter_context(open(source, "rb", buffering=CHUNK)) if isinstance(source, (str, Path)) else source
        magic = raw.read(4)
        actual = detect(magic)
        if announced and announced != actual:
            warnings.append(f"layer {name}: media type {media_type} says {announced} but the bytes are {actual}")
        readable = _Prefixed(magic, raw)
        if actual == GZIP:
            readable = stack.enter_context(gzip.GzipFile(fileobj=readable, mode="rb"))
        elif actual == ZSTD:
            import zstandard  # loaded only for a zstd layer: a run of cached layers never pays for it

            decompressor = zstandard.ZstdDecompressor()
            readable = stack.enter_context(decompressor.stream_reader(readable, read_across_frames=True))
        yield DigestingReader(readable, max_layer_bytes() if max_bytes is None else max_bytes, name)


@contextlib.contextmanager
def tar_stream(reader: DigestingReader, name: str) -> Iterator[tarfile.TarFile]:
    """A streaming TarFile over `reader` that turns corrupt input into LayerError."""
    try:
        with LayerTarFile.open(fileobj=reader, mode="r|", bufsize=CHUNK, errorlevel=2, tarinfo=BoundedTarInfo) as archive:
            archive.source = reader
            yield archive
    except _OversizedHeader as exc:
        raise LayerTooLarge(
            f"layer {name}: {exc}, above the limit of {MAX_HEADER_BYTES} bytes for a long name or PAX header; "
            "it was not read and nothing of the layer was applied"
        ) from None
    except RecursionError:
        raise LayerError(f"layer {name}: an endless chain of tar extension headers; the layer was refused") from None
    except _stream_errors() as exc:
        raise LayerError(f"layer {name} is not a readable tar stream: {exc}; the blob is corrupt or truncated") from exc


def verify_diff_id(reader: DigestingReader, expected: str | None, name: str) -> str:
    """Read to the end and check the DiffID; DigestMismatch if it is not the one expected."""
    try:
        reader.drain()
    except _stream_errors() as exc:
        raise LayerError(f"layer {name}: the stream ends badly after the tar: {exc}") from exc
    if expected is not None and reader.digest != expected:
        raise DigestMismatch(
            f"layer {name}: DiffID expected {expected}, got {reader.digest} (sha256 of the uncompressed tar); "
            "the layer was not applied: pull the image again"
        )
    return reader.digest
