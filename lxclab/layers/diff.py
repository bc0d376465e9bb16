"""Turn an overlayfs upper directory (what a container changed) into a new OCI layer.

The upper directory holds new and copied-up files as they are, a deleted path as a 0/0
character device, and a directory whose lower contents were hidden (deleted, then made
again) with the xattr `trusted.overlay.opaque=y`. In the layer those become `.wh.NAME`
and `DIR/.wh..wh..opq` entries. Files sharing an inode become one file and hardlinks.
The layer is written by lxclab.tarball, deterministically: one fixed mtime for every
entry, sorted names; device nodes and fifos (which that writer does not store) are
skipped with a warning.

The upper directory belongs to a container, so nothing in it is trusted: every directory
is opened from its parent's descriptor with O_NOFOLLOW, and every file is opened the same
way when the layer is written and checked with fstat to be the file the walk saw. A path
swapped for a symlink (to a host file, say) makes the diff fail; it never reads through it.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .. import tarball
from ..errors import UnsafeLayerEntry
from .names import STAGING_PREFIX
from .overlayform import is_opaque, is_whiteout_node
from .report import LayerWarning

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def diff_directory(upper: Path, mtime: int = tarball.DEFAULT_MTIME) -> tarball.Layer:
    """The layer that records the changes in an overlay upper directory (whiteouts in OCI form), in memory."""
    return tarball.build_layer(diff_entries(upper), mtime)


def write_diff(upper: Path, out: BinaryIO, mtime: int = tarball.DEFAULT_MTIME) -> tarball.Written:
    """Stream the layer of an upper directory's changes into `out`, one file at a time (commit's way)."""
    return tarball.write_layer(diff_entries(upper), out, mtime)


def diff_entries(upper: Path) -> list[tarball.Entry]:
    """The layer entries for an upper directory's changes; device nodes and fifos skipped with a warning."""
    upper = Path(upper)
    entries: list[tarball.Entry] = []
    first_name_of_inode: dict[tuple[int, int], str] = {}
    skipped: list[str] = []
    for found in _walk(upper):
        entries.extend(_entries_for(upper, found, first_name_of_inode, skipped))
    if skipped:
        warnings.warn(f"diff of {upper}: skipped {len(skipped)} device nodes or fifos "
                      f"({', '.join(skipped[:3])}...): the layer writer stores files, directories and links",
                      LayerWarning, stacklevel=3)
    return entries


@dataclass(frozen=True)
class Found:
    """One path of the upper directory as the walk saw it: its lstat, link target and opaque mark."""

    rel: str
    st: os.stat_result
    link: str = ""
    opaque: bool = False


@dataclass(frozen=True)
class UpperFile:
    """A regular file of the upper directory, opened when the layer is written, never through a symlink."""

    upper: Path
    rel: str
    device: int
    inode: int
    size: int

    def open(self) -> BinaryIO:
        """The file, opened beneath the upper directory; UnsafeLayerEntry if it is no longer the file walked."""
        fd = _open_beneath(self.upper, self.rel)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino, st.st_size) != (self.device, self.inode, self.size):
            os.close(fd)
            raise UnsafeLayerEntry(f"{self.rel} in {self.upper} changed while its layer was written; "
                                   "nothing was stored: stop the container and commit again")
        return os.fdopen(fd, "rb")


def _open_beneath(upper: Path, rel: str) -> int:
    """A descriptor for `rel` opened component by component from `upper`, following no symlink on the way."""
    *parents, name = rel.split("/")
    fd = os.open(upper, _DIRECTORY_FLAGS)
    try:
        for part in parents:
            child = os.open(part, _DIRECTORY_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
        return os.open(name, _FILE_FLAGS, dir_fd=fd)
    except OSError as error:
        raise UnsafeLayerEntry(f"{rel} in {upper} cannot be read without following a symlink "
                               f"({error.strerror}); nothing was stored") from error
    finally:
        os.close(fd)


def _walk(upper: Path) -> Iterator[Found]:
    """Every path under `upper`, parents before children, sorted; each directory opened with O_NOFOLLOW."""
    fd = os.open(upper, _DIRECTORY_FLAGS)
    try:
        yield from _walk_directory(fd, "")
    finally:
        os.close(fd)


def _walk_directory(fd: int, rel: str) -> Iterator[Found]:
    for name in sorted(os.listdir(fd)):
        if not rel and name.startswith(STAGING_PREFIX):
            continue
        child = f"{rel}/{name}" if rel else name
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            yield Found(child, st, link=os.readlink(name, dir_fd=fd))
        elif not stat.S_ISDIR(st.st_mode):
            yield Found(child, st)
        else:
            try:
                sub = os.open(name, _DIRECTORY_FLAGS, dir_fd=fd)
            except OSError as error:
                raise UnsafeLayerEntry(f"directory {child} cannot be opened without following a symlink "
                                       f"({error.strerror}); nothing was stored") from error
            try:
                yield Found(child, st, opaque=is_opaque(sub))
                yield from _walk_directory(sub, child)
            finally:
                os.close(sub)


def _entries_for(upper: Path, found: Found, first_name_of_inode: dict, skipped: list[str]) -> list[tarball.Entry]:
    rel, st = found.rel, found.st
    mode, owner = stat.S_IMODE(st.st_mode), {"uid": st.st_uid, "gid": st.st_gid}
    if is_whiteout_node(st):
        return [tarball.whiteout(rel)]
    if stat.S_ISDIR(st.st_mode):
        marker = [tarball.opaque(rel)] if found.opaque else []
        return [tarball.directory(rel, mode, **owner)] + marker
    if stat.S_ISLNK(st.st_mode):
        return [tarball.symlink(rel, found.link, **owner)]
    if not stat.S_ISREG(st.st_mode):
        skipped.append(rel)
        return []
    inode = (st.st_dev, st.st_ino)
    if st.st_nlink > 1 and inode in first_name_of_inode:
        return [tarball.hardlink(rel, first_name_of_inode[inode])]
    first_name_of_inode.setdefault(inode, rel)
    source = UpperFile(upper, rel, st.st_dev, st.st_ino, st.st_size)
    return [tarball.regular_file(rel, source, mode, **owner)]
