"""What the library keeps doing under the learner's layer code: path checks and safe extraction.

Level B3 has the learner write the whiteout rules; these keep the safety underneath, so a
hostile layer still cannot reach outside the root: `safe_path` never lets a deletion go
through a symlink, and `extract_files` adds a layer's own files with lxclab's extractor.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from pathlib import Path

from .. import tarball
from ..errors import UnsafeLayerEntry
from ..layers import apply_layer as library_apply_layer
from ..layers.stream import open_layer, tar_stream


def safe_path(root: Path, relative: str) -> Path:
    """`root/relative`, refused (UnsafeLayerEntry) if any directory on the way is a symlink or `..`."""
    parts = Path(relative).parts
    if not parts or ".." in parts or Path(relative).is_absolute():
        raise UnsafeLayerEntry(f"path {relative!r} is not a plain path inside the root")
    place = Path(root)
    for part in parts[:-1]:
        place = place / part
        if place.is_symlink():
            raise UnsafeLayerEntry(f"{relative!r} goes through the symlink /{place.relative_to(root)}: never follow it")
    return place / parts[-1]


def is_marker(name: str) -> bool:
    """Whether a tar member's name is a whiteout, an opaque marker or aufs bookkeeping (`.wh.` names)."""
    return tarball.meaning(name.rstrip("/"))[0] != tarball.ENTRY


def extract_files(layer: Path, root: Path) -> None:
    """Add a layer's own entries (every member but the `.wh.` markers) to `root` with lxclab's safe extractor."""
    with tempfile.TemporaryFile() as without_markers:
        with open_layer(Path(layer), None, Path(layer).name, []) as reader, tar_stream(reader, Path(layer).name) as archive:
            with tarfile.open(fileobj=without_markers, mode="w", format=tarfile.PAX_FORMAT) as out:
                for info in archive:
                    if not is_marker(info.name):
                        out.addfile(info, archive.extractfile(info) if info.isreg() else None)
        without_markers.seek(0)
        library_apply_layer(without_markers, Path(root), name=Path(layer).name)


def tiny_layer(path: Path, entries: list[tuple[str, str]]) -> Path:
    """Write a small tar layer from (name, content) pairs: a name ending in / is a directory (content: its octal mode)."""
    with tarfile.open(path, "w") as archive:
        for name, content in entries:
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mtime = 1704067200
            if name.endswith("/"):
                info.type, info.mode = tarfile.DIRTYPE, int(content or "755", 8)
                archive.addfile(info)
            else:
                data = content.encode()
                info.size, info.mode = len(data), 0o644
                archive.addfile(info, io.BytesIO(data))
    return path
