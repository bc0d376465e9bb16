"""Which cgroup version this host runs, where the caller's cgroups are, and where lxclab creates its groups.

Read from /proc/self/mountinfo and /proc/self/cgroup (or their text, for tests).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CgroupError
from ..procfs import parse_cgroup, parse_mountinfo
from ..limits import Limits
from .delegation import delegated_parent, systemd_running
from .group import Cgroup, remove_dirs
from .v1 import CgroupV1
from .v2 import CgroupV2

CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")
DEVICES = "devices"  # v1 only, where the host mounts it: v2 has an eBPF program instead (devices_bpf)


@dataclass(frozen=True)
class Hierarchy:
    """The caller's cgroups: one directory per controller (v1) or one for all (v2), and how v2 delegates.

    `everywhere` is the caller's directory in every mounted hierarchy (LXC makes its groups
    in each); `mount` is the v2 mount point; `systemd` whether systemd owns the v2 tree;
    `devices` the caller's v1 devices cgroup, where the host has that hierarchy.
    """

    version: int
    own_dirs: dict[str, Path]
    mount: Path | None = None
    systemd: bool = False
    everywhere: tuple[Path, ...] = field(default=(), compare=False)
    devices: Path | None = field(default=None, compare=False)

    def parent_dirs(self) -> dict[str, Path]:
        """Where lxclab's groups go, per controller: the caller's own (v1, devices too), the delegated subtree (v2)."""
        if self.version == 1:
            return dict(self.own_dirs) | ({DEVICES: self.devices} if self.devices else {})
        base = delegated_parent(self.mount, self.systemd)
        return {controller: base for controller in CONTROLLERS}

    def create(self, name: str, limits: Limits | None = None, devices: tuple[str, ...] | None = None) -> Cgroup:
        """Create group `name` under `parent_dirs()` and apply `limits`; needs root.

        With `devices` (rules like "c 1:3 rwm"), the group also denies every device but those: a
        v1 devices hierarchy's files where the host mounts one, on v2 an eBPF program
        (`devices_bpf`). The caller stays where it is; the group is empty until `add`.
        """
        if not name or "/" in name or name in (".", ".."):
            raise CgroupError(f"invalid cgroup name {name!r}: use one path component like 'lxclab-abc123'")
        missing = [c for c in CONTROLLERS if c not in self.own_dirs]
        if missing:
            raise CgroupError(f"cgroup controllers {missing} are not mounted here; mount them or use a v2 host")
        parents = self.parent_dirs()
        if devices is None:
            parents.pop(DEVICES, None)
        created = _make_dirs(name, sorted(set(parents.values())))
        dirs = {c: created[parents[c]] for c in parents}
        group = (CgroupV1 if self.version == 1 else CgroupV2)(name, dirs)
        try:
            group.set_limits(limits or Limits())
            if devices is not None:
                group.allow_devices(devices)
        except (CgroupError, ValueError):
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


def _cgroup_mounts(mountinfo: str) -> list[tuple[str, Path, str, set[str]]]:
    """(fstype, mount point, mount root, super options) for each cgroup mount in mountinfo."""
    return [(mount.fstype, Path(mount.point), mount.root, set(mount.super_options.split(",")))
            for mount in parse_mountinfo(mountinfo) if mount.fstype in ("cgroup", "cgroup2")]


def _inside(mount_point: Path, mount_root: str, own_path: str) -> Path:
    """The directory of cgroup `own_path` under a mount of the hierarchy rooted at `mount_root`."""
    relative = os.path.relpath(own_path, mount_root) if own_path.startswith(mount_root) else own_path.lstrip("/")
    return mount_point if relative == "." else mount_point / relative


def _own_dir(own: dict[frozenset[str], str], fstype: str, point: Path, root: str, options: set[str]) -> Path | None:
    """The caller's directory in one mounted hierarchy, or None when /proc/self/cgroup has no line for it."""
    for controllers, path in own.items():
        if (fstype == "cgroup2" and not controllers) or (controllers and controllers <= options):
            return _inside(point, root, path)
    return None


def detect(mountinfo: str | None = None, proc_cgroup: str | None = None, systemd: bool | None = None) -> Hierarchy:
    """Find the caller's own cgroups: v1 when a v1 memory hierarchy is mounted, else v2.

    Reads /proc/self/mountinfo, /proc/self/cgroup and whether systemd runs, unless given.
    """
    mountinfo = Path("/proc/self/mountinfo").read_text() if mountinfo is None else mountinfo
    proc_cgroup = Path("/proc/self/cgroup").read_text() if proc_cgroup is None else proc_cgroup
    own, mounts = parse_cgroup(proc_cgroup), _cgroup_mounts(mountinfo)
    dirs = [(fstype, options, _own_dir(own, fstype, point, root, options)) for fstype, point, root, options in mounts]
    everywhere = tuple(sorted({d for _, _, d in dirs if d is not None}))
    v1 = {c: d for fstype, options, d in dirs if fstype == "cgroup" and d is not None
          for c in options & set(CONTROLLERS)}
    devices = [d for fstype, options, d in dirs if fstype == "cgroup" and DEVICES in options and d is not None]
    if "memory" in v1:
        return Hierarchy(1, v1, everywhere=everywhere, devices=devices[0] if devices else None)
    unified = [(point, d) for (fstype, point, _, _), (_, _, d) in zip(mounts, dirs) if fstype == "cgroup2" and d]
    if not unified:
        raise CgroupError("no cgroup hierarchy with a memory controller is mounted: mount cgroup2 on /sys/fs/cgroup")
    mount, base = unified[0]
    return Hierarchy(2, {c: base for c in CONTROLLERS}, mount, systemd_running() if systemd is None else systemd,
                     everywhere)


def create(name: str, limits: Limits | None = None, hierarchy: Hierarchy | None = None,
           devices: tuple[str, ...] | None = None) -> Cgroup:
    """Create a limited group `name` where lxclab's groups go (detected unless given), allowing only `devices`
    if given; needs root."""
    return (hierarchy or detect()).create(name, limits, devices)
