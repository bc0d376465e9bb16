"""cgroups: limit parsing, the v1 backend on this host's kernel, the v2 backend on a v2-shaped tree."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from lxclab import cgroups, namespaces
from lxclab.cgroups import CONTROLLERS, Hierarchy, Stats
from lxclab.chroot import ExitStatus, in_child
from lxclab.errors import CgroupError
from lxclab.limits import Limits, MiB


def unique_name() -> str:
    return f"lxclab-test-{uuid.uuid4().hex[:10]}"


# --- detection ----------------------------------------------------------------------------
V1_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
"""
V1_CGROUP = "4:memory:/docker/abc\n3:cpu,cpuacct:/lab\n8:pids:/\n0::/\n"
V2_MOUNTINFO = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
V2_CGROUP = "0::/user.slice/user-1000.slice/session-2.scope\n"


def test_detect_v1_finds_each_controllers_own_directory():
    found = cgroups.detect(V1_MOUNTINFO, V1_CGROUP)
    assert found == Hierarchy(1, {
        "cpu": Path("/sys/fs/cgroup/cpu,cpuacct/lab"), "cpuacct": Path("/sys/fs/cgroup/cpu,cpuacct/lab"),
        "memory": Path("/sys/fs/cgroup/memory"),  # the mount's root is already our cgroup
        "pids": Path("/sys/fs/cgroup/pids"),
    })


def test_detect_v2_from_mountinfo():
    found = cgroups.detect(V2_MOUNTINFO, V2_CGROUP)
    assert found.version == 2
    assert set(found.own_dirs.values()) == {Path("/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope")}


def test_detect_without_any_cgroup_mount_says_what_to_mount():
    with pytest.raises(CgroupError, match="mount cgroup2"):
        cgroups.detect("22 27 0:21 / /proc rw - proc proc rw\n", "0::/\n")


def test_detect_on_this_host_finds_v1_and_our_memory_cgroup():
    found = cgroups.detect()
    ours = next(line.split(":", 2)[2] for line in Path("/proc/self/cgroup").read_text().splitlines()
                if line.split(":")[1] == "memory")
    assert found.version == 1
    assert found.own_dirs["memory"] == Path("/sys/fs/cgroup/memory" + ours.rstrip("/"))


# --- v1 on the real kernel ----------------------------------------------------------------
def test_v1_group_is_created_under_our_own_cgroup_limited_and_removed():
    hierarchy = cgroups.detect()
    with cgroups.create(unique_name(), Limits(memory_bytes=64 * MiB, cpus=0.5, pids=10)) as group:
        assert {Path(p).parent for p in group.paths} == set(hierarchy.own_dirs.values())
        assert (group.dirs["memory"] / "memory.limit_in_bytes").read_text() == f"{64 * MiB}\n"
        assert (group.dirs["cpu"] / "cpu.cfs_quota_us").read_text() == "50000\n"
        stats = group.stats()
        assert (stats.memory_limit_bytes, stats.cpu_limit, stats.pids_limit) == (64 * MiB, 0.5, 10)
        assert (stats.pids, stats.oom_kills) == (0, 0)
    assert not any(Path(p).exists() for p in group.paths)
    group.remove()  # a second time is harmless


def test_v1_unlimited_group_reads_as_none():
    with cgroups.create(unique_name()) as group:
        stats = group.stats()
    assert (stats.memory_limit_bytes, stats.cpu_limit, stats.pids_limit) == (None, None, None)


def test_an_existing_or_invalid_name_is_refused():
    with cgroups.create(unique_name()) as group:
        with pytest.raises(CgroupError, match="File exists; remove it"):
            cgroups.create(group.name)
    with pytest.raises(CgroupError, match="invalid cgroup name"):
        cgroups.create("../escape")


def _create_as_nobody(name: str) -> None:
    os.setuid(65534)
    cgroups.create(name)


def test_a_user_without_rights_gets_a_clear_error():
    with pytest.raises(CgroupError, match="Permission denied; run as root"):
        in_child(_create_as_nobody, unique_name())


def test_memory_hog_is_oom_killed_at_its_limit_and_reported(busybox_rootfs):
    with cgroups.create(unique_name(), Limits.parse(memory="32m")) as group:
        done = namespaces.run(busybox_rootfs, ["sh", "-c", "head -c 200m /dev/zero | tail"], cgroup=group)
        stats = group.stats()
    # SIGKILL from the OOM killer: sh reports its child tail killed (137), or sh itself was the victim
    assert done.status in (ExitStatus(code=137), ExitStatus(signal=signal.SIGKILL)) and done.status.exit_code == 137
    assert stats.oom_kills >= 1
    assert 24 * MiB <= stats.memory_peak_bytes <= 32 * MiB


def test_cpu_spinner_gets_its_quota(busybox_rootfs):
    with cgroups.create(unique_name(), Limits.parse(cpus="0.2")) as group:
        process = namespaces.spawn(busybox_rootfs, ["sh", "-c", "while :; do :; done"], cgroup=group)
        try:
            time.sleep(0.3)
            start, started = group.stats(), time.monotonic()
            time.sleep(2)
            end, ended = group.stats(), time.monotonic()
        finally:
            process.kill()
            process.wait()
    share = (end.cpu_usage_ns - start.cpu_usage_ns) / 1e9 / (ended - started)
    # The quota is a ceiling: a busy machine may give the spinner less, never more. Being throttled
    # proves it reached the ceiling; without a limit it would take a whole CPU.
    assert 0.02 < share <= 0.2 * 1.10
    assert end.cpu_throttled_periods > start.cpu_throttled_periods


def test_fork_bomb_stops_at_pids_max_and_the_host_is_unaffected(busybox_rootfs):
    with cgroups.create(unique_name(), Limits(pids=20)) as group:
        with open(os.devnull, "w") as quiet:
            process = namespaces.spawn(busybox_rootfs, ["sh", "-c", "bomb() { bomb | bomb & }; bomb; exec sleep 60"],
                                       cgroup=group, stdout=quiet.fileno(), stderr=quiet.fileno())
        try:
            deadline = time.monotonic() + 10
            while group.stats().pids_denied == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            samples = [group.stats().pids for _ in range(50)]
            assert group.stats().pids_denied > 0
            assert max(samples) <= 20
            assert subprocess.run(["true"]).returncode == 0  # the host can still fork
        finally:
            group.kill()
            process.wait()
    assert not any(Path(p).exists() for p in group.paths)


# --- v2 on a v2-shaped directory tree (this host is v1) -----------------------------------
@pytest.fixture
def v2_tree(tmp_path) -> Hierarchy:
    own = tmp_path / "unified/user.slice/session-1.scope"
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids\n")
    (own / "cgroup.subtree_control").write_text("cpu\n")
    return Hierarchy(2, {controller: own for controller in CONTROLLERS})


def test_v2_tree_limits_are_written_in_v2_format(v2_tree):
    group = v2_tree.create("lxclab-a", Limits(memory_bytes=64 * MiB, cpus=0.2, pids=20))
    own = v2_tree.own_dirs["memory"]
    assert group.version == 2 and group.paths == [str(own / "lxclab-a")]
    assert (own / "cgroup.subtree_control").read_text() == "+memory +pids\n"  # cpu was enabled already
    assert (own / "lxclab-a/memory.max").read_text() == f"{64 * MiB}\n"
    assert (own / "lxclab-a/cpu.max").read_text() == "20000 100000\n"
    assert (own / "lxclab-a/pids.max").read_text() == "20\n"


def test_v2_tree_stats_are_read_from_v2_files(v2_tree):
    group = v2_tree.create("lxclab-b")
    files = {
        "memory.current": "1234\n", "memory.peak": "5678\n", "memory.max": "max\n",
        "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
        "cpu.stat": "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n"
                    "nr_periods 30\nnr_throttled 25\nthrottled_usec 1200000\n",
        "cpu.max": "20000 100000\n", "pids.current": "5\n", "pids.max": "max\n", "pids.events": "max 7\n",
    }
    for name, text in files.items():
        (Path(group.paths[0]) / name).write_text(text)
    assert group.stats() == Stats(
        memory_bytes=1234, memory_peak_bytes=5678, memory_limit_bytes=None, oom_kills=1,
        cpu_usage_ns=2_500_000_000, cpu_periods=30, cpu_throttled_periods=25, cpu_throttled_ns=1_200_000_000,
        cpu_limit=0.2, pids=5, pids_limit=None, pids_denied=7,
    )


def test_v2_tree_without_memory_peak_reports_peak_unknown(v2_tree):
    group = v2_tree.create("lxclab-c")
    for name, text in {"memory.current": "10\n", "cpu.stat": "usage_usec 1\n", "cpu.max": "max 100000\n",
                       "pids.current": "1\n", "pids.max": "9\n"}.items():
        (Path(group.paths[0]) / name).write_text(text)
    stats = group.stats()
    assert (stats.memory_peak_bytes, stats.cpu_limit, stats.pids_limit, stats.oom_kills) == (None, None, 9, 0)


def test_v2_tree_kill_uses_cgroup_kill_and_remove_deletes_the_group(v2_tree):
    group = v2_tree.create("lxclab-d")
    directory = Path(group.paths[0])
    (directory / "cgroup.kill").write_text("")
    (directory / "cgroup.procs").write_text("")
    group.kill()
    assert (directory / "cgroup.kill").read_text() == "1\n"
    for name in ("cgroup.kill", "cgroup.procs"):  # the kernel empties a cgroup directory on rmdir
        (directory / name).unlink()
    group.remove()
    assert not directory.exists()


def test_v2_tree_missing_controllers_are_reported(v2_tree):
    (v2_tree.own_dirs["memory"] / "cgroup.controllers").write_text("cpu io\n")
    with pytest.raises(CgroupError, match=r"lacks controllers \['memory', 'pids'\]"):
        v2_tree.create("lxclab-e")
