"""Cgroup v2: one unified tree, where a parent enables the controllers its children may use."""

from __future__ import annotations

from . import devices_bpf
from .group import Cgroup, _write


class CgroupV2(Cgroup):
    """A group in the unified v2 tree: one directory, controllers enabled by the parent."""

    version = 2

    def allow_devices(self, allowed: tuple[str, ...]) -> None:
        """Attach a device program allowing only the `allowed` rules to the group (`devices_bpf`)."""
        devices_bpf.attach(self.dirs["memory"], allowed)

    def kill(self, timeout: float = 5.0) -> None:
        """Write 1 to cgroup.kill (Linux 5.14+) when the kernel has it, then make sure the group is empty."""
        kill_file = self.dirs["memory"] / "cgroup.kill"
        if kill_file.exists():
            _write(kill_file, 1)
        super().kill(timeout)
