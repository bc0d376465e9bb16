"""The cgroup keys that hold memory, CPU and pids limits and usage, on v1 and v2 hosts.

Pure data. Limits themselves are lxclab.limits.Limits, parsed the way
`docker run --memory 32m --cpus 0.2 --pids-limit 64` reads them, shared with the
namespace runtime. Here they become the cgroup files LXC must write: `lxc.cgroup.<key>`
on a v1 host, `lxc.cgroup2.<key>` on a v2 host (LXC ignores the other family without a word).
"""

from __future__ import annotations

from ..cgroups import CPU_PERIOD_US
from ..limits import Limits

# What each accessor reads: the cgroup file per cgroup version.
STAT_FILES = {
    1: {"memory_usage": "memory.usage_in_bytes", "memory_peak": "memory.max_usage_in_bytes",
        "cpu_time": "cpuacct.usage", "pids_current": "pids.current", "oom_kills": "memory.oom_control",
        "memory_limit": "memory.limit_in_bytes"},
    2: {"memory_usage": "memory.current", "memory_peak": "memory.peak",
        "cpu_time": "cpu.stat", "pids_current": "pids.current", "oom_kills": "memory.events",
        "memory_limit": "memory.max"},
}


def config_prefix(version: int) -> str:
    """The LXC config prefix for cgroup keys: lxc.cgroup. on v1, lxc.cgroup2. on v2."""
    return "lxc.cgroup." if version == 1 else "lxc.cgroup2."


def cgroup_items(limits: Limits, version: int, swap: bool = False,
                 current_memory: int | None = None) -> list[tuple[str, str]]:
    """The (cgroup file, value) pairs that apply `limits`, in an order the kernel accepts.

    On v1 with swap accounting, memory+swap is capped at the memory limit (no swap), and
    must stay >= it at every step: raise it first when the limit grows past `current_memory`.
    """
    items = []
    if limits.memory_bytes is not None:
        if version == 2:
            items.append(("memory.max", str(limits.memory_bytes)))
        elif swap:
            size = str(limits.memory_bytes)
            pair = [("memory.limit_in_bytes", size), ("memory.memsw.limit_in_bytes", size)]
            growing = current_memory is not None and limits.memory_bytes > current_memory
            items += reversed(pair) if growing else pair
        else:
            items.append(("memory.limit_in_bytes", str(limits.memory_bytes)))
    if limits.cpus is not None:
        quota = round(limits.cpus * CPU_PERIOD_US)
        if version == 2:
            items.append(("cpu.max", f"{quota} {CPU_PERIOD_US}"))
        else:
            items += [("cpu.cfs_period_us", str(CPU_PERIOD_US)), ("cpu.cfs_quota_us", str(quota))]
    if limits.pids is not None:
        items.append(("pids.max", str(limits.pids)))
    return items


def cpu_seconds(version: int, text: str) -> float:
    """CPU time in seconds from cpuacct.usage (v1, nanoseconds) or cpu.stat's usage_usec (v2)."""
    if version == 1:
        return int(text.strip()) / 1e9
    return _keyed_value(text, "usage_usec") / 1e6


def oom_kill_count(text: str) -> int:
    """The oom_kill counter from v1 memory.oom_control or v2 memory.events."""
    return _keyed_value(text, "oom_kill")


def _keyed_value(text: str, key: str) -> int:
    """The integer after `key` in a flat-keyed cgroup file ('key value' per line); 0 if absent."""
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return 0
