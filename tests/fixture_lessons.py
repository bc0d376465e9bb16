"""Lessons run by tests: a seeded classroom of their own on free ports, and notebooks executed with nbclient.

The lessons find their classroom the way a learner's do: `Classroom()` reads the ports from
$LXCLAB_REGISTRY_PORT / $LXCLAB_TOKEN_PORT and its state (the teacher's login) from
$LXCLAB_HOME/classroom. So a test gives the kernel those variables, and its classroom runs
beside the lesson classroom of `make notebooks` (port 5000) without touching it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import nbformat
import pytest
from nbclient import NotebookClient

from fixture_classroom import free_port
from polling import SLOWDOWN

from lxclab.classroom import Classroom
from lxclab.classroom.ocilayout import OciLayout
from lxclab.classroom.publish import push_layout
from lxclab.registry import RegistryClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
DOCKERHUB = NOTEBOOKS / "data/dockerhub"  # the recorded Docker Hub exchanges, lessons 01, 02 and tests
IPYTHON_DIR = ROOT / "tests/ipython"  # its kernel config turns colours off, so tracebacks are plain words
CELL_TIMEOUT = int(300 * SLOWDOWN)  # a cell of the build track's B8 (a whole run) took over 300 s in a TCG VM
KERNEL_STARTUP_TIMEOUT = int(60 * SLOWDOWN)  # nbclient's 60 s was too short in trixie's TCG VM beside the browser tests


def load_tool(name: str) -> ModuleType:
    """Import tools/<name>.py (the course scripts are files, not a package)."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "tools"))


def lessons() -> list[Path]:
    """Every lesson notebook, in order (as tools/course.py lists them)."""
    return load_tool("course").lessons()


@dataclass(frozen=True)
class LessonClassroom:
    """A running, seeded classroom and the environment a kernel needs to use it as the lessons' own."""

    classroom: Classroom
    home: Path

    @property
    def env(self) -> dict[str, str]:
        """This process's environment with LXCLAB_HOME and the classroom's ports set, colours off."""
        env = {k: v for k, v in os.environ.items() if k not in ("LXCLAB_CLASSROOM_DIR", "LXCLAB_USERNAME", "LXCLAB_PASSWORD", "LXCLAB_REGISTRY")}
        return env | {"LXCLAB_HOME": str(self.home), "IPYTHONDIR": str(IPYTHON_DIR),
                      "LXCLAB_REGISTRY_PORT": str(self.classroom.registry_port),
                      "LXCLAB_TOKEN_PORT": str(self.classroom.token_port)}


def seed(classroom: Classroom, layout: Path) -> None:
    """Push every seed image of the OCI layout to `classroom`, as its teacher."""
    with RegistryClient(classroom.registry_host, classroom.teacher) as client:
        push_layout(OciLayout(layout), client)


@pytest.fixture(scope="module")
def lesson_classroom(tmp_path_factory: pytest.TempPathFactory, seed_layout: Path) -> Iterator[LessonClassroom]:
    """A classroom on free ports with the seed images, its state in a fresh LXCLAB_HOME, for a module's lessons."""
    home = tmp_path_factory.mktemp("lesson-home")
    classroom = Classroom(home / "classroom", registry_port=free_port(), token_port=free_port())
    classroom.up()
    try:
        seed(classroom, seed_layout)
        yield LessonClassroom(classroom, home)
    finally:
        classroom.down()
        remove_empty_lxc_lock_dirs(home / "lxc")


def remove_empty_lxc_lock_dirs(lxcpath: Path) -> None:
    """Remove the lock folders liblxc made under /run/lxc/lock for `lxcpath` (and its parents), if empty."""
    folder = Path("/run/lxc/lock") / str(lxcpath).lstrip("/")
    while folder != Path("/run/lxc/lock") and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def notebook_client(notebook: nbformat.NotebookNode, folder: Path, allow_errors: bool) -> NotebookClient:
    """A client that runs `notebook` in `folder` with a Python kernel, with time for a slow machine."""
    return NotebookClient(notebook, timeout=CELL_TIMEOUT, startup_timeout=KERNEL_STARTUP_TIMEOUT, kernel_name="python3",
                          allow_errors=allow_errors, resources={"metadata": {"path": str(folder)}})


def run_notebook(path: Path, env: dict[str, str], allow_errors: bool = True) -> nbformat.NotebookNode:
    """Execute the notebook at `path` in its own folder (outputs kept in the returned node, the file unchanged)."""
    notebook = nbformat.read(path, as_version=4)
    notebook_client(notebook, path.parent, allow_errors).execute(env=env, cwd=str(path.parent))
    return notebook


def error_outputs(cell: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """The error outputs of a code cell (what a learner sees as a traceback)."""
    return [output for output in cell.get("outputs", []) if output.output_type == "error"]


def cell_text(cell: nbformat.NotebookNode) -> str:
    """All text a code cell printed or displayed, errors included, joined."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
        else:
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def run_student_edition(lesson: Path, folder: Path, env: dict[str, str]) -> list[tuple[int, str, str]]:
    """Run the student edition of `lesson` cell by cell; at each check, fail first, then solve and pass.

    Returns (cell index, check output unsolved, check output solved) for every check cell."""
    course = load_tool("course")
    instructor = nbformat.read(lesson, as_version=4)
    student = course.student_edition(lesson)
    client = notebook_client(student, folder, allow_errors=True)
    checks, unsolved = [], []
    with client.setup_kernel(env=env, cwd=str(folder)):
        for index, cell in enumerate(student.cells):
            if cell.cell_type != "code":
                continue
            client.execute_cell(cell, index)
            if course.BEGIN in instructor.cells[index].source:
                unsolved.append(index)
            elif course.CHECK_CALL.search(cell.source):
                for solution in unsolved:  # the learner solves the exercise: the instructor's cells run
                    client.execute_cell(nbformat.from_dict(instructor.cells[solution]), solution)
                solved = nbformat.from_dict({**cell, "outputs": []})
                client.execute_cell(solved, index)
                checks.append((index, cell_text(cell), cell_text(solved)))
                unsolved = []
            else:
                assert error_outputs(cell) == [], f"{lesson.name} cell {index} failed: {cell_text(cell)}"
    return checks
