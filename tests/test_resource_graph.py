"""The resource graph: SVG panels checked against their own axis labels, the widget live and replayed,
and its static HTML export rendered offline by a real chromium."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
from ipywidgets.embed import dependency_state, embed_minimal_html

from fixture_browser import dump_dom

from lxclab.errors import LxclabError, MonitorError
from lxclab.monitor import Recording, Sample, Sampler
from lxclab.widgets.export import save_offline_html
from lxclab.widgets.resources import ResourceGraph, caption, nice_ceiling, render_svg

MiB = 2**20
SVG = "{http://www.w3.org/2000/svg}"


def known_recording() -> Recording:
    """Ten samples 0.5 s apart: memory climbs 10→55 MiB under 64 MiB, half a CPU used of a half-CPU
    quota, pids 1→10 under 10, and one OOM kill seen at t=4.0."""
    return Recording([Sample(t=i * 0.5, memory_bytes=(10 + 5 * i) * MiB, memory_limit=64 * MiB,
                             cpu_seconds=0.25 * i, cpu_quota=0.5, pids=1 + i, pids_limit=10,
                             oom_kills=1 if i >= 8 else 0) for i in range(10)])


class Axes:
    """The value and time scales of a rendered panel, read back from its own tick labels."""

    def __init__(self, svg: ET.Element):
        labels = [t.text for t in by_class(svg, "tick")]
        grid_ys = [float(line.get("y1")) for line in by_class(svg, "grid")]
        values = list(zip([float(text) for text in labels if not text.endswith(" s")], grid_ys))
        times = [(float(t.text[:-2]), float(t.get("x"))) for t in by_class(svg, "tick") if t.text.endswith(" s")]
        (self.v0, self.y0), (self.v1, self.y1) = values[0], values[-1]
        (self.t0, self.x0), (self.t1, self.x1) = times[0], times[-1]

    def y(self, value: float) -> float:
        """Where the y axis labels say `value` lies."""
        return self.y0 + (value - self.v0) / (self.v1 - self.v0) * (self.y1 - self.y0)

    def x(self, t: float) -> float:
        """Where the time axis labels say `t` lies."""
        return self.x0 + (t - self.t0) / (self.t1 - self.t0) * (self.x1 - self.x0)


def parse(svg_text: str) -> ET.Element:
    """The SVG as an element tree (which also proves it is well-formed XML)."""
    return ET.fromstring(svg_text)


def by_class(svg: ET.Element, name: str) -> list[ET.Element]:
    """Every element with class `name`."""
    return [e for e in svg.iter() if e.get("class") == name]


def polyline_points(svg: ET.Element) -> list[tuple[float, float]]:
    """The (x, y) points of the panel's series."""
    (line,) = by_class(svg, "series")
    return [tuple(float(n) for n in pair.split(",")) for pair in line.get("points").split()]


@pytest.mark.parametrize("metric, unit, values, limit", [
    ("memory", "MiB", [(0.5 * i, 10 + 5 * i) for i in range(10)], 64),
    ("cpu", "%", [(0.5 * i, 50.0) for i in range(1, 10)], 50),
    ("pids", "count", [(0.5 * i, 1 + i) for i in range(10)], 10),
])
def test_panel_draws_series_and_dashed_limit_where_its_axes_say(metric, unit, values, limit):
    svg = parse(render_svg(known_recording(), metric))
    axes = Axes(svg)
    assert (axes.v0, axes.t0, axes.t1) == (0, 0, 4)  # round seconds, one a second
    expected = [coordinate for t, v in values for coordinate in (axes.x(t), axes.y(v))]
    drawn = [coordinate for point in polyline_points(svg) for coordinate in point]
    assert drawn == pytest.approx(expected, abs=0.15)
    (line,) = by_class(svg, "limit")
    assert line.get("stroke-dasharray") and line.get("y1") == line.get("y2")
    assert float(line.get("y1")) == pytest.approx(axes.y(limit), abs=0.15)
    assert [float(line.get("x1")), float(line.get("x2"))] == pytest.approx([axes.x(0), axes.x(4.5)], abs=0.15)
    assert [e.text for e in by_class(svg, "unit")] == [unit]
    assert by_class(svg, "heading")[0].text.endswith(f"({unit})")


def test_oom_kill_is_a_red_marker_at_its_time_on_the_memory_panel_only():
    recording = known_recording()
    svg = parse(render_svg(recording, "memory"))
    (marker,) = by_class(svg, "oom")
    (line,) = marker.iter(f"{SVG}line")
    assert float(line.get("x1")) == pytest.approx(Axes(svg).x(4.0), abs=0.15)
    assert line.get("stroke") == "#d62728" and "OOM" in "".join(marker.itertext())
    assert by_class(parse(render_svg(recording, "cpu")), "oom") == []


def test_an_oom_label_near_the_right_edge_stays_inside_the_panel():
    samples = known_recording().samples
    late_kill = Recording([*samples[:-1], replace(samples[-1], oom_kills=samples[-2].oom_kills + 1)])
    labels = {float(marker.get("data-t")): next(marker.iter(f"{SVG}text"))
              for marker in by_class(parse(render_svg(late_kill, "memory", width=560)), "oom")}
    early, late = labels[4.0], labels[4.5]
    assert early.get("text-anchor") == "start"
    assert late.get("text-anchor") == "end" and float(late.get("x")) < 560


def test_value_axis_leaves_room_above_the_limit_and_the_data():
    svg = parse(render_svg(known_recording(), "memory"))
    assert Axes(svg).v1 == 80  # 64 MiB limit plus 5 % headroom, rounded up to a round number
    assert [nice_ceiling(v) for v in (0.7, 1, 67.2, 105, 2600)] == [0.8, 1, 80, 120, 3000]


def test_live_window_shows_only_the_last_seconds():
    recording = Recording([Sample(t=float(t), memory_bytes=MiB * t, memory_limit=None, cpu_seconds=0.0,
                                  cpu_quota=None, pids=1, pids_limit=None, oom_kills=0) for t in range(11)])
    svg = parse(render_svg(recording, "memory", window_seconds=3))
    axes = Axes(svg)
    assert (axes.t0, axes.t1) == (7, 10)
    assert len(polyline_points(svg)) == 4
    assert by_class(svg, "limit") == []  # no limit, no line
    short = Axes(parse(render_svg(Recording(recording.samples[:2]), "memory", window_seconds=30)))
    assert (short.t0, short.t1) == (0, 30)  # a young recording grows rightwards in a fixed window


def test_empty_recording_draws_axes_and_says_so():
    svg = parse(render_svg(Recording(), "pids"))
    assert by_class(svg, "series") == [] and by_class(svg, "note")[0].text == "no samples yet"
    assert caption(Recording()) == "no samples yet"


def test_render_is_deterministic_and_refuses_unknown_metrics():
    assert render_svg(known_recording(), "cpu") == render_svg(Recording.from_json(known_recording().to_json()), "cpu")
    with pytest.raises(MonitorError, match="unknown metric 'io'"):
        render_svg(known_recording(), "io")


def test_caption_gives_latest_values_with_limits_and_units():
    assert caption(known_recording()) == "memory 55 of 64 MiB · CPU 50 of 50 % · pids 10 of 10 · OOM kills 1"


# --- the widget -------------------------------------------------------------------------------
def test_widget_from_recording_shows_one_panel_per_metric_and_a_caption():
    recording = known_recording()
    graph = ResourceGraph.from_recording(recording, title="a memory hog")
    assert [graph.panels[m].value for m in ("memory", "cpu", "pids")] == \
        [render_svg(recording, m) for m in ("memory", "cpu", "pids")]
    assert html.escape(caption(recording)) in graph.caption.value
    assert "<b>a memory hog</b>" in graph.children[0].value
    assert repr(graph) == "ResourceGraph('a memory hog', 10 samples, 4.5 s)"


def test_add_draws_every_sample_eventually_though_redraws_are_throttled():
    graph = ResourceGraph(window_seconds=None)
    drawn, redraws = threading.Event(), []
    graph.caption.observe(redraws.append, "value")
    graph.caption.observe(lambda change: "pids 10" in change["new"] and drawn.set(), "value")
    for s in known_recording():
        graph.add(s)
    assert drawn.wait(10), graph.caption.value
    assert len(redraws) < 5  # ten samples in a burst are not ten redraws
    assert graph.panels["memory"].value == render_svg(known_recording(), "memory")


def test_follow_draws_a_live_process_and_the_final_state_when_sampling_stops():
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    stats = lambda: {"memory_bytes": 2 * MiB, "memory_limit": 4 * MiB, "pids": 1,  # noqa: E731
                     "cpu_seconds": sum(map(int, Path(f"/proc/{child.pid}/stat").read_text()
                                            .rsplit(")", 1)[1].split()[11:13])) / os.sysconf("SC_CLK_TCK")}
    graph, sampled = ResourceGraph(title="spinner"), threading.Event()
    try:
        with Sampler(stats, interval=0.05) as sampler:
            graph.follow(sampler)
            sampler.subscribe(lambda s: len(graph.recording) >= 5 and sampled.set())
            assert sampled.wait(30), sampler.error
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert [t for t in threading.enumerate() if t.name == "lxclab-sampler"] == []
    assert graph.panels["cpu"].value == render_svg(graph.recording, "cpu", window_seconds=30)
    assert len(polyline_points(parse(graph.panels["memory"].value))) == len(graph.recording)


def test_follow_shows_why_sampling_stopped():
    def vanished():
        raise FileNotFoundError("/sys/fs/cgroup/memory/gone/memory.usage_in_bytes")

    graph = ResourceGraph()
    sampler = Sampler(vanished, interval=0.01)
    graph.follow(sampler)
    sampler.start()
    sampler.stop()
    assert "sampling stopped: /sys/fs/cgroup/memory/gone" in graph.caption.value


def test_widget_state_embeds_the_svg_in_static_html(tmp_path):
    page = tmp_path / "graph.html"
    graph = ResourceGraph.from_recording(known_recording())
    embed_minimal_html(page, views=[graph], state=dependency_state([graph]), title="graph")
    text = page.read_text()
    state = json.loads(re.search(r'widget-state\+json">(.*?)</script>', text, re.S).group(1))["state"]
    values = [m["state"].get("value", "") for m in state.values() if m["model_name"] == "HTMLModel"]
    svgs = [v for v in values if v.startswith("<svg")]
    assert len(svgs) == 3 and all("<polyline" in v for v in svgs)
    assert not any("<script" in v or "http://" in v.replace('xmlns="http://www.w3.org/2000/svg"', "")
                   for v in values)


def test_static_html_renders_the_svg_offline_in_chromium(tmp_path):
    page = save_offline_html([ResourceGraph.from_recording(known_recording())], tmp_path / "graph.html")
    dom = dump_dom(page, tmp_path / "profile")
    rendered = re.findall(r'<polyline class="series"[^>]*>', dom)  # real elements, not JSON-escaped state
    assert len(rendered) == 3, dom[-2000:]
    assert 'class="limit"' in dom and 'class="oom"' in dom


def test_offline_export_names_the_missing_scripts_and_writes_nothing(tmp_path):
    page = tmp_path / "graph.html"
    with pytest.raises(LxclabError, match=r"embed-amd\.js, .*require\.js missing; run `npm install`"):
        save_offline_html([ResourceGraph.from_recording(known_recording())], page, node_modules=tmp_path / "none")
    assert not page.exists()
