"""Mount a stack of layer directories with overlayfs, and unmount it again, leaving nothing behind.

    mount -t overlay overlay -o lowerdir=TOP:...:BOTTOM,upperdir=UPPER,workdir=WORK TARGET

The lower directories are read-only and shared; every use gets its own upper directory
(where writes land, copied up from below) and work directory (overlayfs's scratch
space, on the same filesystem as the upper). Both live under lxclab's home, in
`mounts/<key>/`, beside a record naming the mount, so `lxclab unmount DIR` can find
them. Mounting needs CAP_SYS_ADMIN.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from .. import _libc, paths
from ..errors import KernelError, MountError
from ..layers.metadata import apply_metadata, dir_metadata
from ..procfs import is_mountpoint

MAX_MOUNT_DATA = 4095
RECORD = "mount.json"


def mounts_dir() -> Path:
    """Where each overlay mount keeps its upper dir, work dir and record."""
    return paths.home() / "mounts"


def state_dir(target: Path) -> Path:
    """The state directory of the overlay mounted (or to be mounted) at `target`."""
    key = hashlib.sha256(str(Path(target).resolve()).encode()).hexdigest()[:16]
    return mounts_dir() / key


@dataclass
class OverlayMount:
    """An overlay mounted at `target`: its lower dirs (top first), its upper and work dirs; a context manager."""

    target: Path
    lower: list[Path]
    upper: Path
    work: Path

    def __enter__(self) -> OverlayMount:
        return self

    def __exit__(self, *exc_info) -> None:
        self.unmount()

    @property
    def mounted(self) -> bool:
        """True while the overlay is mounted."""
        return is_mountpoint(self.target)

    def unmount(self) -> None:
        """Unmount, then delete the upper and work directories and the record."""
        if self.mounted:
            try:
                _libc.umount(str(self.target))
            except KernelError as exc:
                raise MountError(f"cannot unmount the overlay at {self.target}: {exc}; is a process using it?") from exc
        state = self.upper.parent
        if state.exists():
            _remove_tree(state)


def mount_overlay(lower: list[Path], target: Path) -> OverlayMount:
    """Mount `lower` (top first) at `target`, an empty directory, with a fresh upper and work dir."""
    target = Path(target)
    _check_target(target)
    state = state_dir(target)
    if state.exists():
        raise MountError(f"{target} already has overlay state in {state}: run `lxclab unmount {target}` first")
    upper, work = state / "upper", state / "work"
    for directory in (upper, work):
        directory.mkdir(parents=True)
    apply_metadata(upper, dir_metadata(lower[0]))
    mount = OverlayMount(target, [Path(p) for p in lower], upper, work)
    try:
        _libc.mount("overlay", str(target), "overlay", 0, overlay_options(mount.lower, upper, work))
    except KernelError as exc:
        _remove_tree(state)
        raise MountError(f"cannot mount the overlay at {target}: {exc}; overlay mode needs root "
                         "(use --mode copy otherwise)") from exc
    record = {"target": str(target.resolve()), "lower": [str(p) for p in lower], "upper": str(upper), "work": str(work)}
    (state / RECORD).write_text(json.dumps(record, indent=2) + "\n")
    return mount


def _check_target(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    if is_mountpoint(target):
        raise MountError(f"{target} is already a mount point: unmount it first")
    if any(target.iterdir()):
        raise MountError(f"{target} is not empty: overlay mounts go on an empty directory")


def _remove_tree(path: Path) -> None:
    from ..layers.stage import remove_tree  # the extraction code loads only when an overlay's state is removed
    remove_tree(path)


def overlay_options(lower: list[Path], upper: Path, work: Path) -> str:
    """overlayfs mount data: lowerdir=TOP:...:BOTTOM,upperdir=UPPER,workdir=WORK (at most one page)."""
    every = [str(p) for p in [*lower, upper, work]]
    if any("," in p or ":" in p for p in every):
        raise MountError(f"overlayfs cannot take paths containing ',' or ':' ({every}); set LXCLAB_HOME elsewhere")
    data = f"lowerdir={':'.join(every[:-2])},upperdir={upper},workdir={work}"
    if len(data) > MAX_MOUNT_DATA:
        raise MountError(f"{len(lower)} layers make the overlay options {len(data)} bytes, more than a page; "
                         "use a shorter LXCLAB_HOME or copy mode (--mode copy)")
    return data


def find_mount(target: Path) -> OverlayMount:
    """The overlay lxclab mounted at `target`, from its record; MountError if there is none."""
    record_path = state_dir(target) / RECORD
    if not record_path.is_file():
        raise MountError(f"no overlay mounted by lxclab at {target} (no record in {record_path.parent})")
    record = json.loads(record_path.read_text())
    return OverlayMount(Path(record["target"]), [Path(p) for p in record["lower"]],
                        Path(record["upper"]), Path(record["work"]))


def unmount(target: Path) -> None:
    """Unmount the overlay lxclab mounted at `target` and delete its upper and work directories."""
    find_mount(target).unmount()
