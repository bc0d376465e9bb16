"""The README's lesson map is true: each lesson's row names the modules it uses, and every test file has a place.

A lesson may use what its own row or an earlier lesson's names, and the course's helpers
(the README's "Every lesson also uses" line); anything else it imports must be in its row.
Every tests/test_*.py is named in the lesson table or in the table of tests beyond it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from fixture_lessons import ROOT, load_tool

course = load_tool("course")
README = (ROOT / "README.md").read_text()
PACKAGE = ROOT / "lxclab"


def is_module(name: str) -> bool:
    """Whether `name` (dotted, below lxclab) is a module or package of the library."""
    path = PACKAGE.joinpath(*name.split("."))
    return path.is_dir() or path.with_suffix(".py").is_file()


def named_modules(text: str) -> set[str]:
    """The library modules a README cell names: `layers/` (a package), `registry/auth.py`, `store.py`."""
    names = set()
    for quoted in re.findall(r"`([^`]+)`", text):
        name = quoted.removesuffix("/").removesuffix(".py").replace("/", ".")
        if (quoted.endswith("/") or quoted.endswith(".py")) and is_module(name):
            names.add(name)
    return names


def lesson_rows() -> dict[str, tuple[str, str]]:
    """Each lesson's number with its row's library and tests cells."""
    rows = {}
    for line in README.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        found = re.match(r"\[(\d\d)-", cells[0]) if len(cells) == 6 else None
        if found:
            rows[found.group(1)] = (cells[3], cells[4])
    return rows


def helpers() -> set[str]:
    """The course helpers the README says every lesson uses."""
    line = re.search(r"Every lesson also uses .*?(?:\n\n|:\n)", README, re.S)
    assert line, "README: no 'Every lesson also uses' line naming the course helpers"
    return named_modules(line.group(0))


def imported_modules(source: str) -> set[str]:
    """The library modules a cell's code imports (`from lxclab.x import y` gives x.y if y is a module, else x)."""
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "lxclab":
            package = node.module.partition(".")[2]
            for alias in node.names:
                full = f"{package}.{alias.name}" if package else alias.name
                modules.add(full if is_module(full) else package)
        elif isinstance(node, ast.Import):
            modules |= {alias.name.partition(".")[2] for alias in node.names if alias.name.startswith("lxclab.")}
    return modules - {""}


def lesson_imports(lesson: Path) -> set[str]:
    """Every library module the lesson's code cells import (IPython magics left out)."""
    code = [cell.source for cell in nbformat.read(lesson, as_version=4).cells if cell.cell_type == "code"]
    lines = "\n".join("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
                      for source in code)
    return imported_modules(lines)


def covered(module: str, named: set[str]) -> bool:
    """Whether `module` is named, lies in a named package, or is a package of which a module is named."""
    return any(module == name or module.startswith(name + ".") or name.startswith(module + ".") for name in named)


def test_every_lesson_has_a_row():
    assert sorted(lesson_rows()) == [path.name[:2] for path in course.lessons()]


@pytest.mark.parametrize("lesson", course.lessons(), ids=lambda path: path.stem)
def test_a_lessons_row_names_every_module_it_uses(lesson: Path):
    rows = lesson_rows()
    taught = set().union(*(named_modules(rows[number][0]) for number in rows if number <= lesson.name[:2]))
    missing = sorted(module for module in lesson_imports(lesson) if not covered(module, taught | helpers()))
    assert missing == [], f"README: the row of {lesson.stem} should name {missing}"
    assert all(is_module(module) for module in named_modules(rows[lesson.name[:2]][0]))


def test_every_test_file_is_in_the_readme_and_every_named_one_exists():
    named = set(re.findall(r"`(test_\w+\.py)`", README))
    files = {path.name for path in (ROOT / "tests").glob("test_*.py")}
    assert sorted(files - named) == [], "README: give these tests a place in the lesson map or the table below it"
    assert sorted(named - files) == [], "README names tests that do not exist"


def test_the_map_catches_a_module_a_row_leaves_out():
    assert imported_modules("from lxclab.widgets.diagrams import show\nfrom lxclab import cgroups, namespaces") == {
        "widgets.diagrams", "cgroups", "namespaces"}
    assert not covered("widgets.diagrams", {"widgets.layers", "cgroups"})
    assert covered("registry", {"registry.auth"}) and covered("unionfs.overlay", {"unionfs"})
