"""Control groups: memory, CPU and pids limits and their statistics, over cgroup v1 or v2.

The version is detected at run time from /proc/self/mountinfo: v1 has one hierarchy per
controller (memory, cpu, cpuacct, pids...), v2 one unified tree. The caller never moves
itself: only the container's processes are put into the groups lxclab creates.

Where groups go:
- v1 (this kind of host): children of the cgroup the caller is already in, in each
  controller's hierarchy.
- v2: never in the caller's own cgroup (v2 hands controllers to children only from a
  cgroup without processes, and a shell or a Jupyter kernel lives in its own), and never
  in systemd's groups. With systemd, lxclab asks for a transient service with
  `Delegate=yes` (`lxclab-cgroups.service`, started with systemd-run), moves its keeper
  process into a leaf of it, enables cpu, memory and pids there, and creates the
  containers' groups beside the keeper, as runc's systemd driver and LXC do with
  delegated units. Without systemd it takes `lxclab/` under the root cgroup. See
  `delegation`.

Devices: a group can also deny every device but an allow-list of rules like "c 1:3 rwm"
(the containers' is lxclab.security.DEVICES_ALLOWED). v1 writes them to the group's
`devices` hierarchy, where the host mounts one; v2 has no devices files: its device
controller is an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) attached to the group, which
`devices_bpf` builds from the same rules, as runc and LXC do.

Modules: `vocabulary` (pure: Limits to (controller, file, value) writes, files to Stats,
for both versions, and the device rules; the LXC runtime derives its lxc.cgroup.* /
lxc.cgroup2.* keys from the same writes), `hierarchy` (detect the version and the caller's
cgroups), `delegation` (the v2 subtree), `devices_bpf` (v2's device program), `group` (the
Cgroup base, killing and removing groups), `v1`, `v2`.
"""

from __future__ import annotations

from ..limits import Limits
from .delegation import delegated_parent, systemd_running
from .group import Cgroup, kill_all, processes_in, remove_dirs
from .hierarchy import CONTROLLERS, DEVICES, Hierarchy, create, detect
from .v1 import CgroupV1
from .v2 import CgroupV2
from .vocabulary import (CPU_PERIOD_US, UNLIMITED_V1, DeviceRule, Stats, Write, device_writes, limit_writes,
                         parse_device_rule, parse_stats, stat_files)

__all__ = [
    "CONTROLLERS", "CPU_PERIOD_US", "DEVICES", "UNLIMITED_V1", "Cgroup", "CgroupV1", "CgroupV2", "DeviceRule",
    "Hierarchy", "Limits", "Stats", "Write", "create", "delegated_parent", "detect", "device_writes", "kill_all",
    "limit_writes", "parse_device_rule", "parse_stats", "processes_in", "remove_dirs", "stat_files",
    "systemd_running",
]
