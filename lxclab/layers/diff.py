"""Turn an overlayfs upper directory (what a container changed) into a new OCI layer.

The upper directory holds new and copied-up files as they are, a deleted path as a 0/0
character device, and a directory whose lower contents were hidden (deleted, then made
again) with the xattr `trusted.overlay.opaque=y`. In the layer those become `.wh.NAME`
and `DIR/.wh..wh..opq` entries. Files sharing an inode become one file and hardlinks.
The layer is written by lxclab.tarball, deterministically: one fixed mtime for every
entry, sorted names; device nodes and fifos (which that writer does not store) are
skipped with a warning.
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

from .. import tarball
from .names import STAGING_PREFIX
from .overlayform import is_opaque, is_whiteout_node
from .report import LayerWarning


def diff_directory(upper: Path, mtime: int = tarball.DEFAULT_MTIME) -> tarball.Layer:
    """The layer that records the changes in an overlay upper directory (whiteouts in OCI form)."""
    upper = Path(upper)
    entries: list[tarball.Entry] = []
    first_name_of_inode: dict[tuple[int, int], str] = {}
    skipped: list[str] = []
    for rel, st in _walk(upper):
        entries.extend(_entries_for(upper, rel, st, first_name_of_inode, skipped))
    if skipped:
        warnings.warn(f"diff of {upper}: skipped {len(skipped)} device nodes or fifos "
                      f"({', '.join(skipped[:3])}...): the layer writer stores files, directories and links",
                      LayerWarning, stacklevel=2)
    return tarball.build_layer(entries, mtime)


def _walk(upper: Path):
    """Every path under `upper` with its lstat, parents before children, sorted; links never followed."""
    pending = [""]
    while pending:
        rel = pending.pop()
        names = sorted(os.listdir(upper / rel) if rel else os.listdir(upper), reverse=True)
        for name in names:
            child = f"{rel}/{name}" if rel else name
            if not rel and name.startswith(STAGING_PREFIX):
                continue
            st = os.lstat(upper / child)
            yield child, st
            if stat.S_ISDIR(st.st_mode):
                pending.append(child)


def _entries_for(upper: Path, rel: str, st: os.stat_result, first_name_of_inode: dict, skipped: list[str]):
    mode, owner = stat.S_IMODE(st.st_mode), {"uid": st.st_uid, "gid": st.st_gid}
    if is_whiteout_node(st):
        return [tarball.whiteout(rel)]
    if stat.S_ISDIR(st.st_mode):
        marker = [tarball.opaque(rel)] if is_opaque(upper / rel) else []
        return [tarball.directory(rel, mode, **owner)] + marker
    if stat.S_ISLNK(st.st_mode):
        return [tarball.symlink(rel, os.readlink(upper / rel), **owner)]
    if not stat.S_ISREG(st.st_mode):
        skipped.append(rel)
        return []
    inode = (st.st_dev, st.st_ino)
    if st.st_nlink > 1 and inode in first_name_of_inode:
        return [tarball.hardlink(rel, first_name_of_inode[inode])]
    first_name_of_inode.setdefault(inode, rel)
    return [tarball.regular_file(rel, upper / rel, mode, **owner)]
