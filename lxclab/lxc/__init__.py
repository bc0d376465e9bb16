"""LXC containers through the python-lxc binding, with an API in the style of go-lxc.

    from lxclab.lxc import Container, Limits

    with Container.create("web", rootfs, cmd=["sleep", "600"], limits=Limits.parse(memory="32m")) as web:
        web.start()
        print(web.execute(["uname", "-n"]).stdout)   # 'web'

Modules: `container` (Container: lifecycle, commands, copies and config), `resources` (limits,
usage and network), `snapshots`, `execute` (attach_wait with captured output), `foreground` (run: init on
given stdio, its exit status read back), `hierarchies` (where LXC's cgroups go on v1 and v2, and
its leftovers there). Limits become lxc.cgroup.* / lxc.cgroup2.* keys from lxclab.cgroups' writes.
"""

from ..limits import Limits
from .container import Container, container_names, default_lxcpath, rootfs_path
from .execute import ExecResult
from .foreground import Init
from .usage import CPUStats
from .hierarchies import cgroup_version, lxc_cgroups
from .snapshots import Snapshot
from .state import State

__all__ = [
    "CPUStats", "Container", "ExecResult", "Init", "Limits", "Snapshot", "State", "cgroup_version", "container_names",
    "default_lxcpath", "lxc_cgroups", "rootfs_path",
]
