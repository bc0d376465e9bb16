"""The cgroup files of each version, as pure functions: Limits to the writes that apply them, files to Stats.

No I/O. Both runtimes use these: the namespaces runtime writes each (controller, file,
value) into the group's directory for that controller; the LXC runtime turns the same
writes into `lxc.cgroup.<file>` (v1) or `lxc.cgroup2.<file>` (v2) config keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from ..limits import Limits

CPU_PERIOD_US = 100_000
UNLIMITED_V1 = 1 << 62  # v1 reports "no limit" as a huge page-rounded number, 9223372036854771712


class Write(NamedTuple):
    """One value to write into one cgroup file of one controller."""

    controller: str
    file: str
    value: str


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


# The files each Stats field is read from, per version: (controller, file).
STAT_FILES: dict[int, dict[str, tuple[tuple[str, str], ...]]] = {
    1: {
        "memory_bytes": (("memory", "memory.usage_in_bytes"),),
        "memory_peak_bytes": (("memory", "memory.max_usage_in_bytes"),),
        "memory_limit_bytes": (("memory", "memory.limit_in_bytes"),),
        "oom_kills": (("memory", "memory.oom_control"),),
        "cpu_usage_ns": (("cpuacct", "cpuacct.usage"),),
        "cpu_periods": (("cpu", "cpu.stat"),),
        "cpu_throttled_periods": (("cpu", "cpu.stat"),),
        "cpu_throttled_ns": (("cpu", "cpu.stat"),),
        "cpu_limit": (("cpu", "cpu.cfs_quota_us"), ("cpu", "cpu.cfs_period_us")),
        "pids": (("pids", "pids.current"),),
        "pids_limit": (("pids", "pids.max"),),
        "pids_denied": (("pids", "pids.events"),),
    },
    2: {
        "memory_bytes": (("memory", "memory.current"),),
        "memory_peak_bytes": (("memory", "memory.peak"),),
        "memory_limit_bytes": (("memory", "memory.max"),),
        "oom_kills": (("memory", "memory.events"),),
        "cpu_usage_ns": (("cpu", "cpu.stat"),),
        "cpu_periods": (("cpu", "cpu.stat"),),
        "cpu_throttled_periods": (("cpu", "cpu.stat"),),
        "cpu_throttled_ns": (("cpu", "cpu.stat"),),
        "cpu_limit": (("cpu", "cpu.max"),),
        "pids": (("pids", "pids.current"),),
        "pids_limit": (("pids", "pids.max"),),
        "pids_denied": (("pids", "pids.events"),),
    },
}

# The file holding the memory limit, and the one capping memory + swap, per version.
MEMORY_LIMIT_FILE = {1: "memory.limit_in_bytes", 2: "memory.max"}
SWAP_LIMIT_FILE = {1: "memory.memsw.limit_in_bytes", 2: "memory.swap.max"}


def _check_version(version: int) -> None:
    """Raise ValueError unless `version` is 1 or 2."""
    if version not in STAT_FILES:
        raise ValueError(f"cgroup version {version!r} is unknown: 1 or 2")


def limit_writes(limits: Limits, version: int, swap: bool = False,
                 current_memory: int | None = None) -> list[Write]:
    """The writes that apply `limits` on cgroup `version`, in an order the kernel accepts.

    With swap accounting (`swap`), swap cannot lift the memory limit: v1 caps memory+swap at
    the memory limit (and memsw may never drop below it, so it goes first when the limit
    grows past `current_memory`, the limit in force; None means unlimited), v2 sets swap to 0.
    """
    _check_version(version)
    writes = _memory_writes(limits.memory_bytes, version, swap, current_memory) \
        if limits.memory_bytes is not None else []
    if limits.cpus is not None:
        quota = round(limits.cpus * CPU_PERIOD_US)
        if version == 2:
            writes.append(Write("cpu", "cpu.max", f"{quota} {CPU_PERIOD_US}"))
        else:
            writes += [Write("cpu", "cpu.cfs_period_us", str(CPU_PERIOD_US)),
                       Write("cpu", "cpu.cfs_quota_us", str(quota))]
    if limits.pids is not None:
        writes.append(Write("pids", "pids.max", str(limits.pids)))
    return writes


def _memory_writes(size: int, version: int, swap: bool, current: int | None) -> list[Write]:
    """The memory limit's writes, with its swap cap when swap is accounted."""
    memory = Write("memory", MEMORY_LIMIT_FILE[version], str(size))
    if not swap:
        return [memory]
    if version == 2:
        return [memory, Write("memory", SWAP_LIMIT_FILE[2], "0")]
    memsw = Write("memory", SWAP_LIMIT_FILE[1], str(size))
    growing = current is not None and size > current
    return [memsw, memory] if growing else [memory, memsw]


class DeviceRule(NamedTuple):
    """One device allow-list rule ("c 1:3 rwm"): type b, c or a (both), major and minor (None: any), access."""

    type: str
    major: int | None
    minor: int | None
    access: str


DEVICE_TYPES = "abc"
DEVICE_ACCESS = "rwm"


def parse_device_rule(text: str) -> DeviceRule:
    """The rule a devices.allow line states: "TYPE MAJOR:MINOR ACCESS" ('*' any number), or "a" for every device.

    Raises ValueError naming what is wrong, so both versions refuse the same rules.
    """
    fields = text.split()
    if fields == ["a"]:
        return DeviceRule("a", None, None, DEVICE_ACCESS)
    numbers = fields[1].split(":") if len(fields) == 3 else []
    if len(numbers) != 2 or fields[0] not in DEVICE_TYPES or not fields[2] \
            or set(fields[2]) - set(DEVICE_ACCESS) or len(set(fields[2])) != len(fields[2]):
        raise ValueError(f"device rule {text!r} is not 'TYPE MAJOR:MINOR ACCESS' like 'c 1:3 rwm' "
                         f"(type one of {DEVICE_TYPES!r}, '*' for any number, access letters of {DEVICE_ACCESS!r})")
    major, minor = (None if n == "*" else _device_number(n, text) for n in numbers)
    return DeviceRule(fields[0], major, minor, fields[2])


def _device_number(text: str, rule: str) -> int:
    """A major or minor number of a device rule (20 bits at most)."""
    if not text.isdigit() or int(text) >= 1 << 20:
        raise ValueError(f"device rule {rule!r}: {text!r} is not a device number (0 to {(1 << 20) - 1}) or '*'")
    return int(text)


def device_writes(allowed: tuple[str, ...]) -> list[Write]:
    """The v1 device controller's writes that deny every device but the `allowed` rules ("c 1:3 rwm"...).

    v1 only: cgroup v2 has no devices files; its device controller is an eBPF program
    (BPF_PROG_TYPE_CGROUP_DEVICE) attached to the group, which `devices_bpf` builds from the
    same rules. Each rule is checked with `parse_device_rule` first.
    """
    for rule in allowed:
        parse_device_rule(rule)
    return [Write("devices", "devices.deny", "a")] + [Write("devices", "devices.allow", rule) for rule in allowed]


def stat_files(version: int, fields: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """The distinct (controller, file) pairs to read for Stats `fields` (all of them by default)."""
    _check_version(version)
    table = STAT_FILES[version]
    found: list[tuple[str, str]] = []
    for field in fields or tuple(table):
        found += [source for source in table[field] if source not in found]
    return found


def parse_stats(version: int, texts: Mapping[str, str]) -> Stats:
    """Stats from the text of cgroup files, keyed by file name; a missing file reads as 0 (or None for limits)."""
    _check_version(version)
    return (_parse_v1 if version == 1 else _parse_v2)(texts)


def _parse_v1(texts: Mapping[str, str]) -> Stats:
    """Stats from v1 files: memory.*_in_bytes, memory.oom_control, cpuacct.usage, cpu.stat, cpu.cfs_*, pids.*."""
    limit = _int(texts.get("memory.limit_in_bytes"), None)
    quota, period = _int(texts.get("cpu.cfs_quota_us"), -1), _int(texts.get("cpu.cfs_period_us"))
    cpu = keyed(texts.get("cpu.stat", ""))
    return Stats(
        memory_bytes=_int(texts.get("memory.usage_in_bytes")),
        memory_peak_bytes=_int(texts.get("memory.max_usage_in_bytes"), None),
        memory_limit_bytes=None if limit is None or limit >= UNLIMITED_V1 else limit,
        oom_kills=keyed(texts.get("memory.oom_control", "")).get("oom_kill", 0),
        cpu_usage_ns=_int(texts.get("cpuacct.usage")),
        cpu_periods=cpu.get("nr_periods", 0),
        cpu_throttled_periods=cpu.get("nr_throttled", 0),
        cpu_throttled_ns=cpu.get("throttled_time", 0),
        cpu_limit=None if quota < 0 or not period else quota / period,
        **_pids(texts),
    )


def _parse_v2(texts: Mapping[str, str]) -> Stats:
    """Stats from v2 files: memory.current/peak/max/events, cpu.stat (µs), cpu.max, pids.*."""
    cpu = keyed(texts.get("cpu.stat", ""))
    return Stats(
        memory_bytes=_int(texts.get("memory.current")),
        memory_peak_bytes=_int(texts.get("memory.peak"), None),
        memory_limit_bytes=_int(texts.get("memory.max"), None),
        oom_kills=keyed(texts.get("memory.events", "")).get("oom_kill", 0),
        cpu_usage_ns=cpu.get("usage_usec", 0) * 1000,
        cpu_periods=cpu.get("nr_periods", 0),
        cpu_throttled_periods=cpu.get("nr_throttled", 0),
        cpu_throttled_ns=cpu.get("throttled_usec", 0) * 1000,
        cpu_limit=_cpu_max(texts.get("cpu.max")),
        **_pids(texts),
    )


def _pids(texts: Mapping[str, str]) -> dict[str, int | None]:
    """The pids fields, whose files are the same on both versions."""
    return {"pids": _int(texts.get("pids.current")), "pids_limit": _int(texts.get("pids.max"), None),
            "pids_denied": keyed(texts.get("pids.events", "")).get("max", 0)}


def keyed(text: str) -> dict[str, int]:
    """A flat-keyed cgroup file like cpu.stat or memory.events ('key value' lines) as {key: int}."""
    pairs = (line.split() for line in text.splitlines())
    return {fields[0]: int(fields[1]) for fields in pairs if len(fields) == 2 and fields[1].lstrip("-").isdigit()}


def _int(text: str | None, default: int | None = 0) -> int | None:
    """An integer file's value; 'max', an empty or a missing file gives `default`."""
    text = (text or "").strip()
    return default if text in ("", "max") else int(text)


def _cpu_max(text: str | None) -> float | None:
    """The CPUs a v2 cpu.max text allows ("max 100000" or none: unlimited)."""
    if not text or not text.split():
        return None
    quota, period = text.split()
    return None if quota == "max" else int(quota) / int(period)
