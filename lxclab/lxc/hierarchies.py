"""Where LXC puts a container's cgroups, and the ones it leaves behind there.

With `lxc.cgroup.relative = 1` LXC creates its cgroups under the cgroup of the process
that starts the container: `lxc.payload.<name>` for the container, `lxc.monitor.<name>`
for its monitor, and one shared `lxc.pivot` that each monitor moves into as it exits.

- v1: the starter is lxclab's own child, so they land under the caller's cgroup in every
  hierarchy, as lxclab's own groups do.
- v2: the starter first joins `lxc.start.<name>.<key>`, a fresh leaf of the delegated subtree
  (lxclab.cgroups.delegation), alone; the key, from the container's lxcpath, keeps two
  containers of one name (two checkouts running lesson 08) apart. Once LXC has moved it
  into the monitor cgroup the leaf holds no process, so LXC may enable the controllers the
  payload's limits need there; from a shell's session scope it could not ("Failed to set
  memory.max").

LXC 5.0 removes the monitor and payload cgroups itself but leaves `lxc.pivot` (one inside
it per reboot of a container, and sometimes a monitor cgroup) behind. Stopping a container
takes hold of its monitor first (`Monitor.of`: a pidfd on init's parent and the exact
cgroups of init and monitor, from /proc) and, once the monitor has gone, removes just
those and the pivots beside them (`Monitor.release`); `remove_leftovers` sweeps every
hierarchy for a container's groups by name when there is no running container to ask.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import itertools
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from .. import cgroups, procfs
from ..errors import CgroupError

PIVOT = "lxc.pivot"
MONITOR_PREFIX = "lxc.monitor."
PAYLOAD_PREFIX = "lxc.payload."
START_PREFIX = "lxc.start."


@functools.cache
def cgroup_version() -> int:
    """1 when the memory controller sits on a v1 hierarchy (as on this Debian host), else 2."""
    return cgroups.detect().version


def swap_accounting() -> bool:
    """Whether the groups LXC makes account swap (v1 memory.memsw.*, v2 memory.swap.max files)."""
    hierarchy = cgroups.detect()
    memory = hierarchy.parent_dirs()["memory"]
    return (memory / cgroups.vocabulary.SWAP_LIMIT_FILE[hierarchy.version]).exists()


def start_leaf(name: str, lxcpath: Path | str) -> str:
    """The name of the v2 start leaf of container `name` in `lxcpath`: lxc.start.<name>.<8 hex digits of lxcpath>."""
    key = hashlib.sha256(os.path.abspath(lxcpath).encode()).hexdigest()[:8]
    return f"{START_PREFIX}{name}.{key}"


def _start_leaf_pattern(name: str | None) -> re.Pattern[str]:
    """Matches the start leaf of container `name` in any lxcpath (of any container when None)."""
    return re.compile(re.escape(START_PREFIX) + (re.escape(name) if name else ".+") + r"\.[0-9a-f]{8}")


def start_cgroup(name: str, lxcpath: Path | str, controllers: bool = True) -> Path | None:
    """The v2 cgroup a starter of container `name` in `lxcpath` joins, made afresh; None on v1 (the starter stays put).

    LXC hands every controller of the starter's cgroup on to its own groups, which needs that
    cgroup empty by then: true of a foreground starter, which becomes the monitor. A caller
    that stays inside while liblxc daemonizes (python-lxc's plain start) must ask for
    `controllers=False`: a cgroup one level down with none, so no limits apply.
    """
    if cgroup_version() == 1:
        return None
    leaf = cgroups.detect().parent_dirs()["memory"] / start_leaf(name, lxcpath)
    if leaf.exists():  # a leaf whose controllers LXC enabled before cannot take a process again
        _rmdir_tree(leaf, time.monotonic() + 2.0)
    try:
        leaf.mkdir()
        if not controllers:
            leaf = leaf / "starter"
            leaf.mkdir()
    except FileExistsError:
        raise CgroupError(f"cannot create cgroup {leaf} for LXC container {name!r}: it is still busy; is the "
                          f"container already running from {lxcpath}? ({_procs_in(leaf)})") from None
    except OSError as exc:
        raise CgroupError(f"cannot create cgroup {leaf} for LXC container {name!r}: {exc.strerror}") from None
    return leaf


def _procs_in(cgroup: Path) -> str:
    """A note of the processes in `cgroup` and below, for an error message."""
    pids = [pid for procs in cgroup.rglob("cgroup.procs") for pid in procs.read_text().split()]
    return f"processes in it: {', '.join(pids)}" if pids else "no process in it"


def join(cgroup: Path | None) -> None:
    """Move the calling process (a starter, never the caller of the library) into `cgroup`, if any."""
    if cgroup is not None:
        (cgroup / "cgroup.procs").write_text(f"{os.getpid()}\n")


def lxc_bases(name: str | None = None, lxcpath: Path | str | None = None) -> list[Path]:
    """The cgroups LXC creates container `name`'s groups under (any container's when None; in any lxcpath when None)."""
    hierarchy = cgroups.detect()
    if hierarchy.version == 1:
        return [base for base in hierarchy.everywhere if base.is_dir()]
    parent = hierarchy.parent_dirs()["memory"]
    if name and lxcpath:
        return [parent / start_leaf(name, lxcpath)]
    pattern = _start_leaf_pattern(name)
    leaves = parent.glob(START_PREFIX + "*")
    return sorted(entry for entry in leaves if entry.is_dir() and pattern.fullmatch(entry.name))


def lxc_cgroups(name: str | None = None, lxcpath: Path | str | None = None) -> list[Path]:
    """LXC's cgroups for container `name` (in `lxcpath`; in any when None), or for any container and the pivot;
    on v2 the start leaf too.

    LXC names them lxc.monitor.<name> and lxc.payload.<name>, or <name>-1, -2 ... when a
    stale one is in the way.
    """
    if name:
        pattern = re.compile(rf"lxc\.(monitor|payload)\.{re.escape(name)}(-\d+)?")
    else:
        pattern = re.compile(r"lxc\.(monitor|payload)\..+|lxc\.pivot")
    found = []
    for base in lxc_bases(name, lxcpath):
        for place in _pivot_chain(base):
            found += [entry for entry in _entries(place) if entry.is_dir() and pattern.fullmatch(entry.name)]
        if base.is_dir() and base.name.startswith(START_PREFIX):
            found.append(base)
    return sorted(found)


def _entries(directory: Path) -> list[Path]:
    """What `directory` holds; nothing if it is gone (another LXC start may remove an idle pivot at any moment)."""
    try:
        return list(directory.iterdir())
    except FileNotFoundError:
        return []


def _pivot_chain(base: Path) -> list[Path]:
    """`base`, the lxc.pivot in it, the one in that...: a monitor that rebooted its container made its new
    monitor and payload cgroups from the pivot it had moved into, one level deeper each time."""
    chain = [base] if base.is_dir() else []
    while chain and (chain[-1] / PIVOT).is_dir():
        chain.append(chain[-1] / PIVOT)
    return chain


def recorded_cgroups(name: str, lxcpath: Path | str) -> list[str]:
    """The cgroups to record before starting container `name` in `lxcpath`, children before the cgroup holding them."""
    names = (MONITOR_PREFIX + name, PAYLOAD_PREFIX + name)
    if cgroup_version() == 1:
        return [str(base / child) for base in lxc_bases(name) for child in names]
    leaf = lxc_bases(name, lxcpath)[0]
    return [str(leaf / child) for child in names + (PIVOT,)] + [str(leaf)]


def _rmdir_tree(cgroup: Path, deadline: float) -> None:
    """Remove a cgroup and its children, retrying while processes are still leaving it."""
    if _rmdir_until(cgroup, deadline=0):  # gone already (LXC removes its own), or empty: nothing to walk
        return
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


def remove_leftovers(name: str, lxcpath: Path | str, timeout: float = 2.0) -> list[Path]:
    """Remove container `name`'s (in `lxcpath`) monitor and payload cgroups and an idle lxc.pivot, everywhere, by name.

    Returns the cgroups still busy at the deadline. On v1 the pivot is shared by every
    container started from this cgroup: while another monitor passes through it, it stays.
    On v2 the container's whole start leaf goes.
    """
    deadline = time.monotonic() + timeout
    exact = {MONITOR_PREFIX + name, PAYLOAD_PREFIX + name}
    for cgroup in lxc_cgroups(name, lxcpath):
        if cgroup.name in exact or cgroup.name.startswith(START_PREFIX):
            _rmdir_tree(cgroup, deadline)
        else:  # '<name>-1' may belong to another container called that: only ever remove it empty
            _rmdir_until(cgroup, deadline=0)
    for base in lxc_bases(name, lxcpath):
        _rmdir_tree(base / PIVOT, deadline=0)  # idle only; a monitor that rebooted its container nests one more
    return [cgroup for cgroup in lxc_cgroups(name, lxcpath) if cgroup.exists()]


@dataclass
class Monitor:
    """A running container's LXC monitor, held by a pidfd, and the cgroups of its run: what a stop leaves to clear.

    `groups` are the payload's and the monitor's cgroups in each hierarchy, read from /proc
    while init and the monitor run: with a `-1` suffix or under lxc.pivot after a reboot,
    wherever LXC put them.
    """

    name: str
    pid: int
    pidfd: int
    groups: tuple[Path, ...]

    @classmethod
    def of(cls, name: str, init_pid: int) -> Monitor | None:
        """Take hold of the monitor of container `name` through its init (LXC's monitor is init's parent).

        None when init has already gone or is in no payload group of LXC's: remove_leftovers sweeps instead.
        """
        parent = procfs.open_parent(init_pid) if init_pid > 0 else None
        if parent is None:
            return None
        pid, pidfd = parent
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
            payload = [_lxc_group(group, PAYLOAD_PREFIX, name) for group in _cgroup_dirs(mountinfo, init_pid)]
            monitor = [_lxc_group(group, MONITOR_PREFIX, name) for group in _cgroup_dirs(mountinfo, pid)]
        except (OSError, CgroupError):
            payload = []
        if not payload or None in payload:
            os.close(pidfd)
            return None
        return cls(name, pid, pidfd, tuple(payload) + tuple(group for group in monitor if group is not None))

    def alive(self) -> bool:
        """Whether the monitor still runs (a rebooting container keeps it)."""
        return not procfs.pidfd_exited(self.pidfd, 0)

    def release(self, timeout: float = 2.0) -> list[Path]:
        """Wait up to `timeout` seconds for the monitor to exit, then remove this run's cgroups; the ones still busy.

        Removed: the payload and monitor groups (LXC removes them itself, mostly), an idle
        group of the container's plain name beside them (a stale one LXC stepped around with
        `-1`), the idle lxc.pivot there and each idle pivot holding that, and on v2 the start
        leaf. A pivot is shared by every container started from its cgroup: while another
        monitor passes through it, it stays. The pidfd is closed.
        """
        deadline = time.monotonic() + timeout
        try:
            procfs.pidfd_exited(self.pidfd, timeout)
        finally:
            self.close()
        for group in self.groups:
            _rmdir_tree(group, deadline)
        places = sorted({group.parent for group in self.groups})
        for place in places:
            for prefix in (PAYLOAD_PREFIX, MONITOR_PREFIX):
                _rmdir_until(place / (prefix + self.name), deadline=0)
            _remove_idle_pivots(place)
        leaves = sorted({leaf for place in places if (leaf := _start_leaf_above(place, self.name))})
        for leaf in leaves:
            _rmdir_tree(leaf, deadline)
        return [group for group in (*self.groups, *leaves) if group.exists()]

    def close(self) -> None:
        """Let go of the monitor's pidfd (once)."""
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1


def _cgroup_dirs(mountinfo: str, pid: int) -> tuple[Path, ...]:
    """Process `pid`'s cgroup directory in every mounted hierarchy, from its /proc/PID/cgroup."""
    return cgroups.detect(mountinfo, Path(f"/proc/{pid}/cgroup").read_text(), systemd=False).everywhere


def _lxc_group(path: Path, prefix: str, name: str) -> Path | None:
    """`path` or the nearest cgroup above it named `prefix` + `name` (+ LXC's `-N`), or None."""
    return _nearest(path, re.compile(re.escape(prefix + name) + r"(-\d+)?"))


def _start_leaf_above(path: Path, name: str) -> Path | None:
    """`path` or the nearest cgroup above it that is a start leaf of container `name`, or None."""
    return _nearest(path, _start_leaf_pattern(name))


def _nearest(path: Path, pattern: re.Pattern[str]) -> Path | None:
    """`path` or the nearest directory above it whose name `pattern` matches in full, or None."""
    return next((place for place in itertools.chain([path], path.parents) if pattern.fullmatch(place.name)), None)


def _remove_idle_pivots(place: Path) -> None:
    """Remove the lxc.pivot in `place` and each pivot `place` itself sits in, deepest first, if idle."""
    pivots = [place / PIVOT]
    while pivots[-1].parent.name == PIVOT:  # a rebooted container's groups sit in the pivot its monitor moved into
        pivots.append(pivots[-1].parent)
    for pivot in pivots:
        _rmdir_until(pivot, deadline=0)
