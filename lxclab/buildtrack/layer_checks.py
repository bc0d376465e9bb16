"""Checks for level B3: the learner's whiteout and opaque-directory rules against lxclab's extractor.

Each case applies small layers twice, once with the learner's `apply_layer` and once with
the library's, and compares the two trees (names, types, modes, owners, bytes, links).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from ..dirlisting import changes, listing
from ..engine import pull
from ..layers import apply_layer as library_apply_layer
from ..manifest import Platform
from .feedback import ExerciseError, attempt, expect, passed
from .layer_tools import tiny_layer

# (what the case shows, lower layer, upper layer, the hint when the learner's tree differs)
CASES = [
    ("a whiteout deletes a file", [("stay.txt", "kept\n"), ("gone.txt", "old\n")], [(".wh.gone.txt", "")],
     "An entry .wh.NAME deletes NAME from the layers below, and is not itself a file of the image."),
    ("a whiteout deletes a directory", [("tree/", ""), ("tree/sub/", ""), ("tree/sub/f", "x\n"), ("top.txt", "t\n")],
     [(".wh.tree", "")], "A whiteout may name a directory: remove it with everything in it (shutil.rmtree)."),
    ("an opaque marker empties a directory, after the layer's own file",
     [("notes/", "750"), ("notes/old.txt", "old\n"), ("notes/draft/", "")],
     [("notes/final.txt", "final\n"), ("notes/.wh..wh..opq", "")],
     "An opaque marker .wh..wh..opq hides what the layers BELOW have in its directory: empty the directory "
     "(keep it) before you add this layer's own files, whatever the tar order."),
    ("a whiteout of something that was never there", [("a.txt", "a\n")], [(".wh.never", "")],
     "A whiteout of a name the layers below do not have deletes nothing, and is no error."),
]


def _apply_both(apply_layer: Callable, lower: list, upper: list, work: Path, hint: str) -> tuple[dict, dict]:
    """Listings of the tree the library makes and of the learner's, from the same two layers."""
    layers = [tiny_layer(work / "lower.tar", lower), tiny_layer(work / "upper.tar", upper)]
    expected_root, actual_root = work / "expected", work / "yours"
    for layer in layers:
        library_apply_layer(layer, expected_root)
    actual_root.mkdir()
    for layer in layers:
        attempt(apply_layer, layer, actual_root, hint=hint)
    return listing(expected_root), listing(actual_root)


def check_apply_layer(apply_layer: Callable) -> None:
    """Apply each case's two layers with the learner's function and the library's; the trees must match."""
    for what, lower, upper, hint in CASES:
        with tempfile.TemporaryDirectory(prefix="lxclab-b3-") as work:
            try:
                expected, actual = _apply_both(apply_layer, lower, upper, Path(work), hint)
            except ExerciseError as error:
                raise ExerciseError(f"{what}: {error}" if "not written yet" not in str(error) else str(error)) from None
        differences = changes(expected, actual)
        expect(not differences, f"{what}: your tree differs from lxclab's ({'; '.join(differences[:3])})", hint)
        passed(what)


def check_unpack(unpack: Callable, registry: str, repository: str = "lab/busybox") -> None:
    """The learner's unpack of the classroom's busybox must give the very tree lxclab's extractor gives."""
    host = registry.split("://", 1)[-1]
    image = pull(f"{host}/{repository}", platform=Platform.parse("linux/amd64"))
    with tempfile.TemporaryDirectory(prefix="lxclab-b3-") as work:
        expected_root, actual_root = Path(work, "expected"), Path(work, "yours")
        for layer, descriptor in zip(image.layer_paths, image.manifest.layers):
            library_apply_layer(layer, expected_root, descriptor.media_type)
        config = attempt(unpack, registry, repository, "latest", "amd64", actual_root)
        differences = changes(listing(expected_root), listing(actual_root))
    expect(not differences, f"your unpacked {repository} differs from lxclab's ({'; '.join(differences[:3])})",
           "Apply the manifest's layers in order, bottom (first) to top (last), each with your apply_layer.")
    expect(isinstance(config, dict) and config.get("rootfs", {}).get("diff_ids") == list(image.config.diff_ids),
           "unpack did not return the image config", "Return the config dict that walk gave you.")
    passed(f"unpack {repository}: {len(image.manifest.layers)} layers, the same tree as lxclab's")
