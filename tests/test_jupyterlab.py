"""Lessons in a real JupyterLab (loopback, a token) driven by Playwright and Debian's chromium: every cell
runs without an error and the lesson's widget renders. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
import time
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from fixture_browser import PAGE_TIMEOUT_MS, Browser, browser, chromium, screenshot  # noqa: F401
from fixture_jupyterlab import JupyterLab, jupyterlab  # noqa: F401
from fixture_lessons import NOTEBOOKS, error_outputs, lesson_classroom  # noqa: F401

WIDGET_TIMEOUT_MS = PAGE_TIMEOUT_MS
RUN_ALL_TIMEOUT_MS = 4 * PAGE_TIMEOUT_MS
WIDGET_LESSONS = {"04": ".widget-tab", "07": "svg g[id^='series-']"}  # the layer explorer, the resource graph
KERNEL_READY = "Python 3 (ipykernel) | Idle"  # the status bar, once the notebook's kernel is up
STATUS_BAR = "#jp-main-statusbar"
LOG_TAIL = 3000  # characters of the server's log that a failure shows
CHUNK_TIMEOUT = re.compile(r"Loading chunk \S+ failed\.\n\(timeout: ")  # rspack's ChunkLoadError after its 120 s
OPEN_ATTEMPTS = 2
PROMPTS = """() => [...document.querySelectorAll(".jp-Notebook .jp-CodeCell .jp-InputArea-prompt")]
    .map(prompt => prompt.textContent)"""
ALL_CELLS_RAN = """count => {
    const prompts = [...document.querySelectorAll(".jp-Notebook .jp-CodeCell .jp-InputArea-prompt")];
    return prompts.length === count && prompts.every(prompt => /\\[\\d+\\]/.test(prompt.textContent));
}"""


def lab_notebooks() -> list:
    """Lessons 04 (layer explorer) and 07 (resource graph), each with a selector of the widget it must show."""
    return [pytest.param(path, selector, id=path.stem) for number, selector in WIDGET_LESSONS.items()
            for path in sorted(NOTEBOOKS.glob(f"{number}-*.ipynb"))]


def serve_without_outputs(notebook: Path, lab: JupyterLab) -> str:
    """Put a copy of `notebook` with no outputs in the lab's folder; returns its path there."""
    relative = f"{notebook.parent.name}/{notebook.name}"
    (lab.root / notebook.parent.name).mkdir(exist_ok=True)
    copy = nbformat.read(notebook, as_version=4)
    for cell in copy.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    copy.metadata.pop("widgets", None)
    nbformat.write(copy, lab.root / relative)
    return relative


def run_all_cells(page: Page) -> None:
    """Choose Run → Run All Cells in JupyterLab's menu bar."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def save(page: Page) -> None:
    """Click the notebook's Save button and give the server a second to write it."""
    page.locator('.jp-NotebookPanel-toolbar [data-command="docmanager:save"]').first.click()
    page.wait_for_timeout(1000)


def saved_notebook(lab: JupyterLab, relative: str) -> nbformat.NotebookNode:
    """The notebook as the server has it saved, through the contents API."""
    return nbformat.from_dict(lab.api(f"contents/{relative}", content=1)["content"])


def saved_after_run(lab: JupyterLab, relative: str, page: Page, timeout: float = 30.0) -> nbformat.NotebookNode:
    """Save the notebook (toolbar button) until the server holds it with every code cell run, and return it."""
    deadline = time.monotonic() + timeout
    while True:
        save(page)
        saved = saved_notebook(lab, relative)
        counts = [cell.execution_count for cell in saved.cells if cell.cell_type == "code"]
        if all(counts):
            return saved
        assert time.monotonic() < deadline, f"{relative} was not saved with its outputs within {timeout} s: {counts}"


def chunk_timed_out(errors: list[str]) -> bool:
    """Whether a page error says a chunk of JupyterLab's code did not load within the bundler's 120 s."""
    return any(CHUNK_TIMEOUT.search(error) for error in errors)


def not_ready(page: Page, lab: JupyterLab, name: str) -> AssertionError:
    """The failure for a notebook that never opened: what the page and its status bar show, the server's
    kernels and the end of its log, with a screenshot."""
    screenshot(page, f"jupyterlab-{name}-not-open")
    shown = " ".join(page.inner_text("body").split())[:600]
    status_bar = page.locator(STATUS_BAR)
    status = " ".join(status_bar.inner_text().split()) if status_bar.count() else None
    return AssertionError(f"{name}: the notebook or its kernel was not ready; {page.url} shows: {shown!r}\n"
                          f"status bar: {status!r}; kernels: {lab.kernel_states()}\n"
                          f"server log ends:\n{lab.log.read_text(errors='replace')[-LOG_TAIL:]}")


def open_notebook(page: Page, errors: list[str], lab: JupyterLab, relative: str, name: str) -> int:
    """Open `relative` in a fresh workspace `name` until a code cell shows and the kernel is idle; returns where
    that load's errors start in `errors`.

    Under TCG the first load of JupyterLab may take one of its chunks past the bundler's 120 s, and such a page
    never recovers (it stays blank); then it is loaded once more, at most, from a server that is warm by then.
    """
    url = lab.open_url(relative, workspace=name)
    deadline = time.monotonic() + RUN_ALL_TIMEOUT_MS / 1000
    for _ in range(OPEN_ATTEMPTS):
        first_error = len(errors)
        page.goto(url, wait_until="domcontentloaded")
        while not chunk_timed_out(errors[first_error:]):
            if page.locator(".jp-Notebook .jp-CodeCell").count():
                try:
                    page.get_by_text(KERNEL_READY).wait_for(timeout=max(deadline - time.monotonic(), 1) * 1000)
                except PlaywrightTimeoutError:
                    raise not_ready(page, lab, name) from None
                return first_error
            if time.monotonic() > deadline:
                raise not_ready(page, lab, name)
            page.wait_for_timeout(1000)
    raise AssertionError(f"{name}: JupyterLab's code did not load in {OPEN_ATTEMPTS} tries: {errors}")


def run_every_cell(page: Page, lab: JupyterLab, relative: str, name: str, code_cells: int) -> None:
    """Run All Cells, and wait until every code cell shows its execution count."""
    run_all_cells(page)
    try:
        page.wait_for_function(ALL_CELLS_RAN, arg=code_cells, timeout=RUN_ALL_TIMEOUT_MS, polling=500)
    except PlaywrightTimeoutError:
        raise stuck(page, lab, relative, name) from None


def stuck(page: Page, lab: JupyterLab, relative: str, name: str) -> AssertionError:
    """The failure for a Run All that did not reach the end: the prompts, the kernels and the traceback of any
    cell that failed (Run All stops there), from the notebook as saved, with a screenshot."""
    screenshot(page, f"jupyterlab-{name}-stuck")
    prompts = page.evaluate(PROMPTS)
    save(page)
    code = [cell for cell in saved_notebook(lab, relative).cells if cell.cell_type == "code"]
    failures = [f"code cell {number}: {error.ename}: {error.evalue}\n" + "\n".join(error.traceback)
                for number, cell in enumerate(code, 1) for error in error_outputs(cell)]
    return AssertionError(f"{name}: not every cell ran; prompts: {prompts}; kernels: {lab.kernel_states()}\n"
                          + ("\n".join(failures) or "no cell of the notebook as saved shows an error"))


def show_widget(page: Page, selector: str) -> None:
    """Wait for the first output matching `selector`, scroll to it and wait until it is drawn."""
    rendered = page.locator(f".jp-OutputArea {selector}").first
    rendered.wait_for(state="attached", timeout=WIDGET_TIMEOUT_MS)
    rendered.scroll_into_view_if_needed()
    rendered.wait_for(state="visible", timeout=WIDGET_TIMEOUT_MS)


@pytest.mark.parametrize("notebook, widget", lab_notebooks())
def test_a_lesson_runs_in_jupyterlab_and_shows_its_widget(notebook: Path, widget: str, browser: Browser,
                                                         jupyterlab: JupyterLab):
    relative = serve_without_outputs(notebook, jupyterlab)
    code_cells = sum(cell.cell_type == "code" for cell in nbformat.read(notebook, as_version=4).cells)
    page = browser.page()
    # the load event waits for every chunk of JupyterLab; open_notebook waits for what the test needs, longer
    first_error = open_notebook(page, browser.errors, jupyterlab, relative, notebook.stem)
    run_every_cell(page, jupyterlab, relative, notebook.stem, code_cells)
    show_widget(page, widget)
    screenshot(page, f"jupyterlab-{notebook.stem}")
    saved = saved_after_run(jupyterlab, relative, page)
    assert [error_outputs(cell) for cell in saved.cells if error_outputs(cell)] == []
    assert browser.guard.remote == [] and browser.errors[first_error:] == []
