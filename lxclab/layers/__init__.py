"""Layers: apply OCI/Docker layer tars to a root filesystem safely, and turn a changed directory back into one.

Which module to use:
- `apply_layer` (apply.py): the one entry point for extraction, into a flattened root
  (copy mode) or into one directory per layer with overlayfs markers (overlay form).
- `read_entries` (entries.py): what a layer holds, as data, for the union-fs model.
- `diff_directory` / `write_diff` (diff.py): an overlay upper directory as a new layer, in memory or streamed.
Below them: names.py (name checks, whiteout names), stream.py (decompression, DiffID),
stage.py (extraction into a staging area), lower.py (paths through the symlinks of the layers
below, hardlinks to their files), merge.py (moving it in, with undo),
overlayform.py (overlayfs markers), metadata.py (owner, mode, times, xattrs).

The safety policy, in one place:
- A leading `/` is dropped, so absolute names land inside the root (contained, as GNU tar
  does); a `..` component anywhere refuses the layer.
- Symlinks are created as written (absolute targets too). An entry whose parent this
  layer made a symlink or file is refused. A parent that a lower layer made a symlink
  (merged /usr: `lib -> usr/lib`) is written through, resolved inside the root as chroot
  would (`/` and `..` stop at the root), and the link stays; a layer that lists the
  directory itself replaces the link.
- A hardlink links to a non-directory of the same layer (before or after it in the
  stream), else to a regular file of the layers below: in copy mode that very file, in
  overlay form a copy of it in the layer's own directory. Never to anything outside the root.
- Whiteouts are judged against the layers below: a whiteout's parent, or an opaque
  directory, that a lower layer made a symlink is resolved inside the root as above (the
  link stays; whiting out a link deletes only the link); a symlink this layer makes, or one
  its own markers delete, is never followed. `.wh.`, `.wh..`, `.wh...` and `.wh.` in a
  parent component are refused.
- A stream may end at a member boundary without tar's end-of-archive blocks (as Go's
  archive/tar reads it, and umoci's `insert` writes it); one that stops inside a header or
  a member's data is refused.
- A 0/0 character device (overlayfs's own whiteout) and unknown tar types are refused;
  `trusted.overlay.*` xattrs from a layer are ignored with a warning.
- A GNU long-name/long-link or PAX header over 1 MiB is refused unread, and a layer that
  inflates past `max_bytes` (LXCLAB_MAX_LAYER_BYTES, default 32 GiB) stops there: both
  raise LayerTooLarge naming the layer (a compression bomb).
- A refused layer, or one whose DiffID does not match, leaves the root exactly as it was.
"""

from ..lazy import lazy_names

_HOMES = {
    "apply_layer": "apply", "diff_directory": "diff", "write_diff": "diff", "LayerEntry": "entries",
    "read_entries": "entries", "OPAQUE_MARKER": "names", "WHITEOUT_PREFIX": "names", "OPAQUE_XATTR": "overlayform",
    "LowerView": "overlayform", "is_whiteout_node": "overlayform", "ApplyReport": "report", "LayerWarning": "report",
}
__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_names(__name__, _HOMES)  # a container's start reads metadata.py without the extraction code
