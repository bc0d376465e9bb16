"""The lessons run to the end as a learner without privileges, as on Binder: user nobody, no capabilities.

Everything runs as nobody under `setpriv` (no supplementary groups, empty inheritable and
bounding capability sets): the classroom registry and token server, and nbclient executing
a copy of every lesson against them, with LXCLAB_HOME in a folder nobody owns. The
registry, manifests, layers and copy-mode union run for real; each privileged step is
guarded by lxclab.lessons.needs_root, which prints what is missing instead of failing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from fixture_classroom import free_port
from fixture_lessons import IPYTHON_DIR, NOTEBOOKS, cell_text, error_outputs, lessons, seed
from fixture_nobody import NobodyPython
from lxclab.classroom import Classroom
from lxclab.lessons import missing_root_message

NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all",
             "--bounding-set=-all"]
EXECUTE = "from nbclient.cli import main; main()"  # `jupyter execute`, whose script names this venv's Python
MISSING_ROOT = missing_root_message("").split("(")[0] + "("  # "This step needs root (", any capability
RUN_TIMEOUT = 900
GUARD = re.compile(r"^if (not )?needs_root\(", re.M)


@dataclass(frozen=True)
class Learner:
    """A folder owned by nobody holding copies of the lessons, LXCLAB_HOME, and the environment to run them."""

    root: Path
    env: dict[str, str]
    python: str

    @property
    def home(self) -> Path:
        """The learner's LXCLAB_HOME."""
        return Path(self.env["LXCLAB_HOME"])

    def run(self, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
        """Run `argv` as nobody without capabilities, in the learner's folder; fail with its output if it fails."""
        done = subprocess.run([*AS_NOBODY, *argv], env=self.env, cwd=self.root, capture_output=True, text=True,
                              timeout=timeout)
        assert done.returncode == 0, f"{argv} as nobody failed:\n{done.stdout}\n{done.stderr}"
        return done


def learner_folder() -> Path:
    """A new folder under /tmp (pytest's tmp_path is closed to other users) with the lessons, owned by nobody."""
    root = Path(tempfile.mkdtemp(prefix="lxclab-nobody-"))
    shutil.copytree(NOTEBOOKS, root / "notebooks", ignore=shutil.ignore_patterns("md", ".ipynb_checkpoints"))
    shutil.copytree(IPYTHON_DIR / "profile_default", root / "ipython/profile_default",
                    ignore=shutil.ignore_patterns("*.sqlite*", "log", "pid", "security", "startup", "db"))
    for folder in (root / "lxclab-home", root / "jupyter"):
        folder.mkdir()
    for path in [root, *root.rglob("*")]:
        os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
    return root


def learner_env(root: Path, python: NobodyPython) -> dict[str, str]:
    """A plain environment for nobody: lxclab and this venv's packages in a copy it may read, its own HOME,
    LXCLAB_HOME, IPython and Jupyter folders, free ports for its classroom."""
    keep = ("LANG", "LC_ALL", "TZ")
    env = {name: os.environ[name] for name in keep if name in os.environ} | python.env()
    return env | {"HOME": str(root), "LXCLAB_HOME": str(root / "lxclab-home"), "IPYTHONDIR": str(root / "ipython"),
                  "JUPYTER_CONFIG_DIR": str(root / "jupyter/config"), "JUPYTER_DATA_DIR": str(root / "jupyter/data"),
                  "JUPYTER_RUNTIME_DIR": str(root / "jupyter/runtime"),
                  "LXCLAB_REGISTRY_PORT": str(free_port()), "LXCLAB_TOKEN_PORT": str(free_port())}


@pytest.fixture(scope="module")
def learner(seed_layout: Path, nobody_python: NobodyPython) -> Iterator[Learner]:
    """Nobody's lesson folder, with a classroom that nobody started (seeded by the teacher), stopped afterwards."""
    root = learner_folder()
    learner = Learner(root, learner_env(root, nobody_python), nobody_python.python)
    try:
        learner.run([learner.python, "-m", "lxclab", "registry", "up"])
        seed(Classroom.recorded(learner.home / "classroom"), seed_layout)
        yield learner
    finally:
        Classroom.recorded(learner.home / "classroom").down()
        shutil.rmtree(root)


@pytest.fixture(scope="module")
def executed(learner: Learner) -> dict[str, nbformat.NotebookNode]:
    """Every lesson executed once by nobody (errors allowed, so that the test can name them), by name."""
    copies = [learner.root / "notebooks" / path.name for path in lessons()]
    learner.run([learner.python, "-c", EXECUTE, "--allow-errors", "--inplace", "--timeout=300", *map(str, copies)],
                timeout=RUN_TIMEOUT)
    return {path.name: nbformat.read(path, as_version=4) for path in copies}


def test_the_learner_really_has_no_privileges(learner: Learner):
    status = learner.run(["grep", "-E", "^(Uid|CapEff|CapBnd)", "/proc/self/status"]).stdout.split()
    assert status == ["Uid:", *[str(NOBODY)] * 4, "CapEff:", "0" * 16, "CapBnd:", "0" * 16]


@pytest.mark.parametrize("lesson", lessons(), ids=lambda path: path.stem)
def test_every_lesson_runs_to_the_end_without_privileges(lesson: Path, executed: dict[str, nbformat.NotebookNode]):
    notebook = executed[lesson.name]
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), f"{lesson.name} did not run to the end"
    failed = {index: cell_text(cell) for index, cell in enumerate(notebook.cells) if error_outputs(cell)}
    assert failed == {}, f"{lesson.name} cells failed as nobody"


def guards_a_step(cell: nbformat.NotebookNode) -> bool:
    """Whether a code cell guards a privileged step at its top level (`if needs_root(...)` at column 0)."""
    return cell.cell_type == "code" and bool(GUARD.search(cell.source))


@pytest.mark.parametrize("lesson", lessons(), ids=lambda path: path.stem)
def test_privileged_steps_say_what_is_missing(lesson: Path, executed: dict[str, nbformat.NotebookNode]):
    guarded = [cell for cell in executed[lesson.name].cells if guards_a_step(cell)]
    silent = [cell.source.splitlines()[0] for cell in guarded if MISSING_ROOT not in cell_text(cell)]
    assert silent == [], f"{lesson.name}: needs_root said nothing in the cells starting {silent}"


def test_the_first_lessons_need_no_privileges_at_all(executed: dict[str, nbformat.NotebookNode]):
    first = [name for name in executed if name[:2] in ("00", "01", "02")]
    assert len(first) == 3
    for name in first:
        assert not any(MISSING_ROOT in cell_text(cell) for cell in executed[name].cells), name


def test_the_learner_pulled_for_real(executed: dict[str, nbformat.NotebookNode], learner: Learner):
    blobs = list((learner.home / "store/blobs/sha256").iterdir())
    assert blobs and all(blob.stat().st_uid == NOBODY for blob in blobs)
