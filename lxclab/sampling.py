"""Resource samples of a container or process, recorded and replayed, and a sampling thread.

A `Sample` is what one look at a cgroup shows: memory, cumulative CPU time, pids, their
limits and the OOM-kill count. A `Recording` keeps samples in order, derives CPU % between
them and round-trips through JSON, so a lesson can store a run and draw it again. A
`Sampler` calls any stats callable several times a second in a background thread; it
never touches a cgroup itself, so the same class watches a cgroup, a /proc entry or a test
source; `cgroup_reader` adapts an lxclab.cgroups group to it and `lxc_reader` an LXC
container (lxclab.lxc.Container), both through one `stats_sample` of cgroups.Stats.
Widgets draw recordings; they never sample.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass

from .errors import CgroupError, SamplingError, NotRunning

METRICS = ("memory", "cpu", "pids")
REQUIRED_STATS = ("memory_bytes", "cpu_seconds", "pids")
OPTIONAL_STATS = {"memory_limit": None, "cpu_quota": None, "pids_limit": None, "oom_kills": 0}
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Sample:
    """One look at a group's resources `t` seconds after sampling began; a limit of None means none."""

    t: float
    memory_bytes: int
    memory_limit: int | None
    cpu_seconds: float
    cpu_quota: float | None
    pids: int
    pids_limit: int | None
    oom_kills: int

    @classmethod
    def from_stats(cls, t: float, stats: Mapping[str, object]) -> Sample:
        """Build a sample taken at `t` from a stats dict; memory_bytes, cpu_seconds and pids are required."""
        known = set(REQUIRED_STATS) | set(OPTIONAL_STATS)
        unknown = sorted(set(stats) - known - {"t"})
        missing = [key for key in REQUIRED_STATS if key not in stats]
        if unknown or missing:
            raise SamplingError(
                f"stats dict has unknown keys {unknown} and lacks {missing}; "
                f"expected {list(REQUIRED_STATS)} and optionally {list(OPTIONAL_STATS)}: "
                "map your source's names with an adapter")
        values = {**OPTIONAL_STATS, **{key: stats[key] for key in known if key in stats}}
        try:
            return cls(t=float(t), **{key: _convert(key, value) for key, value in values.items()})
        except (TypeError, ValueError) as err:
            raise SamplingError(f"stats dict {dict(stats)} has a value that is not a number: {err}") from None

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Sample:
        """Rebuild a sample from `to_dict` output (as stored in a recording's JSON)."""
        if not isinstance(data, Mapping) or "t" not in data:
            raise SamplingError(f"stored sample {data!r} has no time `t`; pass text written by Recording.to_json")
        return cls.from_stats(data["t"], data)

    def to_dict(self) -> dict:
        """This sample as a plain dict of JSON-serialisable values."""
        return asdict(self)


def _convert(key: str, value: object) -> int | float | None:
    """A stats value as the type its Sample field holds (limits and quota may be None)."""
    if value is None and key in OPTIONAL_STATS and OPTIONAL_STATS[key] is None:
        return None
    return float(value) if key in ("cpu_seconds", "cpu_quota") else int(value)


def _check_metric(metric: str) -> None:
    """Raise SamplingError unless `metric` is one of METRICS."""
    if metric not in METRICS:
        raise SamplingError(f"unknown metric {metric!r}: choose one of {', '.join(METRICS)}")


class Recording:
    """Samples in time order, with the series, limits and OOM times a graph needs."""

    def __init__(self, samples: list[Sample] | None = None):
        self.samples: list[Sample] = list(samples or [])

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Recording) and self.samples == other.samples

    def append(self, sample: Sample) -> None:
        """Add a sample; it must not be older than the last one."""
        if self.samples and sample.t < self.samples[-1].t:
            raise SamplingError(
                f"sample at t={sample.t} is older than the last one (t={self.samples[-1].t}); "
                "samples must be appended in time order")
        self.samples.append(sample)

    def since(self, t: float) -> Recording:
        """The samples taken at or after `t` seconds."""
        return Recording([s for s in self.samples if s.t >= t])

    def cpu_percent(self) -> list[tuple[float, float]]:
        """CPU use between consecutive samples, as (t of the later sample, percent of one CPU)."""
        points = []
        for before, after in zip(self.samples, self.samples[1:]):
            elapsed = after.t - before.t
            if elapsed > 0:
                used = max(0.0, after.cpu_seconds - before.cpu_seconds)
                points.append((after.t, 100.0 * used / elapsed))
        return points

    def series(self, metric: str) -> list[tuple[float, float]]:
        """The (t, value) points of `metric`: memory in bytes, cpu in percent, pids as a count."""
        if metric == "cpu":
            return self.cpu_percent()
        if metric == "memory":
            return [(s.t, float(s.memory_bytes)) for s in self.samples]
        _check_metric(metric)
        return [(s.t, float(s.pids)) for s in self.samples]

    def limit(self, metric: str) -> float | None:
        """The latest limit of `metric` in the units of `series` (CPU quota as percent), or None."""
        _check_metric(metric)
        if not self.samples:
            return None
        last = self.samples[-1]
        quota = None if last.cpu_quota is None else 100.0 * last.cpu_quota
        value = {"memory": last.memory_limit, "cpu": quota, "pids": last.pids_limit}[metric]
        return None if value is None else float(value)

    def oom_times(self) -> list[float]:
        """The times of the samples at which the OOM-kill count went up (once per increase)."""
        return [after.t for before, after in zip(self.samples, self.samples[1:])
                if after.oom_kills > before.oom_kills]

    def to_json(self) -> str:
        """The recording as JSON text (one sample per line), for a lesson to store and replay."""
        lines = ",\n".join("  " + json.dumps(s.to_dict(), sort_keys=True) for s in self.samples)
        return f'{{"lxclab_recording": {FORMAT_VERSION}, "samples": [\n{lines}\n]}}\n'

    @classmethod
    def from_json(cls, text: str) -> Recording:
        """Read a recording written by `to_json`."""
        try:
            document = json.loads(text)
        except json.JSONDecodeError as err:
            raise SamplingError(f"recording is not JSON ({err}); pass text written by Recording.to_json") from None
        if not isinstance(document, dict) or document.get("lxclab_recording") != FORMAT_VERSION:
            raise SamplingError(
                f"JSON is not an lxclab recording of format {FORMAT_VERSION}; "
                "pass text written by Recording.to_json")
        return cls([Sample.from_dict(item) for item in document.get("samples", [])])


SampleListener = Callable[[Sample], None]
StopListener = Callable[["BaseException | None"], None]


class Sampler:
    """Call `read_stats` every `interval` seconds in a background thread and pass each Sample on.

    `read_stats` returns a dict with the keys of `Sample.from_stats`; `t` is stamped by the
    sampler (seconds since `start`, at the middle of the read, so a slow read shifts no rate).
    When `read_stats` or a listener raises (a cgroup that disappeared with its container, say)
    sampling ends and the exception is kept in `error`.
    """

    def __init__(self, read_stats: Callable[[], Mapping[str, object]], interval: float = 0.1,
                 clock: Callable[[], float] = time.monotonic):
        if not interval > 0:
            raise SamplingError(f"sampling interval must be positive seconds, got {interval!r}")
        self.read_stats = read_stats
        self.interval = float(interval)
        self.clock = clock
        self.error: BaseException | None = None
        self._listeners: list[SampleListener] = []
        self._stop_listeners: list[StopListener] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def subscribe(self, listener: SampleListener) -> None:
        """Call `listener(sample)` from the sampling thread for every sample from now on."""
        self._listeners.append(listener)

    def on_stop(self, listener: StopListener) -> None:
        """Call `listener(error or None)` once when sampling ends, whatever ended it."""
        self._stop_listeners.append(listener)

    @property
    def running(self) -> bool:
        """True while the sampling thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Sampler:
        """Start sampling in a daemon thread; a sampler runs once."""
        if self._thread is not None:
            raise SamplingError("this sampler was already started; create a new Sampler to sample again")
        self._thread = threading.Thread(target=self._run, name="lxclab-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Ask the thread to end and wait for it; safe to call twice or after the thread ended itself.

        The thread ends after the read or listener call in progress, which may be a graph's
        redraw: seconds on an emulated (TCG) VM, so the timeout only catches one that is stuck.
        """
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                raise SamplingError(
                    f"sampling thread did not end within {timeout} s: read_stats or a listener is blocked, "
                    f"now in {_where(thread)}; make them return promptly")

    def __enter__(self) -> Sampler:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        started = self.clock()
        try:
            next_tick = started
            while not self._stopping.is_set():
                self._take(started)
                next_tick = self._next_tick(next_tick)
                self._stopping.wait(max(0.0, next_tick - self.clock()))
        except BaseException as err:  # kept for the caller: this thread has no one to raise to
            self.error = err
        finally:
            for listener in self._stop_listeners:
                listener(self.error)

    def _take(self, started: float) -> None:
        before = self.clock()
        stats = self.read_stats()
        sample = Sample.from_stats((before + self.clock()) / 2 - started, stats)
        for listener in list(self._listeners):
            listener(sample)

    def _next_tick(self, previous: float) -> float:
        """The first tick on the interval grid after now: a slow read skips ticks rather than bursting."""
        now = self.clock()
        missed = max(0, math.floor((now - previous) / self.interval))
        return previous + (missed + 1) * self.interval


def _where(thread: threading.Thread, depth: int = 5) -> str:
    """Where a running thread is: its innermost frames, innermost first, as `function (file:line)`."""
    frame = sys._current_frames().get(thread.ident)
    if frame is None:
        return "a frame that is gone"
    frames = traceback.extract_stack(frame, limit=depth)
    return " <- ".join(f"{f.name} ({os.path.basename(f.filename)}:{f.lineno})" for f in reversed(frames))


def record(sampler: Sampler) -> Recording:
    """A Recording that fills with every sample `sampler` takes from now on."""
    recording = Recording()
    sampler.subscribe(recording.append)
    return recording


def stats_sample(stats) -> dict:
    """The stats dict of a Sampler from a cgroups.Stats, whichever runtime read it."""
    return {"memory_bytes": stats.memory_bytes, "memory_limit": stats.memory_limit_bytes,
            "cpu_seconds": stats.cpu_usage_ns / 1e9, "cpu_quota": stats.cpu_limit,
            "pids": stats.pids, "pids_limit": stats.pids_limit, "oom_kills": stats.oom_kills}


def cgroup_reader(group) -> Callable[[], dict]:
    """A stats callable for Sampler from a cgroups.Cgroup (its `paths`, and stats() with cgroups.Stats fields).

    The group must exist: once it is removed (its container ended) the callable raises
    SamplingError, which ends the sampler with that message.
    """
    def read() -> dict:
        missing = [path for path in group.paths if not os.path.isdir(path)]
        if missing:  # a removed cgroup's files read as zeros: its directories tell that it is gone
            raise _cgroup_gone(group, missing[0])
        try:
            return stats_sample(group.stats())
        except FileNotFoundError as err:
            raise _cgroup_gone(group, err.filename) from None
    return read


def _cgroup_gone(group, path: str) -> SamplingError:
    """The error that ends sampling of a cgroup that was removed."""
    return SamplingError(f"cgroup {group.name} is gone ({path} is missing): its container "
                        "ended or it was removed, so sampling stopped")


def lxc_reader(container) -> Callable[[], dict]:
    """A stats callable for Sampler from an lxclab.lxc.Container's stats(): the same Stats as a cgroup's.

    The container must be running: once it stops the callable raises SamplingError, which
    ends the sampler with that message.
    """
    def read() -> dict:
        try:
            return stats_sample(container.stats())
        except (NotRunning, CgroupError) as err:
            raise SamplingError(f"LXC container {container.name} stopped or lost its cgroups ({err}): "
                               "sampling stopped") from None
    return read
