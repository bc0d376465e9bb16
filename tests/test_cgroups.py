"""cgroups: the vocabulary of both versions (pure), the v1 backend on this host's kernel, the device controller
of both (v2's eBPF program on this host's cgroup2 mount), v2 delegation on a v2-shaped tree and the leaf rule
on this host's own (hugetlb-only) cgroup2 mount."""

from __future__ import annotations

import errno
import os
import signal
import stat
import struct
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixture_engine import busybox, engine_home  # noqa: F401
from fixture_rootfs import FORK_BOMB

from lxclab import cgroups, namespaces
from lxclab.cgroups import (CONTROLLERS, DeviceRule, Hierarchy, Stats, Write, delegation, device_writes, devices_bpf,
                            limit_writes, parse_device_rule, parse_stats, stat_files)
from lxclab.chroot import ExitStatus, in_child
from lxclab.errors import CgroupError
from lxclab.engine import gc
from lxclab.engine import run as engine
from lxclab.limits import Limits, MiB
from lxclab.security import DEVICES_ALLOWED, Profile


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
    found = cgroups.detect(V2_MOUNTINFO, V2_CGROUP, systemd=True)
    assert (found.version, found.mount, found.systemd) == (2, Path("/sys/fs/cgroup"), True)
    assert set(found.own_dirs.values()) == {Path("/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope")}


def test_detect_lists_the_callers_cgroup_in_every_hierarchy_for_lxc():
    found = cgroups.detect(V1_MOUNTINFO, V1_CGROUP)
    assert found.everywhere == (Path("/sys/fs/cgroup/cpu,cpuacct/lab"), Path("/sys/fs/cgroup/memory"),
                                Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup/unified"))


def test_detect_v1_finds_the_devices_hierarchy_where_the_host_mounts_one():
    with_devices = V1_MOUNTINFO + "36 31 0:33 / /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices\n"
    found = cgroups.detect(with_devices, V1_CGROUP + "5:devices:/box\n")
    assert (found.devices, cgroups.detect(V1_MOUNTINFO, V1_CGROUP).devices) == (
        Path("/sys/fs/cgroup/devices/box"), None)
    assert found.parent_dirs()["devices"] == Path("/sys/fs/cgroup/devices/box")
    assert cgroups.detect(V2_MOUNTINFO, V2_CGROUP, systemd=True).devices is None  # v2: an eBPF program, none here


def test_device_writes_deny_everything_then_allow_the_list():
    assert device_writes(("c 1:3 rwm", "b *:* m")) == [
        Write("devices", "devices.deny", "a"), Write("devices", "devices.allow", "c 1:3 rwm"),
        Write("devices", "devices.allow", "b *:* m")]


@pytest.mark.parametrize("text, rule", [
    ("c 1:3 rwm", DeviceRule("c", 1, 3, "rwm")), ("b *:* m", DeviceRule("b", None, None, "m")),
    ("c 136:* wr", DeviceRule("c", 136, None, "wr")), ("a 7:0 r", DeviceRule("a", 7, 0, "r")),
    ("a", DeviceRule("a", None, None, "rwm")),
])
def test_device_rules_parse_into_type_numbers_and_access(text, rule):
    assert parse_device_rule(text) == rule


@pytest.mark.parametrize("text", ["", "c 1:3", "x 1:3 r", "c 1-3 r", "c 1:3 rx", "c 1:3 rr", "c a:3 r", "c 1:3 r m",
                                  "c 1:1048576 r", "a *:*"])
def test_a_malformed_device_rule_is_refused_by_both_versions(text):
    with pytest.raises(ValueError, match="device rule"):
        device_writes(("c 1:3 rwm", text))
    with pytest.raises(ValueError, match="device rule"):
        devices_bpf.device_program(("c 1:3 rwm", text))


def _listing(program: bytes) -> list[tuple[int, int, int, int, int]]:
    """An eBPF program as (opcode, dst, src, offset, immediate) rows."""
    return [(op, regs & 0xF, regs >> 4, off, imm) for op, regs, off, imm in struct.iter_unpack("<BBhi", program)]


# r2 = type, r3 = access, r4 = major, r5 = minor, from struct bpf_cgroup_dev_ctx at r1
PROLOGUE = [(0x61, 2, 1, 0, 0), (0x54, 2, 0, 0, 0xFFFF), (0x61, 3, 1, 0, 0), (0x74, 3, 0, 0, 16),
            (0x61, 4, 1, 4, 0), (0x61, 5, 1, 8, 0)]
ALLOW, DENY = [(0xB4, 0, 0, 0, 1), (0x95, 0, 0, 0, 0)], [(0xB4, 0, 0, 0, 0), (0x95, 0, 0, 0, 0)]
C_1_3_R = [(0x55, 2, 0, 5, 2),  # type != char: to the next rule, past the 5 that follow
           (0x45, 3, 0, 4, 0b101),  # asks to write (4) or mknod (1)
           (0x55, 4, 0, 3, 1), (0x55, 5, 0, 2, 3)]  # major != 1, minor != 3


def test_each_rule_becomes_jumps_to_the_next_past_its_allow_and_the_end_denies():
    any_block_not_mknod = [(0x55, 2, 0, 3, 1), (0x45, 3, 0, 2, 0b001)]  # no major or minor test: '*'
    assert _listing(devices_bpf.device_program(("c 1:3 r", "b *:* rw"))) == (
        PROLOGUE + C_1_3_R + ALLOW + any_block_not_mknod + ALLOW + DENY)


def test_a_rule_allowing_every_device_ends_the_program():
    everything = _listing(devices_bpf.device_program(("c 1:3 r", "a *:* rwm", "b 7:0 r")))
    assert everything == PROLOGUE + C_1_3_R + ALLOW + ALLOW  # the rest would be dead code, which the verifier refuses
    assert _listing(devices_bpf.device_program(())) == PROLOGUE + DENY


def test_detect_without_any_cgroup_mount_says_what_to_mount():
    with pytest.raises(CgroupError, match="mount cgroup2"):
        cgroups.detect("22 27 0:21 / /proc rw - proc proc rw\n", "0::/\n")


def test_detect_on_this_host_finds_our_memory_cgroup():
    found = cgroups.detect()
    lines = [line.split(":", 2) for line in Path("/proc/self/cgroup").read_text().splitlines()]
    v1 = [path for _, controllers, path in lines if "memory" in controllers.split(",")]
    if v1:  # this hybrid host
        assert found.version == 1 and found.own_dirs["memory"] == Path("/sys/fs/cgroup/memory" + v1[0].rstrip("/"))
    else:  # a pure v2 host
        ours = next(path for _, controllers, path in lines if controllers == "")
        assert found.version == 2 and found.own_dirs["memory"] == Path("/sys/fs/cgroup" + ours.rstrip("/"))


# --- the vocabulary: Limits -> writes, files -> Stats (pure, both versions) -----------------
LIMITS = Limits(memory_bytes=32 * MiB, cpus=0.2, pids=64)


@pytest.mark.parametrize("version, limits, swap, current, writes", [
    (1, LIMITS, False, None, [("memory", "memory.limit_in_bytes", "33554432"), ("cpu", "cpu.cfs_period_us", "100000"),
                              ("cpu", "cpu.cfs_quota_us", "20000"), ("pids", "pids.max", "64")]),
    (2, LIMITS, False, None, [("memory", "memory.max", "33554432"), ("cpu", "cpu.max", "20000 100000"),
                              ("pids", "pids.max", "64")]),
    # v1 memsw must never be below the memory limit: set after it when shrinking (or from unlimited)...
    (1, Limits(memory_bytes=32 * MiB), True, None,
     [("memory", "memory.limit_in_bytes", "33554432"), ("memory", "memory.memsw.limit_in_bytes", "33554432")]),
    (1, Limits(memory_bytes=32 * MiB), True, 64 * MiB,
     [("memory", "memory.limit_in_bytes", "33554432"), ("memory", "memory.memsw.limit_in_bytes", "33554432")]),
    # ... and before it when the limit grows
    (1, Limits(memory_bytes=64 * MiB), True, 32 * MiB,
     [("memory", "memory.memsw.limit_in_bytes", "67108864"), ("memory", "memory.limit_in_bytes", "67108864")]),
    (2, Limits(memory_bytes=64 * MiB), True, 32 * MiB,
     [("memory", "memory.max", "67108864"), ("memory", "memory.swap.max", "0")]),
    (1, Limits(cpus=1.5), False, None, [("cpu", "cpu.cfs_period_us", "100000"), ("cpu", "cpu.cfs_quota_us", "150000")]),
    (2, Limits(), True, None, []),
])
def test_limit_writes_of_each_version(version, limits, swap, current, writes):
    assert limit_writes(limits, version, swap, current) == [Write(*w) for w in writes]


V1_FILES = {
    "memory.usage_in_bytes": "1234\n", "memory.max_usage_in_bytes": "5678\n",
    "memory.limit_in_bytes": "9223372036854771712\n",
    "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", "cpuacct.usage": "2500000000\n",
    "cpu.stat": "nr_periods 30\nnr_throttled 25\nthrottled_time 1200000000\n",
    "cpu.cfs_quota_us": "20000\n", "cpu.cfs_period_us": "100000\n",
    "pids.current": "5\n", "pids.max": "max\n", "pids.events": "max 7\n",
}
V2_FILES = {
    "memory.current": "1234\n", "memory.peak": "5678\n", "memory.max": "max\n",
    "memory.events": "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\noom_group_kill 0\n",
    "cpu.stat": "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n"
                "nr_periods 30\nnr_throttled 25\nthrottled_usec 1200000\n",
    "cpu.max": "20000 100000\n", "pids.current": "5\n", "pids.max": "max\n", "pids.events": "max 7\n",
}
SAME_STATS = Stats(memory_bytes=1234, memory_peak_bytes=5678, memory_limit_bytes=None, oom_kills=2,
                   cpu_usage_ns=2_500_000_000, cpu_periods=30, cpu_throttled_periods=25, cpu_throttled_ns=1_200_000_000,
                   cpu_limit=0.2, pids=5, pids_limit=None, pids_denied=7)


@pytest.mark.parametrize("version, files, stats", [
    (1, V1_FILES, SAME_STATS),
    (2, V2_FILES, SAME_STATS),
    (1, {"memory.limit_in_bytes": "33554432\n", "cpu.cfs_quota_us": "-1\n", "cpu.cfs_period_us": "100000\n",
         "pids.max": "64\n"},
     Stats(0, None, 32 * MiB, 0, 0, 0, 0, 0, None, 0, 64, 0)),
    (2, {"memory.max": "33554432\n", "cpu.max": "max 100000\n", "pids.max": "64\n"},
     Stats(0, None, 32 * MiB, 0, 0, 0, 0, 0, None, 0, 64, 0)),
    (2, {}, Stats(0, None, None, 0, 0, 0, 0, 0, None, 0, None, 0)),  # an old kernel without memory.peak, say
])
def test_parse_stats_of_each_version(version, files, stats):
    assert parse_stats(version, files) == stats


def test_stat_files_name_every_file_parse_stats_reads_and_only_those():
    assert {file for _, file in stat_files(1)} == set(V1_FILES)
    assert {file for _, file in stat_files(2)} == set(V2_FILES)
    assert stat_files(1, ("cpu_usage_ns",)) == [("cpuacct", "cpuacct.usage")]
    assert stat_files(2, ("cpu_limit", "cpu_periods")) == [("cpu", "cpu.max"), ("cpu", "cpu.stat")]
    with pytest.raises(ValueError, match="version 3"):
        stat_files(3)


def test_memory_limit_round_trips_through_the_vocabulary_on_both_versions():
    for version in (1, 2):
        texts = {file: value for _, file, value in limit_writes(LIMITS, version)}
        stats = parse_stats(version, texts)
        assert (stats.memory_limit_bytes, stats.cpu_limit, stats.pids_limit) == (32 * MiB, 0.2, 64)


# --- this host's kernel (v1 here, v2 in the VM) --------------------------------------------
def test_group_is_created_where_lxclabs_groups_go_limited_and_removed():
    hierarchy = cgroups.detect()
    with cgroups.create(unique_name(), Limits(memory_bytes=64 * MiB, cpus=0.5, pids=10)) as group:
        parents = {c: d for c, d in hierarchy.parent_dirs().items() if c != cgroups.DEVICES}  # only when asked
        assert {Path(p).parent for p in group.paths} == set(parents.values())
        if hierarchy.version == 1:  # v1: under the caller's own; v2: never there
            assert parents == hierarchy.own_dirs
        else:
            _assert_v2_delegated(hierarchy, Path(group.paths[0]).parent)
        for controller, file, value in limit_writes(Limits(memory_bytes=64 * MiB, cpus=0.5), hierarchy.version):
            assert (group.dirs[controller] / file).read_text() == f"{value}\n"
        stats = group.stats()
        assert (stats.memory_limit_bytes, stats.cpu_limit, stats.pids_limit) == (64 * MiB, 0.5, 10)
        assert (stats.pids, stats.oom_kills) == (0, 0)
    assert not any(Path(p).exists() for p in group.paths)
    group.remove()  # a second time is harmless


def _assert_v2_delegated(hierarchy: Hierarchy, base: Path) -> None:
    """On v2 the parent is not the caller's cgroup, holds no process, and hands down cpu, memory and pids."""
    assert base not in set(hierarchy.own_dirs.values())
    assert delegation.processes(base) == []
    assert {"cpu", "memory", "pids"} <= set((base / "cgroup.subtree_control").read_text().split())
    if hierarchy.systemd:  # systemd's delegated service, its keeper in a leaf beside the groups
        assert base == hierarchy.mount / "system.slice" / delegation.UNIT
        assert delegation.processes(base / delegation.KEEPER)
    else:
        assert base == hierarchy.mount / delegation.OWN_SUBTREE


def test_unlimited_group_reads_as_none():
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


# --- the device controller: v1's devices files (where the host has them), v2's eBPF program ---------
UNIFIED = Path("/sys/fs/cgroup/unified")  # this hybrid host's cgroup2 mount, with only hugetlb
needs_devices = pytest.mark.skipif(cgroups.detect().version == 1 and cgroups.detect().devices is None,
                                   reason="a v1 host without a devices hierarchy")


@pytest.fixture
def loop_device(tmp_path) -> Iterator[int]:
    """A block device of the test's own (a loop device over a small file), as its device number."""
    backing = tmp_path / "disk.img"
    backing.write_bytes(b"\0" * (1 << 20))
    device = subprocess.run(["losetup", "-f", "--show", str(backing)], check=True, capture_output=True,
                            text=True).stdout.strip()
    try:
        yield os.stat(device).st_rdev
    finally:
        subprocess.run(["losetup", "-d", device], check=False)


@pytest.fixture
def dev_dir() -> Iterator[Path]:
    """An empty directory on a filesystem that allows device nodes, removed afterwards."""
    # Not under /tmp: Debian 13 mounts a tmpfs there with nodev, which would refuse every node before the cgroup
    directory = Path(tempfile.mkdtemp(prefix="lxclab-nodes-", dir="/var/tmp"))
    try:
        assert not os.statvfs(directory).f_flag & os.ST_NODEV  # only the cgroup stands in the way
        yield directory
    finally:
        shutil.rmtree(directory)


@pytest.fixture
def nodes(dev_dir, loop_device) -> str:
    """A directory (not nodev) holding two nodes the host's root made: `disk` (the loop device) and `null` (1:3)."""
    os.mknod(dev_dir / "disk", stat.S_IFBLK | 0o600, loop_device)
    os.mknod(dev_dir / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    return str(dev_dir)


OPEN_MODES = {"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR}


def _use_nodes(directory: str, group: cgroups.Cgroup | None, uses: tuple[str, ...]) -> list[str]:
    """In a child, as host root, in `group` if given: each use ("r disk", "w null", "rw null", "mknod disk") of
    a node in `directory`, mknod making a copy of it; 'ok' or the errno's name for each."""
    if group is not None:
        group.add(os.getpid())
    answers = []
    for index, use in enumerate(uses):
        how, name = use.split()
        path = os.path.join(directory, name)
        try:
            if how == "mknod":
                node = os.stat(path)
                os.mknod(f"{path}.{os.getpid()}.{index}", node.st_mode, node.st_rdev)
            else:
                os.close(os.open(path, OPEN_MODES[how]))
            answers.append("ok")
        except OSError as exc:
            answers.append(errno.errorcode[exc.errno])
    return answers


def _device_rules(group: cgroups.Cgroup) -> list[str] | int:
    """What the group holds of an allow-list: devices.list's lines on v1, the number of device programs on v2."""
    if group.version == 1:
        devices = group.dirs.get("devices", cgroups.detect().devices)  # none of its own: the caller's
        return (devices / "devices.list").read_text().splitlines()
    return devices_bpf.attached(group.dirs["memory"])


@needs_devices
def test_a_group_with_the_allow_list_lets_its_processes_open_only_the_listed_devices(nodes):
    uses = ("mknod disk", "r disk", "w null")
    with cgroups.create(unique_name(), devices=DEVICES_ALLOWED) as group:
        listed = _device_rules(group)
        inside = in_child(_use_nodes, nodes, group, uses)
    outside = in_child(_use_nodes, nodes, None, uses)
    assert listed == (list(DEVICES_ALLOWED) if group.version == 1 else 1)
    assert inside == ["ok", "EPERM", "ok"]  # mknod allowed ("b *:* m"), opening only what is listed
    assert outside == ["ok", "ok", "ok"]


@needs_devices
def test_in_a_container_whose_root_is_not_nodev_the_cgroup_still_refuses_the_node(busybox_rootfs, loop_device,
                                                                                    dev_dir):
    script = f"mknod /disk b {os.major(loop_device)} {os.minor(loop_device)} && head -c 512 /disk | wc -c"
    devices_only = Profile(nodev=False)  # the default profile but nodev: the image's root and /dev allow nodes
    rootfs = shutil.copytree(busybox_rootfs, dev_dir / "rootfs", symlinks=True)
    with cgroups.create(unique_name(), devices=DEVICES_ALLOWED) as group:
        inside = namespaces.run(rootfs, ["sh", "-c", script], cgroup=group, profile=devices_only, timeout=60)
    os.unlink(rootfs / "disk")
    without = namespaces.run(rootfs, ["sh", "-c", script], profile=devices_only, timeout=60)
    assert inside.output == "head: /disk: Operation not permitted\n0\n"  # EPERM: the device controller's answer
    assert without.output == "512\n"


@needs_devices
def test_a_containers_group_allows_exactly_dockers_devices_and_privileged_all(busybox, nodes):
    for profile, listed, opened in ((None, list(DEVICES_ALLOWED), ["EPERM", "ok"]),
                                    (Profile.build(privileged=True), ["a *:* rwm"], ["ok", "ok"])):
        container = engine.start(busybox, ["sleep", "60"], profile=profile)
        try:
            group = container.cgroup()
            programs = 0 if listed == ["a *:* rwm"] else 1  # v2: one program for a list, none when all is allowed
            assert _device_rules(group) == (listed if group.version == 1 else programs)
            assert in_child(_use_nodes, nodes, group, ("r disk", "w null")) == opened
        finally:
            gc.rm(container.id, force=True)


@needs_devices
def test_without_an_allow_list_no_devices_group_is_made(nodes):
    with cgroups.create(unique_name()) as group:
        assert "devices" not in group.dirs and (group.version == 1 or devices_bpf.attached(group.paths[0]) == 0)
        assert in_child(_use_nodes, nodes, group, ("mknod disk", "r disk")) == ["ok", "ok"]


@pytest.fixture
def v2_group() -> Iterator[cgroups.CgroupV2]:
    """A fresh real v2 group: under this hybrid host's cgroup2 mount, where lxclab's groups go on a v2 host."""
    hierarchy = cgroups.detect()
    if hierarchy.version == 2:
        group = hierarchy.create(unique_name())
    else:
        path = UNIFIED / unique_name()
        path.mkdir()
        group = cgroups.CgroupV2(path.name, {controller: path for controller in CONTROLLERS})
    yield group
    group.remove()


def test_a_v2_group_with_the_device_program_opens_only_the_listed_devices(v2_group, nodes):
    uses = ("mknod disk", "r disk", "w null", "rw null")
    before = in_child(_use_nodes, nodes, v2_group, uses)
    v2_group.allow_devices(DEVICES_ALLOWED)
    assert devices_bpf.attached(v2_group.paths[0]) == 1  # held by the attachment: no descriptor of ours is open
    assert in_child(_use_nodes, nodes, v2_group, uses) == ["ok", "EPERM", "ok", "ok"]
    assert before == ["ok", "ok", "ok", "ok"]


def test_a_program_the_verifier_refuses_is_reported_with_its_log():
    with pytest.raises(CgroupError, match=r"(?s)verifier refused the program.*R0 !read_ok"):
        devices_bpf.load(bytes([0x95]) + bytes(7))  # exit without setting r0, the answer


def test_a_malformed_rule_leaves_no_group_behind():
    name = unique_name()
    with pytest.raises(ValueError, match="device rule 'c 1:3 rx'"):
        cgroups.create(name, devices=("c 1:3 rwm", "c 1:3 rx"))
    assert not [parent for parent in cgroups.detect().parent_dirs().values() if (parent / name).exists()]


@pytest.mark.parametrize("rules, answers", [
    (("c 1:3 r",), ["ok", "EPERM", "EPERM", "EPERM", "EPERM"]),  # access: read only, not mknod
    (("c 1:3 w", "c 1:3 r"), ["ok", "ok", "ok", "EPERM", "EPERM"]),  # one device's rules joined, as v1 does
    (("c 1:* w", "c 1:3 r"), ["ok", "ok", "EPERM", "EPERM", "EPERM"]),  # ... not a wider rule's: neither grants rw
    (("c 1:* rwm",), ["ok", "ok", "ok", "ok", "EPERM"]),  # any minor of major 1
    (("c *:3 m", "b *:* r"), ["EPERM", "EPERM", "EPERM", "ok", "ok"]),  # any major
    (("b 1:3 rwm",), ["EPERM", "EPERM", "EPERM", "EPERM", "EPERM"]),  # the type counts: null is a char device
    (("a *:* rw",), ["ok", "ok", "ok", "EPERM", "ok"]),  # both types
    (("a",), ["ok", "ok", "ok", "ok", "ok"]),
    ((), ["EPERM", "EPERM", "EPERM", "EPERM", "EPERM"]),  # deny by default
])
def test_the_device_program_allows_what_each_rule_says(v2_group, nodes, rules, answers):
    v2_group.allow_devices(rules)
    assert in_child(_use_nodes, nodes, v2_group, ("r null", "w null", "rw null", "mknod null", "r disk")) == answers


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
            started = time.monotonic()  # each clock read outside its stats read: a slow read (TCG) can
            start = group.stats()       # only lengthen the interval, never add CPU time to it
            time.sleep(2)
            end = group.stats()
            ended = time.monotonic()
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
            process = namespaces.spawn(busybox_rootfs, FORK_BOMB, cgroup=group, stdout=quiet.fileno(),
                                       stderr=quiet.fileno())
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


# --- v2 on a v2-shaped directory tree (this host is v1): where groups go -------------------
def _fake_cgroup(path: Path, controllers: str, enabled: str = "") -> Path:
    """A directory with the files the kernel gives a v2 cgroup (as far as these tests read them)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "cgroup.controllers").write_text(controllers + "\n")
    (path / "cgroup.subtree_control").write_text(enabled + "\n")
    (path / "cgroup.procs").write_text("")
    return path


@pytest.fixture
def v2_tree(tmp_path) -> Hierarchy:
    """A v2 tree without systemd: the caller in a session scope, lxclab's subtree under the root."""
    mount = _fake_cgroup(tmp_path / "unified", "cpuset cpu io memory hugetlb pids", "cpu")
    own = _fake_cgroup(mount / "user.slice/session-1.scope", "cpu io memory pids")
    (own / "cgroup.procs").write_text(f"{os.getpid()}\n")
    _fake_cgroup(mount / delegation.OWN_SUBTREE, "cpu memory pids")  # what mkdir makes, once root enabled them
    return Hierarchy(2, {controller: own for controller in CONTROLLERS}, mount, systemd=False)


def test_v2_groups_go_under_lxclabs_own_subtree_never_the_callers_cgroup(v2_tree):
    group = v2_tree.create("lxclab-a", Limits(memory_bytes=64 * MiB, cpus=0.2, pids=20))
    mount, own = v2_tree.mount, v2_tree.own_dirs["memory"]
    base = mount / delegation.OWN_SUBTREE
    assert group.version == 2 and group.paths == [str(base / "lxclab-a")]
    assert (own / "cgroup.subtree_control").read_text() == "\n"  # the caller's cgroup is never touched
    assert (mount / "cgroup.subtree_control").read_text() == "+memory +pids\n"  # cpu was enabled already
    assert (base / "cgroup.subtree_control").read_text() == "+cpu +memory +pids\n"
    assert (base / "lxclab-a/memory.max").read_text() == f"{64 * MiB}\n"
    assert (base / "lxclab-a/cpu.max").read_text() == "20000 100000\n"
    assert (base / "lxclab-a/pids.max").read_text() == "20\n"


def test_v2_tree_stats_are_read_from_v2_files(v2_tree):
    group = v2_tree.create("lxclab-b")
    for name, text in V2_FILES.items():
        (Path(group.paths[0]) / name).write_text(text)
    assert group.stats() == SAME_STATS


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


def test_v2_tree_a_device_program_needs_a_real_cgroup_and_the_group_is_removed(v2_tree):
    with pytest.raises(CgroupError, match="BPF_PROG_ATTACH.*not a cgroup v2 directory"):
        v2_tree.create("lxclab-f", devices=DEVICES_ALLOWED)
    assert not (v2_tree.parent_dirs()["memory"] / "lxclab-f").exists()


def test_v2_tree_missing_controllers_are_reported(v2_tree):
    (v2_tree.mount / "cgroup.controllers").write_text("cpu io\n")
    with pytest.raises(CgroupError, match=r"lacks controllers \['memory', 'pids'\]"):
        v2_tree.create("lxclab-e")


# --- the leaf rule on the real kernel: a v2 cgroup and one controller its children may get ---


@pytest.fixture
def v2_base() -> tuple[Path, str]:
    """A fresh real v2 cgroup whose children may get a controller, and that controller; removed afterwards.

    Here: under the hybrid host's cgroup2 mount, with hugetlb. On a pure v2 host: in lxclab's
    delegated subtree, with memory. Both are domain controllers: the rule does not hold for
    threaded ones (pids, cpu), which a cgroup that could root a threaded subtree may enable
    beside its own processes (measured on Debian 12's 6.1).
    """
    hierarchy = cgroups.detect()
    parent, controller = (UNIFIED, "hugetlb") if hierarchy.version == 1 else (hierarchy.parent_dirs()["memory"],
                                                                           "memory")
    enabled_before = controller in (parent / "cgroup.subtree_control").read_text().split()
    delegation.enable_controllers(parent, (controller,))  # the root may, whatever it holds
    base = parent / unique_name()
    base.mkdir()
    yield base, controller
    for leaf in [p for p in base.iterdir() if p.is_dir()] + [base]:
        cgroups.remove_dirs([str(leaf)])
    if not enabled_before:
        (parent / "cgroup.subtree_control").write_text(f"-{controller}\n")


def test_a_cgroup_holding_a_process_cannot_enable_controllers_until_it_moves_into_a_leaf(v2_base):
    base, controller = v2_base
    keeper = subprocess.Popen(["sleep", "60"])
    try:
        (base / "cgroup.procs").write_text(f"{keeper.pid}\n")
        with pytest.raises(CgroupError, match="Device or resource busy; v2 allows it only in a cgroup with no"):
            delegation.enable_controllers(base, (controller,))
        delegation.keep_in_leaf(base)
        assert delegation.processes(base / delegation.KEEPER) == [keeper.pid]
        assert delegation.processes(base) == []
        delegation.enable_controllers(base, (controller,))
        assert (base / "cgroup.subtree_control").read_text() == f"{controller}\n"
        (base / "lxclab-child").mkdir()
        assert (base / "lxclab-child/cgroup.controllers").read_text() == f"{controller}\n"
    finally:
        keeper.kill()
        keeper.wait()


def test_without_the_controllers_lxclab_needs_v2_delegation_says_which_are_missing(tmp_path):
    mount = _fake_cgroup(tmp_path / "unified", "hugetlb")
    with pytest.raises(CgroupError, match=r"lacks controllers \['cpu', 'memory', 'pids'\]"):
        delegation.delegated_parent(mount, systemd=False)

