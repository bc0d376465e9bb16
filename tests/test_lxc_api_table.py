"""Lesson 08's table of go-lxc, python-lxc and lxclab calls stays in step with the code it names."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from lxclab.lxc import Container
from lxclab.lxc._binding import pylxc

LESSON = Path(__file__).resolve().parents[1] / "notebooks/08-lxc.ipynb"
HEADING = "### Three APIs side by side"


def table_rows() -> list[list[str]]:
    """The cells of each body row of the table under HEADING in lesson 08 (go-lxc, python-lxc, lxclab)."""
    notebook = nbformat.read(LESSON, as_version=4)
    [source] = [cell.source for cell in notebook.cells if cell.cell_type == "markdown" and HEADING in cell.source]
    lines = [line for line in source.splitlines() if line.startswith("|")]
    rows = [[cell.strip() for cell in line.strip().strip("|").split(" | ")] for line in lines[2:]]
    assert lines[0].startswith("| go-lxc") and all(len(row) == 3 for row in rows), "a row without three columns"
    return rows


def named(column: str, owner: str) -> set[str]:
    """The attribute names written as `owner.name` in a table column."""
    return set(re.findall(rf"\b{owner}\.([A-Za-z_]+)", column))


def public_names() -> set[str]:
    """Every public method and property of Container."""
    return {name for name in dir(Container) if not name.startswith("_")}


def test_every_lxclab_name_in_the_table_exists_with_a_docstring():
    for row in table_rows():
        names = named(row[2], "box") | named(row[2], "Container")
        assert names, f"a row names no lxclab call: {row[2]}"
        for name in names:
            attribute = getattr(Container, name, None)
            assert attribute is not None, f"lesson 08's table names Container.{name}, which does not exist"
            assert (attribute.__doc__ or "").strip(), f"Container.{name} has no docstring"


def test_every_public_method_and_property_of_container_is_in_the_table():
    listed = set().union(*(named(row[2], "box") | named(row[2], "Container") for row in table_rows()))
    assert public_names() - listed == set(), "add these to lesson 08's table"


def test_every_python_lxc_call_in_the_table_exists_in_the_binding():
    binding = pylxc().Container
    for row in table_rows():
        for name in named(row[1], "c"):
            assert hasattr(binding, name), f"python-lxc's Container has no {name} (lesson 08's table)"


def test_every_go_lxc_method_is_written_as_a_go_signature_or_call():
    for row in table_rows():
        assert re.search(r"`(func \(c \*Container\) )?[A-Z][A-Za-z]*\(", row[0]), f"no go-lxc method in: {row[0]}"
