"""The libc wrappers in lxclab._linux, against the real kernel, each in a forked child."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from lxclab import _linux
from lxclab.chroot import in_child, private_mount_namespace
from lxclab.errors import KernelError


def _hostname_after_unshare(name: str) -> str:
    _linux.unshare(_linux.CLONE_NEWUTS)
    _linux.sethostname(name)
    return socket.gethostname()


def test_unshare_uts_gives_the_child_its_own_hostname():
    host = socket.gethostname()
    assert in_child(_hostname_after_unshare, "lxclab-test-box") == "lxclab-test-box"
    assert socket.gethostname() == host


def _join_uts_of(pid: int) -> str:
    fd = os.open(f"/proc/{pid}/ns/uts", os.O_RDONLY)
    _linux.setns(fd, _linux.CLONE_NEWUTS)
    return socket.gethostname()


def test_setns_joins_the_uts_namespace_that_unshare_1_made():
    # util-linux unshare(1) is the independent oracle that makes the namespace.
    other = subprocess.Popen(["unshare", "--uts", "sh", "-c", "hostname oracle-box && echo ready && exec sleep 30"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline() == "ready\n"
        assert in_child(_join_uts_of, other.pid) == "oracle-box"
    finally:
        other.kill()
        other.wait()
        other.stdout.close()


def _unshare_user_with_a_thread() -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        _linux.unshare(_linux.CLONE_NEWUSER)
    finally:
        stop.set()
        thread.join()


def test_unshare_user_in_a_threaded_process_explains_why_it_fails():
    with pytest.raises(KernelError, match="single-threaded") as caught:
        in_child(_unshare_user_with_a_thread)
    assert caught.value.errno == errno.EINVAL


def _pivot_into_a_plain_directory(directory: str) -> None:
    private_mount_namespace()
    _linux.pivot_root(directory, directory)


def test_pivot_root_needs_a_mount_point(tmp_path):
    with pytest.raises(KernelError, match="must be a mount point") as caught:
        in_child(_pivot_into_a_plain_directory, str(tmp_path))
    assert caught.value.errno in (errno.EINVAL, errno.EBUSY)  # EBUSY when it shares the root's mount


def test_mount_error_names_the_call_and_the_errno(tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(KernelError, match=r"mount\('tmpfs', .*missing.*No such file") as caught:
        in_child(_linux.mount, "tmpfs", str(missing), "tmpfs")
    assert caught.value.errno == errno.ENOENT


def _mount_tmpfs_in_private_namespace(target: str) -> list[str]:
    private_mount_namespace()
    _linux.mount("tmpfs", target, "tmpfs", _linux.MS_NOSUID)
    Path(target, "inside").write_text("x")
    seen = os.listdir(target)
    _linux.umount(target)
    return seen


def test_mounts_in_a_private_mount_namespace_never_reach_the_host(tmp_path):
    assert in_child(_mount_tmpfs_in_private_namespace, str(tmp_path)) == ["inside"]
    assert list(tmp_path.iterdir()) == []
    assert str(tmp_path) not in Path("/proc/self/mountinfo").read_text()


def test_sethostname_refuses_names_longer_than_64_bytes():
    with pytest.raises(KernelError, match="sethostname"):
        in_child(_hostname_after_unshare, "x" * 65)


def _dumpable_after_setuid() -> tuple[int, int]:
    os.setuid(65534)
    before = _linux.prctl(3)  # PR_GET_DUMPABLE
    _linux.prctl(_linux.PR_SET_DUMPABLE, 1)
    return before, _linux.prctl(3)


def test_setuid_clears_dumpable_and_prctl_sets_it_back():
    assert in_child(_dumpable_after_setuid) == (0, 1)


def _lo_before_and_after_set_link_up() -> tuple[str, str]:
    _linux.unshare(_linux.CLONE_NEWNET)
    show = ["ip", "-o", "link", "show", "lo"]
    before = subprocess.run(show, capture_output=True, text=True, check=True).stdout
    _linux.set_link_up("lo")
    return before, subprocess.run(show, capture_output=True, text=True, check=True).stdout


def test_set_link_up_brings_lo_up_in_a_new_network_namespace():
    before, after = in_child(_lo_before_and_after_set_link_up)
    assert "<LOOPBACK>" in before and "state DOWN" in before
    assert "<LOOPBACK,UP,LOWER_UP>" in after


def test_set_link_up_on_a_missing_interface_is_a_kernel_error():
    with pytest.raises(KernelError, match="no-such-if0"):
        in_child(_linux.set_link_up, "no-such-if0")


def test_namespace_names_are_readable():
    assert _linux.namespace_names(_linux.CLONE_NEWNS | _linux.CLONE_NEWPID) == "CLONE_NEWNS|CLONE_NEWPID"
    assert _linux.namespace_names(0) == "0"
    assert set(_linux.NAMESPACE_FLAGS) == set(os.listdir("/proc/self/ns")) - {"pid_for_children", "time",
                                                                              "time_for_children"}
