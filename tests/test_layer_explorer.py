"""The layer explorer: built from the model, it shows layers, providers, shadows, whiteouts, opaque dirs, efficiency."""

from __future__ import annotations

import io
import re
from pathlib import Path

import ipywidgets
from ipywidgets.embed import embed_minimal_html, embed_snippet

from fixture_browser import dump_dom
from fixture_layers import build_tar, directory, file, hardlink, opaque, symlink, whiteout
from lxclab.layers import read_entries
from lxclab.unionfs import LayerStack
from lxclab.widgets.export import save_offline_html
from lxclab.widgets.layers import LayerExplorer, human_bytes

LAYERS = [
    [directory("etc"), file("etc/passwd", b"root\n" * 20), file("etc/motd", b"m" * 50), directory("opt"),
     directory("opt/notes"), file("opt/notes/draft", b"d" * 30), symlink("bin", "usr/bin"),
     file("big", b"B" * 4000)],
    [file("etc/passwd", b"root\nann\n" * 20), whiteout("etc/motd"), opaque("opt/notes"), file("opt/notes/final", b"f"),
     hardlink("etc/passwd2", "etc/passwd")],
    [whiteout("big"), file("app/run.sh", b"#!/bin/sh\n", 0o755)],
]
HISTORY = ["ADD rootfs.tar /", "RUN useradd ann && rm /etc/motd", "RUN rm /big && cp run.sh /app/"]


def stack() -> LayerStack:
    entries = [read_entries(io.BytesIO(build_tar(members))) for members in LAYERS]
    return LayerStack.build(entries, [f"sha256:{n:064d}" for n in range(3)], HISTORY)


def all_text(widget: ipywidgets.Widget) -> str:
    """Every HTML value and title in a widget tree, joined."""
    texts = [getattr(widget, "value", "") or ""]
    texts += list(getattr(widget, "titles", ()) or ())
    for child in getattr(widget, "children", ()):
        texts.append(all_text(child))
    return "\n".join(t for t in texts if isinstance(t, str))


def test_the_model_behind_the_explorer():
    model = stack()
    passwd = model.node("etc/passwd")
    assert passwd.layer == 1 and [v.layer for v in passwd.shadows] == [0]
    assert model.hidden["etc/motd"].how == "whiteout" and model.hidden["etc/motd"].layer == 1
    assert model.hidden["opt/notes/draft"].how == "opaque"
    assert [(c.count("added"), c.count("modified"), c.count("deleted")) for c in model.layers] == [
        (8, 0, 0), (2, 1, 2), (2, 0, 1)]
    stored = 100 + 50 + 30 + 4000 + 180 + 1 + 10
    assert (model.stored_bytes, model.visible_bytes, model.wasted_bytes) == (stored, 191, stored - 191)
    assert model.waste()[0] == ("big", 4000)
    assert abs(model.efficiency - 191 / stored) < 1e-9


def test_the_explorer_shows_layers_providers_shadows_whiteouts_and_efficiency():
    explorer = LayerExplorer(stack(), "lab/demo:1")
    text = all_text(explorer)
    assert "lab/demo:1" in text and "3 layers" in text and "efficiency 4.3%" in text
    assert f"layer 1  {human_bytes(4180)}  +8 ~0 -0  ADD rootfs.tar /" in text and "layer 3  10 B  +2 ~0 -1" in text
    assert "RUN useradd ann &amp;&amp; rm /etc/motd" in text
    assert "<code>passwd</code> <small style='color:#555'>from layer 2, 180 B, shadows layer 1" in text
    assert "<s><code>motd</code></s> <small>deleted by layer 2 (whiteout), was in layer 1" in text
    assert "<code>notes/</code> <small style='color:#555'>from layer 1, opaque in layer 2</small>" in text
    assert "<code>bin@</code> &rarr; <code>usr/bin</code>" in text
    assert "<code>/big</code></td><td>3.9 KiB" in text
    assert not re.search(r"\bL\d", text)  # one numbering, the lessons': layer 1 is the bottom layer


def test_the_explorer_survives_export_to_static_html(tmp_path: Path):
    explorer = LayerExplorer(stack(), "lab/demo:1")
    page = tmp_path / "explorer.html"
    embed_minimal_html(page, views=[explorer], title="layers")
    exported = page.read_text()
    for expected in ("efficiency 4.3%", "deleted by layer 2 (whiteout)", "opaque in layer 2", "RUN rm /big", "Waste"):
        assert expected in exported
    assert "application/vnd.jupyter.widget-state+json" in exported
    snippet = embed_snippet(views=[explorer])
    assert "deleted by layer 3 (whiteout)" in snippet and "shadows layer 1" in snippet


def test_the_exported_page_renders_offline_in_chromium(tmp_path: Path):
    page = save_offline_html([LayerExplorer(stack(), "lab/demo:1")], tmp_path / "explorer.html")
    dom = dump_dom(page, tmp_path / "profile")
    rendered = re.sub(r"<script.*?</script>", "", dom, flags=re.S)  # real elements only, not the widget state
    assert re.search(r"<b>efficiency 4\.3%</b>", rendered), dom[-2000:]
    assert len(re.findall(r"<details", rendered)) == 5 and "<s><code>motd</code></s>" in rendered
    assert "layer 1  4.1 KiB  +8 ~0 -0  ADD rootfs.tar /" in rendered
