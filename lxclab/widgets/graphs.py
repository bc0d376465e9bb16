"""Resource graphs: memory, CPU % and pids of a container drawn with matplotlib, live or replayed.

`draw` is a pure function from a Recording to a matplotlib Figure with one panel per metric:
the series as a line, the limit as a dashed line, OOM kills as red markers, axes with units.
`ResourceGraph` shows each panel as SVG in plain ipywidgets.HTML (no custom JavaScript, no
CDN), so it renders in JupyterLab and in static HTML exported with its widget state; its
`figure()` and `save(path)` give a speaker the same graphs as a Figure, a PNG or an SVG.
It draws what it is given: `add` a Sample, or `follow` a Sampler; it never samples itself.
"""

from __future__ import annotations

import html
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import ipywidgets
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import SamplingError
from ..sampling import METRICS, Recording, Sample, Sampler
from . import figures

MIN_REDRAW_SECONDS = 0.5  # redraw at most twice a second (a redraw of three panels takes 0.1-0.4 s of CPU)
PAUSE_PER_DRAW = 2  # after a draw, wait at least twice as long as it took: a live graph uses at most a third of a CPU
LIMIT_COLOUR = "#d62728"
OOM_COLOUR = "#d62728"
NOTE_COLOUR = "#888888"
VALUE_STEPS = (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)  # tops of the value axis
PANEL_SIZE = (5.6, 1.5)  # inches, width and height of one metric's panel
NEAR_RIGHT_EDGE = 0.85  # past this fraction of the time axis, an OOM label goes left of its line


@dataclass(frozen=True)
class Panel:
    """How one metric is drawn: its heading, unit, scale from the recording's units, and colour."""

    heading: str
    unit: str
    scale: float
    floor: float  # the smallest top of the y axis, so a quiet group still draws a sensible axis
    colour: str


PANELS = {
    "memory": Panel("memory", "MiB", 1 / 2**20, 1.0, "#1f77b4"),
    "cpu": Panel("CPU", "%", 1.0, 100.0, "#ff7f0e"),
    "pids": Panel("pids", "count", 1.0, 5.0, "#2ca02c"),
}


def nice_ceiling(value: float, steps: tuple[float, ...] = VALUE_STEPS) -> float:
    """The smallest round number (one of `steps` times a power of ten) that is at least `value` > 0."""
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in steps if step * power >= value * (1 - 1e-9))


def time_range(recording: Recording, window_seconds: float | None) -> tuple[float, float]:
    """The (start, end) seconds to draw: the whole recording, or its last `window_seconds`."""
    if not recording.samples:
        return 0.0, window_seconds or 10.0
    first, last = recording.samples[0].t, recording.samples[-1].t
    if window_seconds is None:
        return first, max(last, first + 1.0)
    if last - first < window_seconds:
        return first, first + window_seconds
    return last - window_seconds, last


def draw(recording: Recording, metrics: str | Sequence[str] = METRICS,
         window_seconds: float | None = None) -> Figure:
    """A Figure with one panel per metric ("memory", "cpu", "pids", or a list of them), sharing the time axis."""
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [metric for metric in metrics if metric not in PANELS]
    if unknown or not metrics:
        raise SamplingError(f"unknown metric {unknown[0] if unknown else None!r}: choose one of {', '.join(METRICS)}")
    start, end = time_range(recording, window_seconds)
    with figures.style():
        figure = Figure(figsize=(PANEL_SIZE[0], PANEL_SIZE[1] * len(metrics)), layout="constrained")
        panels = figure.subplots(len(metrics), 1, sharex=True, squeeze=False)[:, 0]
        for axes, metric in zip(panels, metrics):
            _draw_panel(axes, recording, metric, start, end)
        panels[-1].set_xlabel("time (s)")
    return figure


def _draw_panel(axes: Axes, recording: Recording, metric: str, start: float, end: float) -> None:
    """One metric on `axes`: its series, its limit, OOM kills (memory only), its units, or a note."""
    panel = PANELS[metric]
    points = [(t, v * panel.scale) for t, v in recording.series(metric) if start <= t <= end]
    limit = recording.limit(metric)
    limit = None if limit is None else limit * panel.scale
    highest = max([v for _, v in points] + [limit or 0.0])
    axes.set(xlim=(start, end), ylim=(0, nice_ceiling(max(highest * 1.05, panel.floor))), ylabel=panel.unit)
    axes.set_title(f"{panel.heading} ({panel.unit})", loc="left")
    axes.grid(True, color="#e0e0e0", linewidth=0.6)
    if points:
        times, values = zip(*points)
        axes.plot(times, values, color=panel.colour, linewidth=1.5, marker="o", markersize=3,
                  markevery=[len(points) - 1], zorder=3, gid=f"series-{metric}")
    else:
        axes.text(0.5, 0.5, "no samples yet", transform=axes.transAxes, ha="center", va="center",
                  color=NOTE_COLOUR, gid=f"note-{metric}")
    if limit is not None:
        axes.axhline(limit, color=LIMIT_COLOUR, linewidth=1.2, linestyle=(0, (6, 4)), gid=f"limit-{metric}")
        axes.annotate(f"limit {_with_unit(limit, panel)}", (0, limit), xycoords=("axes fraction", "data"),
                      xytext=(4, 2), textcoords="offset points", color=LIMIT_COLOUR, va="bottom")
    if metric == "memory":
        for t in recording.oom_times():
            if start <= t <= end:
                _draw_oom_kill(axes, t, (t - start) / (end - start))


def _draw_oom_kill(axes: Axes, t: float, fraction: float) -> None:
    """A red vertical line, a triangle on top and an "OOM kill" label where the kernel's OOM killer struck."""
    axes.axvline(t, color=OOM_COLOUR, linewidth=1.5, gid=f"oom-{t:g}")
    axes.plot([t], [1], transform=axes.get_xaxis_transform(), marker="v", color=OOM_COLOUR, clip_on=False)
    near_right_edge = fraction > NEAR_RIGHT_EDGE
    axes.annotate("OOM kill", (t, 1), xycoords=("data", "axes fraction"), xytext=(-6 if near_right_edge else 6, -10),
                  textcoords="offset points", ha="right" if near_right_edge else "left", color=OOM_COLOUR)


def _with_unit(value: float, panel: Panel) -> str:
    """A reading with its unit, like `64 MiB` or `50 %`; counts go bare."""
    return figures.short_number(value) if panel.unit == "count" else f"{figures.short_number(value)} {panel.unit}"


def panel_svg(recording: Recording, metric: str, window_seconds: float | None = None) -> str:
    """One metric's panel as inline SVG text, the same every time for the same recording."""
    return figures.svg(draw(recording, metric, window_seconds))


def caption(recording: Recording) -> str:
    """The latest readings in words, like `memory 12.3 of 64 MiB · CPU 48 of 50 % · pids 3 · OOM kills 0`."""
    if not recording.samples:
        return "no samples yet"
    readings = [_reading(recording, metric) for metric in METRICS if recording.series(metric)]
    readings.append(f"OOM kills {recording.samples[-1].oom_kills}")
    return " · ".join(readings)


def _reading(recording: Recording, metric: str) -> str:
    """The latest value of one metric, and its limit if it has one, with the unit."""
    panel = PANELS[metric]
    latest = figures.short_number(recording.series(metric)[-1][1] * panel.scale)
    limit = recording.limit(metric)
    value = latest if limit is None else f"{latest} of {figures.short_number(limit * panel.scale)}"
    return f"{panel.heading} {value}" + ("" if panel.unit == "count" else f" {panel.unit}")


class ResourceGraph(ipywidgets.VBox):
    """Live or replayed graphs of memory, CPU % and pids, one SVG panel per metric, with a caption."""

    def __init__(self, recording: Recording | None = None, window_seconds: float | None = 30,
                 title: str = ""):
        self.recording = recording if recording is not None else Recording()
        self.window_seconds = window_seconds
        self.heading = title
        self.panels = {metric: ipywidgets.HTML() for metric in METRICS}
        self.caption = ipywidgets.HTML()
        heading = [ipywidgets.HTML(f"<b>{html.escape(title)}</b>")] if title else []
        super().__init__(children=heading + list(self.panels.values()) + [self.caption])
        self._lock = threading.Lock()  # guards the recording, the pending timer and the stop note
        self._drawing = threading.Lock()  # one draw at a time, so the last to start (the final one) ends last
        self._last_draw = -math.inf
        self._last_draw_seconds = 0.0
        self._pending: threading.Timer | None = None
        self._stopped = False
        self._stop_note = ""
        self.redraw()

    @classmethod
    def from_recording(cls, recording: Recording, title: str = "") -> ResourceGraph:
        """The graph of a whole stored recording, drawn once (reproducible output for a lesson)."""
        return cls(recording, window_seconds=None, title=title)

    def add(self, sample: Sample) -> None:
        """Append a sample; a timer thread redraws at most twice a second, so a slow draw never delays sampling."""
        with self._lock:
            self.recording.append(sample)
            self._schedule_draw()

    def follow(self, sampler: Sampler) -> None:
        """Draw every sample `sampler` takes, and the final state (and any error) when it stops."""
        with self._lock:
            self._stopped, self._stop_note = False, ""
        sampler.subscribe(self.add)
        sampler.on_stop(self._sampler_stopped)

    def redraw(self, note: str = "") -> None:
        """Draw every panel and the caption from the recording as it is now; `note` (or why sampling stopped) is added."""
        self._draw(note)

    def _draw(self, note: str = "") -> int:
        """Draw as `redraw` does, and return how many samples were drawn."""
        with self._drawing:
            began = time.monotonic()
            recording = self._snapshot()  # taken once this draw's turn comes: a later draw never shows older samples
            for metric, widget in self.panels.items():
                widget.value = panel_svg(recording, metric, self.window_seconds)
            note = note or self._stop_note
            text = caption(recording) + (f" — {note}" if note else "")
            self.caption.value = f'<span class="lxclab-caption">{html.escape(text)}</span>'
            with self._lock:
                self._last_draw = time.monotonic()  # from the end of a draw: a slow draw is not redone at once
                self._last_draw_seconds = self._last_draw - began
            return len(recording)

    def figure(self) -> Figure:
        """All three panels of the recording so far as one matplotlib Figure (the widget's time window)."""
        return draw(self._snapshot(), METRICS, self.window_seconds)

    def save(self, path: str | Path) -> Path:
        """Save the graphs as a PNG or SVG file, chosen by the suffix of `path`."""
        return figures.save(self.figure(), path)

    def _snapshot(self) -> Recording:
        with self._lock:
            return Recording(list(self.recording.samples))

    def _schedule_draw(self) -> None:
        """Start the timer of the next draw, unless one is waiting or drawing (the caller holds the lock).

        The pause after a draw grows with its length, so on a slow machine (an emulated VM, a
        loaded classroom server) live graphs leave the CPU to the container they watch.
        """
        if self._pending is None:
            pause = max(MIN_REDRAW_SECONDS, PAUSE_PER_DRAW * self._last_draw_seconds)
            wait = max(0.0, self._last_draw + pause - time.monotonic())
            self._pending = threading.Timer(wait, self._redraw_pending)
            self._pending.daemon = True
            self._pending.start()

    def _redraw_pending(self) -> None:
        """The timer's draw; samples that came while it drew get a draw of their own."""
        drawn = self._draw()
        with self._lock:
            self._pending = None
            if len(self.recording) > drawn and not self._stopped:
                self._schedule_draw()

    def _sampler_stopped(self, error: BaseException | None) -> None:
        with self._lock:
            self._stopped = True
            self._stop_note = f"sampling stopped: {error}" if error is not None else ""
            if self._pending is not None:
                self._pending.cancel()
                self._pending = None
        self.redraw()

    def __repr__(self) -> str:
        samples = self.recording.samples
        span = f", {samples[-1].t - samples[0].t:.1f} s" if samples else ""
        return f"ResourceGraph({self.heading!r}, {len(samples)} samples{span})"
