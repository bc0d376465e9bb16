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
from nbclient import NotebookClient

from fixture_lessons import (CELL_TIMEOUT, LessonClassroom, cell_text, error_outputs, lesson_classroom,  # noqa: F401
                             lessons, load_tool)

course = load_tool("course")
CHECK_CALL = re.compile(r"\bcheck_(cases|against)\(")
NOT_WRITTEN = "is not written yet"


def is_solution(cell: nbformat.NotebookNode) -> bool:
    """Whether an instructor's code cell holds a solution region."""
    return cell.cell_type == "code" and course.BEGIN in cell.source


def is_check(cell: nbformat.NotebookNode) -> bool:
    """Whether a code cell checks an exercise (calls check_cases or check_against)."""
    return cell.cell_type == "code" and bool(CHECK_CALL.search(cell.source))


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
    assert all(not cell.get("outputs") for cell in student.cells)
    regions = sum(len(course._SOLUTION.findall(cell.source)) for cell in instructor.cells)
    assert regions >= 2 and text.count("raise NotImplementedError(") >= regions


def run_student_edition(lesson: Path, folder: Path, env: dict[str, str]) -> list[tuple[int, str, str]]:
    """Run the student edition of `lesson` cell by cell; at each check, fail first, then solve and pass.

    Returns (cell index, check output unsolved, check output solved) for every check cell."""
    instructor = nbformat.read(lesson, as_version=4)
    student = course.student_edition(lesson)
    client = NotebookClient(student, timeout=CELL_TIMEOUT, allow_errors=True, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}})
    checks, unsolved = [], []
    with client.setup_kernel(env=env, cwd=str(folder)):
        for index, cell in enumerate(student.cells):
            if cell.cell_type != "code":
                continue
            client.execute_cell(cell, index)
            if is_solution(instructor.cells[index]):
                unsolved.append(index)
            elif is_check(cell):
                for solution in unsolved:  # the learner solves the exercise: the instructor's cells run
                    client.execute_cell(nbformat.from_dict(instructor.cells[solution]), solution)
                solved = nbformat.from_dict({**cell, "outputs": []})
                client.execute_cell(solved, index)
                checks.append((index, cell_text(cell), cell_text(solved)))
                unsolved = []
            else:
                assert error_outputs(cell) == [], f"{lesson.name} cell {index} failed: {cell_text(cell)}"
    return checks


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
