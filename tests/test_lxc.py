"""lxclab.lxc: limit parsing, cgroup keys, running commands and every named precondition error, on real LXC."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from fixture_lxc import KEEPALIVE, discard, remove_lock_dirs, unique_container_name

from lxclab import cgroups, procfs
from lxclab.errors import (
    AlreadyDefined, AlreadyFrozen, AlreadyRunning, ContainerError, InvalidLimit, LxcError, LxcUnavailable, NotDefined,
    NotFrozen, NotRunning, SnapshotNotFound,
)
from lxclab.lxc import Container, Limits, State, cgroup_version, container_names, lxc_cgroups, rootfs_path
from lxclab.lxc.hierarchies import Monitor, join, lxc_bases, remove_leftovers, start_cgroup, start_leaf
from lxclab.lxc.usage import config_items
from lxclab.manifest import ImageConfig

MIB = 1 << 20


# --- limits: LXC config keys per version, derived from lxclab.cgroups' writes ----------------
def test_config_keys_for_each_cgroup_version():
    limits = Limits(memory_bytes=32 * MIB, cpus=0.2, pids=64)
    assert config_items(limits, 1) == [
        ("lxc.cgroup.memory.limit_in_bytes", "33554432"), ("lxc.cgroup.cpu.cfs_period_us", "100000"),
        ("lxc.cgroup.cpu.cfs_quota_us", "20000"), ("lxc.cgroup.pids.max", "64"),
    ]
    assert config_items(limits, 2) == [
        ("lxc.cgroup2.memory.max", "33554432"), ("lxc.cgroup2.cpu.max", "20000 100000"), ("lxc.cgroup2.pids.max", "64"),
    ]


def test_memory_and_swap_keys_keep_the_order_of_the_cgroup_writes():
    shrink = config_items(Limits(memory_bytes=32 * MIB), 1, swap=True, current_memory=64 * MIB)
    grow = config_items(Limits(memory_bytes=64 * MIB), 1, swap=True, current_memory=32 * MIB)
    assert [key for key, _ in shrink] == ["lxc.cgroup.memory.limit_in_bytes", "lxc.cgroup.memory.memsw.limit_in_bytes"]
    assert [key for key, _ in grow] == ["lxc.cgroup.memory.memsw.limit_in_bytes", "lxc.cgroup.memory.limit_in_bytes"]
    assert config_items(Limits(memory_bytes=32 * MIB), 2, swap=True) == [
        ("lxc.cgroup2.memory.max", "33554432"), ("lxc.cgroup2.memory.swap.max", "0")]


def test_cgroup_version_matches_proc_self_cgroup():
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    v1_memory = any("memory" in line.split(":")[1].split(",") for line in lines)
    assert cgroup_version() == (1 if v1_memory else 2)


# --- creating: image config and limits land in LXC's config ----------------------------------
def test_image_config_values_reach_the_container(make_container):
    container = make_container(env={"GREETING": "hello world"}, working_dir="/tmp", hostname="box")
    container.start()
    result = container.execute(["/bin/sh", "-c", "echo $GREETING; pwd; hostname; tr '\\0' ' ' </proc/1/cmdline"])
    assert result.stdout.splitlines() == ["hello world", "/tmp", "box", " ".join(KEEPALIVE) + " "]
    assert container.env == ("GREETING=hello world",) and container.command == KEEPALIVE


def test_from_image_runs_entrypoint_and_cmd_with_env_and_workdir(busybox_rootfs, lxcpath):
    raw = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                      "config": {"Env": ["PATH=/bin", "MODE=image"], "Entrypoint": ["/bin/sh", "-c"],
                                 "Cmd": ["echo $MODE > /tmp/ran; exec sleep 600"], "WorkingDir": "/etc"}}).encode()
    name = unique_container_name()
    rootfs = rootfs_path(name, lxcpath)
    rootfs.parent.mkdir(parents=True)
    busybox_rootfs.rename(rootfs)
    with Container.from_image(name, rootfs, ImageConfig.parse(raw), lxcpath=lxcpath) as box:
        box.start()
        assert box.execute(["pwd"]).stdout == "/etc\n"
        ran = box.execute(["/bin/sh", "-c", "while [ ! -s /tmp/ran ]; do sleep 0.05; done; cat /tmp/ran"])
        assert ran.stdout == "image\n"
    assert not Container(name, lxcpath).defined and not rootfs.exists()


def test_limits_use_this_hosts_cgroup_keys(make_container):
    container = make_container(limits=Limits.parse(memory="48m", cpus=0.5, pids=40))
    config = container.config_file.read_text()
    prefix = "lxc.cgroup." if cgroup_version() == 1 else "lxc.cgroup2."
    memory = "memory.limit_in_bytes" if cgroup_version() == 1 else "memory.max"
    assert f"{prefix}{memory} = {48 * MIB}" in config and f"{prefix}pids.max = 40" in config
    container.start()
    assert container._lxc.get_cgroup_item(memory) == str(48 * MIB)
    assert container._lxc.get_cgroup_item("pids.max") == "40"


def test_lxcs_groups_land_where_lxclab_puts_groups_and_stats_read_them(make_container):
    container = make_container(limits=Limits.parse(memory="32m", pids=40))
    container.start()
    hierarchy = cgroups.detect()
    lines = [line.split(":", 2) for line in Path(f"/proc/{container.init_pid}/cgroup").read_text().splitlines()]
    if hierarchy.version == 1:  # under the caller's own memory cgroup, as lxclab's own groups
        path = next(path for _, controllers, path in lines if "memory" in controllers.split(","))
        assert Path("/sys/fs/cgroup/memory" + path).parent == hierarchy.own_dirs["memory"]
    else:  # in the container's start cgroup, in lxclab's delegated subtree
        payload = Path("/sys/fs/cgroup" + next(path for _, controllers, path in lines if controllers == ""))
        assert payload.name == f"lxc.payload.{container.name}"
        assert payload.parent == hierarchy.parent_dirs()["memory"] / start_leaf(container.name, container.lxcpath)
        assert payload.parent not in hierarchy.own_dirs.values()
    stats = container.stats()
    assert (stats.memory_limit_bytes, stats.pids_limit, stats.cpu_limit) == (32 * MIB, 40, None)
    assert stats.pids >= 1 and stats.memory_bytes > 0


def test_python_lxcs_own_daemonized_start_works_from_a_start_cgroup_without_controllers(busybox_rootfs, lxcpath):
    """What lesson 08's raw container does: python-lxc's start, whose caller stays in its cgroup meanwhile."""
    import lxc

    name = unique_container_name()
    lxcpath.mkdir(parents=True)
    raw = lxc.Container(name, str(lxcpath))
    for key, value in [("lxc.rootfs.path", str(busybox_rootfs)), ("lxc.uts.name", name), ("lxc.net.0.type", "empty"),
                       ("lxc.mount.auto", "proc:mixed sys:mixed"), ("lxc.autodev", "1"), ("lxc.cgroup.relative", "1")]:
        assert raw.set_config_item(key, value)
    cgroup = start_cgroup(name, lxcpath, controllers=False)
    assert (cgroup is None) == (cgroup_version() == 1)
    child = os.fork()
    if child == 0:
        started = False
        try:
            join(cgroup)
            started = raw.start(cmd=KEEPALIVE)
        finally:
            os._exit(0 if started else 1)
    _pid, status = os.waitpid(child, 0)
    try:
        assert os.waitstatus_to_exitcode(status) == 0 and raw.state == "RUNNING"
        assert raw.attach_wait(lxc.attach_run_command, ["true"]) == 0
    finally:
        raw.stop()
        raw.wait("STOPPED", 10)
        remove_leftovers(name, lxcpath)
    assert lxc_cgroups(name) == []


def test_container_names_lists_what_is_defined(make_container, lxcpath):
    first, second = make_container(), make_container()
    assert container_names(lxcpath) == sorted([first.name, second.name])


# --- running commands ------------------------------------------------------------------------
def test_execute_captures_megabytes_on_both_streams_and_feeds_stdin(make_container):
    container = make_container()
    container.start()
    script = "head -c 1500000 /dev/zero | tr '\\0' o; head -c 1200000 /dev/zero | tr '\\0' e >&2; wc -c"
    result = container.execute(["/bin/sh", "-c", script], stdin=b"x" * 2_000_000)
    assert result.exit_code == 0
    assert result.stdout == "o" * 1_500_000 + "2000000\n" and result.stderr == "e" * 1_200_000


def test_execute_reports_exit_codes_signals_and_missing_programs(make_container):
    container = make_container()
    container.start()
    assert container.execute(["/bin/sh", "-c", "exit 3"]).exit_code == 3
    assert container.execute(["/bin/sh", "-c", "kill -9 $$"]).exit_code == 137
    assert container.execute(["no-such-program"]).exit_code == 127
    assert container.execute(["true"]).ok


def test_execute_env_and_cwd_override_the_images(make_container):
    container = make_container(env={"A": "image", "B": "kept"}, working_dir="/tmp")
    container.start()
    result = container.execute(["/bin/sh", "-c", "echo $A $B; pwd"], env={"A": "call"}, cwd="/etc")
    assert result.stdout == "call kept\n/etc\n"


def test_attach_returns_the_exit_code(make_container):
    container = make_container()
    container.start()
    assert container.attach(["/bin/sh", "-c", "exit 5"]).exit_code == 5


def test_execute_captures_output_in_memory_files_not_temporary_files(make_container):
    container = make_container()
    container.start()
    result = container.execute(["/bin/sh", "-c", "readlink /proc/self/fd/1; readlink /proc/self/fd/2 >&2"])
    assert (result.stdout, result.stderr) == ("/memfd:lxclab-stdout (deleted)\n", "/memfd:lxclab-stderr (deleted)\n")
    fed = container.execute(["/bin/sh", "-c", "readlink /proc/self/fd/0; cat"], stdin=b"fed")
    assert fed.stdout == "/memfd:lxclab-stdin (deleted)\nfed"


# --- stopping: the monitor, held by a pidfd, and exactly the cgroups of the run ----------------
def test_parent_is_opened_as_a_pidfd_only_while_the_child_is_still_its_own():
    shell = subprocess.Popen(["/bin/sh", "-c", "sleep 600 & echo $!; wait"], stdout=subprocess.PIPE, text=True)
    child = int(shell.stdout.readline())
    try:
        assert procfs.parent_pid(child) == shell.pid
        parent, pidfd = procfs.open_parent(child)
        assert parent == shell.pid and not procfs.pidfd_exited(pidfd, 0)
        shell.kill()  # its sleep is handed to another parent at once
        assert procfs.pidfd_exited(pidfd, 5)  # woken by the exit itself, before anyone collects the shell
        os.close(pidfd)
        reparented = procfs.open_parent(child)
        assert reparented is not None and reparented[0] not in (shell.pid, -1)
        os.close(reparented[1])
    finally:
        shell.kill()
        shell.wait()
        os.kill(child, 9)
    done = subprocess.Popen(["true"])
    done.wait()  # collected: its PID names no process now
    assert procfs.open_parent(done.pid) is None and procfs.parent_pid(done.pid) == -1


def test_monitor_is_inits_parent_and_stop_returns_only_once_it_has_exited(make_container):
    container = make_container()
    container.start()
    monitor = Monitor.of(container.name, container.init_pid)
    try:
        cmdline = Path(f"/proc/{monitor.pid}/cmdline").read_bytes()
        # v1: LXC's lxc-start -d names its monitor; v2: the monitor is lxclab's forked foreground starter
        assert (cgroup_version() == 2 or cmdline.startswith(b"[lxc monitor]") and container.name.encode() in cmdline)
        assert monitor.alive() and monitor.pid == procfs.parent_pid(container.init_pid)
        # The payload's and the monitor's groups, in every hierarchy: read from /proc, found by no walk.
        assert sorted(monitor.groups) == sorted(base / f"lxc.{role}.{container.name}" for base in lxc_bases(container.name, container.lxcpath)
                                                for role in ("payload", "monitor"))
    finally:
        monitor.close()
    container.stop()
    assert not procfs.running(monitor.pid) and lxc_cgroups(container.name) == []
    assert Monitor.of(container.name, monitor.pid) is None  # no process, no monitor


def test_stop_removes_a_stale_group_an_earlier_run_left_and_the_groups_lxc_named_around_it(make_container):
    container = make_container()
    stale = [base / f"lxc.payload.{container.name}" for base in lxc_bases(container.name, container.lxcpath)]
    for group in stale:  # on v2 inside a stale start leaf
        group.mkdir(parents=True)
    container.start()
    # v1: LXC names its group around the stale one; v2: the start leaf is made afresh, the stale group gone with it
    own = f"lxc.payload.{container.name}-1" if cgroup_version() == 1 else f"lxc.payload.{container.name}"
    assert f"/{own}\n" in Path(f"/proc/{container.init_pid}/cgroup").read_text()
    container.stop()
    assert lxc_cgroups(container.name) == [] and not any(group.exists() for group in stale)


def test_two_containers_of_one_name_in_two_lxcpaths_run_at_once_and_each_stop_clears_only_its_own(
        make_container, busybox_rootfs, tmp_path):
    """Two checkouts running lesson 08 at once each start a `lab-busybox` of their own."""
    first = make_container()
    other_path = tmp_path / "other-lxc"
    shutil.copytree(busybox_rootfs, rootfs_path(first.name, other_path), symlinks=True)
    second = Container.create(first.name, rootfs_path(first.name, other_path), lxcpath=other_path, cmd=KEEPALIVE)
    try:
        first.start()
        second.start()
        assert first.init_pid != second.init_pid
        assert first.execute(["true"]).ok and second.execute(["true"]).ok
        firsts = Monitor.of(first.name, first.init_pid)
        firsts.close()
        first.stop()
        assert not any(group.exists() for group in firsts.groups) and second.execute(["true"]).ok
        second.stop()
        assert lxc_cgroups(first.name) == []
    finally:
        discard(second)
        remove_lock_dirs(other_path)


def test_a_start_that_fails_says_why_from_the_log_and_leaves_no_cgroup(make_container):
    container = make_container()
    with pytest.raises(LxcError, match=r"could not start .*'no-such-program'.*full log: .*lxc\.log"):
        container.start(["no-such-program"])
    assert container.state is State.STOPPED and lxc_cgroups(container.name) == []
    container.start()  # and it starts afterwards
    assert container.execute(["true"]).ok


def test_start_needs_lxcs_own_lxc_start_on_v1_only_and_says_so_when_it_is_missing(make_container, monkeypatch,
                                                                                    tmp_path):
    container = make_container()
    monkeypatch.setenv("PATH", str(tmp_path))  # no lxc-start here
    if cgroup_version() == 1:
        with pytest.raises(LxcUnavailable, match="lxc-start is not on PATH.*lxc package"):
            container.start()
        assert container.state is State.STOPPED
        monkeypatch.undo()
    container.start()  # on v2 a forked starter calls liblxc's start itself
    assert container.state is State.RUNNING


def test_start_leaves_the_callers_cgroups_alone(make_container):
    before = Path("/proc/self/cgroup").read_text()
    container = make_container()
    container.start()
    assert Path("/proc/self/cgroup").read_text() == before
    init_cgroups = Path(f"/proc/{container.init_pid}/cgroup").read_text()
    assert f"lxc.payload.{container.name}" in init_cgroups


def test_context_manager_destroys_even_after_an_error(make_container, lxcpath):
    container = make_container()
    with pytest.raises(RuntimeError), container:
        container.start()
        raise RuntimeError("the test body failed")
    assert not container.defined and not (lxcpath / container.name).exists()
    assert lxc_cgroups(container.name) == []


# --- named errors for every precondition --------------------------------------------------------
def test_start_twice_raises_already_running(make_container):
    container = make_container()
    container.start()
    with pytest.raises(AlreadyRunning, match=f"{container.name}.*already RUNNING.*stop it"):
        container.start()


def test_execute_on_a_stopped_container_raises_not_running(make_container):
    container = make_container()
    with pytest.raises(NotRunning, match=f"{container.name}.*STOPPED.*start it first"):
        container.execute(["true"])
    with pytest.raises(NotRunning, match="nothing to stop"):
        container.stop()
    with pytest.raises(NotRunning, match="memory.usage_in_bytes|memory.current"):
        _ = container.memory_usage


def test_destroy_a_running_container_raises_already_running(make_container):
    container = make_container()
    container.start()
    with pytest.raises(AlreadyRunning, match=f"{container.name}.*stop it before destroying it"):
        container.destroy()
    assert container.state is State.RUNNING and container.rootfs.is_dir()


@pytest.mark.parametrize("limit, value", [
    ("memory", "12 parsecs"), ("memory", "0"), ("cpus", "fast"), ("cpus", "0.001"), ("cpus", "9999"),
    ("pids", "many"), ("pids", "0"),
])
def test_bad_limit_on_a_container_raises_invalid_limit_and_changes_nothing(make_container, limit, value):
    container = make_container()
    before = container.config_file.read_text()
    with pytest.raises(InvalidLimit, match=re.escape(repr(value))):
        container.set_limits(**{limit: value})
    assert container.config_file.read_text() == before


def test_frozen_preconditions(make_container):
    container = make_container()
    container.start()
    with pytest.raises(NotFrozen, match=container.name):
        container.unfreeze()
    container.freeze()
    with pytest.raises(AlreadyFrozen, match=container.name):
        container.freeze()
    with pytest.raises(NotRunning, match="FROZEN.*unfreeze it first"):
        container.execute(["true"])


def test_undefined_and_duplicate_containers(make_container, lxcpath):
    ghost = Container(unique_container_name(), lxcpath)
    for action in (ghost.start, ghost.destroy, ghost.snapshots):
        with pytest.raises(NotDefined, match=f"{ghost.name}.*does not exist.*create it first"):
            action()
    existing = make_container()
    with pytest.raises(AlreadyDefined, match=f"{existing.name}.*already exists"):
        Container.create(existing.name, existing.rootfs, lxcpath=lxcpath)
    with pytest.raises(ContainerError, match="invalid container name"):
        Container("../escape", lxcpath)


def test_snapshot_preconditions(make_container, lxcpath):
    container = make_container()
    with pytest.raises(SnapshotNotFound, match="no snapshot 'snap7'.*none"):
        container.restore_snapshot("snap7", unique_container_name())
    container.start()
    with pytest.raises(AlreadyRunning, match="cannot snapshot it.*stop it first"):
        container.create_snapshot()


def test_snapshot_needs_the_name_in_the_rootfs_path(busybox_rootfs, lxcpath):
    with Container.create(unique_container_name(), busybox_rootfs, cmd=KEEPALIVE, lxcpath=lxcpath) as container:
        with pytest.raises(ContainerError, match="rootfs path contains its name"):
            container.create_snapshot()
