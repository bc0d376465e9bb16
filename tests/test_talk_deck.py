"""The talk deck: every cell placed on a slide, every live demo with a recorded fallback that it really shows.

A demo cell reads `if live("name", ...):`; when the classroom registry does not answer, or
the demo needs root and the speaker is not root, `live` says why in one line and prints the
output recorded as root (`python tools/slides.py --record`), so the talk goes on.
"""

from __future__ import annotations

import json
import re
import shutil

import nbformat
import pytest

from fixture_lessons import ROOT, load_tool

slides = load_tool("slides")
DECK = nbformat.read(slides.DECK, as_version=4)
SETUP = next(cell.source for cell in DECK.cells if cell.cell_type == "code" and "def live(" in cell.source)


def test_every_cell_of_the_deck_says_where_it_goes():
    unplaced = [index for index, cell in enumerate(DECK.cells) if "slide_type" not in cell.metadata.get("slideshow", {})]
    assert unplaced == []
    kinds = [cell.metadata.slideshow.slide_type for cell in DECK.cells]
    assert kinds.count("notes") >= 8, "the deck should carry speaker notes"


def test_every_live_demo_has_a_recorded_fallback():
    recorded = json.loads(slides.RECORDED.read_text())
    demos = [slides.DEMO.search(cell.source) for cell in DECK.cells if cell.cell_type == "code"]
    names = [found.group(1) for found in demos if found]
    assert len(names) >= 12 and len(set(names)) == len(names)
    assert sorted(names) == sorted(recorded) and all(recorded.values())
    talking_to_the_registry = [index for index, cell in enumerate(DECK.cells) if cell.cell_type == "code"
                               and re.search(r"\b(http\.get|pull\(|namespaces\.run|chroot\.escape|box\.start)", cell.source)
                               and not slides.DEMO.search(cell.source)]
    assert talking_to_the_registry == [], "a live step outside `if live(...)` has no fallback"


@pytest.mark.parametrize("registry_up, root, says", [
    (False, True, "The classroom registry does not answer"),
    (True, False, "This step needs root (CAP_SYS_ADMIN): chroot(2)."),
])
def test_a_demo_that_cannot_run_says_why_and_shows_its_recording(monkeypatch, capsys, registry_up, root, says):
    monkeypatch.chdir(ROOT / "slides")
    monkeypatch.setenv("LXCLAB_REGISTRY_PORT", "9")  # nothing listens there: the registry does not answer
    helpers: dict = {}
    exec(SETUP, helpers)  # noqa: S102 - the deck's own helper cell, as the deck runs it
    helpers.update(REGISTRY_UP=registry_up, has_root=lambda: root)
    assert helpers["live"]("chroot", "chroot(2)") is False
    out = capsys.readouterr().out
    assert out.startswith(says) and out.endswith(json.loads(slides.RECORDED.read_text())["chroot"])
    helpers.update(REGISTRY_UP=True, has_root=lambda: True)
    assert helpers["live"]("chroot", "chroot(2)") is True and capsys.readouterr().out == ""
    assert helpers["registry_answers"]() is False  # port 9: nobody answers
    shutil.rmtree(helpers["workdir"])


def test_recording_refuses_a_demo_that_did_not_run_live():
    deck = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('if live("knock"):\n    pass')])
    deck.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="This step needs root: ...")]
    with pytest.raises(RuntimeError, match="did not run live"):
        slides.recorded_demos(deck)


def readme_slide_column() -> dict[str, set[int]]:
    """The slides the README's lesson table gives each lesson ("1–3", "12, 14–15")."""
    claimed = {}
    for row in re.finditer(r"^\| \[(\d\d)-[^|]*\|.*\| ([\d–, ]+) \|$", (ROOT / "README.md").read_text(), re.M):
        numbers = set()
        for part in row.group(2).split(","):
            first, _, last = part.strip().partition("–")
            numbers |= set(range(int(first), int(last or first) + 1))
        claimed[row.group(1)] = numbers
    return claimed


def test_the_readme_numbers_the_slides_of_the_deck_as_it_is():
    headings = [cell.source.splitlines()[0] for cell in DECK.cells if cell.metadata.slideshow.slide_type == "slide"]
    claimed = readme_slide_column()
    assert len(claimed) == len(load_tool("course").lessons()), "every lesson has a row with its slides"
    numbered = set().union(*claimed.values())
    assert numbered <= set(range(1, len(headings) + 1)), f"the deck has {len(headings)} slides"
    assert set(range(1, len(headings))) <= numbered, "every slide but the last (try it) belongs to a lesson"
    assert "LXC" in headings[min(claimed["08"]) - 1] and "Contain" in headings[min(claimed["10"]) - 1]
