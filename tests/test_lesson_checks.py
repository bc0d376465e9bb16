"""Every lesson's check cells call the learner's function whoever runs them: no ✓ without a check.

A check cell may not print a ✓ of its own (only `check_cases` prints one, after the cases
passed), and at least one `check_cases` / `check_against` call must run unconditionally:
not under an `if`, a loop, an `except` or a `def`. A step that needs root replays recorded
answers without it (lesson 05's kernel answers, lesson 06's recorded /proc) instead of
skipping the check.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from fixture_lessons import lessons

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
