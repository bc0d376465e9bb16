"""The student edition of every lesson: no solution text in it; each check cell fails with its plain-words
hint until the exercise is solved, and passes once the instructor's solution runs in the same kernel.

Each lesson runs once, cell by cell, against a seeded classroom of this module's own. At a
check cell the student's attempt (the stub) must fail with "... is not written yet ...";
then the instructor's solution cells of that exercise run, the check runs again and must
pass, and the lesson goes on with the solved functions, as a learner's would.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from fixture_lessons import (NOTEBOOKS, LessonClassroom, lesson_classroom, lessons, load_tool,  # noqa: F401
                             run_student_edition)
from lxclab.exercises import ExerciseError, check_against
from lxclab.layers.entries import FILE, WHITEOUT, LayerEntry
from lxclab.unionfs import LayerStack

course = load_tool("course")
NOT_WRITTEN = "is not written yet"


def solution_lines(notebook: nbformat.NotebookNode) -> set[str]:
    """Lines that appear only inside solution regions (stripped, long enough to be telling)."""
    inside, outside = set(), set()
    for cell in notebook.cells:
        for region in course._SOLUTION.finditer(cell.source):
            inside |= {line.strip() for line in region.group(0).splitlines()[1:-1]}
        outside |= {line.strip() for line in course._SOLUTION.sub("", cell.source).splitlines()}
    return {line for line in inside - outside if len(line) >= 12}


@pytest.mark.parametrize("lesson", lessons(), ids=lambda path: path.stem)
def test_the_student_edition_holds_no_solution(lesson: Path):
    instructor = nbformat.read(lesson, as_version=4)
    student = course.student_edition(lesson)
    text = "\n".join(cell.source for cell in student.cells)
    assert course.BEGIN not in text and course.END not in text
    telling = solution_lines(instructor)
    assert telling and [line for line in telling if line in text] == []
    answers = [cell for cell, original in zip(student.cells, instructor.cells)
               if cell.cell_type == "code" and course.is_answer_cell(original.source)]
    assert answers and all(cell.outputs == [] for cell in answers)  # no recorded answer, no recorded ✓
    shown = "\n".join(str(cell.get("outputs", "")) for cell in student.cells)
    assert [line for line in telling if line in shown] == []
    regions = sum(len(course._SOLUTION.findall(cell.source)) for cell in instructor.cells)
    assert regions >= 2 and text.count("raise NotImplementedError(") >= regions


@pytest.mark.parametrize("lesson", lessons(), ids=lambda path: path.stem)
def test_each_check_fails_with_its_hint_until_solved_then_passes(lesson: Path, lesson_classroom: LessonClassroom,
                                                                  tmp_path: Path):
    folder = tmp_path / "student"
    folder.mkdir()
    checks = run_student_edition(lesson, folder, lesson_classroom.env)
    assert len(checks) >= 2, f"{lesson.name} has fewer than two check cells"
    for index, unsolved, solved in checks:
        assert "ExerciseError: " in unsolved and NOT_WRITTEN in unsolved, f"{lesson.name} cell {index}: {unsolved}"
        assert "Error" not in solved and "✓" in solved, f"{lesson.name} cell {index} with the solution: {solved}"


def test_demos_keep_their_recorded_outputs_for_learners_without_root():
    lesson = next(path for path in lessons() if path.name.startswith("05-"))
    instructor, student = nbformat.read(lesson, as_version=4), course.student_edition(lesson)
    demos = [(i, cell) for i, cell in enumerate(instructor.cells)
             if cell.cell_type == "code" and cell.outputs and not course.is_answer_cell(cell.source)]
    assert len(demos) >= 5
    assert all(student.cells[i].outputs == cell.outputs for i, cell in demos)


def test_the_classroom_edition_keeps_a_learners_own_notebooks(tmp_path: Path):
    course.write_student(tmp_path)
    mine = tmp_path / "03-layers.ipynb"
    mine.write_text(mine.read_text().replace("NotImplementedError", "print('my answer')#", 1))
    (tmp_path / "04-union-fs.ipynb").unlink()
    kept = course.write_student(tmp_path, keep_existing=True)
    assert "03-layers.ipynb" in kept and "04-union-fs.ipynb" not in kept
    assert "print('my answer')" in mine.read_text()
    assert (tmp_path / "04-union-fs.ipynb").exists() and (tmp_path / "build" / "B1-token-dance.ipynb").exists()
    assert (tmp_path / "TROUBLESHOOTING.md").read_text() == (course.NOTEBOOKS / "TROUBLESHOOTING.md").read_text()
    links = {link for path in tmp_path.rglob("*.ipynb") for link in re.findall(r"\]\(([A-Z-]+\.md)", path.read_text())}
    assert links and all((tmp_path / link).exists() for link in links)  # every guide a lesson links is there


def defining_cell(notebook: nbformat.NotebookNode, function: str) -> str:
    """The source of the code cell of `notebook` that defines `function`."""
    return next(cell.source for cell in notebook.cells if cell.cell_type == "code" and f"def {function}(" in cell.source)


def test_a_check_names_the_earlier_exercise_left_a_stub():
    """Lesson 04's second check, wasted_bytes written but provider (exercise 1) still the student edition's stub."""
    lesson = NOTEBOOKS / "04-union-fs.ipynb"
    learner: dict = {}
    exec(defining_cell(course.student_edition(lesson), "provider"), learner)
    exec(defining_cell(nbformat.read(lesson, as_version=4), "wasted_bytes"), learner)
    layers = [[LayerEntry("etc/motd", FILE, size=5)], [LayerEntry("etc/motd", WHITEOUT)]]
    with pytest.raises(ExerciseError, match=rf"^provider {NOT_WRITTEN}: replace the `raise NotImplementedError` line"):
        check_against(learner["wasted_bytes"], lambda layers: LayerStack.build(layers).wasted_bytes, [(layers,)])
