"""The suite's own scheduling (conftest.py): the modules that fill the machine run one after another."""

from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import WHOLE_MACHINE, LoadFileWholeMachineTogether, scheduling_unit

ROOT = Path(__file__).resolve().parents[1]


def test_the_whole_machine_modules_exist_under_the_names_scheduling_knows_them_by() -> None:
    assert all((ROOT / module).is_file() for module in WHOLE_MACHINE)


def test_they_are_one_unit_of_work_and_every_other_module_is_its_own() -> None:
    assert {scheduling_unit(f"{module}::test_x[a]") for module in WHOLE_MACHINE} == {"whole-machine"}
    assert scheduling_unit("tests/test_cgroups.py::Test::test_x") == "tests/test_cgroups.py"


class Worker:
    """Just enough of xdist's WorkerController to be handed work: it records the test indexes it is sent."""

    def __init__(self, name: str) -> None:
        self.gateway = SimpleNamespace(id=name)
        self.sent: list[list[int]] = []
        self.shutting_down = False

    def send_runtest_some(self, indexes: list[int]) -> None:
        self.sent.append(indexes)

    def shutdown(self) -> None:
        self.shutting_down = True


def test_the_whole_machine_unit_goes_out_first_though_larger_units_wait(pytestconfig: pytest.Config,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # Queued last (xdist sends the largest units first), its ten tests made a 25-minute serial tail in the VM.
    monkeypatch.setattr(pytestconfig.option, "tx", ["2*popen"])  # as `-n 2` sets it, in a run without -n too
    collection = [f"tests/test_cgroups.py::test_{n}" for n in range(40)]
    collection += [f"tests/test_lxc.py::test_{n}" for n in range(20)]
    collection += [f"{module}::test_{n}" for module in WHOLE_MACHINE for n in range(3)]
    scheduler = LoadFileWholeMachineTogether(pytestconfig)
    workers = [Worker("gw0"), Worker("gw1")]
    for worker in workers:
        scheduler.add_node(worker)
        scheduler.add_node_collection(worker, collection)
    scheduler.schedule()
    first = {collection[index].split("::")[0] for index in workers[0].sent[0]}
    assert first == set(WHOLE_MACHINE)
    second = {collection[index].split("::")[0] for index in workers[1].sent[0]}
    assert second == {"tests/test_cgroups.py"}
