"""Samples, recordings and the sampling thread, against a real busy process read from /proc."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from lxclab import cgroups
from lxclab.errors import SamplingError
from lxclab.sampling import Recording, Sample, Sampler, cgroup_reader, record

MiB = 2**20
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
BUSY_CHILD = "import itertools\nfor _ in itertools.count():\n    pass\n"
HOG_CHILD = """
import sys, time
sys.stdin.readline()
spin_until = time.monotonic() + 0.3
while time.monotonic() < spin_until:
    pass
hoard = []
while True:
    hoard.append(b"x" * (4 << 20))
    time.sleep(0.02)
"""


def sample(t: float, cpu: float = 0.0, oom: int = 0, memory: int = 10 * MiB) -> Sample:
    """A sample with a 64 MiB limit, half a CPU of quota and a pids limit of 10."""
    return Sample(t=t, memory_bytes=memory, memory_limit=64 * MiB, cpu_seconds=cpu, cpu_quota=0.5,
                  pids=2, pids_limit=10, oom_kills=oom)


def proc_stats(pid: int) -> dict:
    """The stats of one process as /proc shows them: RSS, user+system CPU time and thread count."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, threads = int(fields[11]), int(fields[12]), int(fields[17])
    rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return {"memory_bytes": rss_pages * PAGE, "cpu_seconds": (utime + stime) / CLOCK_TICKS, "pids": threads}


@pytest.fixture
def busy_child():
    """A real process spinning on a CPU; killed by its PID afterwards."""
    child = subprocess.Popen([sys.executable, "-c", BUSY_CHILD])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # spinning in its loop: past exec and Python's start-up
        stats = proc_stats(child.pid)
        if stats["cpu_seconds"] > 0.05 and stats["memory_bytes"] > MiB:
            break
        time.sleep(0.01)
    yield child.pid
    os.kill(child.pid, signal.SIGKILL)
    child.wait()


def sampler_threads() -> list[threading.Thread]:
    """The sampling threads alive in this process."""
    return [t for t in threading.enumerate() if t.name == "lxclab-sampler"]


# --- Sample -------------------------------------------------------------------------------
def test_sample_from_stats_fills_optional_keys_and_converts_types():
    s = Sample.from_stats(1.5, {"memory_bytes": "4096", "cpu_seconds": 2, "pids": 3.0})
    assert s == Sample(t=1.5, memory_bytes=4096, memory_limit=None, cpu_seconds=2.0, cpu_quota=None,
                       pids=3, pids_limit=None, oom_kills=0)
    assert isinstance(s.cpu_seconds, float) and isinstance(s.pids, int)


def test_sample_from_stats_names_unknown_and_missing_keys():
    with pytest.raises(SamplingError, match=r"unknown keys \['memory_usage'\] and lacks \['memory_bytes'\]"):
        Sample.from_stats(0, {"memory_usage": 1, "cpu_seconds": 0, "pids": 1})


def test_sample_from_stats_refuses_values_that_are_not_numbers():
    with pytest.raises(SamplingError, match="not a number"):
        Sample.from_stats(0, {"memory_bytes": "lots", "cpu_seconds": 0, "pids": 1})


# --- Recording ----------------------------------------------------------------------------
def test_cpu_percent_is_derived_from_cumulative_cpu_seconds():
    recording = Recording([sample(0.0, cpu=1.0), sample(0.5, cpu=1.25), sample(1.5, cpu=2.25),
                           sample(2.0, cpu=2.25)])
    assert recording.cpu_percent() == [(0.5, 50.0), (1.5, 100.0), (2.0, 0.0)]
    assert recording.series("cpu") == recording.cpu_percent()


def test_cpu_percent_skips_zero_intervals_and_clamps_counter_resets():
    recording = Recording([sample(0.0, cpu=5.0), sample(0.0, cpu=5.0), sample(1.0, cpu=1.0)])
    assert recording.cpu_percent() == [(1.0, 0.0)]


def test_series_and_limits_are_in_the_recordings_units():
    recording = Recording([sample(0.0, memory=5 * MiB), sample(1.0, memory=7 * MiB)])
    assert recording.series("memory") == [(0.0, 5.0 * MiB), (1.0, 7.0 * MiB)]
    assert recording.series("pids") == [(0.0, 2.0), (1.0, 2.0)]
    assert (recording.limit("memory"), recording.limit("cpu"), recording.limit("pids")) == (64 * MiB, 50.0, 10)
    assert Recording().limit("memory") is None
    with pytest.raises(SamplingError, match="unknown metric 'disk'"):
        recording.series("disk")


def test_oom_times_mark_each_increase_of_the_kill_count():
    counts = [0, 0, 1, 1, 3, 3]
    recording = Recording([sample(t / 10, oom=n) for t, n in enumerate(counts)])
    assert recording.oom_times() == [0.2, 0.4]


def test_append_refuses_samples_out_of_time_order():
    recording = Recording([sample(1.0)])
    with pytest.raises(SamplingError, match="older than the last one"):
        recording.append(sample(0.5))
    assert len(recording) == 1


def test_json_round_trip_keeps_every_field():
    recording = Recording([sample(0.0), sample(0.1, cpu=0.05, oom=1),
                           Sample.from_stats(0.2, {"memory_bytes": 1, "cpu_seconds": 0.1, "pids": 1})])
    text = recording.to_json()
    again = Recording.from_json(text)
    assert again == recording
    assert again.samples[2].memory_limit is None
    assert again.to_json() == text


@pytest.mark.parametrize("text, message", [
    ("not json", "not JSON"),
    ('{"samples": []}', "not an lxclab recording"),
    ('{"lxclab_recording": 1, "samples": [{"memory_bytes": 1, "cpu_seconds": 0, "pids": 1}]}', "no time"),
])
def test_from_json_explains_what_is_wrong(text, message):
    with pytest.raises(SamplingError, match=message):
        Recording.from_json(text)


# --- Sampler ------------------------------------------------------------------------------
def test_sampler_reads_a_real_busy_process_at_about_its_interval(busy_child):
    interval = 0.05
    enough = threading.Event()
    with Sampler(lambda: proc_stats(busy_child), interval=interval) as sampler:
        recording = record(sampler)
        sampler.subscribe(lambda s: len(recording) >= 12 and enough.set())
        assert enough.wait(30), f"only {len(recording)} samples arrived; error: {sampler.error}"
    assert sampler_threads() == [] and not sampler.running and sampler.error is None
    times = [s.t for s in recording.samples]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert sum(gaps) / len(gaps) >= interval * 0.9, gaps  # paced on the interval grid, never in bursts
    assert sorted(gaps)[len(gaps) // 2] < interval * 5, gaps  # and not much slower, even on a busy host
    cpu = [s.cpu_seconds for s in recording.samples]
    assert cpu == sorted(cpu) and cpu[-1] > cpu[0]  # a spinning process accumulates CPU time
    assert all(s.memory_bytes > MiB and s.pids == 1 for s in recording.samples)
    assert max(p for _, p in recording.cpu_percent()) > 0


def test_sampler_ends_itself_and_keeps_the_error_when_the_source_disappears():
    child = subprocess.Popen([sys.executable, "-c", BUSY_CHILD])
    sampled, ended = threading.Event(), threading.Event()
    sampler = Sampler(lambda: proc_stats(child.pid), interval=0.02)
    sampler.subscribe(lambda s: sampled.set())
    sampler.on_stop(lambda error: ended.set())
    sampler.start()
    try:
        assert sampled.wait(30), f"no sample arrived; error: {sampler.error}"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert ended.wait(30)
    sampler.stop()
    assert isinstance(sampler.error, (FileNotFoundError, ProcessLookupError))  # gone: ENOENT, or ESRCH (Linux 6.12)
    assert sampler_threads() == []


def test_sampler_stops_cleanly_twice_and_runs_only_once():
    sampler = Sampler(lambda: {"memory_bytes": 0, "cpu_seconds": 0, "pids": 0}, interval=0.01)
    stopped = []
    sampler.on_stop(stopped.append)
    sampler.start()
    sampler.stop()
    sampler.stop()
    assert stopped == [None] and sampler_threads() == []
    with pytest.raises(SamplingError, match="already started"):
        sampler.start()


def test_stop_waits_for_a_slow_listener_and_names_a_stuck_one():
    """A listener slower than the interval (a graph redrawn on an emulated VM) ends in time; a stuck one is named."""
    release = threading.Event()
    drawn = []
    sampler = Sampler(lambda: {"memory_bytes": 0, "cpu_seconds": 0, "pids": 0}, interval=0.01)
    sampler.subscribe(lambda s: (time.sleep(0.3), drawn.append(s)))
    sampler.start()
    time.sleep(0.05)
    sampler.stop()  # waits for the draw in progress
    assert drawn and sampler_threads() == []

    stuck = Sampler(lambda: {"memory_bytes": 0, "cpu_seconds": 0, "pids": 0}, interval=0.01)
    stuck.subscribe(lambda s: release.wait(30))
    stuck.start()
    try:
        with pytest.raises(SamplingError, match="read_stats or a listener is blocked") as error:
            stuck.stop(timeout=0.2)
        assert re.search(r"now in wait \(threading\.py:\d+\) <- .*<lambda> \(test_sampling\.py:\d+\)", str(error.value))
    finally:
        release.set()
    stuck.stop()
    assert sampler_threads() == []


def test_sampler_refuses_a_non_positive_interval():
    with pytest.raises(SamplingError, match="must be positive"):
        Sampler(dict, interval=0)


# --- the cgroups adapter ------------------------------------------------------------------
def test_cgroup_reader_samples_a_real_memory_hog_until_the_kernel_kills_it():
    limits = cgroups.Limits(memory_bytes=48 * MiB, cpus=0.5, pids=10)
    with cgroups.create(f"lxclab-test-monitor-{uuid.uuid4().hex[:10]}", limits) as group:
        hog = subprocess.Popen([sys.executable, "-c", HOG_CHILD], stdin=subprocess.PIPE)
        try:
            group.add(hog.pid)
            killed = threading.Event()
            with Sampler(cgroup_reader(group), interval=0.05) as sampler:
                recording = record(sampler)
                sampler.subscribe(lambda s: s.oom_kills >= 1 and killed.set())
                hog.stdin.write(b"go\n")
                hog.stdin.close()
                assert killed.wait(30), f"no OOM kill seen; error: {sampler.error}"
        finally:
            group.kill()
            hog.wait()
        assert hog.returncode == -signal.SIGKILL and sampler.error is None
    last = recording.samples[-1]
    assert (last.memory_limit, last.cpu_quota, last.pids_limit) == (48 * MiB, 0.5, 10)
    assert max(m for _, m in recording.series("memory")) > 24 * MiB
    assert max(p for _, p in recording.cpu_percent()) > 0
    assert len(recording.oom_times()) == 1
    with pytest.raises(SamplingError, match=f"cgroup {group.name} is gone"):
        cgroup_reader(group)()
