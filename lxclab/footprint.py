"""The record of everything a container run created on the host, and `release`, which removes it.

A run writes its Footprint as JSON next to the container as it creates each thing (a
process, a mount, a cgroup, a network namespace and veth, a directory). `rm` and `gc`
read it back and call `release`, which works even after the lxclab process that made
them was SIGKILLed, and which is harmless when some of them are already gone.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field

from . import _linux, cgroups, network, procfs
from .errors import KernelError, LxclabError


@dataclass
class Footprint:
    """What one run created: processes as [PID, start time], mounts, cgroups, netns, endpoints, dirs, LXC containers."""

    pids: list[list[int]] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)
    endpoints: list[dict[str, str]] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    lxc: list[dict[str, str]] = field(default_factory=list)  # {"name": ..., "lxcpath": ...}

    def to_json(self) -> str:
        """The record as a JSON object."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Footprint":
        """A record read back from `to_json` output."""
        return cls(**json.loads(text))


def release(resources: Footprint) -> None:
    """Kill, stop, unmount, and remove everything in the record, in that order; needs root.

    Every step is tried even if an earlier one fails; the failures are raised together
    at the end. A PID is only killed if it still names the process recorded (same start
    time), and a directory is only removed when nothing is mounted under it any more. An
    LXC container is stopped before its root is unmounted and destroyed after.
    """
    failures = []
    steps = [(_kill_recorded, resources.pids), (_stop_lxc, resources.lxc), (_unmount, resources.mounts),
             (_destroy_lxc, resources.lxc), (cgroups.remove_dirs, resources.cgroups),
             (_remove_endpoints, resources.endpoints), (_delete_netns, resources.netns),
             (_remove_dirs, resources.dirs)]
    for step, items in steps:
        try:
            step(items)
        except LxclabError as exc:
            failures.append(str(exc))
    if failures:
        raise LxclabError("could not release everything: " + "; ".join(failures))


def _kill_recorded(identities: list[list[int]], timeout: float = 5.0) -> None:
    """SIGKILL each recorded process that is still the same process, and wait until it is gone."""
    survivors = procfs.kill_and_wait(lambda: [pid for pid, _ in filter(procfs.is_alive, identities)], timeout)
    if survivors:
        raise KernelError(f"processes {survivors} survived SIGKILL for {timeout} s")


def _unmount(mounts: list[str]) -> None:
    """Detach each recorded mount that is still mounted, the last made first."""
    for target in reversed(mounts):
        while target in procfs.mount_points():
            _linux.umount(target, _linux.MNT_DETACH)


def _lxc_containers(records: list[dict[str, str]]) -> list:
    """The recorded LXC containers, opened (python-lxc is imported only when there are some)."""
    if not records:
        return []
    from .lxc import Container

    return [Container(record["name"], record["lxcpath"]) for record in records]


def _stop_lxc(records: list[dict[str, str]]) -> None:
    """Stop each recorded LXC container that still runs (its leftover cgroups go with it)."""
    for container in _lxc_containers(records):
        if container.running:
            container.stop()


def _destroy_lxc(records: list[dict[str, str]]) -> None:
    """Destroy each recorded LXC container that is still defined, and remove its leftover cgroups."""
    if not records:
        return
    from .lxc.hierarchies import remove_leftovers

    for container in _lxc_containers(records):
        if container.defined:
            container.destroy()
        remove_leftovers(container.name, container.lxcpath)


def _remove_endpoints(endpoints: list[dict[str, str]]) -> None:
    """Remove each recorded veth (if still that container's) and its container's namespace."""
    for endpoint in endpoints:
        network.remove_endpoint(endpoint["bridge_netns"], endpoint["veth"], endpoint["netns"], endpoint["container"])


def _delete_netns(names: list[str]) -> None:
    """Delete each recorded named network namespace that still exists."""
    for name in names:
        network.delete_netns(name)


def _remove_dirs(dirs: list[str]) -> None:
    """Delete each recorded directory tree, refusing (and reporting) any that still has a mount inside."""
    points, refused = procfs.mount_points(), []
    for directory in map(os.path.abspath, dirs):
        busy = [p for p in points if p == directory or p.startswith(directory + "/")]
        if busy:
            refused.append(f"not removing {directory}: {busy} still mounted there; unmount first")
        elif os.path.isdir(directory):
            shutil.rmtree(directory)
    if refused:
        raise LxclabError("; ".join(refused))
