"""Limits and resource usage of a Container: memory, CPU and pids, through liblxc's cgroup calls."""

from __future__ import annotations

import os
from typing import NamedTuple

from .. import validation
from ..cgroups import Stats, limit_writes, parse_stats, stat_files
from ..cgroups.vocabulary import keyed
from ..errors import CgroupError, ContainerError, NotRunning
from ..limits import Limits
from .hierarchies import cgroup_version, swap_accounting


def config_prefix(version: int) -> str:
    """The LXC config prefix for cgroup keys: lxc.cgroup. on v1, lxc.cgroup2. on v2 (LXC ignores the other)."""
    return "lxc.cgroup." if version == 1 else "lxc.cgroup2."


def config_items(limits: Limits, version: int, swap: bool = False,
                 current_memory: int | None = None) -> list[tuple[str, str]]:
    """The LXC config keys and values that apply `limits`: cgroups.limit_writes, prefixed, in the same order."""
    return [(config_prefix(version) + file, value)
            for _controller, file, value in limit_writes(limits, version, swap, current_memory)]


class CPUStats(NamedTuple):
    """CPUStats is the CPU time a container's processes spent in user mode and in the kernel, in seconds."""

    user: float
    system: float


class UsageMixin:
    """The resource half of Container: set limits, read usage (needs the Container's _lxc and guards)."""

    def set_limits(self, limits: Limits | None = None, *, memory: str | None = None,
                   cpus: str | None = None, pids: str | None = None) -> None:
        """SetLimits caps memory, CPUs and pids: in the config for every start and, while running, live.

        Values are parsed like Docker's (memory='32m', cpus=0.2, pids=64); a bad one raises
        InvalidLimit. The keys are lxc.cgroup.* on a v1 host and lxc.cgroup2.* on a v2 host.
        """
        self._must_be_defined()
        self._configure_limits(limits or Limits.parse(memory, cpus, pids))
        self._save_config()

    def _configure_limits(self, limits: Limits) -> None:
        """Put `limits` in the in-memory config and, if the container runs, in its cgroups now."""
        version, live = cgroup_version(), self.running
        swap = swap_accounting()
        current = self._stats("memory_limit_bytes").memory_limit_bytes if live and swap else None
        for _controller, file, value in limit_writes(limits, version, swap, current):
            if live and not self._lxc.set_cgroup_item(file, value):
                raise CgroupError(f"the kernel refused {file} = {value} for running container {self.name!r} "
                                  "(a memory limit below what it uses now cannot be set): choose another value")
            self._set_config(config_prefix(version) + file, value)

    @property
    def init_pid(self) -> int:
        """InitPid is the host PID of the container's init process."""
        self._must_be_alive("its init PID")
        return int(self._lxc.init_pid)

    def interfaces(self) -> tuple[str, ...]:
        """Interfaces are the names of the running container's network interfaces, loopback included."""
        self._must_be_alive("its network interfaces")
        return tuple(self._lxc.get_interfaces() or ())

    def ip_addresses(self, interface: str | None = None) -> tuple[str, ...]:
        """IPAddresses are the addresses on `interface`, or on every interface when None (LXC leaves out loopback)."""
        self._must_be_alive("its IP addresses")
        if interface is None:
            return tuple(self._lxc.get_ips())
        known = self.interfaces()
        if interface not in known:
            raise ContainerError(f"container {self.name!r} has no network interface {interface!r} "
                                 f"(it has: {', '.join(known) or 'none'})")
        return tuple(self._lxc.get_ips(interface=interface))

    @property
    def memory_usage(self) -> int:
        """MemoryUsage is the memory the container's processes use now, in bytes."""
        return self._stats("memory_bytes").memory_bytes

    @property
    def memory_peak(self) -> int:
        """MemoryPeak is the most memory the container has used, in bytes (max_usage_in_bytes on v1)."""
        return self._stats("memory_peak_bytes").memory_peak_bytes

    @property
    def cpu_time(self) -> float:
        """CPUTime is the CPU time the container's processes have used, in seconds."""
        return self._stats("cpu_usage_ns").cpu_usage_ns / 1e9

    @property
    def pids_current(self) -> int:
        """PidsCurrent is how many processes and threads the container holds now."""
        return self._stats("pids").pids

    @property
    def oom_kills(self) -> int:
        """OOMKills counts the processes the kernel killed for exceeding the memory limit."""
        return self._stats("oom_kills").oom_kills

    def cpu_stats(self) -> CPUStats:
        """CPUStats is the CPU time the container spent in user mode and in the kernel, in seconds.

        v1 counts it in clock ticks (cpuacct.stat: user, system), v2 in microseconds
        (cpu.stat: user_usec, system_usec).
        """
        if cgroup_version() == 1:
            ticks, per_second = keyed(self._cgroup_file("cpuacct.stat")), os.sysconf("SC_CLK_TCK")
            return CPUStats(ticks.get("user", 0) / per_second, ticks.get("system", 0) / per_second)
        usec = keyed(self._cgroup_file("cpu.stat"))
        return CPUStats(usec.get("user_usec", 0) / 1e6, usec.get("system_usec", 0) / 1e6)

    def cgroup_item(self, key: str) -> str:
        """CgroupItem returns the text of cgroup file `key` (like pids.current) of the running container."""
        validation.plain_text(key, "cgroup file")
        value = self._read_cgroup(key)
        if value is None:
            raise CgroupError(f"container {self.name!r} has no cgroup file {key!r} on this cgroup v{cgroup_version()} "
                              "host: check its name and version (memory.max is v2, memory.limit_in_bytes v1)")
        return value

    def stats(self) -> Stats:
        """Stats reads every counter and limit of the container's cgroups, as lxclab.cgroups.Stats."""
        return self._stats()

    def _stats(self, *fields: str) -> Stats:
        """Stats from the files behind `fields` (all by default), read through the container's monitor."""
        version = cgroup_version()
        return parse_stats(version, {file: self._cgroup_file(file) for _, file in stat_files(version, fields or None)})

    def _must_be_alive(self, what: str) -> None:
        """Raise NotRunning unless the container runs (frozen counts: its cgroups exist)."""
        self._must_be_defined()
        if not self.running:
            raise NotRunning(f"cannot read {what} of container {self.name!r}: it is {self.state.value}; start it first")

    def _cgroup_file(self, key: str) -> str:
        """The content of cgroup file `key`, read through the container's monitor ("" if this kernel lacks it)."""
        return self._read_cgroup(key) or ""

    def _read_cgroup(self, key: str) -> str | None:
        """The content of cgroup file `key`, read through the container's monitor (None if there is no such file)."""
        self._must_be_alive(key)
        for _attempt in range(10):
            try:
                value = self._lxc.get_cgroup_item(key)
            except KeyError:
                return None
            except ValueError:
                # python-lxc reads the file twice (length, then text) and gives up if the
                # length changed in between, as a counter like cpuacct.usage may: read again.
                continue
            return "" if value is False else value
        raise CgroupError(f"cannot read {key} of container {self.name!r}: its size kept changing")
