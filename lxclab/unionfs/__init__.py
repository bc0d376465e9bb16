"""The union filesystem: how layers stack into one root filesystem, as a model and for real.

- model.py: `LayerStack`, a pure model (which layer provides each path, what it shadows,
  what whiteouts hide, per-layer changes, wasted bytes and efficiency);
- cache.py: layers extracted once each, in overlayfs form, keyed by ChainID;
- overlay.py: mounting a stack with overlayfs (`OverlayMount`, a context manager);
- mountinfo.py: an overlay read back from the kernel's /proc/self/mountinfo (`mounted_overlay`);
- image.py: `unpack_layers` / `unpack_image` in overlay or copy mode, `image_stack`.
"""

from ..lazy import lazy_names

_HOMES = {
    **dict.fromkeys(["COPY", "OVERLAY", "LayerSource", "Unpacked", "image_layers", "image_stack", "layers_stack",
                     "unpack_image", "unpack_layers"], "image"),
    **dict.fromkeys(["ADDED", "DELETED", "MODIFIED", "Hidden", "LayerChanges", "LayerStack", "Node", "Version"], "model"),
    **dict.fromkeys(["OverlayMount", "find_mount", "mount_overlay", "mounts_dir", "unmount"], "overlay"),
}
__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_names(__name__, _HOMES)  # the model (and the layers' tar readers) load only when asked for
