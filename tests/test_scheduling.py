"""The suite's own scheduling (conftest.py): the modules that fill the machine run one after another."""

from pathlib import Path

from conftest import WHOLE_MACHINE, scheduling_unit

ROOT = Path(__file__).resolve().parents[1]


def test_the_whole_machine_modules_exist_under_the_names_scheduling_knows_them_by() -> None:
    assert all((ROOT / module).is_file() for module in WHOLE_MACHINE)


def test_they_are_one_unit_of_work_and_every_other_module_is_its_own() -> None:
    assert {scheduling_unit(f"{module}::test_x[a]") for module in WHOLE_MACHINE} == {"whole-machine"}
    assert scheduling_unit("tests/test_cgroups.py::Test::test_x") == "tests/test_cgroups.py"
