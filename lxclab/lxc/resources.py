"""Limits and resource usage of a Container: memory, CPU and pids, through liblxc's cgroup calls."""

from __future__ import annotations

from ..errors import CgroupError, NotRunning
from .hierarchies import cgroup_version, swap_accounting
from ..limits import Limits
from .cgroup_keys import STAT_FILES, cgroup_items, config_prefix, cpu_seconds, oom_kill_count


class ResourcesMixin:
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
        swap = version == 1 and swap_accounting()
        current = int(self._cgroup_file("memory_limit")) if live and swap and limits.memory_bytes else None
        for key, value in cgroup_items(limits, version, swap, current):
            if live and not self._lxc.set_cgroup_item(key, value):
                raise CgroupError(f"the kernel refused {key} = {value} for running container {self.name!r} "
                                  "(a memory limit below what it uses now cannot be set): choose another value")
            self._set_config(config_prefix(version) + key, value)

    @property
    def init_pid(self) -> int:
        """InitPid is the host PID of the container's init process."""
        self._must_be_alive("its init PID")
        return int(self._lxc.init_pid)

    @property
    def ip_addresses(self) -> tuple[str, ...]:
        """IPAddresses are the addresses on the container's interfaces other than loopback."""
        self._must_be_alive("its IP addresses")
        return tuple(self._lxc.get_ips())

    @property
    def memory_usage(self) -> int:
        """MemoryUsage is the memory the container's processes use now, in bytes."""
        return int(self._cgroup_file("memory_usage"))

    @property
    def memory_peak(self) -> int:
        """MemoryPeak is the most memory the container has used, in bytes (max_usage_in_bytes on v1)."""
        return int(self._cgroup_file("memory_peak"))

    @property
    def cpu_time(self) -> float:
        """CPUTime is the CPU time the container's processes have used, in seconds."""
        return cpu_seconds(cgroup_version(), self._cgroup_file("cpu_time"))

    @property
    def pids_current(self) -> int:
        """PidsCurrent is how many processes and threads the container holds now."""
        return int(self._cgroup_file("pids_current"))

    @property
    def oom_kills(self) -> int:
        """OOMKills counts the processes the kernel killed for exceeding the memory limit."""
        return oom_kill_count(self._cgroup_file("oom_kills"))

    def _must_be_alive(self, what: str) -> None:
        """Raise NotRunning unless the container runs (frozen counts: its cgroups exist)."""
        self._must_be_defined()
        if not self.running:
            raise NotRunning(f"cannot read {what} of container {self.name!r}: it is {self.state.value}; start it first")

    def _cgroup_file(self, stat: str) -> str:
        """The content of the cgroup file behind accessor `stat`, read through the container's monitor."""
        key = STAT_FILES[cgroup_version()][stat]
        self._must_be_alive(key)
        for _attempt in range(10):
            try:
                value = self._lxc.get_cgroup_item(key)
            except KeyError:
                break
            except ValueError:
                # python-lxc reads the file twice (length, then text) and gives up if the
                # length changed in between, as a counter like cpuacct.usage may: read again.
                continue
            if value is not False:
                return value
            break
        raise CgroupError(f"cannot read {key} of container {self.name!r}: this kernel may not have it")
