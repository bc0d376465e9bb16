"""Resource graphs: memory, CPU % and pids of a container as inline SVG, live or replayed.

`render_svg` is a pure function from a Recording to one SVG panel: the series as a
polyline, the limit as a dashed line, OOM kills as red markers, axes with units.
`ResourceGraph` shows one panel per metric in plain ipywidgets.HTML (no custom JavaScript,
no CDN), so it renders in JupyterLab and in static HTML exported with its widget state.
It draws what it is given: `add` a Sample, or `follow` a Sampler; it never samples itself.
"""

from __future__ import annotations

import html
import math
import threading
import time
from dataclasses import dataclass

import ipywidgets

from ..errors import MonitorError
from ..monitor import METRICS, Recording, Sample, Sampler

MIN_REDRAW_SECONDS = 0.2  # redraw at most ~5 times a second, however fast samples arrive
LIMIT_COLOUR = "#d62728"
OOM_COLOUR = "#d62728"
VALUE_STEPS = (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)  # tops of the value axis
TIME_STEPS = (1, 2, 2.5, 5, 10)  # spacing of time ticks
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 58, 24, 22, 30
OOM_LABEL_WIDTH = 50  # pixels "OOM kill" takes in the panel's font


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


@dataclass(frozen=True)
class Frame:
    """The plot area of a panel and the data ranges it maps: time on x, value on y."""

    width: int
    height: int
    start: float
    end: float
    top: float

    @property
    def left(self) -> float:
        """The x of the y axis."""
        return MARGIN_LEFT

    @property
    def right(self) -> float:
        """The x of the plot's right edge."""
        return self.width - MARGIN_RIGHT

    @property
    def bottom(self) -> float:
        """The y of the time axis."""
        return self.height - MARGIN_BOTTOM

    def x(self, t: float) -> float:
        """The x coordinate of time `t` (seconds)."""
        return self.left + (t - self.start) / (self.end - self.start) * (self.right - self.left)

    def y(self, value: float) -> float:
        """The y coordinate of `value` (in the panel's display unit)."""
        return self.bottom - value / self.top * (self.bottom - MARGIN_TOP)


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


def render_svg(recording: Recording, metric: str, width: int = 560, height: int = 130,
               window_seconds: float | None = None) -> str:
    """One panel of `metric` ("memory", "cpu" or "pids") as standalone SVG text; deterministic."""
    if metric not in PANELS:
        raise MonitorError(f"unknown metric {metric!r}: choose one of {', '.join(METRICS)}")
    panel = PANELS[metric]
    start, end = time_range(recording, window_seconds)
    points = [(t, v * panel.scale) for t, v in recording.series(metric) if start <= t <= end]
    limit = recording.limit(metric)
    limit = None if limit is None else limit * panel.scale
    highest = max([v for _, v in points] + [limit or 0.0])
    frame = Frame(width, height, start, end, nice_ceiling(max(highest * 1.05, panel.floor)))
    parts = [_axes(frame, panel), _series(frame, panel, points)]
    if limit is not None:
        parts.append(_limit_line(frame, panel, limit))
    if metric == "memory":
        parts += [_oom_marker(frame, t) for t in recording.oom_times() if start <= t <= end]
    if not points:
        parts.append(_note(frame, "no samples yet"))
    return _svg_document(frame, f"{panel.heading} ({panel.unit})", parts)


def _svg_document(frame: Frame, label: str, parts: list[str]) -> str:
    """Wrap the panel's parts in an <svg> element that says what it shows."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{frame.width}" height="{frame.height}" '
            f'viewBox="0 0 {frame.width} {frame.height}" role="img" aria-label="{html.escape(label)}" '
            f'font-family="sans-serif" font-size="11">'
            f"<title>{html.escape(label)}</title>" + "".join(parts) + "</svg>")


def _axes(frame: Frame, panel: Panel) -> str:
    """The frame, the heading with its unit, value ticks on the left and time ticks below."""
    middle = (MARGIN_TOP + frame.bottom) / 2
    return (f'<rect x="{frame.left}" y="{MARGIN_TOP}" width="{frame.right - frame.left}" '
            f'height="{frame.bottom - MARGIN_TOP}" fill="#fafafa" stroke="#999"/>'
            f'<text class="heading" x="{frame.left}" y="{MARGIN_TOP - 7}" font-weight="bold">'
            f"{html.escape(panel.heading)} ({html.escape(panel.unit)})</text>"
            f'<text class="unit" x="12" y="{middle:.1f}" text-anchor="middle" '
            f'transform="rotate(-90 12 {middle:.1f})">{html.escape(panel.unit)}</text>'
            + _value_ticks(frame) + _time_ticks(frame))


def _value_ticks(frame: Frame) -> str:
    """Horizontal grid lines at 0, half and the top of the value axis, labelled on the left."""
    parts = []
    for value in (0.0, frame.top / 2, frame.top):
        y = frame.y(value)
        parts.append(f'<line class="grid" x1="{frame.left}" x2="{frame.right}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#e0e0e0"/><text class="tick" x="{frame.left - 4}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{_number(value)}</text>')
    return "".join(parts)


def _time_ticks(frame: Frame) -> str:
    """Vertical grid lines at round seconds (about five across the panel), labelled below."""
    step = nice_ceiling((frame.end - frame.start) / 5, TIME_STEPS)
    parts = []
    for k in range(math.ceil(frame.start / step - 1e-9), math.floor(frame.end / step + 1e-9) + 1):
        x = frame.x(k * step)
        parts.append(f'<line class="time-grid" x1="{x:.1f}" x2="{x:.1f}" y1="{MARGIN_TOP}" y2="{frame.bottom}" '
                     f'stroke="#eeeeee"/><text class="tick" x="{x:.1f}" y="{frame.bottom + 14}" '
                     f'text-anchor="middle">{_number(k * step)} s</text>')
    return "".join(parts)


def _series(frame: Frame, panel: Panel, points: list[tuple[float, float]]) -> str:
    """The samples as a polyline, with a dot on the latest one."""
    if not points:
        return ""
    coordinates = " ".join(f"{frame.x(t):.1f},{frame.y(v):.1f}" for t, v in points)
    t, v = points[-1]
    return (f'<polyline class="series" points="{coordinates}" fill="none" stroke="{panel.colour}" '
            f'stroke-width="1.5"/><circle class="latest" cx="{frame.x(t):.1f}" cy="{frame.y(v):.1f}" '
            f'r="2.5" fill="{panel.colour}"/>')


def _limit_line(frame: Frame, panel: Panel, limit: float) -> str:
    """The limit as a dashed horizontal line, labelled with its value."""
    y = frame.y(limit)
    return (f'<line class="limit" x1="{frame.left}" x2="{frame.right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{LIMIT_COLOUR}" stroke-width="1.2" stroke-dasharray="6 4"/>'
            f'<text class="limit-label" x="{frame.left + 4}" y="{y - 3:.1f}" '
            f'fill="{LIMIT_COLOUR}">limit {_with_unit(limit, panel)}</text>')


def _oom_marker(frame: Frame, t: float) -> str:
    """A red vertical line and label where the kernel's OOM killer struck."""
    x = frame.x(t)
    return (f'<g class="oom" data-t="{t:g}"><line x1="{x:.1f}" x2="{x:.1f}" y1="{MARGIN_TOP}" '
            f'y2="{frame.bottom}" stroke="{OOM_COLOUR}" stroke-width="1.5"/>'
            f'<path d="M{x - 5:.1f},{MARGIN_TOP} L{x + 5:.1f},{MARGIN_TOP} L{x:.1f},{MARGIN_TOP + 8} Z" '
            f'fill="{OOM_COLOUR}"/>{_oom_label(frame, x)}</g>')


def _oom_label(frame: Frame, x: float) -> str:
    """The marker's "OOM kill" label: right of the line, or left of it when the line is near the right edge."""
    near_right_edge = x + 7 + OOM_LABEL_WIDTH > frame.width
    anchor, label_x = ("end", x - 7) if near_right_edge else ("start", x + 7)
    return (f'<text x="{label_x:.1f}" y="{MARGIN_TOP + 10}" text-anchor="{anchor}" fill="{OOM_COLOUR}">'
            f"OOM kill</text>")


def _note(frame: Frame, text: str) -> str:
    """A grey message in the middle of the plot area."""
    return (f'<text class="note" x="{(frame.left + frame.right) / 2:.1f}" y="{(MARGIN_TOP + frame.bottom) / 2:.1f}" '
            f'text-anchor="middle" fill="#888">{html.escape(text)}</text>')


def _number(value: float) -> str:
    """A short label for a tick or a reading: at most three significant digits."""
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _with_unit(value: float, panel: Panel) -> str:
    """A reading with its unit, like `64 MiB` or `50 %`; counts go bare."""
    return _number(value) if panel.unit == "count" else f"{_number(value)} {panel.unit}"


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
    latest = _number(recording.series(metric)[-1][1] * panel.scale)
    limit = recording.limit(metric)
    value = latest if limit is None else f"{latest} of {_number(limit * panel.scale)}"
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
        self._lock = threading.Lock()
        self._last_draw = -math.inf
        self._pending: threading.Timer | None = None
        self.redraw()

    @classmethod
    def from_recording(cls, recording: Recording, title: str = "") -> ResourceGraph:
        """The graph of a whole stored recording, drawn once (reproducible output for a lesson)."""
        return cls(recording, window_seconds=None, title=title)

    def add(self, sample: Sample) -> None:
        """Append a sample and redraw, at most about five times a second (a late redraw catches up)."""
        with self._lock:
            self.recording.append(sample)
            wait = self._last_draw + MIN_REDRAW_SECONDS - time.monotonic()
            if self._pending is not None:
                return
            if wait > 0:
                self._pending = threading.Timer(wait, self._redraw_pending)
                self._pending.daemon = True
                self._pending.start()
                return
        self.redraw()

    def follow(self, sampler: Sampler) -> None:
        """Draw every sample `sampler` takes, and the final state (and any error) when it stops."""
        sampler.subscribe(self.add)
        sampler.on_stop(self._sampler_stopped)

    def redraw(self, note: str = "") -> None:
        """Draw every panel and the caption from the recording now; `note` is added to the caption."""
        with self._lock:
            self._last_draw = time.monotonic()
            recording = Recording(list(self.recording.samples))
        for metric, widget in self.panels.items():
            widget.value = render_svg(recording, metric, window_seconds=self.window_seconds)
        text = caption(recording) + (f" — {note}" if note else "")
        self.caption.value = f'<span class="lxclab-caption">{html.escape(text)}</span>'

    def _redraw_pending(self) -> None:
        with self._lock:
            self._pending = None
        self.redraw()

    def _sampler_stopped(self, error: BaseException | None) -> None:
        with self._lock:
            if self._pending is not None:
                self._pending.cancel()
                self._pending = None
        self.redraw(f"sampling stopped: {error}" if error is not None else "")

    def __repr__(self) -> str:
        samples = self.recording.samples
        span = f", {samples[-1].t - samples[0].t:.1f} s" if samples else ""
        return f"ResourceGraph({self.heading!r}, {len(samples)} samples{span})"
