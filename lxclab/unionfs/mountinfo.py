"""The kernel's own account of an overlay: its line of /proc/self/mountinfo, read back as an OverlayMount.

lxclab's record of a mount (overlay.find_mount) says what lxclab asked for; this says what
the kernel holds: the lowerdir, upperdir and workdir options of the overlay mounted at a
path, as the kernel prints them after the ` - ` separator of the mount's line.
"""

from __future__ import annotations

from pathlib import Path

from .. import procfs
from ..errors import MountError
from .overlay import OverlayMount

MOUNTINFO = Path("/proc/self/mountinfo")


def overlay_options(target: Path, mountinfo: Path = MOUNTINFO) -> dict[str, str]:
    """The filesystem options of the overlay mounted at `target` (name -> value), as the kernel lists them."""
    wanted = str(Path(target).resolve())
    for mount in reversed(procfs.parse_mountinfo(mountinfo.read_text())):  # the last one mounted there is seen
        if mount.point == wanted:
            if mount.fstype != "overlay":
                raise MountError(f"{target} is a {mount.fstype} mount, not an overlay")
            return {name: procfs.unescape(value) for name, _, value in
                    (option.partition("=") for option in mount.super_options.split(","))}
    raise MountError(f"nothing is mounted at {target} (not in {mountinfo})")


def mounted_overlay(target: Path, mountinfo: Path = MOUNTINFO) -> OverlayMount:
    """The overlay at `target` as the kernel records it: its lower dirs (top first), upper and work dirs."""
    options = overlay_options(target, mountinfo)
    missing = [name for name in ("lowerdir", "upperdir", "workdir") if name not in options]
    if missing:
        raise MountError(f"the overlay at {target} has no {' or '.join(missing)}: a read-only overlay has no upper")
    return OverlayMount(Path(target), [Path(p) for p in options["lowerdir"].split(":")],
                        Path(options["upperdir"]), Path(options["workdir"]))
