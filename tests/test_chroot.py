"""chroot, its classic escape, and pivot_root, which the escape cannot beat."""

from __future__ import annotations

import os
import signal
import socket

import pytest
from fixture_kernel import mounts_under

from lxclab import chroot
from lxclab.chroot import ESCAPE_DIR, ExitStatus, in_child
from lxclab.errors import KernelError


def test_run_chrooted_sees_the_rootfs_and_passes_the_exit_status_through(busybox_rootfs):
    done = chroot.run_chrooted(busybox_rootfs, ["sh", "-c", "cat /etc/group; ls /; exit 3"])
    assert done.status == ExitStatus(code=3)
    assert done.output.startswith("root:x:0:\nnogroup:x:65534:\n")
    assert "linuxrc" in done.output.split()  # a busybox applet link, not in the host's /
    assert "work" not in done.output.split()


def test_chroot_alone_shares_the_hosts_processes_and_host_name(busybox_rootfs):
    done = chroot.run_chrooted(busybox_rootfs, ["sh", "-c", "echo $$; hostname"])
    pid, hostname = done.output.split()
    assert int(pid) > 1  # a PID of the host's namespace, not PID 1 of its own
    assert hostname == socket.gethostname()


def test_run_chrooted_reports_a_missing_command(busybox_rootfs):
    done = chroot.run_chrooted(busybox_rootfs, ["no-such-command"])
    assert done.status.exit_code == 127
    assert "cannot run 'no-such-command'" in done.output


def test_plain_chroot_can_be_escaped_to_the_hosts_root(busybox_rootfs):
    seen = chroot.escape(busybox_rootfs)
    assert set(seen) == set(os.listdir("/"))
    assert not (busybox_rootfs / ESCAPE_DIR).exists()


def test_pivot_root_in_a_mount_namespace_defeats_the_escape(busybox_rootfs):
    seen = chroot.escape(busybox_rootfs, use_pivot_root=True)
    assert seen == sorted(os.listdir(busybox_rootfs))
    assert "work" not in seen
    assert mounts_under(busybox_rootfs) == []
    assert not (busybox_rootfs / ESCAPE_DIR).exists()


def _pivot_without_bind(rootfs: str) -> None:
    chroot.private_mount_namespace()
    chroot.pivot_into(rootfs)


def test_pivot_into_a_directory_that_is_no_mount_point_says_what_to_do(busybox_rootfs):
    with pytest.raises(KernelError, match="bind-mount it onto itself"):
        in_child(_pivot_without_bind, str(busybox_rootfs))


def _pid_of_child() -> int:
    return os.getpid()


def test_in_child_runs_in_another_process_and_returns_its_result():
    assert in_child(_pid_of_child) != os.getpid()


def _fail() -> None:
    raise ValueError("broken on purpose")


def test_in_child_raises_the_childs_error_as_a_kernel_error():
    with pytest.raises(KernelError, match="ValueError: broken on purpose"):
        in_child(_fail)


@pytest.mark.parametrize("raw, status, text, shell", [
    (42 << 8, ExitStatus(code=42), "exited with 42", 42),
    (0, ExitStatus(code=0), "exited with 0", 0),
    (signal.SIGKILL, ExitStatus(signal=signal.SIGKILL), "killed by SIGKILL", 137),
    (signal.SIGTERM, ExitStatus(signal=signal.SIGTERM), "killed by SIGTERM", 143),
])
def test_exit_status_decodes_wait_statuses(raw, status, text, shell):
    decoded = ExitStatus.from_wait_status(raw)
    assert decoded == status
    assert str(decoded) == text
    assert decoded.exit_code == shell
