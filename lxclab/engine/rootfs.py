"""A container's root filesystem: the image's cached layers under an upper dir of its own, or a copy.

Overlay mode (root): every layer is extracted once into the shared cache, keyed by its
ChainID (lxclab.unionfs.cache); the container gets an empty upper and work directory in
its own directory, and the overlay mount is handed to namespaces.spawn, which makes it
inside the container's private mount namespace. The host never sees that mount, and it
goes away with the container's last process: nothing to unmount, even after a crash.
Writes land in the upper dir; the shared layers are only ever lower dirs, read-only.

Copy mode (anyone): the layers are applied one by one into the container's rootfs.

With --userns the container's root is a host id of its range (say 100000), not host root.
Overlay mode keeps the shared layers as they are on disk, owned by host root, and binds
each one idmapped (mount_setattr(MOUNT_ATTR_IDMAP), Linux 5.12; overlayfs takes idmapped
layers since 5.19, so Debian 12's 6.1 and 13's 6.12 have both): uid 0 on disk shows as
100000, which is root inside. Only the upper directory is the range's own, so what the
container writes is owned on the host by its ids, as under Docker's userns-remap. The
layers' file system must support idmapped mounts (ext4, xfs, btrfs; tmpfs only since 6.3);
elsewhere use copy mode, whose copy is chowned into the range once, when it is made.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..container_init import IdMap, Mount
from ..errors import ContainerError, MountError
from ..layers.metadata import apply_metadata, dir_metadata
from ..store import StoredImage
from ..unionfs import COPY, image_layers, unpack_layers
from ..unionfs.cache import ensure_layer
from ..unionfs.overlay import overlay_options
from .containers import ContainerRecord


def root_filesystem(container: ContainerRecord, image: StoredImage) -> list[Mount]:
    """Make the container's root in its directory; return the mounts its mount namespace needs (overlay mode)."""
    idmap = container.config.userns
    if container.config.mode == COPY:
        copy_layers(image, container.rootfs, idmap)
        return []
    container.rootfs.mkdir(exist_ok=True)
    overlay = Mount("overlay", str(container.rootfs), "overlay", 0, overlay_dirs(container, image))
    if not idmap:
        return [overlay]
    return [Mount(str(layer), str(layer), idmapped=True) for layer in cached_layers(image)] + [overlay]


def copy_layers(image: StoredImage, target: Path, idmap: IdMap | None = None) -> None:
    """Copy mode: apply the image's layers into `target` (owned by `idmap`'s range if given), unless an earlier
    start of the container already did."""
    if target.is_dir() and any(target.iterdir()):
        return  # a restarted container keeps its own root, changes included
    unpack_layers(image_layers(image), target, COPY)
    if idmap:
        shift_owners(target, idmap)


def overlay_dirs(container: ContainerRecord, image: StoredImage) -> str:
    """Make the container's upper and work directories (kept on a restart; the upper owned by its --userns range
    if it has one); return the overlay mount data."""
    lower = cached_layers(image)
    work = container.directory / "work"
    if not container.upper.is_dir():
        container.upper.mkdir()
        apply_metadata(container.upper, dir_metadata(lower[0]))
        if container.config.userns:
            shift_owner(container.upper, container.config.userns, set())
    work.mkdir(exist_ok=True)
    return overlay_options(lower, container.upper, work)


def shift_owners(root: Path, idmap: IdMap) -> None:
    """Give every file under `root` (itself included, links not followed) the host ids its owner has in `idmap`.

    A file with hard links is shifted once, through the first of its names.
    """
    seen: set[int] = set()
    shift_owner(root, idmap, seen)
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            shift_owner(Path(directory, name), idmap, seen)


def shift_owner(path: Path, idmap: IdMap, seen: set[int]) -> None:
    """chown one file not in `seen` (inode numbers) from its ids to their host ids in `idmap`, keeping setuid and
    setgid bits (chown clears them)."""
    st = os.lstat(path)
    if st.st_ino in seen:
        return
    seen.add(st.st_ino)
    if max(st.st_uid, st.st_gid) >= idmap.size:
        raise ContainerError(f"{path} is owned by {st.st_uid}:{st.st_gid}, beyond the {idmap.size} ids --userns "
                             "maps: run this image without --userns")
    os.chown(path, idmap.uid + st.st_uid, idmap.gid + st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
        os.chmod(path, stat.S_IMODE(st.st_mode))


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
