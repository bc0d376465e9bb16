"""Widgets in a real browser (Debian's chromium driven by Playwright): a notebook exported to static HTML
renders its widgets with no network; the talk deck, its demos run live, loads offline and shows its widgets.
Screenshots go to test-artifacts/ (JupyterLab itself: tests/test_jupyterlab.py)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from fixture_browser import PAGE_TIMEOUT_MS, Browser, browser, chromium, screenshot  # noqa: F401
from fixture_lessons import (IPYTHON_DIR, LessonClassroom, lesson_classroom, lessons, load_tool,  # noqa: F401
                             run_notebook)

export = load_tool("export")
slides = load_tool("slides")
WIDGET_TIMEOUT_MS = PAGE_TIMEOUT_MS
DECK_TIMEOUT_MS = 3 * PAGE_TIMEOUT_MS  # reveal.js and all the deck's widgets: over 180 s under TCG beside another Chromium

WIDGET_CELLS = [
    '''import io, tarfile
from lxclab.layers import read_entries
from lxclab.unionfs import LayerStack
from lxclab.widgets.layers import LayerExplorer

def layer(files):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return read_entries(buffer)

stack = LayerStack.build([layer({"etc/motd": b"hello\\n", "big": b"B" * 4000}),
                          layer({".wh.big": b"", "etc/motd": b"bye\\n"})], created_by=["ADD base", "RUN rm /big"])
LayerExplorer(stack, title="two layers")''',
    '''from lxclab.sampling import Recording, Sample
from lxclab.widgets.graphs import ResourceGraph
ResourceGraph.from_recording(Recording([Sample(t=i / 2, memory_bytes=(10 + 5 * i) << 20, memory_limit=64 << 20,
    cpu_seconds=i / 4, cpu_quota=0.5, pids=1 + i, pids_limit=10, oom_kills=0) for i in range(10)]))''',
    '''from lxclab.widgets.progress import WidgetProgress
bars = WidgetProgress()
bars.start("config", "config", 1000)
bars.update("config", 1000)
bars.finish("config")
bars''',
]


def widget_notebook(folder: Path) -> Path:
    """An executed notebook showing the layer explorer, a resource graph and a progress bar, state stored."""
    path = folder / "widgets.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in WIDGET_CELLS]), path)
    executed = run_notebook(path, dict(os.environ, IPYTHONDIR=str(IPYTHON_DIR)), allow_errors=False)
    nbformat.write(executed, path)
    return path


def test_exported_notebook_renders_its_widgets_with_no_network(browser: Browser, tmp_path: Path):
    page_file = export.export_html(widget_notebook(tmp_path), tmp_path / "html")
    assert "cdn.jsdelivr" not in page_file.read_text() and "unpkg.com" not in page_file.read_text()
    page = browser.page()
    page.goto(page_file.as_uri())
    page.wait_for_selector(".widget-tab", timeout=WIDGET_TIMEOUT_MS)
    page.wait_for_selector("svg g[id^='series-']", timeout=WIDGET_TIMEOUT_MS)
    screenshot(page, "static-export-widgets")
    assert "efficiency" in page.inner_text(".widget-vbox >> nth=0")
    assert page.locator("svg g[id^='series-']").count() == 3  # memory, CPU and pids panels drawn by the browser
    assert "1.0 kB / 1.0 kB done" in page.inner_text("body")
    assert browser.guard.remote == [] and browser.errors == [] and browser.failed == []
    assert any(url.endswith("html-manager/dist/embed-amd.js") for url in browser.guard.requested)


def lessons_with_widgets() -> list[Path]:
    """The lessons whose stored outputs show widgets (their widget state is stored beside them)."""
    return [path for path in lessons() if export.WIDGET_VIEW in path.read_text()]


EVERY_VIEW_DRAWN = """() => {
    const views = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]');
    const drawn = [...document.querySelectorAll(".widget-subarea")].filter(area => area.children.length > 0);
    return views.length > 0 && drawn.length === views.length;
}"""


@pytest.mark.parametrize("lesson", lessons_with_widgets(), ids=lambda path: path.stem)
def test_a_lesson_exported_to_static_html_draws_every_widget_offline(lesson: Path, browser: Browser, tmp_path: Path):
    page = browser.page()
    page.goto(export.export_html(lesson, tmp_path).as_uri())
    page.wait_for_function(EVERY_VIEW_DRAWN, timeout=WIDGET_TIMEOUT_MS)
    assert "Error displaying widget" not in page.inner_text("body")
    screenshot(page, f"static-{lesson.stem}")
    assert browser.guard.remote == [] and browser.errors == [] and browser.failed == []


def show_slide_of(page, selector: str) -> None:
    """Make reveal.js go to the slide that holds the first element matching `selector`."""
    page.evaluate("""selector => {
        const slide = document.querySelector(selector).closest("section");
        const where = window.lxclabReveal.getIndices(slide);
        window.lxclabReveal.slide(where.h, where.v);
    }""", selector)


def test_the_deck_runs_its_demos_and_shows_its_widgets_offline(browser: Browser, lesson_classroom: LessonClassroom,
                                                               tmp_path: Path):
    deck = slides.build_deck(tmp_path / "slides", env=lesson_classroom.env)
    executed = nbformat.read(tmp_path / "slides" / slides.DECK.name, as_version=4)
    assert [o for c in executed.cells for o in c.get("outputs", []) if o.output_type == "error"] == []
    page = browser.page()
    page.goto(deck.as_uri())
    page.wait_for_function("window.lxclabReveal && window.lxclabReveal.isReady()", timeout=DECK_TIMEOUT_MS)
    assert page.evaluate("window.lxclabReveal.getTotalSlides()") > 10
    page.wait_for_selector(".reveal .widget-tab", state="attached", timeout=WIDGET_TIMEOUT_MS)
    show_slide_of(page, ".reveal .widget-tab")
    page.wait_for_selector(".reveal section.present .widget-tab", state="visible", timeout=WIDGET_TIMEOUT_MS)
    screenshot(page, "deck-layer-explorer", full_page=False)  # a deck is one screen; trixie's Chromium under TCG
    # gave no full-page capture of it
    show_slide_of(page, ".reveal svg g[id^='series-']")
    assert page.locator(".reveal section.present svg g[id^='series-']").count() == 3
    assert "OOM kills: 1" in page.inner_text(".reveal section.present")  # the hog met its memory limit
    screenshot(page, "deck-resource-graph", full_page=False)
    assert browser.guard.remote == [] and browser.errors == [] and browser.failed == []
