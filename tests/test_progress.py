"""Progress displays: the tqdm terminal bar and the notebook widget bar, fed by a real pull."""

from __future__ import annotations

import io

from lxclab import manifest as m
from lxclab.engine import pull
from lxclab.progress import TerminalProgress
from lxclab.store import Store
from lxclab.widgets.progress import WidgetProgress, render_bar


def test_the_terminal_bar_reaches_the_total(tmp_path):
    out = io.StringIO()
    bar = TerminalProgress(out)
    bar.start("k", "layer-one", 2048)
    bar.update("k", 1024)
    bar.update("k", 2048)
    bar.finish("k")
    last = out.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("layer-one: 100%") and "2.00k/2.00k" in last


def test_a_resumed_transfer_starts_its_terminal_bar_at_the_offset():
    out = io.StringIO()
    bar = TerminalProgress(out)
    bar.start("k", "resumed", 1000)
    bar.update("k", 600)
    bar.update("k", 0)  # the server ignored Range: start over
    bar.update("k", 1000)
    bar.finish("k")
    assert "100%" in out.getvalue().replace("\r", "\n").strip().splitlines()[-1]


def test_a_widget_bar_is_redrawn_once_per_percent_and_says_how_it_ended():
    bar = WidgetProgress()
    bar.start("a", "a-layer", 100_000)
    bar.start("b", "b-layer", 100_000)
    row = bar.box.children[0]
    bar.update("a", 500)
    assert "width:0.0%" in row.value
    bar.update("a", 60_000)
    assert "width:60.0%" in row.value
    bar.finish("a")
    bar.update("b", 30_000)
    bar.finish("b")
    assert "60.0 kB / 100.0 kB stopped" in row.value
    assert "30.0 kB / 100.0 kB stopped" in bar.box.children[1].value


def test_render_bar_escapes_its_label():
    assert "&lt;b&gt;" in render_bar("<b>", 1, 2) and "<b>" not in render_bar("<b>", 1, 2).split("</span>")[0]


def test_a_real_pull_fills_one_widget_bar_per_layer(pushed_image, tmp_path, lxclab_home):
    bar = WidgetProgress()
    pull(pushed_image.ref, store=Store(tmp_path / "store"), progress=bar)
    rows = [row.value for row in bar.box.children]
    assert len(rows) == len(pushed_image.image.layers)
    for layer in pushed_image.image.layers:
        short = m.sha256_digest(layer)[7:19]
        (row,) = [r for r in rows if short in r]
        assert "width:100.0%" in row and row.endswith("done</span></div>")
