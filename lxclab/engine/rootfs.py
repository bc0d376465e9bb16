"""A container's root filesystem: the image's cached layers under an upper dir of its own, or a copy.

Overlay mode (root): every layer is extracted once into the shared cache, keyed by its
ChainID (lxclab.unionfs.cache); the container gets an empty upper and work directory in
its own directory, and the overlay mount is handed to namespaces.spawn, which makes it
inside the container's private mount namespace. The host never sees that mount, and it
goes away with the container's last process: nothing to unmount, even after a crash.
Writes land in the upper dir; the shared layers are only ever lower dirs, read-only.

Copy mode (anyone): the layers are applied one by one into the container's rootfs.
"""

from __future__ import annotations

from pathlib import Path

from ..container_init import Mount
from ..errors import MountError
from ..layers.metadata import apply_metadata
from ..layers.overlayform import dir_metadata
from ..store import StoredImage
from ..unionfs import COPY, image_layers, unpack_layers
from ..unionfs.cache import ensure_layer
from ..unionfs.overlay import overlay_options
from .containers import ContainerRecord


def root_filesystem(container: ContainerRecord, image: StoredImage) -> list[Mount]:
    """Make the container's root in its directory; return the mounts its mount namespace needs (overlay mode)."""
    if container.config.mode == COPY:
        copy_layers(image, container.rootfs)
        return []
    container.rootfs.mkdir(exist_ok=True)
    return [Mount("overlay", str(container.rootfs), "overlay", 0, overlay_dirs(container, image))]


def copy_layers(image: StoredImage, target: Path) -> None:
    """Copy mode: apply the image's layers into `target`, unless an earlier start of the container already did."""
    if target.is_dir() and any(target.iterdir()):
        return  # a restarted container keeps its own root, changes included
    unpack_layers(image_layers(image), target, COPY)


def overlay_dirs(container: ContainerRecord, image: StoredImage) -> str:
    """Make the container's upper and work directories (kept on a restart); return the overlay mount data."""
    lower = cached_layers(image)
    work = container.directory / "work"
    if not container.upper.is_dir():
        container.upper.mkdir()
        apply_metadata(container.upper, dir_metadata(lower[0]))
    work.mkdir(exist_ok=True)
    return overlay_options(lower, container.upper, work)


def cached_layers(image: StoredImage) -> list[Path]:
    """The image's layer directories in the shared cache, top first, extracting any that are missing; needs root."""
    layers = image_layers(image)
    if not layers:
        raise MountError(f"image {image.reference} has no layers: overlayfs needs at least one lower directory")
    lower: list[Path] = []
    for layer, chain_id in zip(layers, image.config.chain_ids):
        directory, _ = ensure_layer(layer.path, chain_id, layer.media_type, layer.diff_id, lower, layer.name)
        lower.insert(0, directory)
    return lower
