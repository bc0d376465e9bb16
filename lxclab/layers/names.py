"""Tar member names, checked and made relative to the root; whiteout names recognised.

Pure functions, no I/O. The policy they carry out:
- a leading `/` or `./` is dropped (GNU tar does the same): `/etc/passwd` means `etc/passwd`
  inside the root, never the host's file;
- a `..` component is refused outright: no honest layer needs one;
- a whiteout marker is only ever the last component: `.wh.etc/passwd` is refused;
- `.wh.` `.wh..` and `.wh...` (a whiteout of nothing, of `.`, of `..`) are refused;
- names longer than Linux allows (a 255-byte component, a 4095-byte path) are refused;
- `.lxclab-staging-*` at the top is reserved for the extractor's own staging area.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..errors import UnsafeLayerEntry
from .. import tarball
from ..tarball import (  # defined where layers are written, below this package
    AUFS_META, ENTRY, OPAQUE, OPAQUE_MARKER, WHITEOUT, WHITEOUT_PREFIX,
)

STAGING_PREFIX = ".lxclab-staging-"
MAX_COMPONENT_BYTES = 255
MAX_PATH_BYTES = 4095
MAX_SYMLINKS = 40  # as Linux's path walk (ELOOP)


def refuse(layer: str, name: str, reason: str) -> UnsafeLayerEntry:
    """The error for a refused tar entry, naming the layer, the entry and why."""
    return UnsafeLayerEntry(
        f"layer {layer}: entry {name!r} refused: {reason}. Nothing of this layer was applied; "
        "the layer is malformed or hostile, so do not use this image"
    )


def clean_name(name: str, layer: str) -> str:
    """The member name as a path relative to the root ('' is the root), or UnsafeLayerEntry."""
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise refuse(layer, name, "a '..' component would climb out of the root")
    if any(len(os.fsencode(part)) > MAX_COMPONENT_BYTES for part in parts):
        raise refuse(layer, name, f"a path component is longer than {MAX_COMPONENT_BYTES} bytes")
    path = "/".join(parts)
    if len(os.fsencode(path)) > MAX_PATH_BYTES:
        raise refuse(layer, name, f"the path is longer than {MAX_PATH_BYTES} bytes")
    if any(part.startswith(WHITEOUT_PREFIX) for part in parts[:-1]):
        raise refuse(layer, name, "a whiteout marker (.wh.) may only be the last component of a path")
    if parts and parts[0].startswith(STAGING_PREFIX):
        raise refuse(layer, name, f"names starting with {STAGING_PREFIX} are reserved for lxclab's staging area")
    return path


def classify(path: str, name: str, layer: str) -> tuple[str, str]:
    """What a cleaned path means: (ENTRY, path), (WHITEOUT, deleted path), (OPAQUE, dir) or (AUFS_META, path)."""
    what, subject = tarball.meaning(path)
    deleted = subject.rpartition("/")[2]
    if what == WHITEOUT and deleted in ("", ".", ".."):
        base = path.rpartition("/")[2]
        raise refuse(layer, name, f"the whiteout {base!r} names no file (it would delete {deleted or 'nothing'!r})")
    return what, subject


def parents(path: str) -> list[str]:
    """The proper ancestors of a relative path, outermost first: 'a/b/c' -> ['a', 'a/b']."""
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def is_under(path: str, ancestor: str) -> bool:
    """True if `path` is `ancestor` or inside it ('' is the root, which holds everything)."""
    return ancestor == "" or path == ancestor or path.startswith(ancestor + "/")


def depth(path: str) -> int:
    """How many components a relative path has (the root has 0)."""
    return 0 if path == "" else path.count("/") + 1


def rebase(path: str, old: str, new: str) -> str:
    """`path`, which is under `old`, moved under `new` instead: rebase('a/b/c', 'a', 'x/y') -> 'x/y/b/c'."""
    rest = path[len(old):].lstrip("/") if old else path
    return "/".join(part for part in (new, rest) if part)


def hidden(rel: str, whiteouts: list[str], opaques: list[str]) -> bool:
    """True if a layer's whiteouts or opaque directories hide what the layers below hold at `rel`."""
    return any(is_under(rel, w) for w in whiteouts) or in_opaque(rel, opaques)


def in_opaque(rel: str, opaques: list[str]) -> bool:
    """True if `rel` lies inside one of the opaque directories (an opaque directory itself is not inside)."""
    return any(is_under(rel, o) and rel != o for o in opaques)


def marker_name(path: str, opaque: bool) -> str:
    """The tar name of the marker for `path`: DIR/.wh.NAME deletes it, DIR/.wh..wh..opq (opaque) empties it."""
    return (tarball.opaque(path) if opaque else tarball.whiteout(path)).path


def resolve_markers(whiteouts: list[str], opaques: list[str], link_at: Callable[[str], str | None],
                    layer: str) -> None:
    """Rewrite a layer's markers in place with the symlinks below on their way resolved inside the root.

    A whiteout's parent is resolved and its last component kept (deleting a link deletes the
    link); an opaque directory is resolved whole. `link_at(path)` gives the target of a link
    to follow (None for anything else). Shallower markers go first, so that one a marker
    already hides is not followed by a deeper one.
    """
    pending = [(depth(p), n, whiteouts, False) for n, p in enumerate(whiteouts)]
    pending += [(depth(p), n, opaques, True) for n, p in enumerate(opaques)]
    for _, n, markers, opaque in sorted(pending, key=lambda item: item[:2]):
        markers[n] = resolve_links(markers[n], lambda here, _: link_at(here), layer,
                                   marker_name(markers[n], opaque), follow_final=opaque)


def resolve_links(rel: str, link_at: Callable[[str, bool], str | None], layer: str, raw: str,
                  follow_final: bool = True) -> str:
    """`rel` with each symlink on its way replaced by its target, inside the root as chroot would.

    `link_at(path, via_link)` gives the target of a symlink to follow at `path` (None for
    anything else; it may refuse); `via_link` says whether a symlink was followed already.
    An absolute target restarts from the root and `..` stops there; the last component is
    followed only with `follow_final`.
    """
    pending, done, followed = (rel.split("/") if rel else []), [], 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            done = done[:-1]
            continue
        here = "/".join([*done, part])
        target = link_at(here, followed > 0) if pending or follow_final else None
        if target is not None:
            followed += 1
            if followed > MAX_SYMLINKS:
                raise refuse(layer, raw, f"more than {MAX_SYMLINKS} symlinks on its way (a loop?)")
            done = [] if target.startswith("/") else done
            pending = [p for p in target.split("/") if p not in ("", ".")] + pending
            continue
        if not done and part.startswith(STAGING_PREFIX):
            raise refuse(layer, raw, f"its path leads into {part!r}, lxclab's staging area")
        done.append(part)
    return "/".join(done)
