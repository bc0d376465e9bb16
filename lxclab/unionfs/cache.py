"""Unpacked layers, one directory per ChainID, extracted once and shared by every image that has them.

A layer's directory is keyed by its ChainID, not its DiffID, because its overlay-form
whiteouts depend on the layers below it. Layout under lxclab.paths.layers_dir():

    sha256/<chain hex>/diff/        the layer's files, whiteouts as overlayfs markers
    sha256/<chain hex>/layer.json   its DiffID, ChainID and what extraction reported
    .tmp-*/                         an extraction in progress

Two processes may extract the same layer at once: each works in its own `.tmp-*`
directory and renames it into place; the loser finds the name taken and throws its copy
away. A directory is therefore either absent or complete.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from .. import paths
from ..errors import LayerError

if TYPE_CHECKING:  # the extraction code (tarfile, gzip) loads only when a layer is missing
    from ..layers import ApplyReport

LAYER_RECORD = "layer.json"


def layer_home(chain_id: str) -> Path:
    """The directory of the layer with this ChainID (whether or not it exists yet)."""
    algorithm, _, digest = chain_id.partition(":")
    if not digest or "/" in chain_id or algorithm != "sha256":
        raise LayerError(f"invalid ChainID {chain_id!r}: expected sha256:<hex>")
    return paths.layers_dir() / algorithm / digest


def diff_dir(chain_id: str) -> Path:
    """The directory holding the layer's own files (what overlayfs gets as one lowerdir)."""
    return layer_home(chain_id) / "diff"


def is_cached(chain_id: str) -> bool:
    """True if the layer with this ChainID is already extracted."""
    return (layer_home(chain_id) / LAYER_RECORD).is_file()


def ensure_layer(source: Path | BinaryIO, chain_id: str, media_type: str | None, diff_id: str | None,
                 lower: list[Path], name: str = "layer") -> tuple[Path, ApplyReport | None]:
    """Extract a layer in overlay form into the cache unless it is there; return its diff dir and report.

    `lower` lists the diff directories of the layers below, top first. Needs root: the
    overlay-form whiteouts are character devices and trusted xattrs.
    """
    home = layer_home(chain_id)
    if is_cached(chain_id):
        return home / "diff", None
    from ..layers import apply_layer
    from ..layers.stage import remove_tree
    paths.layers_dir().mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=paths.layers_dir()))
    try:
        report = apply_layer(source, staging / "diff", media_type, diff_id, name, overlay_lower=lower)
        record = {"chain_id": chain_id, "diff_id": report.diff_id, "summary": str(report), "skipped": report.skipped}
        (staging / LAYER_RECORD).write_text(json.dumps(record, indent=2) + "\n")
        home.parent.mkdir(parents=True, exist_ok=True)
        _rename_or_discard(staging, home)
    except BaseException:
        if staging.exists():
            remove_tree(staging)
        raise
    return home / "diff", report


def _rename_or_discard(staging: Path, home: Path) -> None:
    from ..layers.stage import remove_tree
    try:
        os.rename(staging, home)
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
        remove_tree(staging)
