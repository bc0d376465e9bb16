"""Cgroup v1: one hierarchy per controller (memory, cpu, cpuacct, pids), so one directory each."""

from __future__ import annotations

from ..limits import Limits
from .group import CPU_PERIOD_US, Cgroup, Stats, _read_int, _write, read_keyed

UNLIMITED_V1 = 1 << 62  # v1 reports "no limit" as a huge page-rounded number, 9223372036854771712


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
