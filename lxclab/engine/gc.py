"""Stopping and removing containers: `stop` and `rm` for one, `gc` for whatever crashed or SIGKILLed runs left.

All read the container's record (lxclab.engine.containers), which names every host
resource the run created, and hand it to lxclab.footprint.release: kill the recorded
processes that are still the same processes, stop LXC containers, unmount, destroy LXC
containers, remove the cgroups, the veths and network namespaces, then the directories.
A run whose lxclab process ended without recording an exit is "dead"; `gc` removes it
whole, along with half-created records, LXC containers of this home that no record
names, and, when no container of this home needs it any more, the home's bridge.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from .. import network, paths, procfs
from ..errors import ContainerError, ContainerNotFound, NotRunning
from ..footprint import Footprint, release
from .containers import CREATED, DEAD, EXITED, NET_BRIDGE, RUNNING, ContainerRecord, bridge_name, find, scan

LXC_PREFIX = "lxclab-"  # the LXC containers of the LXC runtime are named lxclab-<short id>

STALE_AFTER = 60.0  # seconds before a half-written record counts as abandoned rather than in progress
OWNER_EXIT_TIMEOUT = 10.0


def rm(name_or_id: str, force: bool = False) -> str:
    """Remove a container and everything it holds (`docker rm`); return its ID.

    A running container is refused unless `force`, which kills it first and lets the
    lxclab process running it record its end. ContainerNotFound if there is no such container.
    """
    container = find(name_or_id)
    if container.status in (RUNNING, CREATED):
        if not force:
            raise ContainerError(f"container {container.name} is {container.status}: stop it first, "
                                 f"or force it with lxclab rm -f {name_or_id}")
        try:
            _kill_and_wait(container)
        except ContainerNotFound:
            pass  # already being removed by its own lxclab process (--rm)
        if container.config.remove:
            _wait_until_removed(container)  # its lxclab process removes it: do not race it
            return container.id
        container.refresh()
    release(container.state.footprint)
    return container.id


def stop(name_or_id: str) -> str:
    """Stop a running container: SIGKILL its PID 1 and wait until its lxclab process has recorded the exit; its ID.

    (Docker first sends SIGTERM and waits; PID 1 of a namespace ignores signals it has no
    handler for, so lxclab goes straight to SIGKILL.) NotRunning unless it runs.
    """
    container = find(name_or_id)
    if container.status != RUNNING:
        raise NotRunning(f"container {container.name} is {container.status}, not running: nothing to stop")
    try:
        _kill_and_wait(container)
    except ContainerNotFound:
        pass  # a --rm container, removed by its own lxclab process as it stopped
    return container.id


def _wait_until_removed(container: ContainerRecord) -> None:
    """Wait while the lxclab process of a --rm container deletes its directory; finish the job if it died."""
    owner = container.state.owner
    procfs.wait_gone(lambda: [owner[0]] if container.directory.exists() and procfs.is_alive(owner) else [],
                     OWNER_EXIT_TIMEOUT)
    release(Footprint(dirs=container.state.footprint.dirs))


def _kill_and_wait(container: ContainerRecord) -> None:
    """SIGKILL PID 1 of a running (or starting) container until the lxclab process running it has recorded its end."""
    left = procfs.wait_gone(lambda: _unrecorded_end(container), OWNER_EXIT_TIMEOUT)
    if left:
        raise ContainerError(f"container {container.name} still runs {OWNER_EXIT_TIMEOUT:.0f} s after SIGKILL; "
                             f"its lxclab process is PID {left[0]}")


def _unrecorded_end(container: ContainerRecord) -> list[int]:
    """SIGKILL PID 1 if it still lives; [the lxclab process running the container] until that has recorded the end."""
    if container.refresh().status not in (RUNNING, CREATED):
        return []
    if procfs.is_alive(container.state.pid):
        procfs.send([container.state.pid[0]])
    return [container.state.owner[0]]


def gc() -> list[str]:
    """Remove what crashed or killed runs left (processes, cgroups, veths, netns, directories, records); say what.

    Exited containers stay (`rm` removes them) but lose any cgroup or namespace a crash
    between their exit and its recording left. Needs the rights the runs had (root).
    """
    removed = []
    found, broken = scan()
    for container in found:
        if container.status == DEAD:
            release(container.state.footprint)
            removed.append(f"container {container.short_id} ({container.name}): its lxclab process died; "
                           f"{_summary(container.state.footprint)}")
        elif container.status == EXITED:
            leftovers = container.state.footprint
            release(Footprint(cgroups=leftovers.cgroups, endpoints=leftovers.endpoints, netns=leftovers.netns))
    removed += [f"unreadable record {path}" for path in broken + _abandoned() if _remove_stale(path)]
    removed += [f"LXC container {name} (no record names it) and its root" for name in _remove_orphan_lxc(found)]
    if _remove_idle_bridge(found):
        removed.append(f"network namespace {network.PREFIX}net-{bridge_name()} (this home's bridge, unused)")
    return removed


def _summary(resources: Footprint) -> str:
    """What a record held, in a few words."""
    kinds = [(len(resources.pids), "processes"), (len(resources.cgroups), "cgroup dirs"),
             (len(resources.netns), "network namespaces"), (len(resources.endpoints), "veths"),
             (len(resources.dirs), "directories")]
    return ", ".join(f"{count} {what}" for count, what in kinds if count) or "nothing else"


def _remove_orphan_lxc(found: list[ContainerRecord]) -> list[str]:
    """Destroy the LXC containers in this home's lxcpath named like the LXC runtime's that no record names."""
    lxcpath = paths.home() / "lxc"
    if not lxcpath.is_dir():
        return []  # no LXC container was ever made here: python-lxc need not even be installed
    from ..lxc import container_names, rootfs_path

    known = {container.config.lxc_name for container in found}
    orphans = [name for name in container_names(lxcpath) if name.startswith(LXC_PREFIX) and name not in known]
    for name in orphans:
        release(Footprint(lxc=[{"name": name, "lxcpath": str(lxcpath)}], mounts=[str(rootfs_path(name, lxcpath))],
                          dirs=[str(lxcpath / name)]))
    return orphans


def _abandoned() -> list[Path]:
    """Container directories still being created (.tmp-*) that nobody has finished for a while."""
    root = paths.containers_dir()
    return sorted(root.glob(".tmp-*")) if root.is_dir() else []


def _remove_stale(path: Path) -> bool:
    """Remove a half-written or unreadable container directory once it is older than STALE_AFTER."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False
    if age < STALE_AFTER:
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True


def _remove_idle_bridge(found: list[ContainerRecord]) -> bool:
    """Delete this home's bridge if it exists and no container of this home uses it; True if deleted."""
    bridge = network.Bridge(bridge_name())
    if bridge.netns not in network.list_netns():
        return False
    users = [c for c in found if c.config.net == NET_BRIDGE and c.status in (RUNNING, CREATED)]
    if users or bridge.endpoints():
        return False
    bridge.remove()
    return True
