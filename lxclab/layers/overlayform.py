"""Whiteouts in overlayfs's own form, for layers stored one directory each and mounted as a stack.

Overlayfs marks a deleted path with a 0/0 character device and an emptied directory with
the xattr `trusted.overlay.opaque=y` (both need root). Converting a staged layer means
judging each OCI marker against the layers below, read through `LowerView`, exactly as
copy mode judges it against the flattened target: a marker that would delete nothing is
not written. A directory the layer only implies (a parent of one of its paths) takes its
metadata from the layers below, as it keeps it in copy mode. An opaque root is written
as one whiteout per name below, since overlayfs may ignore the opaque xattr on a root.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from . import names
from .metadata import DEFAULT_DIRECTORY, dir_metadata
from .stage import Stager, lstat_or_none

OPAQUE_XATTR = "trusted.overlay.opaque"
_BLOCKED = "blocked"


def is_whiteout_node(st: os.stat_result) -> bool:
    """True for overlayfs's whiteout: a character device with device number 0/0."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(directory: Path | int) -> bool:
    """True if a directory (a path, or an open descriptor) carries overlayfs's opaque xattr."""
    try:
        if isinstance(directory, int):
            return os.getxattr(directory, OPAQUE_XATTR) == b"y"
        return os.getxattr(directory, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


class LowerView:
    """The merged view of overlay-form layer directories (top first), computed without mounting."""

    def __init__(self, layer_dirs: list[Path]):
        self.layer_dirs = [Path(d) for d in layer_dirs]

    def lookup(self, rel: str) -> Path | None:
        """The file overlayfs would show at `rel`, in the topmost layer holding it, or None."""
        parts = rel.split("/") if rel else []
        for layer_dir in self.layer_dirs:
            found, final = _lookup_in(layer_dir, parts)
            if found is not None or final:
                return found
        return None

    def top_level_names(self) -> set[str]:
        """Every name some layer holds at the root (whiteout nodes included: they are harmless)."""
        return {name for layer_dir in self.layer_dirs for name in os.listdir(layer_dir)}


def _lookup_in(layer_dir: Path, parts: list[str]) -> tuple[Path | None, bool]:
    current, hides_below = layer_dir, False
    for index, part in enumerate(parts):
        hides_below = hides_below or is_opaque(current)
        current = current / part
        st = lstat_or_none(current)
        if st is None:
            return None, hides_below
        if is_whiteout_node(st) or (index < len(parts) - 1 and not stat.S_ISDIR(st.st_mode)):
            return None, True
    return current, True


def to_overlay_form(stager: Stager, lower: LowerView) -> None:
    """Write the staged layer's whiteouts and opaque markers as overlayfs markers; fill implied metadata."""
    for rel in sorted(set(stager.whiteouts), key=names.depth):
        covered = names.in_opaque(rel, stager.opaques) or any(map(stager.hides_below, names.parents(rel)))
        if not covered:  # an opaque dir or a marker on a parent already hides it
            _whiteout(stager, lower, rel)
    for rel in stager.opaques:
        _opaque(stager, lower, rel)
    _fill_implied_metadata(stager, lower)


def _staged_state(stager: Stager, rel: str) -> os.stat_result | str | None:
    for parent in names.parents(rel):
        st = lstat_or_none(stager.root / parent)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            return _BLOCKED
    return lstat_or_none(stager.root / rel) if rel else os.lstat(stager.root)


def _whiteout(stager: Stager, lower: LowerView, rel: str) -> None:
    state = _staged_state(stager, rel)
    if isinstance(state, os.stat_result) and stat.S_ISDIR(state.st_mode):
        os.setxattr(stager.root / rel, OPAQUE_XATTR, b"y", follow_symlinks=False)
    elif state is None and lower.lookup(rel) is not None:
        stager.make_implied(names.parents(rel))
        os.mknod(stager.root / rel, stat.S_IFCHR, os.makedev(0, 0))


def _opaque(stager: Stager, lower: LowerView, rel: str) -> None:
    if rel == "":
        for name in sorted(lower.top_level_names()):
            own = lstat_or_none(stager.root / name)
            if own is None:
                os.mknod(stager.root / name, stat.S_IFCHR, os.makedev(0, 0))
            elif stat.S_ISDIR(own.st_mode):
                os.setxattr(stager.root / name, OPAQUE_XATTR, b"y", follow_symlinks=False)
        return
    state = _staged_state(stager, rel)
    if state is None:
        if stager.hides_below(rel):
            return
        below = lower.lookup(rel)
        if below is None or not stat.S_ISDIR(os.lstat(below).st_mode):
            return
        stager.make_implied(names.parents(rel) + [rel])
        state = os.lstat(stager.root / rel)
    if isinstance(state, os.stat_result) and stat.S_ISDIR(state.st_mode):
        os.setxattr(stager.root / rel, OPAQUE_XATTR, b"y", follow_symlinks=False)


def _fill_implied_metadata(stager: Stager, lower: LowerView) -> None:
    for rel in stager.implied | {""}:
        if rel in stager.directories:
            continue
        below = None if stager.hides_below(rel) else lower.lookup(rel)
        if below is not None and stat.S_ISDIR(os.lstat(below).st_mode):
            stager.implied_meta[rel] = dir_metadata(below)
        else:
            stager.implied_meta[rel] = DEFAULT_DIRECTORY
