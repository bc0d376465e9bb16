"""The two runtimes behind one interface: what `run`, `exec` and `finish` ask of whichever starts a container.

- `NamespacesRuntime`: lxclab's own. The overlay root (mounted inside the container's
  mount namespace), a cgroup with the limits, a network namespace on the bridge, and
  namespaces.spawn for PID 1, which applies the security profile itself.
- `LxcRuntime`: liblxc's (lxclab.engine.lxcrun). The overlay mounted on the host, an LXC
  container defined with the same profile as LXC keys, started in the foreground.

Both hand back a started process with `wait(timeout)` and `kill()`, record every host
resource before making it, and run `exec` under the container's profile. `runtime_for`
picks one by the name a container's record holds, so no caller branches on that name.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol

from .. import cgroups, namespaces, network
from ..chroot import ExitStatus
from ..errors import ContainerError, NetworkError
from ..procfs import identity
from ..security import DEVICES_ALLOWED
from ..store import StoredImage
from .containers import LXC, NAMESPACES, NET_NONE, ContainerRecord, ContainerConfig, bridge_name
from .rootfs import root_filesystem

if TYPE_CHECKING:  # liblxc's side loads only when a container uses it
    from . import lxcrun

Stdio = tuple[int | None, int | None, int | None]


class Started(Protocol):
    """A container's running PID 1, as a runtime hands it back."""

    def wait(self, timeout: float | None = None) -> ExitStatus | None: ...

    def kill(self) -> None: ...


class Runtime(Protocol):
    """What the engine asks of a runtime: check a request, launch PID 1, clean up after it, exec into it."""

    name: str

    def check(self, net: str, rootless: bool, image: StoredImage, userns: bool) -> None:
        """Refuse what this runtime cannot do, before anything is recorded."""

    def launch(self, container: ContainerRecord, image: StoredImage, stdio: Stdio) -> Started:
        """Make the container's root, cgroup and network (each recorded first) and start its PID 1."""

    def after_exit(self, container: ContainerRecord) -> list[str]:
        """Tidy what PID 1's end leaves to this runtime; the mounts the engine must now release."""

    def exec(self, container: ContainerRecord, command: list[str], stdio: Stdio) -> ExitStatus:
        """Run `command` inside the running container, under its profile, and wait for it."""


class NamespacesRuntime:
    """lxclab's own runtime: namespaces.spawn on an overlay root, in a cgroup, with the security profile."""

    name = NAMESPACES

    def check(self, net: str, rootless: bool, image: StoredImage, userns: bool) -> None:
        """Everything create already checks is possible here."""

    def launch(self, container: ContainerRecord, image: StoredImage, stdio: Stdio) -> namespaces.Process:
        """Mount the root inside PID 1's mount namespace, make its cgroup and network, spawn it."""
        config = container.config
        mounts = root_filesystem(container, image)
        group = _cgroup(container)
        netns = _network(container)
        process = namespaces.spawn(
            container.rootfs, config.argv, namespaces=_namespace_kinds(config), hostname=config.hostname,
            env=config.env, cwd=config.cwd, user=config.user, cgroup=group, netns=netns, rootless=config.rootless,
            stdin=stdio[0], stdout=stdio[1], stderr=stdio[2], mounts=mounts, profile=config.profile,
            userns=config.userns)
        container.state.pid = identity(process.pid)
        container.record(pids=[container.state.pid, identity(process.waiter_pid)])
        return process

    def after_exit(self, container: ContainerRecord) -> list[str]:
        """Nothing: the overlay was mounted in PID 1's mount namespace and went with it."""
        return []

    def exec(self, container: ContainerRecord, command: list[str], stdio: Stdio) -> ExitStatus:
        """Join PID 1's namespaces and cgroup (namespaces.enter) with its environment, user and profile."""
        config = container.config
        process = namespaces.enter(container.state.pid[0], command, env=config.env, cwd=config.cwd, user=config.user,
                                   cgroup=container.cgroup(), stdin=stdio[0], stdout=stdio[1], stderr=stdio[2],
                                   profile=config.profile)
        return process.wait()


class LxcRuntime:
    """liblxc's runtime (lxclab.engine.lxcrun): a privileged LXC container with the profile as LXC keys."""

    name = LXC

    def check(self, net: str, rootless: bool, image: StoredImage, userns: bool) -> None:
        """Root, only lo, no image User and no --userns: what lxclab's LXC containers support."""
        if userns:
            raise ContainerError("--userns is for the namespaces runtime: lxclab's LXC containers are privileged "
                                 "(no lxc.idmap); drop --runtime lxc")
        if rootless:
            raise ContainerError("the LXC runtime needs root here (lxclab defines privileged LXC containers); "
                                 "drop --runtime lxc to run rootless")
        if net != NET_NONE:
            raise ContainerError("the LXC runtime gives a container only lo (--net none); use --runtime namespaces "
                                 "for a bridge network")
        if image.config.user:
            raise ContainerError(f"image {image.reference} runs as User {image.config.user!r}, which the LXC "
                                 "runtime does not set up; use --runtime namespaces")

    def launch(self, container: ContainerRecord, image: StoredImage, stdio: Stdio) -> lxcrun.Init:
        """Define (once) and start the LXC container in the foreground."""
        from . import lxcrun

        return lxcrun.launch(container, image, stdio)

    def after_exit(self, container: ContainerRecord) -> list[str]:
        """Remove LXC's idle cgroups; its root's mount on the host is the engine's to release."""
        from . import lxcrun

        return lxcrun.after_exit(container)

    def exec(self, container: ContainerRecord, command: list[str], stdio: Stdio) -> ExitStatus:
        """LXC's attach, with the container's environment and working directory."""
        from . import lxcrun

        return lxcrun.exec_lxc(container, command, stdio)


RUNTIMES: dict[str, Runtime] = {NAMESPACES: NamespacesRuntime(), LXC: LxcRuntime()}


def runtime_for(name: str) -> Runtime:
    """The runtime called `name` ('namespaces' or 'lxc'); ContainerError naming the choices otherwise."""
    try:
        return RUNTIMES[name]
    except KeyError:
        raise ContainerError(f"unknown runtime {name!r}: use 'namespaces' (lxclab's own) or 'lxc' (liblxc)") from None


def _namespace_kinds(config: ContainerConfig) -> set[str]:
    """PID, mount, UTS and IPC always; a new network unless it joins the bridge; cgroup if the kernel has it."""
    kinds = {"pid", "mnt", "uts", "ipc"}
    if config.net == NET_NONE:
        kinds.add("net")
    if os.path.exists("/proc/self/ns/cgroup"):
        kinds.add("cgroup")
    return kinds


def _cgroup(container: ContainerRecord) -> cgroups.Cgroup | None:
    """Create the container's cgroup with its limits and, unless its profile lets devices through, Docker's device
    allow-list (v1's devices files, v2's eBPF program; None when rootless); recorded before it exists."""
    if container.config.rootless:
        return None
    hierarchy = cgroups.detect()
    name = container.config.cgroup_name
    container.record(cgroups=sorted({str(parent / name) for parent in hierarchy.parent_dirs().values()}))
    devices = DEVICES_ALLOWED if container.config.profile.nodev else None
    group = hierarchy.create(name, container.config.limits, devices)
    container.state.cgroup = {"version": group.version, "dirs": {c: str(p) for c, p in group.dirs.items()}}
    return group


def _network(container: ContainerRecord) -> str | None:
    """With --net bridge, a network namespace on this home's bridge (recorded first); its file to join."""
    if container.config.net == NET_NONE:
        return None
    bridge = home_bridge()
    container.record(netns=[f"{network.PREFIX}{container.short_id}"])
    endpoint = bridge.attach(container.short_id)
    container.record(endpoints=[endpoint.to_dict()])
    return endpoint.netns_path


def home_bridge() -> network.Bridge:
    """This home's bridge, created on first use (its own network namespace; the host's stays untouched)."""
    try:
        return network.Bridge.ensure(bridge_name())
    except NetworkError:
        bridge = network.Bridge(bridge_name())
        if bridge.netns in network.list_netns():
            return bridge  # another run created it at the same moment
        raise
