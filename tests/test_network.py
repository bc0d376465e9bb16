"""Container networks (a bridge in its own namespace, veth pairs), and that nothing leaks, even after a crash.

Other test files (the engine's) make named network namespaces in parallel, so every name
made here carries this run's RUN token and only those are compared before and after.
"""

from __future__ import annotations

import json
import signal
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from fixture_kernel import mounts_under

from lxclab import cgroups, namespaces, network
from lxclab.chroot import ExitStatus
from lxclab.errors import NetworkError
from lxclab.footprint import Footprint, release

REPO = Path(__file__).resolve().parent.parent


RUN = uuid.uuid4().hex[:6]


def token() -> str:
    """A unique name part that also marks the name as this test run's."""
    return RUN + uuid.uuid4().hex[:6]


def host_view() -> tuple[str, str, list[str]]:
    """The host's links and addresses and this run's named namespaces: what must never change."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    addresses = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    return links, stable_addresses(addresses), [name for name in network.list_netns() if RUN in name]


def stable_addresses(ip_addr: str) -> str:
    """`ip -o addr` output without the DHCP lifetimes, which count down on a systemd host."""
    return re.sub(r" (valid|preferred)_lft \S+", "", ip_addr)


def test_stable_addresses_keep_every_field_but_the_lifetimes():
    line = ("2: ens3    inet 10.0.2.15/24 brd 10.0.2.255 scope global dynamic ens3\\"
            "       valid_lft 86313sec preferred_lft 86313sec\n")
    assert stable_addresses(line) == ("2: ens3    inet 10.0.2.15/24 brd 10.0.2.255 scope global dynamic ens3\\"
                                      "      \n")
    assert stable_addresses(line.replace("86313", "86312")) == stable_addresses(line)


def dead(pid: int) -> bool:
    """Whether `pid` is gone or a zombie (dead, waiting only to be collected by its parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.fixture
def bridge():
    with network.Bridge.create(f"t{token()}") as created:
        yield created


def test_a_container_on_the_bridge_can_ping_the_bridge(busybox_rootfs):
    before = host_view()
    with network.Bridge.create(f"t{token()}") as bridge:
        endpoint = bridge.attach(f"c{token()}")
        script = f"ip -o -4 addr show eth0; ping -c 1 -W 5 {endpoint.gateway}"
        done = namespaces.run(busybox_rootfs, ["sh", "-c", script],
                              namespaces=namespaces.DEFAULT_NAMESPACES - {"net"}, netns=endpoint.netns_path)
        links, addresses, _ = host_view()
        assert (links, addresses) == before[:2]  # addresses live only inside lxclab's namespaces
    assert done.status == ExitStatus(code=0), done.output
    assert f"inet {endpoint.address}" in done.output
    assert "1 packets received" in done.output
    assert host_view() == before


def test_two_containers_on_one_bridge_reach_each_other(busybox_rootfs, bridge):
    first, second = bridge.attach(f"c{token()}"), bridge.attach(f"c{token()}")
    peer = second.address.split("/")[0]
    done = namespaces.run(busybox_rootfs, ["ping", "-c", "1", "-W", "5", peer],
                          namespaces=namespaces.DEFAULT_NAMESPACES - {"net"}, netns=first.netns_path)
    assert done.status == ExitStatus(code=0), done.output


def test_addresses_and_names_are_unique_and_reused_after_removal(bridge):
    names = [f"c{token()}" for _ in range(3)]
    endpoints = [bridge.attach(name) for name in names]
    assert [e.address for e in endpoints] == ["10.213.0.2/24", "10.213.0.3/24", "10.213.0.4/24"]
    assert len({e.veth for e in endpoints}) == len({e.netns for e in endpoints}) == 3
    assert bridge.endpoints() == sorted(names)
    endpoints[1].remove()
    endpoints[1].remove()  # a second time is harmless
    assert bridge.attach(f"c{token()}").address == "10.213.0.3/24"


def test_teardown_leaves_no_veth_bridge_or_netns():
    before = host_view()
    with network.Bridge.create(f"t{token()}") as other:
        endpoint = other.attach(f"c{token()}")
        assert endpoint.netns in network.list_netns()
    assert endpoint.netns not in network.list_netns() and other.netns not in network.list_netns()
    assert host_view() == before


def test_a_stale_record_never_removes_a_veth_that_now_serves_another_container(bridge):
    first = bridge.attach(f"c{token()}")
    first.remove()
    second = bridge.attach(f"c{token()}")
    assert second.veth == first.veth  # the name (and address) went to the next container
    network.remove_endpoint(first.bridge_netns, first.veth, first.netns, first.container)  # what gc would do
    assert bridge.endpoints() == [second.container]
    assert second.netns in network.list_netns()


def test_a_taken_bridge_name_is_a_clear_error_and_ensure_reuses_it(bridge):
    with pytest.raises(NetworkError, match="already exists"):
        network.Bridge.create(bridge.name)
    assert network.Bridge.ensure(bridge.name).netns == bridge.netns


@pytest.mark.parametrize("name", ["", "a b", "../x", "-x", "x" * 65])
def test_unsafe_names_are_refused(bridge, name):
    with pytest.raises(NetworkError, match="invalid container name"):
        bridge.attach(name)


def lxclab_cgroups() -> list[str]:
    """This test run's groups where lxclab's groups go (other test files make lxclab groups of their own at once)."""
    own = set(cgroups.detect().parent_dirs().values())
    return sorted(str(group) for parent in own for group in parent.glob(f"lxclab-test-{RUN}*"))


def _one_run(rootfs, bridge, number: int) -> None:
    with cgroups.create(f"lxclab-test-{token()}", cgroups.Limits(pids=10)) as group:
        endpoint = bridge.attach(f"c{token()}")
        try:
            done = namespaces.run(rootfs, ["sh", "-c", f"exit {number % 5}"], cgroup=group, hostname=f"n{number}",
                                  namespaces=namespaces.DEFAULT_NAMESPACES - {"net"}, netns=endpoint.netns_path)
            assert done.status == ExitStatus(code=number % 5)
        finally:
            endpoint.remove()


def test_nothing_leaks_after_50_runs_with_cgroup_and_network(busybox_rootfs):
    cgroup_dirs = lxclab_cgroups()
    before, mounts = host_view(), [m for m in mounts_under(network.NETNS_DIR) if RUN in m]
    with network.Bridge.create(f"t{token()}") as bridge:
        for number in range(50):
            _one_run(busybox_rootfs, bridge, number)
    assert host_view() == before
    assert [m for m in mounts_under(network.NETNS_DIR) if RUN in m] == mounts and mounts_under(busybox_rootfs) == []
    assert lxclab_cgroups() == cgroup_dirs


CRASHING_RUN = """
import sys
from lxclab import cgroups, namespaces, network
from lxclab.footprint import Footprint
rootfs, name = sys.argv[1], sys.argv[2]
record = Footprint()
bridge = network.Bridge.create(name)
record.netns.append(bridge.netns)
group = cgroups.create("lxclab-test-" + name, cgroups.Limits(pids=10))
record.cgroups += group.paths
endpoint = bridge.attach("c" + name)
record.endpoints.append(endpoint.to_dict())
process = namespaces.spawn(rootfs, ["sleep", "600"], cgroup=group, netns=endpoint.netns_path,
                           namespaces=namespaces.DEFAULT_NAMESPACES - {"net"})
record.pids.append(process.identity())
print(record.to_json(), flush=True)
process.wait()
"""


def test_release_removes_what_a_sigkilled_run_left(busybox_rootfs):
    before = host_view()
    crashing = subprocess.Popen([sys.executable, "-c", CRASHING_RUN, str(busybox_rootfs), f"t{token()}"],
                                stdout=subprocess.PIPE, text=True, cwd=REPO)
    record = Footprint.from_json(crashing.stdout.readline())
    crashing.send_signal(signal.SIGKILL)
    crashing.wait()
    crashing.stdout.close()
    container = record.pids[0][0]
    assert not dead(container) and len(record.netns) == 1
    release(record)
    release(record)  # a second gc finds nothing left and does not fail
    assert dead(container)
    assert not any(Path(p).exists() for p in record.cgroups)
    assert host_view() == before
    assert json.loads(record.to_json())["endpoints"][0]["veth"] == "lx2"
