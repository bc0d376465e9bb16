"""The caller's place in every cgroup hierarchy, and the LXC cgroups left behind in it.

With `lxc.cgroup.relative = 1` LXC creates its cgroups under the cgroup of the process
that starts the container: `lxc.payload.<name>` for the container, `lxc.monitor.<name>`
for its monitor, and one shared `lxc.pivot` that each monitor moves into as it exits.
LXC 5.0 removes the first two itself but leaves `lxc.pivot` (and sometimes a monitor
cgroup) behind; `remove_leftovers` tidies them once the monitor has gone.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import time
from pathlib import Path

from .. import cgroups
from ..errors import CgroupError

PIVOT = "lxc.pivot"
MONITOR_PREFIX = "lxc.monitor."
PAYLOAD_PREFIX = "lxc.payload."


def _mounted_hierarchies() -> list[tuple[Path, str, set[str]]]:
    """Each cgroup mount as (mount point, root inside the hierarchy, controllers or {''} for v2)."""
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            left, right = line.split(" - ", 1)
            fields, after = left.split(), right.split()  # after: fstype, source, super options
            fstype, super_options = after[0], after[2]
            if fstype == "cgroup":
                controllers = {o for o in super_options.split(",") if o not in ("rw", "ro")}
                found.append((Path(fields[4]), fields[3], controllers))
            elif fstype == "cgroup2":
                found.append((Path(fields[4]), fields[3], {""}))
    return found


def _own_cgroups() -> dict[frozenset[str], str]:
    """The caller's cgroup path per hierarchy, keyed by that hierarchy's controllers."""
    own = {}
    with open("/proc/self/cgroup") as cgroup:
        for line in cgroup:
            _id, controllers, path = line.rstrip("\n").split(":", 2)
            own[frozenset(controllers.split(",") if controllers else [""])] = path
    return own


def own_cgroup_dirs() -> dict[str, Path]:
    """The caller's cgroup directory in every mounted hierarchy, keyed by its controllers ('' for v2)."""
    own = _own_cgroups()
    dirs = {}
    for mount_point, root, controllers in _mounted_hierarchies():
        path = own.get(frozenset(controllers))
        if path is None or not (path + "/").startswith(root.rstrip("/") + "/"):
            continue
        dirs[",".join(sorted(controllers))] = mount_point / path[len(root.rstrip("/")):].lstrip("/")
    return dirs


@functools.cache
def cgroup_version() -> int:
    """1 when the memory controller sits on a v1 hierarchy (as on this Debian host), else 2."""
    return cgroups.detect().version


def swap_accounting() -> bool:
    """Whether the caller's v1 memory cgroup has memory.memsw.* files (swap accounting is on)."""
    hierarchy = cgroups.detect()
    return hierarchy.version == 1 and (hierarchy.own_dirs["memory"] / "memory.memsw.limit_in_bytes").exists()


def lxc_cgroups(name: str | None = None) -> list[Path]:
    """LXC's cgroups under the caller's cgroups: those of container `name`, or of any container and the pivot.

    LXC names them lxc.monitor.<name> and lxc.payload.<name>, or <name>-1, -2 ... when a
    stale one is in the way.
    """
    if name:
        pattern = re.compile(rf"lxc\.(monitor|payload)\.{re.escape(name)}(-\d+)?")
    else:
        pattern = re.compile(r"lxc\.(monitor|payload)\..+|lxc\.pivot")
    found = []
    for base in own_cgroup_dirs().values():
        if base.is_dir():
            found += [entry for entry in base.iterdir() if entry.is_dir() and pattern.fullmatch(entry.name)]
    return sorted(found)


def _rmdir_tree(cgroup: Path, deadline: float) -> None:
    """Remove a cgroup and its children, retrying while processes are still leaving it."""
    for parent, children, _files in os.walk(cgroup, topdown=False):
        for child in children:
            _rmdir_until(Path(parent) / child, deadline)
    _rmdir_until(cgroup, deadline)


def _rmdir_until(cgroup: Path, deadline: float) -> bool:
    """Remove an empty cgroup directory, retrying on EBUSY until `deadline`; False if still busy."""
    while True:
        try:
            os.rmdir(cgroup)
            return True
        except FileNotFoundError:
            return True
        except OSError as error:
            if error.errno != errno.EBUSY:
                raise CgroupError(f"cannot remove LXC's cgroup {cgroup}: {error.strerror}") from error
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)


def monitor_pids(name: str) -> set[int]:
    """The PIDs in container `name`'s monitor cgroups: its `[lxc monitor]` process while it runs."""
    pids = set()
    for cgroup in lxc_cgroups(name):
        if cgroup.name == MONITOR_PREFIX + name:
            try:
                pids.update(int(pid) for pid in (cgroup / "cgroup.procs").read_text().split())
            except FileNotFoundError:
                continue
    return pids


def _wait_exited(pids: set[int], deadline: float) -> None:
    """Wait until none of `pids` is alive (gone, or a zombie waiting for its parent)."""
    while pids and time.monotonic() < deadline:
        pids = {pid for pid in pids if _alive(pid)}
        if pids:
            time.sleep(0.005)


def _alive(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def remove_leftovers(name: str, monitors: set[int] = frozenset(), timeout: float = 2.0) -> list[Path]:
    """Remove container `name`'s monitor and payload cgroups and an idle lxc.pivot once `monitors` exited.

    Returns the cgroups still busy at the deadline. The pivot is shared by every
    container started from this cgroup: while another monitor passes through it, it stays.
    """
    deadline = time.monotonic() + timeout
    _wait_exited(set(monitors), deadline)
    exact = {MONITOR_PREFIX + name, PAYLOAD_PREFIX + name}
    for cgroup in lxc_cgroups(name):
        if cgroup.name in exact:
            _rmdir_tree(cgroup, deadline)
        else:  # '<name>-1' may belong to another container called that: only ever remove it empty
            _rmdir_until(cgroup, deadline=0)
    for base in own_cgroup_dirs().values():
        _rmdir_until(base / PIVOT, deadline=0)
    return [cgroup for cgroup in lxc_cgroups(name) if cgroup.exists()]
