"""lxclab.lxc end to end on real LXC: lifecycle, limits the kernel enforces, and 50 cycles that leave nothing."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from polling import eventually
from fixture_lxc import host_cgroup_file, unique_container_name

from lxclab import cgroups
from lxclab.lxc import Limits, State, cgroup_version, container_names, lxc_cgroups

MIB = 1 << 20
# A CPU spinner, reniced so that other load on the host cannot starve it: only its quota may hold it back.
SPIN = ["/bin/sh", "-c", "/bin/sh -c 'renice -n -15 -p $$ >/dev/null; while :; do :; done' >/dev/null 2>&1 &"]




def sample_cpu_time(container) -> tuple[float, float]:
    """(wall clock, container CPU seconds), the clock taken halfway through the read."""
    before = time.monotonic()
    cpu = container.cpu_time
    return (before + time.monotonic()) / 2, cpu


def test_lifecycle_end_to_end(make_container, lxcpath):
    container = make_container(limits=Limits.parse(memory="64m", pids=64))
    assert container.state is State.STOPPED
    container.start()
    assert container.state is State.RUNNING and container.init_pid > 1

    expected = "".join(f"{i}\n" for i in range(1, 200_001))  # 1.3 MB
    assert container.execute(["seq", "1", "200000"]).stdout == expected
    assert container.execute(["/bin/sh", "-c", "echo before-snapshot > /root/mark"]).ok

    container.set_limits(memory="48m")  # while running: live, and kept in the config
    memory_file = "memory.limit_in_bytes" if cgroup_version() == 1 else "memory.max"
    assert host_cgroup_file(container, "memory", memory_file).strip() == str(48 * MIB)
    assert f"{memory_file} = {48 * MIB}" in container.config_file.read_text()

    assert 0 < container.memory_usage <= container.memory_peak <= 48 * MIB
    assert container.cpu_time > 0 and 1 <= container.pids_current <= 64
    assert container.oom_kills == 0 and container.ip_addresses() == ()

    container.execute(SPIN)
    container.freeze()
    assert container.state is State.FROZEN
    frozen_at = container.cpu_time
    time.sleep(0.5)
    # A spinner left running would add 0.5 s; v2 may still count a last slice after the freeze (0.4 ms, trixie VM).
    assert container.cpu_time - frozen_at < 0.01
    container.unfreeze()
    assert eventually(lambda: container.cpu_time > frozen_at + 0.05)

    container.stop()
    assert container.state is State.STOPPED and lxc_cgroups(container.name) == []

    snapshot = container.create_snapshot()
    assert container.snapshots() == [snapshot] and snapshot.name == "snap0"
    container.start()
    container.execute(["rm", "/root/mark"])
    container.stop()
    with container.restore_snapshot(snapshot, unique_container_name()) as restored:
        assert restored.rootfs == lxcpath / restored.name / "rootfs"
        assert (restored.hostname, restored.command) == (container.hostname, container.command)
        restored.start()
        assert restored.execute(["cat", "/root/mark"]).stdout == "before-snapshot\n"
        restored.stop()

    rootfs = container.rootfs
    container.destroy()
    assert not container.defined and not rootfs.exists() and not (lxcpath / container.name).exists()
    assert container_names(lxcpath) == [] and lxc_cgroups(container.name) == []


def test_memory_hog_is_oom_killed_at_the_limit(make_container):
    container = make_container(limits=Limits.parse(memory="32m"))
    container.start()
    hog = container.execute(["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"])
    assert hog.exit_code == 137  # 128 + SIGKILL, from the OOM killer
    assert container.oom_kills >= 1
    assert container.memory_peak <= 32 * MIB
    assert container.state is State.RUNNING  # only the hog died
    assert container.execute(["dd", "if=/dev/zero", "of=/dev/null", "bs=8M", "count=1"]).ok


def test_cpu_spinner_is_throttled_to_its_quota(make_container):
    container = make_container(limits=Limits.parse(cpus=0.2))
    container.start()
    container.execute(SPIN)
    time.sleep(0.3)
    wall_start, cpu_start = sample_cpu_time(container)
    time.sleep(3)
    wall_end, cpu_end = sample_cpu_time(container)
    share = (cpu_end - cpu_start) / (wall_end - wall_start)
    print(f"CPU share under a 0.2 quota: {share:.4f}")
    # The quota is a ceiling: a busy machine may give the spinner less, never more.
    assert 0.02 < share <= 0.22, f"spinner used {share:.3f} of a CPU under a 0.2 quota"
    if cgroup_version() == 1:
        throttled = dict(line.split() for line in host_cgroup_file(container, "cpu", "cpu.stat").splitlines())
        assert int(throttled["nr_throttled"]) > 0


def test_fork_bomb_is_stopped_at_pids_max(make_container):
    container = make_container(limits=Limits.parse(pids=32, cpus=0.5))
    container.start()
    # Every bomb forks two more and stays (sleeping), so the population doubles until the kernel refuses.
    container.execute(["/bin/sh", "-c", "bomb() { bomb | bomb & sleep 60; }; bomb &"])

    def refused_forks() -> int:
        events = dict(line.split() for line in host_cgroup_file(container, "pids", "pids.events").splitlines())
        return int(events["max"])  # forks the kernel refused because pids.current was at pids.max

    assert eventually(refused_forks)
    samples = [container.pids_current for _ in range(20)]
    assert 1 < max(samples) <= 32  # refused forks above prove it reached 32; a busy host may have reaped some since
    assert subprocess.run(["true"]).returncode == 0  # the host can still fork
    container.stop()
    assert container.state is State.STOPPED and lxc_cgroups(container.name) == []


# --- 50 cycles leave nothing behind -------------------------------------------------------------
def cgroups_named(names: set[str]) -> list[str]:
    """Every cgroup on the host whose name mentions one of `names` (an independent walk of /sys/fs/cgroup)."""
    return [os.path.join(parent, d) for parent, dirs, _ in os.walk("/sys/fs/cgroup") for d in dirs
            if any(name in d for name in names)]


def idle_pivots() -> list[str]:
    """lxc.pivot cgroups where this process's LXC groups go, with no process and no LXC monitor beside them.

    Only our own subtrees: other users of LXC on the machine keep theirs.
    """
    hierarchy = cgroups.detect()
    roots = hierarchy.everywhere if hierarchy.version == 1 else set(hierarchy.parent_dirs().values())
    idle = []
    for root in roots:
        for parent, dirs, _ in os.walk(root):
            busy = any(d.startswith("lxc.monitor.") for d in dirs)
            if "lxc.pivot" in dirs and not busy and not Path(parent, "lxc.pivot", "cgroup.procs").read_text().strip():
                idle.append(os.path.join(parent, "lxc.pivot"))
    return idle


@contextmanager
def timed(timings: dict[str, list[float]], phase: str):
    """Add the duration of the block to timings[phase]."""
    start = time.perf_counter()
    yield
    timings.setdefault(phase, []).append(time.perf_counter() - start)


@pytest.mark.slow
def test_fifty_cycles_leave_no_container_cgroup_mount_or_directory(make_container, lxcpath, tmp_path):
    own_cgroups = Path("/proc/self/cgroup").read_text()
    names: set[str] = set()
    timings: dict[str, list[float]] = {}
    for _ in range(50):
        container = make_container(unique_container_name("cycle"))
        names.add(container.name)
        with timed(timings, "start"):
            container.start()
        with timed(timings, "execute"):
            assert container.execute(["true"]).ok
        with timed(timings, "stop"):
            container.stop()
        with timed(timings, "destroy"):
            container.destroy()
        assert Path("/proc/self/cgroup").read_text() == own_cgroups
    print("median seconds per phase over 50 cycles:",
          {phase: round(statistics.median(values), 4) for phase, values in timings.items()})

    listed = subprocess.run(["lxc-ls", "-P", str(lxcpath), "-1"], capture_output=True, text=True, check=True)
    assert listed.stdout == "" and container_names(lxcpath) == []
    assert cgroups_named(names) == []
    assert eventually(lambda: idle_pivots() == [], timeout=2)
    assert str(tmp_path) not in Path("/proc/self/mountinfo").read_text()
    assert list(lxcpath.iterdir()) == []
    lock_dir = Path("/run/lxc/lock") / str(lxcpath).lstrip("/")
    assert not lock_dir.exists() or list(lock_dir.iterdir()) == []
    monitors = [p for p in Path("/proc").glob("[0-9]*/cmdline") if str(lxcpath).encode() in _read(p)]
    assert monitors == []
    assert Path("/proc/self/cgroup").read_text() == own_cgroups


def _read(path: Path) -> bytes:
    """A /proc file's bytes, or b'' if its process has gone."""
    try:
        return path.read_bytes()
    except OSError:
        return b""
