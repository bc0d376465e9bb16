"""Control groups: memory, CPU and pids limits and their statistics, over cgroup v1 or v2.

The version is detected at run time from /proc/self/mountinfo: v1 has one hierarchy per
controller (memory, cpu, cpuacct, pids...), v2 one unified tree. Groups are always
created as children of the cgroup the caller is already in, and the caller never moves
itself: only the container's processes are put into the new group.
"""

from __future__ import annotations

import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import CgroupError
from ..limits import Limits

CPU_PERIOD_US = 100_000
UNLIMITED_V1 = 1 << 62  # v1 reports "no limit" as a huge page-rounded number, 9223372036854771712
CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")


@dataclass(frozen=True)
class Stats:
    """One sample of a group's counters; limits are None when unlimited, peak None when unknown."""

    memory_bytes: int
    memory_peak_bytes: int | None
    memory_limit_bytes: int | None
    oom_kills: int
    cpu_usage_ns: int
    cpu_periods: int
    cpu_throttled_periods: int
    cpu_throttled_ns: int
    cpu_limit: float | None
    pids: int
    pids_limit: int | None
    pids_denied: int


def read_keyed(path: Path) -> dict[str, int]:
    """A flat-keyed cgroup file like cpu.stat or memory.events as {key: int}; {} if it is missing."""
    try:
        pairs = (line.split() for line in path.read_text().splitlines())
    except FileNotFoundError:
        return {}
    return {fields[0]: int(fields[1]) for fields in pairs if len(fields) == 2 and fields[1].lstrip("-").isdigit()}


def _read_int(path: Path, default: int | None = 0) -> int | None:
    """An integer file; 'max' or a missing file gives `default`."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return default
    return default if text == "max" else int(text)


def _write(path: Path, value: object) -> None:
    """Write one value to a cgroup file, turning the kernel's refusal into CgroupError."""
    try:
        path.write_text(f"{value}\n")
    except OSError as exc:
        raise CgroupError(f"cannot write {value!r} to {path}: {exc.strerror}; "
                          "cgroup files need root (or a delegated cgroup)") from None


class Cgroup:
    """A control group this process created: limit it, add processes, sample it, kill and remove it."""

    version = 0

    def __init__(self, name: str, dirs: dict[str, Path]):
        self.name = name
        self.dirs = dirs  # controller -> directory; v2 maps every controller to the same one

    @property
    def paths(self) -> list[str]:
        """The group's distinct directories, for a Resources record and `remove_dirs`."""
        return sorted({str(d) for d in self.dirs.values()})

    def add(self, pid: int) -> None:
        """Move process `pid` (and its future children) into the group."""
        for path in self.paths:
            _write(Path(path) / "cgroup.procs", pid)

    def pids(self) -> list[int]:
        """The processes in the group now."""
        return processes_in(self.paths)

    def set_limits(self, limits: Limits) -> None:
        """Apply the memory, CPU and pids limits that are not None."""
        raise NotImplementedError

    def stats(self) -> Stats:
        """Read memory, CPU, pids and OOM counters now (about 15 µs a file)."""
        raise NotImplementedError

    def kill(self, timeout: float = 5.0) -> None:
        """SIGKILL every process in the group, stopping forks first, and wait until it is empty."""
        self._stop_forks()
        kill_all(self.paths, timeout)

    def _stop_forks(self) -> None:
        """Lower pids.max to 0 (when limited by pids) so nothing new is born while killing."""
        if "pids" in self.dirs and (self.dirs["pids"] / "pids.max").exists():
            (self.dirs["pids"] / "pids.max").write_text("0\n")

    def remove(self) -> None:
        """Kill what is left in the group and remove its directories; removing twice is harmless."""
        if any(Path(p).exists() for p in self.paths):
            self.kill()
        remove_dirs(self.paths)

    def __enter__(self) -> "Cgroup":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.paths}>"


class CgroupV1(Cgroup):
    """A group in the v1 hierarchies: one directory per controller mount."""

    version = 1

    def set_limits(self, limits: Limits) -> None:
        """Apply limits: memory.limit_in_bytes (+memsw, so swap cannot lift it), cpu.cfs_*, pids.max."""
        if limits.memory_bytes is not None:
            _write(self.dirs["memory"] / "memory.limit_in_bytes", limits.memory_bytes)
            memsw = self.dirs["memory"] / "memory.memsw.limit_in_bytes"
            if memsw.exists():
                _write(memsw, limits.memory_bytes)
        if limits.cpus is not None:
            _write(self.dirs["cpu"] / "cpu.cfs_period_us", CPU_PERIOD_US)
            _write(self.dirs["cpu"] / "cpu.cfs_quota_us", round(limits.cpus * CPU_PERIOD_US))
        if limits.pids is not None:
            _write(self.dirs["pids"] / "pids.max", limits.pids)

    def stats(self) -> Stats:
        """Read memory.usage/max_usage/oom_control, cpuacct.usage, cpu.stat and pids.*."""
        memory, cpu, pids = self.dirs["memory"], self.dirs["cpu"], self.dirs["pids"]
        limit = _read_int(memory / "memory.limit_in_bytes")
        quota = _read_int(cpu / "cpu.cfs_quota_us", -1)
        throttling = read_keyed(cpu / "cpu.stat")
        return Stats(
            memory_bytes=_read_int(memory / "memory.usage_in_bytes"),
            memory_peak_bytes=_read_int(memory / "memory.max_usage_in_bytes", None),
            memory_limit_bytes=None if limit >= UNLIMITED_V1 else limit,
            oom_kills=read_keyed(memory / "memory.oom_control").get("oom_kill", 0),
            cpu_usage_ns=_read_int(self.dirs["cpuacct"] / "cpuacct.usage"),
            cpu_periods=throttling.get("nr_periods", 0),
            cpu_throttled_periods=throttling.get("nr_throttled", 0),
            cpu_throttled_ns=throttling.get("throttled_time", 0),
            cpu_limit=None if quota < 0 else quota / _read_int(cpu / "cpu.cfs_period_us"),
            pids=_read_int(pids / "pids.current"),
            pids_limit=_read_int(pids / "pids.max", None),
            pids_denied=read_keyed(pids / "pids.events").get("max", 0),
        )


class CgroupV2(Cgroup):
    """A group in the unified v2 tree: one directory, controllers enabled by the parent."""

    version = 2

    def set_limits(self, limits: Limits) -> None:
        """Apply limits: memory.max (+memory.swap.max 0), cpu.max "QUOTA PERIOD", pids.max."""
        group = self.dirs["memory"]
        if limits.memory_bytes is not None:
            _write(group / "memory.max", limits.memory_bytes)
            if (group / "memory.swap.max").exists():
                _write(group / "memory.swap.max", 0)
        if limits.cpus is not None:
            _write(group / "cpu.max", f"{round(limits.cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}")
        if limits.pids is not None:
            _write(group / "pids.max", limits.pids)

    def stats(self) -> Stats:
        """Read memory.current/peak/max/events, cpu.stat, cpu.max and pids.*."""
        group = self.dirs["memory"]
        cpu = read_keyed(group / "cpu.stat")
        return Stats(
            memory_bytes=_read_int(group / "memory.current"),
            memory_peak_bytes=_read_int(group / "memory.peak", None),
            memory_limit_bytes=_read_int(group / "memory.max", None),
            oom_kills=read_keyed(group / "memory.events").get("oom_kill", 0),
            cpu_usage_ns=cpu.get("usage_usec", 0) * 1000,
            cpu_periods=cpu.get("nr_periods", 0),
            cpu_throttled_periods=cpu.get("nr_throttled", 0),
            cpu_throttled_ns=cpu.get("throttled_usec", 0) * 1000,
            cpu_limit=_read_cpu_max(group / "cpu.max"),
            pids=_read_int(group / "pids.current"),
            pids_limit=_read_int(group / "pids.max", None),
            pids_denied=read_keyed(group / "pids.events").get("max", 0),
        )

    def kill(self, timeout: float = 5.0) -> None:
        """Write 1 to cgroup.kill (Linux 5.14+) when the kernel has it, then make sure the group is empty."""
        kill_file = self.dirs["memory"] / "cgroup.kill"
        if kill_file.exists():
            _write(kill_file, 1)
        super().kill(timeout)


def _read_cpu_max(path: Path) -> float | None:
    """The CPUs a v2 cpu.max file allows ("max 100000" is unlimited)."""
    if not path.exists():
        return None
    quota, period = path.read_text().split()
    return None if quota == "max" else int(quota) / int(period)


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


def processes_in(paths: list[str]) -> list[int]:
    """The PIDs listed in the cgroup.procs files of `paths`."""
    found: set[int] = set()
    for procs in (Path(path) / "cgroup.procs" for path in paths):
        if procs.exists():
            found.update(int(line) for line in procs.read_text().split())
    return sorted(found)


def kill_all(paths: list[str], timeout: float = 5.0) -> None:
    """SIGKILL the processes in the cgroups at `paths` until none is left (new ones may appear while killing)."""
    deadline = time.monotonic() + timeout
    while pids := processes_in(paths):
        if time.monotonic() > deadline:
            raise CgroupError(f"cgroup {paths[0]}: processes {pids} survived SIGKILL for {timeout} s")
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)


def remove_dirs(paths: list[str], timeout: float = 5.0) -> None:
    """Remove cgroup directories, killing any process still in them; paths already gone are skipped.

    This is what `gc` calls with the paths a crashed run recorded.
    """
    for path in map(Path, paths):
        if not path.exists():
            continue
        kill_all([str(path)], timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                path.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as exc:  # EBUSY while the last exiting task lets go
                if time.monotonic() > deadline:
                    raise CgroupError(f"cannot remove cgroup {path}: {exc.strerror}; "
                                      "is a process still in it?") from None
                time.sleep(0.01)


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
