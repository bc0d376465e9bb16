"""The union filesystem: how layers stack into one root filesystem, as a model and for real.

- model.py: `LayerStack`, a pure model (which layer provides each path, what it shadows,
  what whiteouts hide, per-layer changes, wasted bytes and efficiency);
- cache.py: layers extracted once each, in overlayfs form, keyed by ChainID;
- overlay.py: mounting a stack with overlayfs (`OverlayMount`, a context manager);
- mountinfo.py: an overlay read back from the kernel's /proc/self/mountinfo (`mounted_overlay`);
- image.py: `unpack_layers` / `unpack_image` in overlay or copy mode, `image_stack`.
"""

from .image import COPY, OVERLAY, LayerSource, Unpacked, image_layers, image_stack, layers_stack, unpack_image, unpack_layers
from .model import ADDED, DELETED, MODIFIED, Hidden, LayerChanges, LayerStack, Node, Version
from .overlay import OverlayMount, find_mount, mount_overlay, mounts_dir, unmount

__all__ = [
    "ADDED", "COPY", "DELETED", "MODIFIED", "OVERLAY", "Hidden", "LayerChanges", "LayerSource", "LayerStack", "Node",
    "OverlayMount", "Unpacked", "Version", "find_mount", "image_layers", "image_stack", "layers_stack", "mount_overlay",
    "mounts_dir", "unmount", "unpack_image", "unpack_layers",
]
