"""Where a layer's paths meet the layers below: paths resolved through their symlinks, hardlinks to their files.

Real images need both, and containerd's and umoci's appliers accept both:
- a merged-/usr base has `lib -> usr/lib`, and a later layer may carry
  `lib/x86_64-linux-gnu/libfoo.so`. Such an entry is written through the lower layer's
  symlink, resolved inside the root as chroot would (an absolute target or `..` starts
  from, and stops at, the root): it lands in `usr/lib/x86_64-linux-gnu/` and the symlink
  stays. Only directories the layer implies are resolved so: a layer that lists `lib` as
  a directory replaces the symlink. A symlink that this layer made is never followed (the
  entry is refused), and neither is a path that a symlink leads into a file.
- whiteouts and opaque markers under such a symlink (`lib/.wh.libfoo.so`,
  `lib/x/.wh..wh..opq`) act where it leads, resolved the same way: the whiteout deletes
  `usr/lib/libfoo.so` (copy mode) or lands there in the layer's own directory (overlay
  form), and the symlink stays. A marker never follows a symlink of this layer, nor one its
  own markers delete (it deletes nothing there); umoci and containerd follow whatever the
  tar has made of the path so far, so they agree when the markers come first.
- a hardlink may name a regular file of the layers below (the OCI layer spec only warns
  that some union filesystems cannot do it). In copy mode it is linked to that file in
  the root; in overlay form the layer's own directory gets a copy of the file (what
  overlayfs's copy-up would make) and the hardlink is linked to the copy.
`RootView` (copy mode) and overlayform's `LowerView` (overlay form) both answer `lookup`.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Protocol

from . import names
from .merge import is_real_dir, join
from .metadata import apply_metadata, dir_metadata
from .stage import Stager, describe, lstat_or_none


class Below(Protocol):
    """What the layers below a layer hold, by relative path, never following a link."""

    def lookup(self, rel: str) -> Path | None:
        """The file at `rel` below, or None."""


class RootView:
    """The layers below as copy mode holds them: flattened in the root being applied to."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def lookup(self, rel: str) -> Path | None:
        """The file at `rel` in the root, if every parent of it is a real directory (no link followed)."""
        if rel.startswith(names.STAGING_PREFIX) or not is_real_dir(self.root, rel.rpartition("/")[0]):
            return None
        return self.root / rel if lstat_or_none(self.root / rel) is not None else None


def settle(stager: Stager, below: Below, copy_up: bool) -> None:
    """After the whole stream: resolve implied directories through lower symlinks, then link the last hardlinks."""
    stager.link_staged()
    names.resolve_markers(stager.whiteouts, stager.opaques, lambda rel: _lower_link(stager, below, rel), stager.name)
    _relocate(stager, below)
    while stager.deferred:  # a link to another waiting link comes after it
        waiting = stager.deferred
        path = next((p for p, (target, _) in waiting.items() if target not in waiting), next(iter(waiting)))
        target, raw = waiting.pop(path)
        if any(names.is_under(target, skipped) for skipped in stager.skipped):
            stager.report.skipped.append(path)
        else:
            _link_below(stager, below, path, target, raw, copy_up)


def resolve(stager: Stager, below: Below, rel: str, raw: str, follow_final: bool = True) -> str:
    """`rel` with every symlink of the layers below on its way resolved inside the root (the last one if asked)."""
    def link_at(here: str, via_link: bool) -> str | None:
        st, found, own = _view(stager, below, here)
        if st is None or stat.S_ISDIR(st.st_mode):
            return None
        if own and stat.S_ISLNK(st.st_mode):
            raise names.refuse(stager.name, raw, f"{rel!r} passes through {here!r}, a symlink of this layer, "
                               "and lxclab never follows a link the layer itself made")
        if stat.S_ISLNK(st.st_mode):
            return os.readlink(found)
        if own or via_link:
            where = "in this layer" if own else "below, reached through a symlink"
            raise names.refuse(stager.name, raw, f"{rel!r} passes through {here!r}, a {describe(st)} {where}")
        return None
    return names.resolve_links(rel, link_at, stager.name, raw, follow_final)


def _view(stager: Stager, below: Below, rel: str) -> tuple[os.stat_result | None, Path | None, bool]:
    """What `rel` is once this layer is applied: (lstat, path, True if this layer's own entry)."""
    st = stager.staged_stat(rel)
    if st is not None and not (stat.S_ISDIR(st.st_mode) and rel in stager.implied):
        return st, stager.root / rel, True
    found = None if stager.hides_below(rel) else below.lookup(rel)
    return (os.lstat(found) if found is not None else None), found, False


def _lower_link(stager: Stager, below: Below, rel: str) -> str | None:
    """The target of a symlink of the layers below at `rel` that this layer neither replaces nor hides, else None."""
    st, found, own = _view(stager, below, rel)
    return os.readlink(found) if st is not None and not own and stat.S_ISLNK(st.st_mode) else None


def _relocate(stager: Stager, below: Below) -> None:
    """Move what the layer put under an implied directory that is a symlink below to where the link leads."""
    pending = sorted(stager.implied, key=names.depth, reverse=True)
    while pending:
        rel = pending.pop()
        if rel not in stager.implied or stager.hides_below(rel):
            continue
        found = below.lookup(rel)
        if found is None or not stat.S_ISLNK(os.lstat(found).st_mode):
            continue
        dest = resolve(stager, below, rel, rel)
        _move_tree(stager, rel, dest)
        _rebase_records(stager, rel, dest)
        pending.extend(p for p in stager.implied if names.is_under(p, dest) and p != dest)


def _move_tree(stager: Stager, src: str, dest: str) -> None:
    """Rename a staged tree to `dest`, merging directories; the same file written twice is refused."""
    there = lstat_or_none(stager.root / dest) if dest else os.lstat(stager.root)
    if there is None:
        stager.make_implied(names.parents(dest))
        os.rename(stager.root / src, stager.root / dest)
        return
    if not (stat.S_ISDIR(there.st_mode) and stat.S_ISDIR(os.lstat(stager.root / src).st_mode)):
        raise names.refuse(stager.name, src, f"through a symlink of the layers below it lands on {dest!r}, "
                           "which this layer also writes")
    for name in sorted(os.listdir(stager.root / src)):
        _move_tree(stager, join(src, name), join(dest, name))
    os.rmdir(stager.root / src)


def _rebase_records(stager: Stager, src: str, dest: str) -> None:
    """Move what the stager remembers about paths under `src` (metadata, hardlinks, skips) under `dest`."""
    def moved(path: str) -> str:
        return names.rebase(path, src, dest) if names.is_under(path, src) else path
    directories = {moved(rel): meta for rel, meta in stager.directories.items() if not names.is_under(rel, src)}
    for rel, meta in stager.directories.items():
        directories.setdefault(moved(rel), meta)
    stager.directories = directories
    stager.implied = {moved(rel) for rel in stager.implied} - set(directories) - {""}
    stager.deferred = {moved(rel): link for rel, link in stager.deferred.items()}
    stager.skipped = {moved(rel) for rel in stager.skipped}


def _link_below(stager: Stager, below: Below, path: str, target: str, raw: str, copy_up: bool) -> None:
    """Link `path` to its target once resolved: this layer's own entry, else a regular file below."""
    resolved = resolve(stager, below, target, raw, follow_final=False)
    st, found, own = _view(stager, below, resolved)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise names.refuse(stager.name, raw, f"the hardlink target {target!r} is a directory")
    if st is None or not (own or stat.S_ISREG(st.st_mode)):
        raise names.refuse(stager.name, raw, f"the hardlink target {target!r} is not a file, symlink or node "
                           "of this layer, nor a regular file of the layers below (lxclab never links outside the root)")
    if copy_up and not own:
        found = _copy_up(stager, found, resolved)
    os.link(found, stager.root / path, follow_symlinks=False)
    stager.report.hardlinks += 1


def _copy_up(stager: Stager, lower_file: Path, rel: str) -> Path:
    """Copy a lower layer's regular file, with its metadata, into this layer's own directory at `rel`."""
    stager.make_implied(names.parents(rel))
    copy = stager.root / rel
    shutil.copyfile(lower_file, copy, follow_symlinks=False)
    apply_metadata(copy, dir_metadata(lower_file), stager.report.warnings)
    return copy
