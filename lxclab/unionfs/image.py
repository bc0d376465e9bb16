"""Turn an image's layers into one root filesystem: mounted as an overlay stack, or flattened by copying.

Both modes give the same tree. Overlay mode (root only) extracts each layer once into
the shared layer cache and mounts the stack; writes go to a private upper directory.
Copy mode (anyone, Binder included) applies the layers one after the other into the
target directory. The core functions take layer files, media types and DiffIDs, so they
work without the store; `unpack_image` and `image_stack` read a StoredImage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LayerError, MountError
from ..layers.metadata import DEFAULT_DIRECTORY, apply_metadata, privileged
from ..manifest import chain_ids
from .cache import ensure_layer
from .overlay import OverlayMount, mount_overlay

if TYPE_CHECKING:  # the extraction code (tarfile, gzip) loads only when a layer is read or applied
    from ..layers import ApplyReport
    from ..store import StoredImage
    from .model import LayerStack

OVERLAY, COPY = "overlay", "copy"


@dataclass(frozen=True)
class LayerSource:
    """A layer to apply: its blob file, media type, DiffID (None: not checked) and a name for messages."""

    path: Path
    media_type: str | None = None
    diff_id: str | None = None
    name: str = "layer"


@dataclass
class Unpacked:
    """A root filesystem made from layers; a context manager that unmounts it in overlay mode."""

    target: Path
    mode: str
    reports: list[ApplyReport] = field(default_factory=list)
    mount: OverlayMount | None = None

    def __enter__(self) -> Unpacked:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.mount is not None:
            self.mount.unmount()


def image_layers(image: StoredImage) -> list[LayerSource]:
    """The layers of a StoredImage (from lxclab.store), bottom first, with media types and DiffIDs."""
    descriptors, diff_ids = image.manifest.layers, image.config.diff_ids
    if not (len(descriptors) == len(diff_ids) == len(image.layer_paths)):
        raise LayerError(f"image {image.reference}: {len(descriptors)} layers in the manifest but "
                         f"{len(diff_ids)} DiffIDs in the config; the image is inconsistent")
    return [
        LayerSource(Path(path), desc.media_type, diff_id, f"{n + 1}/{len(descriptors)} {desc.digest[:19]}")
        for n, (path, desc, diff_id) in enumerate(zip(image.layer_paths, descriptors, diff_ids))
    ]


def unpack_layers(layers: list[LayerSource], target: Path, mode: str = COPY) -> Unpacked:
    """Build the root filesystem of `layers` (bottom first) at `target`, an empty or new directory."""
    if mode == COPY:
        return _unpack_copy(layers, Path(target))
    if mode == OVERLAY:
        return _unpack_overlay(layers, Path(target))
    raise LayerError(f"unknown unpack mode {mode!r}: use 'overlay' or 'copy'")


def unpack_image(image: StoredImage, target: Path, mode: str = OVERLAY) -> Unpacked:
    """Build the root filesystem of a StoredImage at `target` (overlay mode needs root)."""
    return unpack_layers(image_layers(image), target, mode)


def _unpack_copy(layers: list[LayerSource], target: Path) -> Unpacked:
    if target.exists() and any(target.iterdir()):
        raise LayerError(f"{target} is not empty: unpack into a new or empty directory")
    target.mkdir(parents=True, exist_ok=True)
    apply_metadata(target, DEFAULT_DIRECTORY)
    from ..layers import apply_layer
    reports = [apply_layer(layer.path, target, layer.media_type, layer.diff_id, layer.name) for layer in layers]
    return Unpacked(target, COPY, reports)


def _unpack_overlay(layers: list[LayerSource], target: Path) -> Unpacked:
    if not privileged():
        raise MountError("overlay mode needs root (mount(2), and overlayfs whiteouts are device nodes); "
                         "use copy mode instead")
    if not layers:
        raise LayerError("an image without layers cannot be mounted: overlayfs needs at least one lower directory")
    if any(layer.diff_id is None for layer in layers):
        raise LayerError("overlay mode needs every layer's DiffID: the layer cache is keyed by ChainID")
    ids = chain_ids([layer.diff_id for layer in layers])
    reports, lower = [], []
    for layer, chain_id in zip(layers, ids):
        directory, report = ensure_layer(layer.path, chain_id, layer.media_type, layer.diff_id, lower, layer.name)
        lower.insert(0, directory)
        if report is not None:
            reports.append(report)
    return Unpacked(target, OVERLAY, reports, mount_overlay(lower, target))


def layers_stack(layers: list[LayerSource], created_by: list[str] | None = None) -> LayerStack:
    """The union-filesystem model of `layers`, read from their blobs (DiffIDs checked)."""
    from ..layers import read_entries
    from .model import LayerStack
    entries = [read_entries(layer.path, layer.media_type, layer.diff_id, layer.name) for layer in layers]
    return LayerStack.build(entries, [layer.diff_id or "" for layer in layers], created_by)


def image_stack(image: StoredImage) -> LayerStack:
    """The union-filesystem model of a StoredImage, with each layer's history line."""
    created_by = [entry.created_by for entry, diff_id in image.config.layer_history() if diff_id is not None]
    layers = image_layers(image)
    return layers_stack(layers, created_by if len(created_by) == len(layers) else None)
