"""Cgroup v2: one unified tree, where a parent enables the controllers its children may use."""

from __future__ import annotations

from pathlib import Path

from ..limits import Limits
from .group import CPU_PERIOD_US, Cgroup, Stats, _read_int, _write, read_keyed


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
