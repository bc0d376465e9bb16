"""Control groups: memory, CPU and pids limits and their statistics, over cgroup v1 or v2.

The version is detected at run time from /proc/self/mountinfo: v1 has one hierarchy per
controller (memory, cpu, cpuacct, pids...), v2 one unified tree. Groups are always
created as children of the cgroup the caller is already in, and the caller never moves
itself: only the container's processes are put into the new group.

This module finds the caller's own cgroup (`detect`) and creates groups under it (`create`).
Modules: `group` (Stats, the Cgroup base, cgroup file helpers, killing and removing groups),
`v1` (CgroupV1), `v2` (CgroupV2).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import CgroupError
from ..limits import Limits
from .group import CPU_PERIOD_US, Cgroup, Stats, kill_all, processes_in, read_keyed, remove_dirs
from .v1 import UNLIMITED_V1, CgroupV1
from .v2 import CgroupV2

__all__ = [
    "CONTROLLERS", "CPU_PERIOD_US", "UNLIMITED_V1", "Cgroup", "CgroupV1", "CgroupV2", "Hierarchy", "Limits",
    "Stats", "create", "detect", "kill_all", "processes_in", "read_keyed", "remove_dirs",
]

CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")


@dataclass(frozen=True)
class Hierarchy:
    """Where the caller's own cgroup lives: one directory per controller (v1) or one for all (v2)."""

    version: int
    own_dirs: dict[str, Path]

    def create(self, name: str, limits: Limits | None = None) -> Cgroup:
        """Create group `name` as a child of the caller's own cgroup and apply `limits`; needs root.

        The caller stays where it is; the group is empty until `add`.
        """
        if not name or "/" in name or name in (".", ".."):
            raise CgroupError(f"invalid cgroup name {name!r}: use one path component like 'lxclab-abc123'")
        missing = [c for c in CONTROLLERS if c not in self.own_dirs]
        if missing:
            raise CgroupError(f"cgroup controllers {missing} are not mounted here; mount them or use a v2 host")
        if self.version == 2:
            _enable_controllers(self.own_dirs["memory"])
        created = _make_dirs(name, sorted(set(self.own_dirs.values())))
        dirs = {c: created[self.own_dirs[c]] for c in CONTROLLERS}
        group = (CgroupV1 if self.version == 1 else CgroupV2)(name, dirs)
        try:
            group.set_limits(limits or Limits())
        except CgroupError:
            group.remove()
            raise
        return group


def _make_dirs(name: str, parents: list[Path]) -> dict[Path, Path]:
    """mkdir `name` under each parent; on failure remove the ones already made."""
    made: dict[Path, Path] = {}
    for parent in parents:
        try:
            (parent / name).mkdir()
        except OSError as exc:
            remove_dirs([str(d) for d in made.values()])
            advice = "remove it (lxclab gc) or pick another name" if isinstance(exc, FileExistsError) else "run as root"
            raise CgroupError(f"cannot create cgroup {parent / name}: {exc.strerror}; {advice}") from None
        made[parent] = parent / name
    return made


def _enable_controllers(parent: Path) -> None:
    """Let v2 children of `parent` use memory, cpu and pids (cgroup.subtree_control)."""
    available = set((parent / "cgroup.controllers").read_text().split())
    enabled = set((parent / "cgroup.subtree_control").read_text().split())
    wanted = {"memory", "cpu", "pids"}
    if not wanted <= available:
        raise CgroupError(f"cgroup {parent} lacks controllers {sorted(wanted - available)}: "
                          "ask for them to be delegated")
    if wanted - enabled:
        _write_subtree_control(parent, " ".join(f"+{c}" for c in sorted(wanted - enabled)))


def _write_subtree_control(parent: Path, change: str) -> None:
    """Enable controllers for the children of `parent`, explaining v2's no-internal-processes rule."""
    try:
        (parent / "cgroup.subtree_control").write_text(f"{change}\n")
    except OSError as exc:
        raise CgroupError(f"cannot write {change!r} to {parent}/cgroup.subtree_control: {exc.strerror}; "
                          "v2 allows it only in a cgroup with no processes of its own (or the root)") from None


def _unescape(field: str) -> str:
    """Undo mountinfo's octal escapes (a space is \\040)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _cgroup_mounts(mountinfo: str) -> list[tuple[str, Path, str, set[str]]]:
    """(fstype, mount point, mount root, controllers) for each cgroup mount in mountinfo."""
    mounts = []
    for line in mountinfo.splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
            mounts.append((tail[0], Path(_unescape(fields[4])), _unescape(fields[3]), set(tail[2].split(","))))
    return mounts


def detect(mountinfo: str | None = None, proc_cgroup: str | None = None) -> Hierarchy:
    """Find the caller's own cgroup: v1 when a v1 memory hierarchy is mounted, else v2.

    Reads /proc/self/mountinfo and /proc/self/cgroup unless their text is given.
    """
    mountinfo = Path("/proc/self/mountinfo").read_text() if mountinfo is None else mountinfo
    proc_cgroup = Path("/proc/self/cgroup").read_text() if proc_cgroup is None else proc_cgroup
    own = _own_paths(proc_cgroup)
    mounts = _cgroup_mounts(mountinfo)
    v1 = {controller: (point, root) for fstype, point, root, options in mounts if fstype == "cgroup"
          for controller in options & set(CONTROLLERS)}
    if "memory" in v1:
        return Hierarchy(1, {c: _inside(point, root, own.get(c, "/")) for c, (point, root) in v1.items()})
    unified = [(point, root) for fstype, point, root, _ in mounts if fstype == "cgroup2"]
    if not unified or "" not in own:
        raise CgroupError("no cgroup hierarchy with a memory controller is mounted: mount cgroup2 on /sys/fs/cgroup")
    base = _inside(*unified[0], own[""])
    return Hierarchy(2, {c: base for c in CONTROLLERS})


def _own_paths(proc_cgroup: str) -> dict[str, str]:
    """{controller: the caller's cgroup path} from /proc/self/cgroup text; "" keys the v2 line."""
    own = {}
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            own[controller] = path
    return own


def _inside(mount_point: Path, mount_root: str, own_path: str) -> Path:
    """The directory of cgroup `own_path` under a mount of the hierarchy rooted at `mount_root`."""
    relative = os.path.relpath(own_path, mount_root) if own_path.startswith(mount_root) else own_path.lstrip("/")
    return mount_point if relative == "." else mount_point / relative


def create(name: str, limits: Limits | None = None, hierarchy: Hierarchy | None = None) -> Cgroup:
    """Create a limited group `name` under the caller's own cgroup (detected unless given); needs root."""
    return (hierarchy or detect()).create(name, limits)
