"""Container networks: a bridge, and per container a network namespace joined to it by a veth pair.

This is bocker's recipe with one change for safety: the bridge does not sit in the host's
network namespace but in a namespace of its own, a virtual switch that lxclab creates.
Every address lxclab assigns therefore lives inside namespaces lxclab made; the host's
interfaces, addresses and routes never change. Containers on one bridge reach each other
and the bridge's address, not the outside world. Everything goes through iproute2's `ip`,
which the lesson can show command by command. Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN).
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import NetworkError

NETNS_DIR = Path("/run/netns")  # where `ip netns add` keeps its named namespaces
PREFIX = "lxclab-"
BRIDGE = "br0"
CONTAINER_INTERFACE = "eth0"
DEFAULT_SUBNET = "10.213.0.0/24"
_FILE_EXISTS = "File exists"


def ip(*args: str, netns: str | None = None) -> str:
    """Run `ip [-n NETNS] ARGS...` and return its output, raising NetworkError with ip's own message."""
    command = ["ip", *(["-n", netns] if netns else []), *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise NetworkError("the `ip` command is missing: install iproute2") from None
    if done.returncode != 0:
        raise NetworkError(f"`{' '.join(command)}` failed: {done.stderr.strip()}")
    return done.stdout


def list_netns() -> list[str]:
    """The names of the named network namespaces (`ip netns list`), sorted."""
    return sorted(line.split()[0] for line in ip("netns", "list").splitlines() if line.strip())


def netns_path(name: str) -> str:
    """The file of a named network namespace, to join with setns (namespaces.spawn(netns=...))."""
    return str(NETNS_DIR / name)


def delete_netns(name: str) -> None:
    """Delete a named network namespace if it exists; its veth ends die with it once no process uses it."""
    if name in list_netns():
        ip("netns", "delete", name)


def _checked_name(name: str, what: str) -> str:
    """`name` if it is safe in a namespace file name and an interface alias, else NetworkError."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        raise NetworkError(f"invalid {what} name {name!r}: use up to 64 letters, digits, '_', '.' or '-'")
    return name


@dataclass(frozen=True)
class Endpoint:
    """A container's place on a bridge: its namespace, its veth on the bridge side, its address."""

    container: str
    netns: str
    veth: str
    address: str  # like "10.213.0.2/24"
    gateway: str
    bridge_netns: str

    @property
    def netns_path(self) -> str:
        """The namespace file to give namespaces.spawn(netns=...)."""
        return netns_path(self.netns)

    def to_dict(self) -> dict[str, str]:
        """The endpoint as plain data, for a Footprint record or the engine's state file."""
        return asdict(self)

    def remove(self) -> None:
        """Delete the veth pair and the container's namespace; removing twice is harmless."""
        remove_endpoint(self.bridge_netns, self.veth, self.netns, self.container)


def remove_endpoint(bridge_netns: str, veth: str, netns: str, container: str) -> None:
    """Delete a container's veth (only if it is still that container's) and its namespace; for `gc`."""
    if bridge_netns in list_netns() and _alias(bridge_netns, veth) == container:
        ip("link", "delete", veth, netns=bridge_netns)
    delete_netns(netns)


def _alias(netns: str, interface: str) -> str | None:
    """The alias (lxclab writes the container's name there) of an interface, None if it does not exist."""
    try:
        words = ip("-o", "link", "show", "dev", interface, netns=netns).split()
    except NetworkError:
        return None
    return words[words.index("alias") + 1] if "alias" in words else None


class Bridge:
    """A bridge in a network namespace of its own, with the first address of `subnet`."""

    def __init__(self, name: str, subnet: str = DEFAULT_SUBNET):
        self.name = name
        self.netns = f"{PREFIX}net-{name}"
        self.subnet = ipaddress.IPv4Network(subnet)
        self.gateway = ipaddress.IPv4Interface(f"{self.subnet[1]}/{self.subnet.prefixlen}")

    @classmethod
    def create(cls, name: str, subnet: str = DEFAULT_SUBNET) -> "Bridge":
        """Create the switch namespace, its bridge and the bridge's address (the containers' gateway)."""
        bridge = cls(_checked_name(name, "network"), subnet)
        if bridge.netns in list_netns():
            raise NetworkError(f"network {name!r} already exists (namespace {bridge.netns}); "
                               "remove it or pick another name")
        ip("netns", "add", bridge.netns)
        try:
            ip("link", "set", "lo", "up", netns=bridge.netns)
            ip("link", "add", BRIDGE, "type", "bridge", netns=bridge.netns)
            ip("addr", "add", str(bridge.gateway), "dev", BRIDGE, netns=bridge.netns)
            ip("link", "set", BRIDGE, "up", netns=bridge.netns)
        except NetworkError:
            bridge.remove()
            raise
        return bridge

    @classmethod
    def ensure(cls, name: str, subnet: str = DEFAULT_SUBNET) -> "Bridge":
        """The network `name`, created first if it does not exist yet (like Docker's default bridge)."""
        bridge = cls(_checked_name(name, "network"), subnet)
        return bridge if bridge.netns in list_netns() else cls.create(name, subnet)

    def attach(self, container: str) -> Endpoint:
        """Create a namespace for `container`, plug it into the bridge with a veth pair, give it an address.

        The container's end is eth0 with the default route via the bridge. The bridge end
        is named after the address it serves (lx2 for .2), so two containers can never
        take the same address: `ip link add` refuses a name that exists.
        """
        netns = f"{PREFIX}{_checked_name(container, 'container')}"
        ip("netns", "add", netns)
        try:
            host_number, veth = self._plug(netns, container)
            address = f"{self.subnet[host_number]}/{self.subnet.prefixlen}"
            endpoint = Endpoint(container, netns, veth, address, str(self.gateway.ip), self.netns)
            self._configure_container_side(endpoint)
        except NetworkError:
            delete_netns(netns)
            raise
        return endpoint

    def _plug(self, netns: str, container: str) -> tuple[int, str]:
        """Make the veth pair, bridge end named after the first free host number; return both."""
        for host_number in range(2, self.subnet.num_addresses - 1):
            veth = f"lx{host_number}"
            try:
                ip("link", "add", veth, "type", "veth", "peer", "name", CONTAINER_INTERFACE, "netns", netns,
                   netns=self.netns)
            except NetworkError as exc:
                if _FILE_EXISTS in str(exc):
                    continue
                raise
            ip("link", "set", veth, "alias", container, "master", BRIDGE, "up", netns=self.netns)
            return host_number, veth
        raise NetworkError(f"network {self.name!r} has no free address left in {self.subnet}; remove a container")

    def _configure_container_side(self, endpoint: Endpoint) -> None:
        """Address eth0, bring it and lo up, route everything through the bridge."""
        ip("addr", "add", endpoint.address, "dev", CONTAINER_INTERFACE, netns=endpoint.netns)
        ip("link", "set", CONTAINER_INTERFACE, "up", netns=endpoint.netns)
        ip("link", "set", "lo", "up", netns=endpoint.netns)
        ip("route", "add", "default", "via", endpoint.gateway, netns=endpoint.netns)

    def endpoints(self) -> list[str]:
        """The containers plugged into the bridge now (from the aliases of its ports)."""
        words = [line.split() for line in ip("-o", "link", "show", "master", BRIDGE, netns=self.netns).splitlines()]
        return sorted(w[w.index("alias") + 1] for w in words if "alias" in w)

    def remove(self) -> None:
        """Delete the namespaces of the containers still plugged in, then the switch with its bridge."""
        if self.netns in list_netns():
            for container in self.endpoints():
                delete_netns(f"{PREFIX}{container}")
        delete_netns(self.netns)

    def __enter__(self) -> "Bridge":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"<Bridge {self.name} {self.gateway} in netns {self.netns}>"
