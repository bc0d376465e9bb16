"""The go-lxc half of lxclab.lxc on real LXC: shutdown, reboot, CPU stats, network, config and cgroup items,
snapshot objects, clone and rename. Two containers serve the whole module: `box` runs busybox init, `plain`
the keep-alive shell of fixture_lxc."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from polling import eventually
from fixture_lxc import host_cgroup_file, make_module_container, unique_container_name  # noqa: F401

from lxclab.errors import (
    AlreadyDefined, AlreadyRunning, CgroupError, ContainerError, InvalidValue, LxcError, NotRunning, RebootFailed,
    ShutdownTimeout, SnapshotNotFound, UnknownConfigKey,
)
from lxclab.lxc import Container, CPUStats, Snapshot, State, cgroup_version, lxc_cgroups
from lxclab.lxc._binding import pylxc
from lxclab.lxc.hierarchies import START_PREFIX, lxc_bases
from lxclab.security import Profile

BUSYBOX_INIT = ("/sbin/init",)  # busybox's init (no /etc/inittab: its defaults), as PID 1 of the container
# Its halt and reboot sync three times and pause 3 s; under CI's load one reboot took more than 10 s.
BUSYBOX_INIT_SECONDS = 60
# A process that says goodbye in a file when SIGTERM reaches it (wait returns at once for a trapped signal).
TRAPPER = ["sh", "-c", "(trap 'echo bye > /tmp/bye; exit 0' TERM; echo > /tmp/ready; sleep 600 & wait) "
                       ">/dev/null 2>&1 &"]


@pytest.fixture(scope="module")
def box(make_module_container) -> Container:
    """A container whose init is busybox init, allowed to reboot (CAP_SYS_BOOT); started when a test needs it."""
    return make_module_container(cmd=BUSYBOX_INIT, profile=Profile.build(cap_add=["SYS_BOOT"]))


@pytest.fixture(scope="module")
def plain(make_module_container) -> Container:
    """A container whose init is a shell that ignores SIGPWR; every test leaves it stopped."""
    return make_module_container()


def running(container: Container) -> Container:
    """`container`, started if it was stopped."""
    if not container.running:
        container.start()
    return container




# --- shutdown and reboot --------------------------------------------------------------------------------
def start_trapper(container: Container) -> Path:
    """Start TRAPPER in `container` once it is ready; return where its goodbye will be, seen from the host."""
    for name in ("bye", "ready"):
        (container.rootfs / "tmp" / name).unlink(missing_ok=True)
    assert container.execute(TRAPPER).ok
    assert eventually((container.rootfs / "tmp/ready").exists)
    return container.rootfs / "tmp/bye"


def test_shutdown_lets_busybox_init_terminate_its_processes_where_stop_kills_them(box):
    goodbye = start_trapper(running(box))
    box.shutdown(timeout=BUSYBOX_INIT_SECONDS)
    assert box.state is State.STOPPED and lxc_cgroups(box.name) == []
    assert goodbye.read_text() == "bye\n"  # SIGTERM from busybox init, then its handler ran

    goodbye = start_trapper(running(box))
    box.stop()
    assert box.state is State.STOPPED and not goodbye.exists()  # SIGKILL: no handler runs


def test_shutdown_of_an_init_that_ignores_the_halt_signal_times_out_and_leaves_it_running(plain):
    plain.start()
    try:
        with pytest.raises(ShutdownTimeout, match=f"{plain.name}.*1s.*SIGPWR.*busybox init.*stop"):
            plain.shutdown(timeout=1)
        assert plain.state is State.RUNNING
    finally:
        plain.stop()


def test_reboot_starts_a_new_init_and_stop_still_leaves_nothing(box):
    old_init = running(box).init_pid
    box.reboot(timeout=BUSYBOX_INIT_SECONDS)
    assert box.state is State.RUNNING and box.init_pid not in (old_init, -1)
    assert box.execute(["cat", "/proc/1/comm"]).stdout == "init\n"
    # The monitor rebooted the container from the lxc.pivot it had moved into: its cgroups are one level deeper.
    groups = [cgroup for cgroup in lxc_cgroups(box.name) if not cgroup.name.startswith(START_PREFIX)]  # v2's leaf
    assert {cgroup.parent.name for cgroup in groups} == {"lxc.pivot"}
    box.stop()
    assert lxc_cgroups(box.name) == []
    assert [base for base in lxc_bases(box.name) if (base / "lxc.pivot" / "lxc.pivot").exists()] == []


def test_reboot_of_an_init_that_ignores_the_signal_times_out_and_leaves_it_running(make_module_container):
    sleeper = make_module_container(cmd=("/bin/sleep", "600"))  # no handler: the kernel drops SIGINT to a PID 1
    sleeper.start()
    try:
        old_init = sleeper.init_pid
        with pytest.raises(RebootFailed, match=f"{sleeper.name}.*first init 1s after.*SIGINT.*sh or sleep ignores"):
            sleeper.reboot(timeout=1)
        assert sleeper.state is State.RUNNING and sleeper.init_pid == old_init
    finally:
        sleeper.stop()


def test_reboot_without_cap_sys_boot_stops_the_container_and_says_why(make_module_container):
    container = make_module_container(cmd=BUSYBOX_INIT)  # Docker's default capabilities: no SYS_BOOT
    container.start()
    with pytest.raises(RebootFailed, match=f"{container.name}.*stopped instead of rebooting.*CAP_SYS_BOOT"):
        container.reboot(timeout=BUSYBOX_INIT_SECONDS)
    assert container.state is State.STOPPED and lxc_cgroups(container.name) == []


def test_shutdown_and_reboot_need_a_running_container(plain):
    with pytest.raises(NotRunning, match=f"{plain.name}.*STOPPED.*nothing to shut down"):
        plain.shutdown()
    with pytest.raises(NotRunning, match="nothing to reboot"):
        plain.reboot()


# --- CPU, network and cgroup files ----------------------------------------------------------------------
def test_cpu_stats_are_the_hosts_cgroup_counters_in_seconds(box):
    running(box).execute(["sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"])  # user time
    box.freeze()  # the counters hold still while both sides read them
    try:
        stats = box.cpu_stats()
        if cgroup_version() == 1:
            ticks = dict(line.split() for line in host_cgroup_file(box, "cpuacct", "cpuacct.stat").splitlines())
            hz = os.sysconf("SC_CLK_TCK")
            expected = CPUStats(int(ticks["user"]) / hz, int(ticks["system"]) / hz)
        else:
            usec = dict(line.split() for line in host_cgroup_file(box, "cpu", "cpu.stat").splitlines())
            expected = CPUStats(int(usec["user_usec"]) / 1e6, int(usec["system_usec"]) / 1e6)
        # v2 derives user/system from its runtime when read (cputime_adjust): two reads may split a few µs apart
        assert stats.user == pytest.approx(expected.user, abs=0.005) and stats.user > 0.1
        assert stats.system == pytest.approx(expected.system, abs=0.005)
        assert stats.user + stats.system <= box.cpu_time + 0.05  # the same time, counted in coarser units
    finally:
        box.unfreeze()


def test_interfaces_and_ip_addresses_see_an_interface_the_host_adds(box):
    pid = str(running(box).init_pid)
    assert box.interfaces() == ("lo",) and box.ip_addresses() == ()
    # A veth pair made inside the container's network namespace, from the host: it goes with the namespace.
    for command in (["link", "add", "lab0", "type", "veth", "peer", "name", "lab1"],
                    ["addr", "add", "192.0.2.7/24", "dev", "lab0"], ["link", "set", "lab0", "up"]):
        subprocess.run(["nsenter", "-t", pid, "-n", "ip", *command], check=True)
    assert sorted(box.interfaces()) == ["lab0", "lab1", "lo"]
    assert "192.0.2.7" in box.ip_addresses() and "192.0.2.7" in box.ip_addresses("lab0")
    assert box.ip_addresses("lo") == ()  # LXC leaves loopback out
    with pytest.raises(ContainerError, match="no network interface 'eth9'.*lab0"):
        box.ip_addresses("eth9")
    subprocess.run(["nsenter", "-t", pid, "-n", "ip", "link", "del", "lab0"], check=True)


def test_cgroup_item_reads_what_the_host_sees(box):
    running(box).set_limits(pids="50")
    assert box.cgroup_item("pids.max") == host_cgroup_file(box, "pids", "pids.max").strip() == "50"
    memory_file = "memory.max" if cgroup_version() == 2 else "memory.limit_in_bytes"
    assert box.cgroup_item(memory_file) == host_cgroup_file(box, "memory", memory_file).strip()
    with pytest.raises(CgroupError, match="no cgroup file 'memory.nonsense'"):
        box.cgroup_item("memory.nonsense")
    with pytest.raises(InvalidValue, match="control character"):
        box.cgroup_item("pids.max\nlxc.hook.pre-start")


def test_resources_of_a_stopped_container_raise_not_running(plain):
    for read in (plain.cpu_stats, plain.interfaces, plain.ip_addresses, lambda: plain.cgroup_item("pids.max")):
        with pytest.raises(NotRunning, match="start it first"):
            read()


# --- configuration --------------------------------------------------------------------------------------
def test_config_items_read_and_set_the_saved_config(plain):
    assert plain.config_item("lxc.uts.name") == (plain.hostname,)
    assert plain.config_item("lxc.environment") == plain.env == ()
    plain.set_config_item("lxc.environment", ["A=1", "B=two words"])
    reopened = Container(plain.name, plain.lxcpath)  # what the saved file says
    assert reopened.env == ("A=1", "B=two words") and "lxc.environment = B=two words" in plain.config_file.read_text()
    plain.set_config_item("lxc.environment", [])
    assert Container(plain.name, plain.lxcpath).env == ()
    with pytest.raises(UnknownConfigKey, match="lxc.rootfs.paht"):
        plain.config_item("lxc.rootfs.paht")
    with pytest.raises(UnknownConfigKey):
        plain.set_config_item("lxc.rootfs.paht", "/")
    with pytest.raises(LxcError, match="control character"):
        plain.set_config_item("lxc.environment", "A=1\nlxc.hook.pre-start = /bin/sh")
    assert "lxc.hook" not in plain.config_file.read_text()


def test_liblxc_takes_a_dir_prefix_that_python_lxc_calls_a_failure(plain):
    rootfs = str(plain.rootfs)
    raw = pylxc().Container(unique_container_name(), str(plain.lxcpath))  # never saved: nothing to clean up
    assert raw.set_config_item("lxc.rootfs.path", f"dir:{rootfs}") is False  # python-lxc's read-back check
    assert raw.get_config_item("lxc.rootfs.path") == ""  # ... and it cleared the key: the host's / would be used
    plain.set_config_item("lxc.rootfs.path", f"dir:{rootfs}")  # liblxc's own verdict
    assert plain.config_item("lxc.rootfs.path") == (rootfs,) and plain.rootfs == Path(rootfs)
    assert f"lxc.rootfs.path = dir:{rootfs}\n" in plain.config_file.read_text()
    running(plain).execute(["true"])  # the prefix names the storage backend: a directory
    plain.stop()
    plain.set_config_item("lxc.rootfs.path", rootfs)


# --- snapshots, clone, rename ---------------------------------------------------------------------------
def test_snapshots_are_objects_with_a_comment_and_can_be_destroyed(plain):
    first = plain.create_snapshot("before the change")
    second = plain.create_snapshot()
    try:
        assert (first.name, first.comment, second.name, second.comment) == ("snap0", "before the change", "snap1", "")
        assert first.path == plain.lxcpath / plain.name / "snaps" / "snap0" and (first.path / "rootfs").is_dir()
        assert time.strptime(first.timestamp, "%Y:%m:%d %H:%M:%S")
        assert plain.snapshots() == [first, second] and isinstance(first, Snapshot)
        with plain.restore_snapshot(first, unique_container_name()) as restored:
            assert restored.command == plain.command and restored.hostname == plain.hostname
            own = restored.lxcpath / restored.name
            assert restored.config_item("lxc.seccomp.profile") == (str(own / "lxclab.seccomp"),)
            assert restored.log_file == own / "lxc.log"
        plain.destroy_snapshot(first)
        assert plain.snapshots() == [second] and not first.path.exists()
        with pytest.raises(SnapshotNotFound, match="no snapshot 'snap0'.*snap1"):
            plain.destroy_snapshot("snap0")
    finally:
        plain._destroy_snapshots()


def test_clone_is_a_container_of_its_own(plain, tmp_path):
    (plain.rootfs / "root/mark").write_text("original\n")
    with plain.clone(unique_container_name(), tmp_path / "elsewhere") as copy:
        own = copy.lxcpath / copy.name
        assert copy.lxcpath == tmp_path / "elsewhere" and copy.rootfs == own / "rootfs"
        assert (copy.hostname, copy.command) == (plain.hostname, plain.command)
        assert copy.config_item("lxc.seccomp.profile") == (str(own / "lxclab.seccomp"),)
        (copy.rootfs / "root/mark").write_text("copy\n")
        copy.start()
        assert copy.execute(["cat", "/root/mark"]).stdout == "copy\n"
        copy.stop()
    assert (plain.rootfs / "root/mark").read_text() == "original\n"


def test_rename_moves_the_container_and_this_object_follows(plain):
    copy = plain.clone(unique_container_name())
    old_name, new_name = copy.name, unique_container_name()
    try:
        copy.rename(new_name)
        assert copy.name == new_name and copy.defined and copy.rootfs == copy.lxcpath / new_name / "rootfs"
        assert not Container(old_name, copy.lxcpath).defined and not (copy.lxcpath / old_name).exists()
        copy.start()  # its seccomp file and run file moved with it
        assert copy.execute(["hostname"]).stdout == f"{plain.hostname}\n"
        copy.stop()
        copy.create_snapshot()
        with pytest.raises(ContainerError, match="has snapshots"):
            copy.rename(unique_container_name())
    finally:
        copy.__exit__(None, None, None)


def test_copies_need_a_stopped_container_and_a_free_name(plain, make_module_container):
    other = make_module_container()
    with pytest.raises(AlreadyDefined, match=f"clone {plain.name!r} as {other.name!r}.*exists"):
        plain.clone(other.name)
    plain.start()
    try:
        with pytest.raises(AlreadyRunning, match="cannot clone it.*stop it first"):
            plain.clone(unique_container_name())
        with pytest.raises(AlreadyRunning, match="cannot rename it"):
            plain.rename(unique_container_name())
    finally:
        plain.stop()
