"""Cgroup v1: one hierarchy per controller (memory, cpu, cpuacct, pids), so one directory each."""

from __future__ import annotations

from .group import Cgroup, _write
from .vocabulary import device_writes


class CgroupV1(Cgroup):
    """A group in the v1 hierarchies: one directory per controller mount; files from vocabulary.STAT_FILES[1]."""

    version = 1

    def allow_devices(self, allowed: tuple[str, ...]) -> None:
        """Write devices.deny "a" then each rule to devices.allow, where the group has a devices directory."""
        writes = device_writes(allowed)  # refuses a malformed rule even where the host has no devices hierarchy
        if "devices" in self.dirs:
            for controller, file, value in writes:
                _write(self.dirs[controller] / file, value)
