"""Containers from namespaces alone: what the command sees inside, status passing, rootless mode."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid

import pytest
from fixture_kernel import children, mounts_under, open_fds

from lxclab import cgroups, namespaces
from lxclab.chroot import ExitStatus
from lxclab.errors import CgroupError, CommandNotFound, SpawnError
from lxclab.container_init import DEV_NODES, KINDS, Mount, resolve_user


def test_the_command_is_pid_1(busybox_rootfs):
    done = namespaces.run(busybox_rootfs, ["/bin/busybox", "sh", "-c", "echo $$"])
    assert done.status == ExitStatus(code=0)
    assert done.output == "1\n"


def test_the_hostname_is_its_own(busybox_rootfs):
    host = socket.gethostname()
    done = namespaces.run(busybox_rootfs, ["hostname"], hostname="lxclab-box")
    assert done.output == "lxclab-box\n"
    assert socket.gethostname() == host


def test_a_new_network_namespace_shows_only_lo_and_it_is_up(busybox_rootfs):
    done = namespaces.run(busybox_rootfs, ["sh", "-c", "ls /sys/class/net; ip -o link"])
    names, links = done.output.split("\n", 1)
    assert names == "lo"
    assert len(links.splitlines()) == 1 and "lo: <LOOPBACK,UP,LOWER_UP>" in links


def test_host_processes_are_not_visible(busybox_rootfs):
    done = namespaces.run(busybox_rootfs, ["sh", "-c", "ls /proc | grep -E '^[0-9]+$'; ps -o pid,comm"])
    numbers = [line for line in done.output.splitlines() if line.isdigit()]
    assert "1" in numbers and len(numbers) <= 3  # sh, ps (and the ls that may still be reaped)
    assert "pytest" not in done.output and "python" not in done.output


def test_host_mounts_are_not_visible(busybox_rootfs):
    done = namespaces.run(busybox_rootfs, ["cat", "/proc/mounts"])
    mount_points = {line.split()[1] for line in done.output.splitlines()}
    expected = {"/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/sys"} | {f"/dev/{node}" for node in DEV_NODES}
    assert mount_points == expected
    assert str(busybox_rootfs) not in done.output


def test_dev_holds_working_host_nodes(busybox_rootfs):
    done = namespaces.run(busybox_rootfs, ["sh", "-c", "head -c 4 /dev/zero | wc -c; head -c 8 /dev/urandom | wc -c; "
                                                       "echo gone > /dev/null && echo ok"])
    assert done.output.split() == ["4", "8", "ok"]


def test_exit_status_is_passed_through(busybox_rootfs):
    assert namespaces.run(busybox_rootfs, ["sh", "-c", "exit 42"]).status == ExitStatus(code=42)


def test_a_killed_container_is_reported_killed_by_its_signal(busybox_rootfs):
    process = namespaces.spawn(busybox_rootfs, ["sleep", "30"])
    assert process.poll() is None
    process.kill(signal.SIGKILL)  # PID 1 ignores signals it has no handler for, except SIGKILL from outside
    assert process.wait(timeout=10) == ExitStatus(signal=signal.SIGKILL)


def test_a_signal_to_a_process_without_a_pid_namespace_is_reported(busybox_rootfs):
    done = namespaces.run(busybox_rootfs, ["sh", "-c", "kill -TERM $$"], namespaces=KINDS - {"pid", "user"})
    assert done.status == ExitStatus(signal=signal.SIGTERM)
    assert str(done.status) == "killed by SIGTERM"


@pytest.mark.parametrize("kind", sorted(KINDS - {"user"}))
def test_each_namespace_can_be_switched_on_and_off(busybox_rootfs, kind):
    ours = os.readlink(f"/proc/self/ns/{kind}")
    for wanted in (KINDS - {"user"}, KINDS - {"user", kind}):
        process = namespaces.spawn(busybox_rootfs, ["sleep", "30"], namespaces=wanted)
        try:
            assert (process.namespace_ids()[kind] != ours) == (kind in wanted)
        finally:
            process.kill()
            process.wait()


def test_without_a_mount_namespace_the_root_is_only_chrooted(busybox_rootfs):
    done = namespaces.run(busybox_rootfs, ["sh", "-c", "ls /; ls /proc | wc -l"], namespaces={"pid", "uts"})
    assert "linuxrc" in done.output.split() and done.output.split()[-1] == "0"  # no /proc mounted
    assert mounts_under(busybox_rootfs) == []


def test_a_missing_command_is_a_clear_error_and_leaves_nothing(busybox_rootfs):
    before = children()
    with pytest.raises(CommandNotFound, match="'no-such-command' not found in the image"):
        namespaces.spawn(busybox_rootfs, ["no-such-command"])
    assert mounts_under(busybox_rootfs) == []
    assert children() == before  # the waiter was reaped


def test_a_cgroup_that_refuses_the_process_stops_the_start_and_leaves_nothing(busybox_rootfs):
    group = cgroups.create(f"lxclab-test-{uuid.uuid4().hex[:8]}")
    group.remove()  # its directories are gone: adding a process must fail
    before = children()
    with pytest.raises(CgroupError, match="cannot write"):
        namespaces.spawn(busybox_rootfs, ["true"], cgroup=group)
    assert children() == before  # the waiter and the first process were collected
    assert mounts_under(busybox_rootfs) == []


def test_env_cwd_and_user_come_from_the_arguments(busybox_rootfs):
    done = namespaces.run(busybox_rootfs, ["sh", "-c", "id -u; id -g; pwd; echo $GREETING; echo $PATH"],
                          env={"GREETING": "hello"}, cwd="/srv/app", user="nobody")
    assert done.output.split() == ["65534", "65534", "/srv/app", "hello", namespaces.DEFAULT_PATH]
    assert (busybox_rootfs / "srv/app").is_dir()  # the working directory is made, as Docker does


def test_an_unknown_user_is_a_clear_error(busybox_rootfs):
    with pytest.raises(SpawnError, match="user 'alice' is not in the image's /etc/passwd"):
        namespaces.spawn(busybox_rootfs, ["true"], user="alice")


@pytest.mark.parametrize("spec, expected", [
    (None, (0, 0, [])),
    ("nobody", (65534, 65534, [])),
    ("65534", (65534, 65534, [])),
    ("1234", (1234, 0, [])),
    ("nobody:root", (65534, 0, [])),
    ("root:7", (0, 7, [])),
    ("app", (1000, 1000, [27])),
])
def test_resolve_user_reads_passwd_and_group(spec, expected):
    passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\napp:x:1000:1000::/app:/bin/sh\n"
    group = "root:x:0:\nsudo:x:27:app,bob\napp:x:1000:\nnogroup:x:65534:\n"
    assert resolve_user(spec, passwd, group) == expected


def test_a_cgroup_receives_the_container_which_sees_it_as_its_root(busybox_rootfs):
    with cgroups.create(f"lxclab-test-{uuid.uuid4().hex[:8]}") as group:
        process = namespaces.spawn(busybox_rootfs, ["sleep", "30"], cgroup=group)
        try:
            assert process.pid in group.pids()
        finally:
            process.kill()
            process.wait()
        done = namespaces.run(busybox_rootfs, ["cat", "/proc/self/cgroup"], cgroup=group)
    assert all(line.endswith(":/") for line in done.output.splitlines())


def test_enter_runs_a_command_inside_a_running_container(busybox_rootfs, tmp_path):
    process = namespaces.spawn(busybox_rootfs, ["sleep", "30"], hostname="entered")
    try:
        with open(tmp_path / "out", "w+") as output:
            inside = namespaces.enter(process.pid, ["sh", "-c", "hostname; cat /proc/1/cmdline; echo; ls /"],
                                      stdout=output.fileno())
            assert inside.wait(timeout=10) == ExitStatus(code=0)
            output.seek(0)
            hostname, cmdline, listing = output.read().split("\n", 2)
    finally:
        process.kill()
        process.wait()
    assert (hostname, cmdline) == ("entered", "sleep\x0030\x00")
    assert "linuxrc" in listing.split()


def test_the_waiter_writes_the_status_file(busybox_rootfs, tmp_path):
    process = namespaces.spawn(busybox_rootfs, ["sh", "-c", "exit 7"], status_file=str(tmp_path / "status"))
    assert process.wait() == ExitStatus(code=7)
    assert ExitStatus.from_wait_status(int((tmp_path / "status").read_text())) == ExitStatus(code=7)


def test_joining_a_netns_and_making_one_cannot_be_combined(busybox_rootfs):
    with pytest.raises(SpawnError, match="not both"):
        namespaces.spawn(busybox_rootfs, ["true"], netns="/proc/self/ns/net")


def test_extra_mounts_are_made_inside_the_container_only(busybox_rootfs):
    scratch = Mount("tmpfs", str(busybox_rootfs / "tmp"), "tmpfs", data="size=1m")
    done = namespaces.run(busybox_rootfs, ["sh", "-c", "grep ' /tmp ' /proc/mounts"], mounts=[scratch])
    assert done.output.startswith("tmpfs /tmp tmpfs")
    assert mounts_under(busybox_rootfs) == []


def test_extra_mounts_without_a_mount_namespace_are_refused(busybox_rootfs):
    with pytest.raises(SpawnError, match="need a mount namespace"):
        namespaces.spawn(busybox_rootfs, ["true"], namespaces={"pid"}, mounts=[Mount("tmpfs", "/mnt", "tmpfs")])


def test_nothing_leaks_after_200_runs(busybox_rootfs):
    fds, before = open_fds(), children()
    for number in range(200):
        done = namespaces.run(busybox_rootfs, ["sh", "-c", f"exit {number % 3}"], hostname=f"run{number}")
        assert done.status == ExitStatus(code=number % 3)
    assert mounts_under(busybox_rootfs) == []
    assert open_fds() <= fds, "a descriptor was left open"
    assert children() == before


ROOTLESS_SCRIPT = """
import sys
from lxclab import namespaces
done = namespaces.run(sys.argv[1], ["sh", "-c", "echo $$; hostname; id -u; cat /proc/self/uid_map; ls /sys/class/net"],
                      hostname="rootless-box")
print(done.status.exit_code, done.output, sep="\\n", end="")
"""


def test_rootless_mode_works_for_user_nobody(world_readable_rootfs, nobody_python):
    command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
               nobody_python.python, "-c", ROOTLESS_SCRIPT, str(world_readable_rootfs)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd="/", env=nobody_python.env())
    assert done.returncode == 0, done.stderr
    status, pid, hostname, uid, uid_map, interfaces = done.stdout.splitlines()
    assert (status, pid, hostname, uid, interfaces) == ("0", "1", "rootless-box", "0", "lo")
    assert uid_map.split() == ["0", "65534", "1"]  # root inside is nobody outside
