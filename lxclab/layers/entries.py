"""What a layer holds, entry by entry, as plain data: the input of the union-filesystem model.

`read_entries` reads a layer blob without writing anything and applies the same name
checks as extraction, so a hostile layer is refused here too. Whiteouts appear as
entries of kind WHITEOUT whose path is the path they delete; an opaque marker as an
entry of kind OPAQUE whose path is the directory it empties.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from . import names
from .stream import open_layer, tar_stream, verify_diff_id

FILE, DIRECTORY, SYMLINK, HARDLINK = "file", "dir", "symlink", "hardlink"
CHAR, BLOCK, FIFO = "char", "block", "fifo"
WHITEOUT, OPAQUE = names.WHITEOUT, names.OPAQUE
DEVICE_KINDS = (CHAR, BLOCK)

_TAR_KINDS = {
    tarfile.REGTYPE: FILE, tarfile.AREGTYPE: FILE, tarfile.CONTTYPE: FILE, tarfile.GNUTYPE_SPARSE: FILE,
    tarfile.DIRTYPE: DIRECTORY, tarfile.SYMTYPE: SYMLINK, tarfile.LNKTYPE: HARDLINK,
    tarfile.CHRTYPE: CHAR, tarfile.BLKTYPE: BLOCK, tarfile.FIFOTYPE: FIFO,
}


@dataclass(frozen=True)
class LayerEntry:
    """One entry of a layer: a path (relative to the root), its kind, size, mode, owner and link target."""

    path: str
    kind: str
    size: int = 0
    mode: int = 0
    uid: int = 0
    gid: int = 0
    mtime: float = 0.0
    target: str = ""

    @property
    def is_dir(self) -> bool:
        """True for a directory."""
        return self.kind == DIRECTORY

    @property
    def is_marker(self) -> bool:
        """True for a whiteout or opaque marker, which deletes rather than adds."""
        return self.kind in (WHITEOUT, OPAQUE)


def kind_of(info: tarfile.TarInfo, name: str, layer: str) -> str:
    """The kind of a tar member; unknown tar types are refused."""
    kind = _TAR_KINDS.get(info.type)
    if kind is None:
        raise names.refuse(layer, name, f"tar type {info.type!r} is not a file, directory, link, device or fifo")
    return kind


def entry_from_tarinfo(info: tarfile.TarInfo, layer: str) -> LayerEntry | None:
    """The LayerEntry a tar member stands for (None for aufs bookkeeping files, which mean nothing)."""
    path = names.clean_name(info.name, layer)
    meaning, subject = names.classify(path, info.name, layer)
    if meaning == names.AUFS_META:
        return None
    if meaning != names.ENTRY:
        return LayerEntry(subject, meaning)
    kind = kind_of(info, info.name, layer)
    if path == "" and kind != DIRECTORY:
        raise names.refuse(layer, info.name, "the root of the filesystem can only be a directory")
    target = info.linkname
    if kind == HARDLINK:
        target = names.clean_name(info.linkname, layer)
    return LayerEntry(path, kind, info.size if kind == FILE else 0, info.mode & 0o7777,
                      info.uid, info.gid, float(info.mtime), target)


def read_entries(source: Path | BinaryIO, media_type: str | None = None, expected_diff_id: str | None = None,
                 name: str = "layer", max_bytes: int | None = None) -> list[LayerEntry]:
    """Every entry of a layer blob in tar order, with names checked (and the DiffID, when given)."""
    warnings: list[str] = []
    entries: list[LayerEntry] = []
    with open_layer(source, media_type, name, warnings, max_bytes) as reader:
        with tar_stream(reader, name) as archive:
            for info in archive:
                entry = entry_from_tarinfo(info, name)
                if entry is not None:
                    entries.append(entry)
        verify_diff_id(reader, expected_diff_id, name)
    return entries
