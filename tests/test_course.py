"""The course tooling: solution stripping, the student edition, text twins and exercise checks."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest

from lxclab.exercises import ExerciseError, check_against, check_cases

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


def test_every_lesson_has_outputs_for_strict_nbval_to_compare():
    for lesson in course.lessons():
        notebook = nbformat.read(lesson, as_version=4)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        unrun = [n for n, cell in enumerate(code) if cell.execution_count is None]
        assert not unrun, f"{lesson.name}: code cells {unrun} were never run; run `make notebooks LESSONS={lesson}`"
