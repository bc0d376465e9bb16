"""lxc_reader: a Sampler watching a real LXC container through lxclab.lxc's accessors."""

from __future__ import annotations

import threading
import time

import pytest

from lxclab.errors import SamplingError
from lxclab.lxc import Limits
from lxclab.sampling import Sampler, lxc_reader, record

MiB = 2**20
# Doubles a shell string every 0.1 s (1, 2, 4, ... MiB) until the OOM killer ends it.
DOUBLING_HOG = ["/bin/sh", "-c", "x=$(head -c 1048576 /dev/zero | tr '\\0' x); while :; do x=$x$x; sleep 0.1; done"]


def test_lxc_reader_samples_a_container_whose_hog_is_oom_killed(make_container):
    limits = Limits.parse(memory="32m", cpus="1", pids="64")
    container = make_container(limits=limits)
    container.start()
    killed = threading.Event()
    with Sampler(lxc_reader(container), interval=0.05) as sampler:
        recording = record(sampler)
        sampler.subscribe(lambda sample: sample.oom_kills >= 1 and killed.set())
        hog = container.execute(DOUBLING_HOG)
        assert killed.wait(10), f"no OOM kill sampled; error: {sampler.error}"
    assert hog.exit_code == 137 and sampler.error is None
    last = recording.samples[-1]
    assert (last.memory_limit, last.cpu_quota, last.pids_limit) == (32 * MiB, 1.0, 64)
    assert 8 * MiB < max(m for _, m in recording.series("memory")) <= container.memory_peak <= 32 * MiB
    assert max(p for _, p in recording.cpu_percent()) > 0
    assert min(p for _, p in recording.series("pids")) >= 1
    assert len(recording.oom_times()) == 1 and last.oom_kills == container.oom_kills == 1


def test_lxc_reader_without_limits_draws_none(make_container):
    container = make_container()
    container.start()
    stats = lxc_reader(container)()
    assert (stats["memory_limit"], stats["cpu_quota"], stats["pids_limit"]) == (None, None, None)
    assert stats["pids"] >= 1 and stats["memory_bytes"] > 0 and stats["oom_kills"] == 0


def test_sampling_ends_with_a_message_naming_the_container_once_it_stops(make_container):
    container = make_container()
    container.start()
    stopped = threading.Event()
    sampler = Sampler(lxc_reader(container), interval=0.05)
    sampler.on_stop(lambda error: stopped.set())
    recording = record(sampler)
    with sampler:
        while len(recording) < 2:
            time.sleep(0.05)
        container.stop()
        assert stopped.wait(5)
    assert isinstance(sampler.error, SamplingError)
    assert f"LXC container {container.name} stopped" in str(sampler.error)
    with pytest.raises(SamplingError, match="sampling stopped"):
        lxc_reader(container)()
