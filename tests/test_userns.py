"""`--userns`: the container's root is a host id of lxclab-remap's /etc/subuid range, never host root.

As root, on this kernel: the maps a container sees, who owns on the host what it writes (overlay
and copy mode), what its root cannot do that host root could, and the refusals of
combinations that cannot work. The escape corpus runs under --userns in tests/test_escapes.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_process import lxclab
from fixture_engine import busybox, engine_home  # noqa: F401

from lxclab import namespaces, validation
from lxclab.container_init import IdMap, Mount
from lxclab.engine import containers, gc
from lxclab.engine import run as engine
from lxclab.errors import ContainerError, InvalidValue, SpawnError
from lxclab.security import Profile

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="--userns maps host ids, which needs root")

SUBUID = "alice:100000:65536\nlxclab-remap:231072:65536\nlxclab-remap:400000:70000\n"


def test_subordinate_start_takes_the_users_first_range_that_is_large_enough():
    assert validation.subordinate_start(SUBUID, "lxclab-remap", 65536) == 231072
    assert validation.subordinate_start(SUBUID, "lxclab-remap", 70000) == 400000
    with pytest.raises(InvalidValue, match="no range of 65536 ids: run ./kit setup"):
        validation.subordinate_start(SUBUID, "bob", 65536)


def test_the_remap_range_is_lxclab_remaps_in_etc_subuid_and_subgid():
    idmap = namespaces.remap_range()
    for path, start in (("/etc/subuid", idmap.uid), ("/etc/subgid", idmap.gid)):
        assert f"lxclab-remap:{start}:" in Path(path).read_text()
    assert idmap.size == 65536 and min(idmap.uid, idmap.gid) > 0


def test_the_container_sees_the_subuid_range_in_its_maps(busybox):
    idmap = namespaces.remap_range()
    done = lxclab("run", "--rm", "--userns", busybox, "sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u")
    assert done.returncode == 0, done.stderr
    maps = [line.split() for line in done.stdout.splitlines()]
    assert maps == [["0", str(idmap.uid), "65536"], ["0", str(idmap.gid), "65536"], ["0"]]


@pytest.mark.parametrize("mode", ["overlay", "copy"])
def test_a_file_made_inside_belongs_on_the_host_to_the_mapped_root(busybox, mode):
    idmap = namespaces.remap_range()
    script = "echo hi > /made-inside; mkdir /home/u; chown 1000:1000 /home/u; stat -c '%u %g' /bin/busybox /"
    result = engine.run(busybox, ["sh", "-c", script], userns=True, mode=mode)
    assert (result.exit_code, result.output) == (0, "0 0\n0 0\n")  # the image's files are root's inside
    container = containers.find(result.container_id)
    written = container.upper if mode == "overlay" else container.rootfs
    made, home = os.stat(written / "made-inside"), os.stat(written / "home/u")
    assert (made.st_uid, made.st_gid) == (idmap.uid, idmap.gid)
    assert (home.st_uid, home.st_gid) == (idmap.uid + 1000, idmap.gid + 1000)


def test_the_shared_layers_stay_owned_by_host_root(busybox):
    from lxclab import paths

    engine.run(busybox, ["touch", "/bin/busybox"], userns=True, remove=True)  # a copy-up, not a change below
    owners = {os.lstat(p).st_uid for p in paths.layers_dir().glob("*/*/diff/bin/busybox")}
    assert owners == {0}


def test_root_inside_is_not_root_outside(busybox):
    # the same 14 capabilities inside; but an id beyond the range has no host id to be (chown: EINVAL), and
    # CAP_MKNOD in a user namespace makes no device node (mknod: EPERM), both of which host root may do
    script = "grep CapEff /proc/self/status; touch /f; chown 70000 /f; echo chown $?; mknod /b b 7 0; echo mknod $?"
    plain = engine.run(busybox, ["sh", "-c", script], remove=True)
    remapped = engine.run(busybox, ["sh", "-c", script], userns=True, remove=True)
    assert plain.output.splitlines()[1:] == ["chown 0", "mknod 0"]
    assert remapped.output.splitlines()[1:] == ["chown: /f: Invalid argument", "chown 1",
                                                "mknod: /b: Operation not permitted", "mknod 1"]
    assert remapped.output.splitlines()[0] == plain.output.splitlines()[0] == "CapEff:\t00000000a80425fb"


def test_a_bound_host_file_only_root_may_read_stays_unreadable(busybox_rootfs, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("host root only\n")
    secret.chmod(0o600)
    target = Path(busybox_rootfs) / "secret"
    target.touch()
    bind = [Mount(str(secret), str(target), flags=namespaces._linux.MS_BIND)]
    argv = ["sh", "-c", "cat /secret 2>&1; id -u"]
    host_root = namespaces.run(busybox_rootfs, argv, mounts=bind, profile=Profile(), timeout=60)
    mapped = namespaces.run(busybox_rootfs, argv, mounts=bind, profile=Profile(), userns=namespaces.remap_range(),
                            timeout=60)
    assert host_root.output == "host root only\n0\n"
    assert mapped.output.splitlines() == ["cat: can't open '/secret': Permission denied", "0"]


@pytest.mark.parametrize("options, message", [
    (dict(rootless=True, mode="copy"), "--userns maps root to a range of host ids, which needs root"),
    (dict(runtime="lxc"), "--userns is for the namespaces runtime"),
    (dict(profile=Profile.build(privileged=True)), "--privileged hands the container the host's powers"),
])
def test_combinations_that_cannot_work_are_refused_before_anything_is_made(busybox, options, message):
    with pytest.raises(ContainerError, match=message):
        engine.run(busybox, ["true"], userns=True, **options)
    assert containers.containers() == []


def test_the_cli_refuses_userns_with_privileged_in_one_line(busybox):
    done = lxclab("run", "--rm", "--userns", "--privileged", busybox, "true")
    assert done.returncode != 0 and done.stderr.count("\n") == 1 and "drop one of them" in done.stderr


def test_spawn_refuses_userns_without_a_mount_namespace(busybox_rootfs):
    with pytest.raises(SpawnError, match="needs a mount namespace"):
        namespaces.spawn(busybox_rootfs, ["true"], namespaces={"pid"}, userns=IdMap(100000, 100000))


def test_exec_joins_the_remapped_namespace_and_a_restart_keeps_the_owners(busybox, tmp_path):
    idmap = namespaces.remap_range()
    container = engine.start(busybox, ["sh", "-c", "touch /first; exec sleep 60"], userns=True)
    output = tmp_path / "exec.out"
    with open(output, "wb") as out:
        status = engine.exec_in(container.id, ["sh", "-c", "cat /proc/self/uid_map; touch /second"], stdout=out.fileno())
    assert status.exit_code == 0 and output.read_text().split() == ["0", str(idmap.uid), "65536"]
    gc.stop(container.id)
    engine.restart(container.id)
    gc.stop(container.id)
    assert {os.stat(container.upper / name).st_uid for name in ("first", "second")} == {idmap.uid}


def test_a_bridge_network_gives_eth0_under_userns_but_no_raw_sockets(busybox):
    # the network namespace is root's (made on the bridge before the container): CAP_NET_RAW inside the
    # container's user namespace does not reach it, so ping's raw socket is refused
    script = "grep -o 'eth0' /proc/net/dev; ping -c 1 -W 3 10.213.0.1 >/dev/null 2>&1 || echo no ping; id -u"
    result = engine.run(busybox, ["sh", "-c", script], userns=True, net="bridge", remove=True)
    assert result.output.splitlines() == ["eth0", "no ping", "0"]


def test_commit_refuses_a_userns_container_whose_files_carry_host_ids(busybox):
    from lxclab.engine.commit import commit

    result = engine.run(busybox, ["touch", "/made-inside"], userns=True)
    with pytest.raises(ContainerError, match="runs with --userns: its upper dir holds host ids"):
        commit(result.container_id, "local/remapped:1")
