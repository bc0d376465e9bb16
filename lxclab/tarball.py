"""Deterministic tar layers: the same entries always give the same bytes and digests.

A layer is a tar archive (what a DiffID names) compressed with gzip (what the manifest's
layer digest names). To make two builds byte-identical this writer sorts entries by
path, gives every entry one fixed mtime and uid/gid 0 unless told otherwise, leaves user
and group names empty, writes hardlinks in a second pass after every regular file (a tar
reader can only link to a file it has already written), and gzips with mtime 0 and a
fixed compression level. Whiteouts (`.wh.NAME`) and opaque markers (`.wh..wh..opq`) are
ordinary empty files whose names tell an extractor to delete what the layers below hold.
"""

from __future__ import annotations

import hashlib
import io
import stat
import tarfile
import zlib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from .errors import LayerError
from .manifest import sha256_digest

WHITEOUT_PREFIX = ".wh."  # the OCI whiteout names, defined here once (lxclab.layers.names reads them)
OPAQUE_MARKER = ".wh..wh..opq"
AUFS_META_PREFIX = WHITEOUT_PREFIX * 2  # .wh..wh.: aufs's own bookkeeping, like the opaque marker
DEFAULT_MTIME = 1704067200  # 2024-01-01T00:00:00Z: any fixed time will do; this one is ours
DEFAULT_GZIP_LEVEL = 6

FILE, DIRECTORY, SYMLINK, HARDLINK = "file", "dir", "symlink", "hardlink"
ENTRY, WHITEOUT, OPAQUE, AUFS_META = "entry", "whiteout", "opaque", "aufs-meta"  # what a member's name means
_TAR_TYPES = {FILE: tarfile.REGTYPE, DIRECTORY: tarfile.DIRTYPE, SYMLINK: tarfile.SYMTYPE, HARDLINK: tarfile.LNKTYPE}


class Source(Protocol):
    """Where a regular file's bytes come from when the layer is written: its size, and a way to open it."""

    size: int

    def open(self) -> BinaryIO:
        """The file's bytes, opened for reading."""


@dataclass(frozen=True)
class Entry:
    """One member of a layer: a file, directory, symlink or hardlink at a relative path."""

    path: str
    kind: str
    mode: int = 0o644
    data: bytes | Path | Source = b""
    target: str = ""
    uid: int = 0
    gid: int = 0

    def __post_init__(self) -> None:
        if self.kind not in _TAR_TYPES:
            raise LayerError(f"tar entry {self.path!r}: unknown kind {self.kind!r}; use file, dir, symlink or hardlink")
        object.__setattr__(self, "path", clean_path(self.path))
        if self.kind == HARDLINK:
            object.__setattr__(self, "target", clean_path(self.target))

    def size(self) -> int:
        """How many bytes a regular file holds (0 for every other kind)."""
        if self.kind != FILE:
            return 0
        if isinstance(self.data, bytes):
            return len(self.data)
        return self.data.stat().st_size if isinstance(self.data, Path) else self.data.size

    def open(self) -> BinaryIO:
        """A regular file's bytes, opened for reading (from memory, from disk, or from its Source)."""
        if isinstance(self.data, bytes):
            return io.BytesIO(self.data)
        return self.data.open("rb") if isinstance(self.data, Path) else self.data.open()


def clean_path(path: str, root_allowed: bool = False) -> str:
    """A tar member name relative to the root ('' for the root, if allowed), refusing paths that climb out of it."""
    parts = [p for p in PurePosixPath(path).parts if p not in ("/", ".")]
    if (not parts and not root_allowed) or ".." in parts:
        raise LayerError(f"tar entry {path!r}: a layer path must name something inside the root, without '..'")
    return "/".join(parts)


def regular_file(path: str, data: bytes | Path | Source, mode: int = 0o644, uid: int = 0, gid: int = 0) -> Entry:
    """A regular file holding `data` (bytes, or a Path or Source read when the layer is written)."""
    return Entry(path, FILE, mode, data, uid=uid, gid=gid)


def directory(path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Entry:
    """A directory; its mode keeps setuid/setgid/sticky bits (like /tmp's 1777)."""
    return Entry(path, DIRECTORY, mode, uid=uid, gid=gid)


def symlink(path: str, target: str, uid: int = 0, gid: int = 0) -> Entry:
    """A symbolic link to `target`, stored verbatim (absolute targets stay absolute)."""
    return Entry(path, SYMLINK, 0o777, target=target, uid=uid, gid=gid)


def hardlink(path: str, target: str) -> Entry:
    """A second name for the regular file `target`, in the same layer (or below, when the writer is told so)."""
    return Entry(path, HARDLINK, 0o644, target=target)


def whiteout(path: str) -> Entry:
    """The marker `DIR/.wh.NAME` that deletes `DIR/NAME` from the layers below."""
    name = PurePosixPath(clean_path(path))
    return Entry(str(name.parent / (WHITEOUT_PREFIX + name.name)), FILE, 0o644)


def opaque(directory_path: str) -> Entry:
    """The marker `DIR/.wh..wh..opq` hiding all the layers below hold in DIR (just `.wh..wh..opq` for the root)."""
    directory_path = clean_path(directory_path, root_allowed=True)
    return Entry(f"{directory_path}/{OPAQUE_MARKER}" if directory_path else OPAQUE_MARKER, FILE, 0o644)


def meaning(path: str) -> tuple[str, str]:
    """What a relative member name means: (ENTRY, path), (WHITEOUT, deleted), (OPAQUE, dir) or (AUFS_META, path)."""
    parent, _, base = path.rpartition("/")
    if not base.startswith(WHITEOUT_PREFIX):
        return ENTRY, path
    if base == OPAQUE_MARKER:
        return OPAQUE, parent
    if base.startswith(AUFS_META_PREFIX):
        return AUFS_META, path
    deleted = base[len(WHITEOUT_PREFIX):]
    return WHITEOUT, f"{parent}/{deleted}" if parent else deleted


@dataclass(frozen=True)
class Layer:
    """A built layer: its gzip bytes (named by `digest`) and its tar's sha256 (the DiffID)."""

    blob: bytes
    diff_id: str

    @property
    def digest(self) -> str:
        """The sha256 of the compressed bytes, as a manifest's layer descriptor names it."""
        return sha256_digest(self.blob)

    @property
    def size(self) -> int:
        """The length of the compressed bytes."""
        return len(self.blob)


@dataclass(frozen=True)
class Written:
    """What `write_layer` wrote: the compressed bytes' digest and length, and the tar's DiffID."""

    digest: str
    size: int
    diff_id: str


def build_layer(entries: list[Entry], mtime: int = DEFAULT_MTIME, level: int = DEFAULT_GZIP_LEVEL,
                lower_files: Collection[str] = ()) -> Layer:
    """Write `entries` as a deterministic gzip tar layer in memory and compute its DiffID.

    A hardlink must name a regular file of the same layer, or one of `lower_files`: the
    paths of regular files that the layers below hold, which only the caller knows.
    """
    buffer = io.BytesIO()
    written = write_layer(entries, buffer, mtime, level, lower_files)
    return Layer(blob=buffer.getvalue(), diff_id=written.diff_id)


def write_layer(entries: list[Entry], out: BinaryIO, mtime: int = DEFAULT_MTIME,
                level: int = DEFAULT_GZIP_LEVEL, lower_files: Collection[str] = ()) -> Written:
    """Stream `entries` as a deterministic gzip tar layer into `out`, one file at a time, hashing on the way."""
    compressed = _Hashing(out)
    gzip = _Gzip(compressed, level)
    tar = _Hashing(gzip)
    write_tar(entries, tar, mtime, lower_files)
    gzip.finish()
    return Written(compressed.digest, compressed.count, tar.digest)


def write_tar(entries: list[Entry], out: BinaryIO, mtime: int = DEFAULT_MTIME,
              lower_files: Collection[str] = ()) -> None:
    """Write the uncompressed tar to `out`: every non-hardlink sorted by path, then hardlinks sorted by path.

    A hardlink may name one of `lower_files` (regular files of the layers below) that this layer keeps.
    """
    _check_unique(entries)
    _check_hardlink_targets(entries, lower_files)
    ordered = sorted((e for e in entries if e.kind != HARDLINK), key=lambda e: e.path)
    ordered += sorted((e for e in entries if e.kind == HARDLINK), key=lambda e: e.path)
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for entry in ordered:
            size = entry.size()
            if not size:
                archive.addfile(_tar_info(entry, mtime, 0))
                continue
            with entry.open() as data:
                archive.addfile(_tar_info(entry, mtime, size), data)


class _Hashing:
    """A writer that passes bytes on to `out`, counting them and hashing them with sha256."""

    def __init__(self, out: BinaryIO):
        self.out, self.count, self._hasher = out, 0, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.out.write(data)
        self._hasher.update(data)
        self.count += len(data)
        return len(data)

    def tell(self) -> int:
        return self.count

    @property
    def digest(self) -> str:
        return "sha256:" + self._hasher.hexdigest()


class _Gzip:
    """A writer that gzips what it gets into `out`: mtime 0, no file name, a fixed level (wbits 31)."""

    def __init__(self, out: _Hashing | BinaryIO, level: int):
        self.out, self._compressor = out, zlib.compressobj(level, zlib.DEFLATED, 31)

    def write(self, data: bytes) -> int:
        self.out.write(self._compressor.compress(data))
        return len(data)

    def finish(self) -> None:
        self.out.write(self._compressor.flush())


def _tar_info(entry: Entry, mtime: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path)
    info.type = _TAR_TYPES[entry.kind]
    info.mode = stat.S_IMODE(entry.mode)
    info.mtime = mtime
    info.uid, info.gid = entry.uid, entry.gid
    info.uname = info.gname = ""
    info.linkname = entry.target if entry.kind in (SYMLINK, HARDLINK) else ""
    info.size = size
    return info


def _check_unique(entries: list[Entry]) -> None:
    seen: set[str] = set()
    for entry in entries:
        if entry.path in seen:
            raise LayerError(f"tar entry {entry.path!r} appears twice in one layer; give each path once")
        seen.add(entry.path)


def _check_hardlink_targets(entries: list[Entry], lower_files: Collection[str]) -> None:
    files = {e.path for e in entries if e.kind == FILE} | _kept_below(entries, lower_files)
    for entry in entries:
        if entry.kind == HARDLINK and entry.target not in files:
            raise LayerError(
                f"hardlink {entry.path!r} -> {entry.target!r}: the target must be a regular file in the "
                "same layer, or a file of the layers below named in lower_files that this layer keeps; "
                "add it, or store this path as a regular file"
            )


def _kept_below(entries: list[Entry], lower_files: Collection[str]) -> set[str]:
    """The files of `lower_files` this layer keeps: not listed again, whited out, in an opaque dir or under a non-dir."""
    own = {e.path: e.kind for e in entries}
    deleted = set(own)
    prefixes = [path + "/" for path, kind in own.items() if kind != DIRECTORY]
    for path in own:
        what, subject = meaning(path)
        if what == OPAQUE:
            prefixes.append(subject + "/" if subject else "")
        elif what == WHITEOUT:
            deleted.add(subject)
            prefixes.append(subject + "/")
    return {path for path in map(clean_path, lower_files)
            if path not in deleted and not path.startswith(tuple(prefixes))}
