"""The resource graph: matplotlib figures checked through their artists against the samples, the widget
live and replayed, the SVG a speaker saves, and its static HTML export rendered offline by a real chromium."""

from __future__ import annotations

import html
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from ipywidgets.embed import dependency_state, embed_minimal_html
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.lines import Line2D

from fixture_browser import dump_dom
from polling import SLOWDOWN, eventually

from lxclab.errors import LxclabError, SamplingError
from lxclab.sampling import Recording, Sample, Sampler
from lxclab.widgets import graphs
from lxclab.widgets.export import save_offline_html
from lxclab.widgets.graphs import METRICS, ResourceGraph, caption, draw, nice_ceiling, panel_svg

MiB = 2**20
RED = "#d62728"


def known_recording() -> Recording:
    """Ten samples 0.5 s apart: memory climbs 10→55 MiB under 64 MiB, half a CPU used of a half-CPU
    quota, pids 1→10 under 10, and one OOM kill seen at t=4.0."""
    return Recording([Sample(t=i * 0.5, memory_bytes=(10 + 5 * i) * MiB, memory_limit=64 * MiB,
                             cpu_seconds=0.25 * i, cpu_quota=0.5, pids=1 + i, pids_limit=10,
                             oom_kills=1 if i >= 8 else 0) for i in range(10)])


def panel(recording: Recording, metric: str, **options) -> Axes:
    """The one panel of a figure drawn for `metric` alone."""
    (axes,) = draw(recording, metric, **options).axes
    return axes


def artist(axes: Axes, gid: str) -> Line2D | None:
    """The line of `axes` with id `gid` (what the SVG calls it), or None."""
    found = [line for line in axes.lines if line.get_gid() == gid]
    assert len(found) <= 1
    return found[0] if found else None


def texts(axes: Axes) -> list[str]:
    """Every text written on the panel (notes, labels), not the tick labels."""
    return [text.get_text() for text in axes.texts]


@pytest.mark.parametrize("metric, unit, values, limit", [
    ("memory", "MiB", [(0.5 * i, 10 + 5 * i) for i in range(10)], 64),
    ("cpu", "%", [(0.5 * i, 50.0) for i in range(1, 10)], 50),
    ("pids", "count", [(0.5 * i, 1 + i) for i in range(10)], 10),
])
def test_panel_draws_the_samples_in_display_units_and_a_dashed_limit(metric, unit, values, limit):
    axes = panel(known_recording(), metric)
    series = artist(axes, f"series-{metric}")
    assert list(series.get_xdata()) == pytest.approx([t for t, _ in values])
    assert list(series.get_ydata()) == pytest.approx([v for _, v in values])
    line = artist(axes, f"limit-{metric}")
    assert line.get_linestyle() == "--" and to_hex(line.get_color()) == RED
    assert list(line.get_ydata()) == [limit, limit] and list(line.get_xdata()) == [0, 1]  # across the whole panel
    assert f"limit {limit}" in " ".join(texts(axes))
    assert axes.get_xlim() == (0, 4.5) and axes.get_ylim()[0] == 0
    assert axes.get_ylabel() == unit and axes.get_title(loc="left").endswith(f"({unit})")
    assert axes.get_xlabel() == "time (s)"


def test_oom_kill_is_a_red_marker_at_its_time_on_the_memory_panel_only():
    recording = known_recording()
    memory = panel(recording, "memory")
    marker = artist(memory, "oom-4")
    assert list(marker.get_xdata()) == [4.0, 4.0] and to_hex(marker.get_color()) == RED
    assert "OOM kill" in texts(memory)
    cpu = panel(recording, "cpu")
    assert [line.get_gid() for line in cpu.lines] == ["series-cpu", "limit-cpu"] and "OOM kill" not in texts(cpu)


def test_an_oom_label_near_the_right_edge_stays_inside_the_panel():
    samples = known_recording().samples
    late_kill = Recording([*samples[:-2], replace(samples[-2], oom_kills=0), samples[-1]])
    early = Recording([*samples[:3], *(replace(s, oom_kills=1) for s in samples[3:])])
    alignment = {name: next(t.get_horizontalalignment() for t in panel(r, "memory").texts if t.get_text() == "OOM kill")
                 for name, r in (("early", early), ("late", late_kill))}
    assert alignment == {"early": "left", "late": "right"}


def test_value_axis_leaves_room_above_the_limit_and_the_data():
    assert panel(known_recording(), "memory").get_ylim() == (0, 80)  # 64 MiB plus 5 %, rounded up to a round number
    assert [nice_ceiling(v) for v in (0.7, 1, 67.2, 105, 2600)] == [0.8, 1, 80, 120, 3000]


def test_live_window_shows_only_the_last_seconds():
    recording = Recording([Sample(t=float(t), memory_bytes=MiB * t, memory_limit=None, cpu_seconds=0.0,
                                  cpu_quota=None, pids=1, pids_limit=None, oom_kills=0) for t in range(11)])
    axes = panel(recording, "memory", window_seconds=3)
    assert axes.get_xlim() == (7, 10)
    assert list(artist(axes, "series-memory").get_xdata()) == [7, 8, 9, 10]
    assert artist(axes, "limit-memory") is None  # no limit, no line
    short = panel(Recording(recording.samples[:2]), "memory", window_seconds=30)
    assert short.get_xlim() == (0, 30)  # a young recording grows rightwards in a fixed window


def test_empty_recording_draws_axes_and_says_so():
    axes = panel(Recording(), "pids")
    assert list(axes.lines) == [] and texts(axes) == ["no samples yet"] and axes.get_ylabel() == "count"
    assert caption(Recording()) == "no samples yet"


def test_all_three_metrics_share_one_time_axis():
    figure = draw(known_recording())
    assert [a.get_title(loc="left") for a in figure.axes] == ["memory (MiB)", "CPU (%)", "pids (count)"]
    assert [a.get_xlabel() for a in figure.axes] == ["", "", "time (s)"]
    figure.axes[0].set_xlim(1, 2)
    assert figure.axes[2].get_xlim() == (1, 2)


def test_svg_is_deterministic_inline_markup_and_unknown_metrics_are_refused():
    text = panel_svg(known_recording(), "cpu")
    assert text == panel_svg(Recording.from_json(known_recording().to_json()), "cpu")
    tree = ET.fromstring(text)  # well-formed, and an <svg> element ready to inline (no prolog, no page-wide CSS)
    assert tree.tag == "{http://www.w3.org/2000/svg}svg" and "<style" not in text and "<metadata" not in text
    assert sorted(e.get("id") for e in tree.iter() if (e.get("id") or "").startswith(("series", "limit"))) == \
        ["limit-cpu", "series-cpu"]
    assert "50 %" in "".join(tree.itertext())  # text is kept as text
    with pytest.raises(SamplingError, match="unknown metric 'io'"):
        draw(known_recording(), ["memory", "io"])


def test_caption_gives_latest_values_with_limits_and_units():
    assert caption(known_recording()) == "memory 55 of 64 MiB · CPU 50 of 50 % · pids 10 of 10 · OOM kills 1"


# --- the widget -------------------------------------------------------------------------------
def test_widget_from_recording_shows_one_panel_per_metric_and_a_caption():
    recording = known_recording()
    graph = ResourceGraph.from_recording(recording, title="a memory hog")
    assert [graph.panels[m].value for m in ("memory", "cpu", "pids")] == \
        [panel_svg(recording, m) for m in ("memory", "cpu", "pids")]
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
    assert drawn.wait(10 * SLOWDOWN), graph.caption.value  # matplotlib draws in its own time (minutes under TCG)
    assert len(redraws) < 5  # ten samples in a burst are not ten redraws
    assert graph.panels["memory"].value == panel_svg(known_recording(), "memory")


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
    assert graph.panels["cpu"].value == panel_svg(graph.recording, "cpu", window_seconds=30)
    drawn = artist(graph.figure().axes[0], "series-memory")
    assert list(drawn.get_xdata()) == [s.t for s in graph.recording]


def slow_draws(monkeypatch: pytest.MonkeyPatch, seconds: float, on: Callable[[], bool]) -> Callable:
    """Make each draw of the graph's three panels take `seconds` while `on()` says so; returns the real panel_svg."""
    real = graphs.panel_svg

    def slow_panel_svg(*args, **kwargs):
        if on():
            time.sleep(seconds / len(METRICS))
        return real(*args, **kwargs)

    monkeypatch.setattr(graphs, "panel_svg", slow_panel_svg)
    return real


def counting_stats() -> Callable[[], dict]:
    """Stats of a process whose memory grows by 1 MiB per read."""
    reads = itertools.count(1)
    return lambda: {"memory_bytes": next(reads) * MiB, "memory_limit": None, "pids": 1, "cpu_seconds": 0.0}


def test_a_slow_draw_never_holds_up_sampling(monkeypatch):
    draw_seconds = 0.6 * SLOWDOWN  # a draw as slow as on an emulated VM
    graph = ResourceGraph(window_seconds=None)
    slow_draws(monkeypatch, draw_seconds, on=lambda: True)
    with Sampler(counting_stats(), interval=0.01) as sampler:
        graph.follow(sampler)
        time.sleep(graphs.MIN_REDRAW_SECONDS + 2 * draw_seconds)
    times = [s.t for s in graph.recording]
    assert max(later - earlier for earlier, later in zip(times, times[1:])) < draw_seconds / 2


def in_a_timer() -> bool:
    """True in a graph's timer thread, where its live draws run."""
    return isinstance(threading.current_thread(), threading.Timer)


def test_the_final_draw_shows_every_sample_though_an_earlier_draw_ends_after_it(monkeypatch):
    draw_seconds = 0.6 * SLOWDOWN
    graph = ResourceGraph(window_seconds=None)
    timer_drawing = threading.Event()

    def slow_in_a_timer() -> bool:
        """Slow the timers' draws, and say when the first one begins."""
        if not in_a_timer():
            return False
        timer_drawing.set()
        return True

    real = slow_draws(monkeypatch, draw_seconds, on=slow_in_a_timer)
    with Sampler(counting_stats(), interval=0.01) as sampler:
        graph.follow(sampler)
        assert timer_drawing.wait(60 * SLOWDOWN)
        time.sleep(draw_seconds / 4)  # a timer's slow draw of fewer samples is under way
    for timer in [thread for thread in threading.enumerate() if isinstance(thread, threading.Timer)]:
        timer.join()
    assert [graph.panels[metric].value for metric in METRICS] == [real(graph.recording, m, None) for m in METRICS]


def test_a_slow_live_draw_is_followed_by_a_pause_twice_as_long(monkeypatch):
    """On a slow machine the live graph leaves two thirds of a CPU to the container it watches."""
    draws: list[tuple[float, float]] = []  # (start, end) of each live draw's panels
    graph = ResourceGraph(window_seconds=None)
    slow_draws(monkeypatch, 0.6, on=in_a_timer)
    slowed = graphs.panel_svg

    def timed_panel_svg(recording, metric, window_seconds=None):
        began = time.monotonic()
        svg = slowed(recording, metric, window_seconds)
        if in_a_timer():
            if metric == METRICS[0]:
                draws.append((began, began))
            draws[-1] = (draws[-1][0], time.monotonic())
        return svg

    monkeypatch.setattr(graphs, "panel_svg", timed_panel_svg)
    with Sampler(counting_stats(), interval=0.05) as sampler:
        graph.follow(sampler)
        assert eventually(lambda: len(draws) >= 3, timeout=60), draws
    for (start, end), (next_start, _) in itertools.pairwise(draws):
        assert next_start - end >= graphs.PAUSE_PER_DRAW * (end - start), draws


def test_follow_shows_why_sampling_stopped():
    def vanished():
        raise FileNotFoundError("/sys/fs/cgroup/memory/gone/memory.usage_in_bytes")

    graph = ResourceGraph()
    sampler = Sampler(vanished, interval=0.01)
    graph.follow(sampler)
    sampler.start()
    sampler.stop(timeout=60 * SLOWDOWN)  # the graph's last redraw took over 60 s in a TCG VM
    assert "sampling stopped: /sys/fs/cgroup/memory/gone" in graph.caption.value


def test_widget_state_embeds_the_svg_in_static_html(tmp_path):
    page = tmp_path / "graph.html"
    graph = ResourceGraph.from_recording(known_recording())
    embed_minimal_html(page, views=[graph], state=dependency_state([graph]), title="graph")
    text = page.read_text()
    state = json.loads(re.search(r'widget-state\+json">(.*?)</script>', text, re.S).group(1))["state"]
    values = [m["state"].get("value", "") for m in state.values() if m["model_name"] == "HTMLModel"]
    svgs = [v for v in values if v.startswith("<svg")]
    assert len(svgs) == 3 and all('<g id="series-' in v for v in svgs)
    namespaces = re.compile(r'xmlns(:xlink)?="http://www\.w3\.org/[^"]*"')
    assert not any("<script" in v or "http" in namespaces.sub("", v) for v in values)


def test_static_html_renders_the_svg_offline_in_chromium(tmp_path):
    page = save_offline_html([ResourceGraph.from_recording(known_recording())], tmp_path / "graph.html")
    dom = dump_dom(page, tmp_path / "profile")
    rendered = re.findall(r'<g id="series-(\w+)"', dom)  # real elements, not JSON-escaped state
    assert rendered == ["memory", "cpu", "pids"], dom[-2000:]
    assert '<g id="limit-memory"' in dom and '<g id="oom-4"' in dom


def test_offline_export_names_the_missing_scripts_and_writes_nothing(tmp_path):
    page = tmp_path / "graph.html"
    with pytest.raises(LxclabError, match=r"embed-amd\.js, .*require\.js missing; run `npm install`"):
        save_offline_html([ResourceGraph.from_recording(known_recording())], page, node_modules=tmp_path / "none")
    assert not page.exists()


def test_a_speaker_saves_the_graphs_as_png_or_svg(tmp_path):
    graph = ResourceGraph.from_recording(known_recording(), title="a memory hog")
    assert graph.save(tmp_path / "hog.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    saved = ET.parse(graph.save(tmp_path / "hog.svg")).getroot()
    assert {e.get("id") for e in saved.iter()} >= {"series-memory", "series-cpu", "series-pids", "oom-4"}
    with pytest.raises(LxclabError, match=r"cannot save a figure as hog\.pdf: name it \.png or \.svg"):
        graph.save(tmp_path / "hog.pdf")
