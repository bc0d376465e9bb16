"""The course tooling: solution stripping, the student edition, text twins and exercise checks."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

from lxclab.exercises import ExerciseError, check_against, check_cases
from test_lessons import NOTEBOOKS, heading_anchors

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("course", ROOT / "tools/course.py")
course = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(course)

SOLVED = '''def add(a, b):
    """Add two numbers."""
    ### BEGIN SOLUTION
    total = a + b
    return total
    ### END SOLUTION
'''


def test_strip_solutions_replaces_the_region_with_an_indented_stub():
    stripped = course.strip_solutions(SOLVED)
    assert "total" not in stripped and "BEGIN SOLUTION" not in stripped
    assert '    raise NotImplementedError("exercise:' in stripped
    namespace: dict = {}
    exec(stripped, namespace)
    with pytest.raises(NotImplementedError):
        namespace["add"](1, 2)


def test_check_cases_passes_a_right_answer(capsys):
    namespace: dict = {}
    exec(SOLVED, namespace)
    check_cases(namespace["add"], [((1, 2), 3), ((0, 0), 0)])
    assert "all 2 cases agree" in capsys.readouterr().out


def test_check_cases_explains_an_unwritten_exercise():
    namespace: dict = {}
    exec(course.strip_solutions(SOLVED), namespace)
    with pytest.raises(ExerciseError, match="add is not written yet"):
        check_cases(namespace["add"], [((1, 2), 3)])


def test_check_against_names_the_wrong_case_and_the_right_answer():
    def add(a, b):
        return a - b

    with pytest.raises(ExerciseError, match=r"add\(2, 1\) returned 1, but the answer is 3"):
        check_against(add, lambda a, b: a + b, [(0, 0), (2, 1)])


def test_every_lesson_has_a_text_twin_in_step():
    assert course.stale_twins() == []


@pytest.mark.parametrize("lesson", course.lessons(), ids=lambda path: path.stem)
def test_every_lesson_has_the_shape_of_a_lesson(lesson: Path):
    notebook = nbformat.read(lesson, as_version=4)
    opening = notebook.cells[0].source
    for heading in ("What you'll do", "What you'll learn", "What you'll need", "**Time:**"):
        assert heading in opening, f"{lesson.name} does not open with {heading!r}"
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    assert sum(source.count(course.BEGIN) for source in code) >= 2, f"{lesson.name} has fewer than two exercises"
    assert sum("check_cases(" in s or "check_against(" in s for s in code) >= 2, f"{lesson.name} lacks check cells"
    closing = notebook.cells[-1]
    assert closing.cell_type == "markdown" and "Keypoints" in closing.source, f"{lesson.name} does not end with keypoints"


EXERCISE_HEADING = re.compile(r"^##\s+(?:\d+\.\s+)?Exercise\s+\d+\b.*$", re.M)
MINUTES = re.compile(r"\((\d+) minutes\)\s*$")
EXERCISE_TIME = re.compile(r"\*\*Time:\*\*\s*\d+ minutes teaching, (\d+) minutes exercises")


def form_faults(notebook) -> list[str]:
    """What a lesson lacks of the form: questions, guide links, predictions, timed exercises, exit questions."""
    opening = notebook.cells[0].source
    markdown = [cell.source for cell in notebook.cells if cell.cell_type == "markdown"]
    notes = re.search(r"\]\(INSTRUCTOR-NOTES\.md#([^)\s]+)\)", opening)
    headings = [line for source in markdown for line in EXERCISE_HEADING.findall(source)]
    minutes = [MINUTES.search(line) for line in headings]
    header = EXERCISE_TIME.search(opening)
    exits = [n for n, cell in enumerate(notebook.cells) if cell.cell_type == "markdown" and cell.source.startswith("## Exit questions")]
    timed = all(minutes) and header is not None
    held = {
        "no **Questions:** list in cell 0": re.search(r"^\*\*Questions:\*\*\n- ", opening, re.M) is not None,
        "no link to GLOSSARY.md in cell 0": "](GLOSSARY.md)" in opening,
        "no glossary entry linked in the lesson": any("](GLOSSARY.md#" in source for source in markdown[1:]),
        "no link in cell 0 to a heading of INSTRUCTOR-NOTES.md":
            notes is not None and notes.group(1) in heading_anchors(NOTEBOOKS / "INSTRUCTOR-NOTES.md"),
        "no '**Predict, then run:**' prompt": any("**Predict, then run:**" in source for source in markdown),
        f"exercise headings without '(N minutes)': {[h for h, m in zip(headings, minutes) if not m]}": all(minutes),
        "the exercises' minutes do not add up to the header's exercise time":
            timed and sum(int(m.group(1)) for m in minutes) == int(header.group(1)),
        "no '## Exit questions' cell just before the Keypoints cell": exits == [len(notebook.cells) - 2],
    }
    return [fault for fault, holds in held.items() if not holds]


@pytest.mark.parametrize("lesson", course.lessons(), ids=lambda path: path.stem)
def test_every_lesson_has_the_form_of_a_lesson(lesson: Path):
    assert form_faults(nbformat.read(lesson, as_version=4)) == [], f"{lesson.name} lacks part of the form"


def test_a_lesson_without_the_form_is_caught():
    lesson = nbformat.read(NOTEBOOKS / "05-chroot.ipynb", as_version=4)
    assert form_faults(lesson) == []
    opening = lesson.cells[0]
    opening.source = opening.source.replace("**Questions:**", "Questions").replace("#05-chroot", "#05-chroot-gone")
    exercise = next(cell for cell in lesson.cells if cell.source.startswith("## Exercise 2"))
    exercise.source = exercise.source.replace("(5 minutes)", "(6 minutes)", 1)
    lesson.cells = [cell for cell in lesson.cells if not cell.source.startswith("## Exit questions")]
    assert form_faults(lesson) == [
        "no **Questions:** list in cell 0",
        "no link in cell 0 to a heading of INSTRUCTOR-NOTES.md",
        "the exercises' minutes do not add up to the header's exercise time",
        "no '## Exit questions' cell just before the Keypoints cell",
    ]


def test_every_lesson_has_outputs_for_strict_nbval_to_compare():
    for lesson in course.lessons():
        notebook = nbformat.read(lesson, as_version=4)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        unrun = [n for n, cell in enumerate(code) if cell.execution_count is None]
        assert not unrun, f"{lesson.name}: code cells {unrun} were never run; run `make notebooks LESSONS={lesson}`"


@pytest.mark.parametrize("lesson", course.lessons() + course.build_levels(), ids=lambda path: path.stem)
def test_what_you_need_points_to_the_doctor_and_the_troubleshooting_page(lesson: Path):
    opening = nbformat.read(lesson, as_version=4).cells[0].source
    need = opening[opening.index("What you'll need"):].split("\n\n")[0]
    assert "`./kit doctor`" in need, f"{lesson.name}: 'What you'll need' does not point to ./kit doctor"
    link = re.search(r"\]\(([./]*TROUBLESHOOTING\.md)\)", need)
    assert link and (lesson.parent / link.group(1)).is_file(), f"{lesson.name}: no working troubleshooting link"
