"""Checks for level B4: the learner's overlay options and mount, against the kernel and lxclab's tree.

The mount is made in a forked child inside a private mount namespace of its own, so the
Jupyter kernel's mounts never change; the child lists the merged tree and compares it with
the tree lxclab's extractor makes from the same layers.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from ..chroot import in_child, private_mount_namespace
from ..dirlisting import changes, listing
from ..engine import pull
from ..exercises import check_against
from ..lessons import has_root
from ..manifest import Platform, chain_ids
from ..procfs import mounts
from ..unionfs.cache import ensure_layer
from ..unionfs.image import image_layers, unpack_layers
from ..unionfs import overlay
from .feedback import ExerciseError, attempt, expect, not_checked, passed


def layer_dirs(registry: str, repository: str = "lab/busybox") -> list[Path]:
    """The image's layers unpacked one directory each in overlay form (lxclab's layer cache), bottom first; needs root."""
    image = pull(f"{registry.split('://', 1)[-1]}/{repository}", platform=Platform.parse("linux/amd64"))
    layers = image_layers(image)
    lower: list[Path] = []
    for layer, chain_id in zip(layers, chain_ids([layer.diff_id for layer in layers])):
        directory, _ = ensure_layer(layer.path, chain_id, layer.media_type, layer.diff_id, list(reversed(lower)), layer.name)
        lower.append(directory)
    return lower


def check_overlay_options(overlay_options: Callable) -> None:
    """The learner's options string must be the one lxclab gives overlayfs (top layer first)."""
    lowers = [Path("/layers/1-base"), Path("/layers/2-app"), Path("/layers/3-notes")]
    cases = [(lowers, Path("/c/upper"), Path("/c/work")), (lowers[:1], Path("/u"), Path("/w"))]
    check_against(overlay_options,
                  lambda lower, upper, work: overlay.overlay_options(list(reversed(lower)), upper, work), cases,
                  hint="overlayfs wants lowerdir=TOP:...:BOTTOM (the reverse of the manifest's order), then "
                       "upperdir=... and workdir=..., separated by commas.")


def _mount_and_list(mount_overlay: Callable, lowers: list[Path], work: Path) -> dict[str, str]:
    """In the child: a private mount namespace, the learner's mount, and the merged tree's listing."""
    private_mount_namespace()
    upper, scratch, target = work / "upper", work / "work", work / "merged"
    for directory in (upper, scratch, target):
        directory.mkdir()
    attempt(mount_overlay, lowers, upper, scratch, target, hint="Call mount('overlay', str(target), 'overlay', 0, options).")
    kinds = [mount.fstype for mount in mounts() if mount.point == str(target)]
    if kinds != ["overlay"]:
        raise ExerciseError(f"after mount_overlay, {target} is {'not a mount point' if not kinds else kinds[-1]}. "
                            "Call mount('overlay', target, 'overlay', 0, overlay_options(...)).")
    return listing(target)


def check_mount_overlay(mount_overlay: Callable, registry: str) -> None:
    """Mount the classroom's busybox with the learner's function in a child; the merged tree must be lxclab's."""
    if not has_root():
        not_checked("mount_overlay", "mounting overlayfs needs root (CAP_SYS_ADMIN); with it the check mounts the "
                    "image's three layers in a child process and compares the merged tree with lxclab's")
        return
    lowers = layer_dirs(registry)
    with tempfile.TemporaryDirectory(prefix="lxclab-b4-") as work:
        expected = listing(unpack_layers(image_layers(pull(f"{registry.split('://', 1)[-1]}/lab/busybox",
                                                           platform=Platform.parse("linux/amd64"))),
                                         Path(work, "flat")).target)
        (Path(work) / "mine").mkdir()
        merged = in_child(_mount_and_list, mount_overlay, lowers, Path(work, "mine"))
    expected.pop("."), merged.pop(".")
    differences = changes(expected, merged)
    expect(not differences, f"the merged tree differs from lxclab's ({'; '.join(differences[:3])})",
           "Give lowerdir the layers top first: the top layer must win.")
    passed(f"mount_overlay: {len(lowers)} layers merged in a child's own mount namespace, the same tree as lxclab's")
