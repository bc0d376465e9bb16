"""A directory tree as `ls -l`-style lines, so that a lesson can print it and compare two trees.

Each path under a root becomes one line: its type and mode as `ls -l` shows them, its
owner, and what sets it apart: a file's size, short sha256 and link count, a symlink's
target, a device's numbers, and overlayfs's opaque mark on a directory. Links are never
followed. Times are left out, so two listings are equal when the trees hold the same
names, types, modes, owners, links and bytes, whenever they were made. Reading needs no
privileges beyond permission to read the tree.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from .layers.overlayform import is_opaque

SHORT_DIGEST = 12


def _short_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:SHORT_DIGEST]


def describe(path: Path) -> str:
    """One `ls -l`-like line for a path (not following a symlink): mode, owner and its details."""
    st = os.lstat(path)
    line = f"{stat.filemode(st.st_mode)} {st.st_uid}:{st.st_gid}"
    if stat.S_ISREG(st.st_mode):
        line += f" {st.st_size} bytes sha256:{_short_sha256(path)}"
        return line + (f" ({st.st_nlink} links)" if st.st_nlink > 1 else "")
    if stat.S_ISLNK(st.st_mode):
        return line + f" -> {os.readlink(path)}"
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        return line + f" device {os.major(st.st_rdev)}/{os.minor(st.st_rdev)}"
    if stat.S_ISDIR(st.st_mode) and is_opaque(path):
        return line + " (opaque)"
    return line


def listing(root: Path) -> dict[str, str]:
    """Every path under `root` (relative, sorted; "." for the root itself) with its `describe` line."""
    root = Path(root)
    found = {".": describe(root)}
    for directory, subdirectories, files in os.walk(root):
        for name in subdirectories + files:
            path = Path(directory, name)
            found[path.relative_to(root).as_posix()] = describe(path)
    return dict(sorted(found.items()))


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What differs between two listings, one line a path: `+` added, `-` removed, `~` changed (old -> new)."""
    lines = []
    for path in sorted(before.keys() | after.keys()):
        if path not in before:
            lines.append(f"+ {path}  {after[path]}")
        elif path not in after:
            lines.append(f"- {path}  {before[path]}")
        elif before[path] != after[path]:
            lines.append(f"~ {path}  {before[path]}  =>  {after[path]}")
    return lines
