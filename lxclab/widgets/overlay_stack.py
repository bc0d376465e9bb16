"""The overlay stack as a picture: the merged mount point over its upper dir and its layers, with what each holds.

`overlay_tiers` reads a mounted overlay's directories (the OverlayMount that lxclab.unionfs
returns, or the one `mounted_overlay` reads back from /proc/self/mountinfo); `overlay_figure`
is a pure function of those tiers to a matplotlib Figure (drawn in lxclab's one figure style,
so the same mount always gives the same SVG bytes); `overlay_picture` does both for a notebook.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from ..layers.overlayform import is_opaque, is_whiteout_node
from ..unionfs.overlay import OverlayMount
from .figures import Picture, style
from .layers import layer_name

MERGED, UPPER, WORK, LOWER = "merged", "upper", "work", "lower"
COLOURS = {MERGED: "#dbe9f6", UPPER: "#fde7c8", WORK: "#eeeeee", LOWER: "#e3f1de"}
ROLES = {MERGED: "the mount point: one tree", UPPER: "read-write: every change lands here",
         WORK: "overlayfs's scratch space", LOWER: "read-only, shared"}
NAMES_SHOWN = 5


@dataclass(frozen=True)
class Tier:
    """One directory of an overlay as the diagram draws it: role, title, path, counts and a few of its names."""

    role: str
    title: str
    path: str
    files: int
    dirs: int
    names: tuple[str, ...]


def directory_contents(root: Path) -> tuple[int, int, list[str]]:
    """How many non-directories and directories are below `root`, and their names, most telling first.

    Whiteouts and opaque directories come first (marked as such), then regular files, then the rest.
    """
    files, dirs, named = 0, 0, []
    for parent, subdirs, leaves in os.walk(root):
        subdirs.sort()
        for name in subdirs:
            dirs += 1
            rel = os.path.relpath(os.path.join(parent, name), root)
            if is_opaque(Path(parent, name)):
                named.append((f"{rel}/ (opaque)", 0))
        for name in leaves:
            files += 1
            path = Path(parent, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            if is_whiteout_node(st):
                named.append((f"{rel} (whiteout)", 0))
            else:
                named.append((rel, 1 if path.is_file() and not path.is_symlink() else 2))
    return files, dirs, [name for name, _ in sorted(named, key=lambda item: (item[1], item[0]))]


def tier(role: str, title: str, directory: Path, shown_path: str) -> Tier:
    """The tier for one directory of the overlay, read from the directory itself (the work dir is not read)."""
    if role == WORK:  # the kernel's scratch files, named by inode numbers: not ours to list
        return Tier(role, title, shown_path, 0, 0, ())
    files, dirs, names = directory_contents(directory)
    shown = names[:NAMES_SHOWN] + ([f"... {len(names) - NAMES_SHOWN} more"] if len(names) > NAMES_SHOWN else [])
    return Tier(role, title, shown_path, files, dirs, tuple(shown))


def overlay_tiers(mount: OverlayMount, shorten: Callable[[str], str] = str) -> list[Tier]:
    """The tiers of a mounted overlay, top down: merged view, upper dir, work dir, then each layer from the top.

    `shorten` turns a path into the text shown for it (a lesson names its own temporary paths).
    """
    count = len(mount.lower)
    tiers = [tier(MERGED, "merged view", mount.target, shorten(str(mount.target))),
             tier(UPPER, "upperdir", mount.upper, shorten(str(mount.upper))),
             tier(WORK, "workdir", mount.work, shorten(str(mount.work)))]
    tiers += [tier(LOWER, f"lowerdir {place}: {layer_name(count - place)}", lower, shorten(str(lower)))
              for place, lower in enumerate(mount.lower, 1)]
    return tiers


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _holds(item: Tier) -> str:
    if item.role == WORK:
        return "not listed: the kernel's own scratch files, never part of the tree"
    if not item.files and not item.dirs:
        return "empty"
    return f"{_counted(item.files, 'file')}, {_counted(item.dirs, 'dir')}: " + ", ".join(item.names)


def overlay_figure(tiers: list[Tier], title: str = "") -> Figure:
    """A Figure of the overlay's tiers stacked as drawn (top first): each a box with its role, path and contents."""
    height = 0.95 * len(tiers) + (0.5 if title else 0.2)
    figure = Figure(figsize=(10, height))
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, 10)
    axes.set_ylim(0, height)
    axes.axis("off")
    if title:
        axes.text(0.1, height - 0.25, title, fontsize=11, fontweight="bold", va="center")
    for row, item in enumerate(tiers):
        top = height - (0.5 if title else 0.1) - 0.95 * row
        axes.add_patch(FancyBboxPatch((0.1, top - 0.85), 9.8, 0.8, boxstyle="round,pad=0,rounding_size=0.08",
                                      facecolor=COLOURS[item.role], edgecolor="#555555", linewidth=1))
        axes.text(0.25, top - 0.22, item.title, fontsize=10, fontweight="bold", va="center")
        axes.text(3.2, top - 0.22, ROLES[item.role], fontsize=9, style="italic", va="center", color="#333333")
        axes.text(0.25, top - 0.47, item.path, fontsize=8, family="monospace", va="center")
        axes.text(0.25, top - 0.7, _holds(item), fontsize=8, va="center", color="#222222")
    return figure


def overlay_picture(mount: OverlayMount, shorten: Callable[[str], str] = str, title: str = "") -> Picture:
    """The mounted overlay drawn for a notebook, shown inline as SVG (`.save(path)` writes a PNG or SVG)."""
    tiers = overlay_tiers(mount, shorten)
    with style():
        figure = overlay_figure(tiers, title)
    summary = "overlay stack: " + ", ".join(item.title for item in tiers)
    return Picture(figure, summary)
