"""Every lesson's check cells call the learner's function whoever runs them: no ✓ without a check.

A check cell may not print a ✓ of its own (only `check_cases` prints one, after the cases
passed), and at least one `check_cases` / `check_against` call must run unconditionally:
not under an `if`, a loop, an `except` or a `def`. A step that needs root replays recorded
answers without it (lesson 05's kernel answers, lesson 06's recorded /proc) instead of
skipping the check. When a check meets an unwritten stub, its hint names the function that is
still a stub, even when that is another exercise the checked function calls.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import nbformat
import pytest

from fixture_lessons import lessons
from lxclab.exercises import ExerciseError, check_against, check_cases

CHECKS = {"check_cases", "check_against"}


def calls_a_check(statement: ast.stmt) -> bool:
    """Whether `statement` itself (not a nested block) calls check_cases or check_against."""
    return any(isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in CHECKS
               for node in ast.walk(statement))


def unconditional_checks(source: str) -> int:
    """How many statements of a cell call a check on every path: top level, or in a `with` or `try` body."""
    count, pending = 0, list(ast.parse(source).body)
    while pending:
        statement = pending.pop()
        if isinstance(statement, (ast.With, ast.Try)):
            pending += statement.body + getattr(statement, "finalbody", [])
        elif isinstance(statement, (ast.Expr, ast.Assign)) and calls_a_check(statement):
            count += 1
    return count


def check_cells(lesson: Path) -> list[tuple[int, str]]:
    """(index, source) of each code cell of `lesson` that calls a check."""
    notebook = nbformat.read(lesson, as_version=4)
    return [(index, cell.source) for index, cell in enumerate(notebook.cells)
            if cell.cell_type == "code" and any(name + "(" in cell.source for name in CHECKS)]


@pytest.mark.parametrize("lesson", lessons(), ids=lambda path: path.stem)
def test_every_check_cell_calls_the_learners_function_whoever_runs_it(lesson: Path):
    cells = check_cells(lesson)
    assert len(cells) >= 2
    for index, source in cells:
        assert "✓" not in source, f"{lesson.name} cell {index} prints a ✓ of its own instead of checking"
        assert unconditional_checks(source) >= 1, \
            f"{lesson.name} cell {index}: every check call sits under an if, a loop or a def; replay recorded answers"


def test_the_rule_catches_a_check_that_only_root_runs():
    skipped = ('if needs_root("chroot(2)", "✓ what_ls_shows: all 5 cases agree with lxclab"):\n'
               '    check_against(what_ls_shows, really_shows, CASES)\n')
    replayed = ('if not ROOT:\n    print("(not root: replaying)")\n'
                'check_against(what_ls_shows, really_shows, CASES)\n')
    in_try = "try:\n    check_cases(f, cases)\nfinally:\n    stop()\n"
    only_in_a_def = "def later():\n    check_cases(f, cases)\n"
    assert unconditional_checks(skipped) == 0 and "✓" in skipped
    assert unconditional_checks(replayed) == 1
    assert unconditional_checks(in_try) == 1
    assert unconditional_checks(only_in_a_def) == 0


def stub(layers: list, path: str):
    """An exercise not written yet, as the student edition leaves it."""
    raise NotImplementedError("exercise: replace this line with your code")


def written(layers: list) -> int:
    """A finished exercise that calls the unfinished one."""
    return sum(1 for layer in layers if stub(layers, layer) is not None)


def test_a_check_names_the_function_still_a_stub_not_the_one_it_calls():
    with pytest.raises(ExerciseError, match=r"^stub is not written yet: replace the `raise NotImplementedError` line"):
        check_against(written, len, [(["a layer"],)])
    with pytest.raises(ExerciseError, match=r"^stub is not written yet"):
        check_cases(lambda layers: written(layers), [((["a layer"],), 1)])  # a wrapper is not to blame either
    with pytest.raises(ExerciseError, match=r"^stub is not written yet"):
        check_cases(stub, [(([], "etc"), None)])


def test_a_library_function_that_is_not_implemented_does_not_take_the_blame():
    def emits(record: str) -> None:
        logging.Handler().emit(record)  # the library's own NotImplementedError, in a frame of the logging module

    with pytest.raises(ExerciseError, match=r"^emits is not written yet"):
        check_cases(emits, [(("a record",), None)])
