"""lxclab.procfs against the real /proc, with findmnt and ps as oracles: odd mount names, odd command names."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from polling import eventually

from lxclab import cgroups, procfs
from lxclab.limits import Limits

ODD_DIR = "a b\tc\\d"  # a space, a tab and a backslash: mountinfo writes them \040, \011 and \134
ODD_COMM = "a) Z 1 ) (b"  # a command name that looks like the end of one and a zombie's fields


@pytest.fixture
def mounted_child(tmp_path: Path):
    """A process in a private mount namespace of its own with a tmpfs (source 'my src') on an oddly named dir."""
    target = tmp_path / ODD_DIR
    target.mkdir()
    script = 'mount -t tmpfs "my src" "$1" && echo ready && exec sleep 600'
    child = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(target)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\n"
    yield child, target
    child.kill()
    child.wait()


@pytest.fixture
def odd_process():
    """A sleeping process that has named itself ODD_COMM (writing its own /proc/self/comm)."""
    script = "import sys, time; open('/proc/self/comm', 'w').write(sys.argv[1]); print('ready', flush=True); time.sleep(600)"
    child = subprocess.Popen([sys.executable, "-c", script, ODD_COMM], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\n"
    yield child
    child.kill()
    child.wait()


def _findmnt(pid: int) -> list[dict[str, str]]:
    """findmnt's view of process `pid`'s mounts (util-linux undoes the escapes itself)."""
    out = subprocess.run(["findmnt", "--list", "--json", "-o", "TARGET,SOURCE,FSTYPE", "--task", str(pid)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["filesystems"]


def _mounts_read_twice_alike(pid: int) -> tuple[list[procfs.Mount], list[dict[str, str]]] | None:
    """procfs's and findmnt's views of `pid`'s mounts, or None if procfs saw the table change around findmnt's read.

    Unlinking a mount point detaches its mounts in every namespace, private ones included: a test beside this one
    that deletes a named netns takes its /run/netns mount out of the child's table too.
    """
    mine, theirs = procfs.mounts(pid), _findmnt(pid)
    return (mine, theirs) if procfs.mounts(pid) == mine else None


def _ps_state(pid: int) -> str:
    """The state letter ps (procps) reads for `pid`."""
    return subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()[:1]


def test_parse_mountinfo_reads_optional_fields_and_undoes_escapes():
    text = ("36 35 98:0 /mnt\\0401 /mnt/a\\040b rw,noatime master:1 shared:7 - ext3 /dev/my\\134disk rw,errors=continue\n"
            "22 27 0:21 / /proc rw - proc proc rw\n")
    first, second = procfs.parse_mountinfo(text)
    assert first == procfs.Mount(36, 35, "/mnt 1", "/mnt/a b", "rw,noatime", "ext3", "/dev/my\\disk", "rw,errors=continue")
    assert (second.point, second.fstype, second.super_options) == ("/proc", "proc", "rw")


def test_mounts_of_another_namespace_match_findmnt_odd_names_included(mounted_child):
    child, target = mounted_child
    reading = eventually(lambda: _mounts_read_twice_alike(child.pid))
    assert reading, "the child's mount table kept changing while it was read"
    mine, theirs = reading
    assert [(m.point, m.fstype) for m in mine] == [(f["target"], f["fstype"]) for f in theirs]
    odd = [m for m in mine if m.point == str(target)]
    assert len(odd) == 1 and (odd[0].fstype, odd[0].source) == ("tmpfs", "my src")
    assert str(target) not in procfs.mount_points()  # the mount stayed in the child's namespace


def test_is_mountpoint_sees_a_mount_with_a_space_in_its_name(tmp_path: Path):
    target = tmp_path / ODD_DIR
    target.mkdir()
    assert not procfs.is_mountpoint(target)
    subprocess.run(["mount", "-t", "tmpfs", "lab", str(target)], check=True)
    try:
        assert procfs.is_mountpoint(target) and procfs.is_mountpoint(tmp_path / "." / ODD_DIR)
        assert not procfs.is_mountpoint(tmp_path)
    finally:
        subprocess.run(["umount", str(target)], check=True)
    assert not procfs.is_mountpoint(target)


def test_an_odd_command_name_is_read_past_its_last_parenthesis(odd_process):
    pid = odd_process.pid
    assert Path(f"/proc/{pid}/comm").read_text() == ODD_COMM + "\n"
    assert procfs.running(pid) and _ps_state(pid) == "S"  # a parser stopping at the first ')' would see a zombie
    assert procfs.start_time(os.getpid()) <= procfs.start_time(pid)  # clock ticks since boot: we started first


def test_identity_names_one_process_and_no_later_one(odd_process):
    recorded = procfs.identity(odd_process.pid)
    assert recorded[0] == odd_process.pid and recorded[1] > 0
    assert procfs.is_alive(recorded) and not procfs.is_alive([recorded[0], recorded[1] + 1])
    assert not procfs.is_alive(None) and not procfs.is_alive([])


def test_a_zombie_is_not_running_and_a_reaped_process_has_no_start_time(odd_process):
    pid, recorded = odd_process.pid, procfs.identity(odd_process.pid)
    os.kill(pid, signal.SIGKILL)
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # dead, not yet collected: a zombie
    assert _ps_state(pid) == "Z"
    assert procfs.start_time(pid) == recorded[1] and not procfs.running(pid) and not procfs.is_alive(recorded)
    odd_process.wait()
    assert procfs.start_time(pid) == -1 and not procfs.running(pid)


def test_parse_cgroup_keys_each_hierarchy_by_its_controllers():
    text = "12:cpu,cpuacct:/lab\n4:memory:/\n1:name=systemd:/user.slice\n0::/user.slice/session-2.scope\n"
    assert procfs.parse_cgroup(text) == {frozenset({"cpu", "cpuacct"}): "/lab", frozenset({"memory"}): "/",
                                         frozenset({"name=systemd"}): "/user.slice",
                                         frozenset(): "/user.slice/session-2.scope"}


def test_cgroup_paths_name_the_group_a_process_was_moved_to(odd_process):
    hierarchy = cgroups.detect()
    with hierarchy.create(f"lxclab-procfs-{os.getpid()}", Limits(pids=10)) as group:
        group.add(odd_process.pid)
        memory = frozenset({"memory"}) if hierarchy.version == 1 else frozenset()  # the key of the memory line
        assert procfs.cgroup_paths(odd_process.pid)[memory].endswith("/" + group.name)
        assert not procfs.cgroup_paths()[memory].endswith("/" + group.name)  # this process stayed where it was


def test_kill_and_wait_asks_again_each_round_until_nothing_is_left():
    children = [subprocess.Popen(["sleep", "600"]) for _ in range(3)]
    left = procfs.kill_and_wait(lambda: [c.pid for c in children if c.poll() is None])
    assert left == [] and [c.returncode for c in children] == [-signal.SIGKILL] * 3


def test_wait_gone_without_kill_returns_what_is_still_there(odd_process):
    assert procfs.wait_gone(lambda: [odd_process.pid] if procfs.running(odd_process.pid) else [], 0.05) == [
        odd_process.pid]
    assert odd_process.poll() is None  # waiting alone sends nothing


# A PID namespace's init that takes SIGINT only once `go` exists: it says "up" with SIGINT at its default, waits for
# `go`, then catches SIGINT (saying "settled"), and says "caught" when one comes.
LATE_INIT = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_DFL)
print("up", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.01)
signal.signal(signal.SIGINT, lambda *_: (os.write(1, b"caught\\n"), os._exit(0)))  # print could re-enter stdout
print("settled", flush=True)
time.sleep(600)
"""


@pytest.fixture
def late_init(tmp_path: Path):
    """LATE_INIT as PID 1 of a new PID namespace: (its host PID, its output, the file that lets it settle)."""
    go = tmp_path / "go"
    child = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", sys.executable, "-c", LATE_INIT, str(go)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "up\n"
    init_pid = int(Path(f"/proc/{child.pid}/task/{child.pid}/children").read_text().split()[0])
    yield init_pid, child.stdout, go
    child.kill()
    child.wait()


def test_a_namespace_init_drops_a_signal_until_it_has_settled_its_signals(late_init):
    init_pid, output, go = late_init
    assert not procfs.settled_for(init_pid, signal.SIGINT)
    os.kill(init_pid, signal.SIGINT)  # the kernel drops it: a namespace's init at SIGINT's default
    go.touch()
    assert output.readline() == "settled\n"  # it outlived the SIGINT, then set up its handler
    assert procfs.settled_for(init_pid, signal.SIGINT)
    os.kill(init_pid, signal.SIGINT)
    assert output.readline() == "caught\n"


def test_an_init_that_blocks_ignores_or_waits_for_a_signal_has_settled_it_and_a_gone_one_needs_no_wait():
    script = ("import signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); signal.signal(signal.SIGUSR1, "
              "signal.SIG_IGN); signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGPWR, signal.SIGTERM]); "
              "print(1, flush=True); sys.stdin.readline(); signal.sigtimedwait([signal.SIGTERM], 600)")
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "1\n"
        assert [procfs.settled_for(child.pid, s) for s in (signal.SIGINT, signal.SIGPWR, signal.SIGUSR1)] == [
            False, True, True]
        child.stdin.write("\n")
        child.stdin.flush()  # now in sigtimedwait, which unblocks SIGTERM meanwhile: no set shows it
        assert eventually(lambda: Path(f"/proc/{child.pid}/wchan").read_text().startswith("do_sigtimedwait"))
        assert _status_bit(child.pid, "SigBlk", signal.SIGTERM) == 0 and procfs.settled_for(child.pid, signal.SIGTERM)
    finally:
        child.kill()
        child.wait()
    assert procfs.settled_for(child.pid, signal.SIGINT)  # reaped: nothing left to wait for


def _status_bit(pid: int, field: str, signum: int) -> int:
    """Bit `signum` of signal set `field` in /proc/PID/status."""
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith(field + ":"))
    return int(line.split()[1], 16) >> (signum - 1) & 1


def test_a_forked_child_has_not_execed_until_it_runs_another_program():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the same program as its parent until it execs sleep
        os.read(read, 1)
        os.execvp("sleep", ["sleep", "60"])
    try:
        assert not procfs.has_execed(pid)
        os.write(write, b"x")
        assert eventually(lambda: procfs.has_execed(pid))
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read)
        os.close(write)
