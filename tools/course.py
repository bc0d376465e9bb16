"""Course tooling: regenerate lesson outputs, keep text twins in step, build the student edition.

    python tools/course.py execute [NOTEBOOK...]   run notebooks in place, storing their outputs
    python tools/course.py twins [NOTEBOOK...]     write notebooks/md/<name>.md (MyST) from the notebooks
    python tools/course.py check-twins             exit 1 if a twin is out of step with its notebook
    python tools/course.py student [DIR]           write the student edition (solutions removed) to DIR
    python tools/course.py classroom DIR           the edition `./kit classroom` serves: DIR's own notebooks kept

Exercises follow nbgrader's convention: a solution region between `### BEGIN SOLUTION` and
`### END SOLUTION` lines; the student edition replaces it with a NotImplementedError that
the lesson's check cell turns into a plain-words hint.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
TWINS = NOTEBOOKS / "md"
UNVERSIONED = "-jupytext.text_representation.jupytext_version"  # the twins leave out the jupytext release
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
_SOLUTION = re.compile(rf"^([ \t]*){re.escape(BEGIN)}\n.*?^[ \t]*{re.escape(END)}[ \t]*$", re.M | re.S)
STUB = '{indent}raise NotImplementedError("exercise: replace this line with your code")'
CHECK_CALL = re.compile(r"\bcheck_\w+\(")  # a check cell calls check_cases, check_against or a level's check_NAME
GUIDES = ("GLOSSARY.md", "TROUBLESHOOTING.md", "INSTRUCTOR-NOTES.md")  # the lessons link all three (the Carpentries publish their instructor notes too)


def lessons() -> list[Path]:
    """Every lesson notebook, in lesson order."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))


def build_levels() -> list[Path]:
    """Every level notebook of the build track (notebooks/build/B<n>-*.ipynb), in level order."""
    return sorted((NOTEBOOKS / "build").glob("B[0-9]-*.ipynb"))


def execute(paths: list[Path]) -> None:
    """Run each notebook top to bottom and store its outputs in place (as nbval will compare them)."""
    for path in paths:
        print(f"executing {path.name}", flush=True)
        subprocess.run(
            [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
             "--ExecutePreprocessor.timeout=600", str(path)],
            check=True, cwd=NOTEBOOKS,
        )


def twin_text(path: Path) -> str:
    """The MyST markdown twin of a notebook: its cells without outputs, for review in diffs.

    The twin leaves out the jupytext version, so a new jupytext release does not make every twin stale."""
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata.setdefault("jupytext", {})["notebook_metadata_filter"] = UNVERSIONED
    return jupytext.writes(notebook, fmt="md:myst")


def write_twins(paths: list[Path]) -> None:
    """Write the MyST twin of each lesson given (default: every lesson) in notebooks/md/."""
    TWINS.mkdir(exist_ok=True)
    for path in paths or lessons() + build_levels():
        (TWINS / f"{path.stem}.md").write_text(twin_text(path))


def stale_twins() -> list[str]:
    """Names of lessons whose twin is missing or differs from the notebook."""
    stale = []
    for path in lessons() + build_levels():
        twin = TWINS / f"{path.stem}.md"
        if not twin.exists() or twin.read_text() != twin_text(path):
            stale.append(path.name)
    return stale


def strip_solutions(source: str) -> str:
    """A cell's source with every solution region replaced by a NotImplementedError stub."""
    return _SOLUTION.sub(lambda m: STUB.format(indent=m.group(1)), source)


def is_answer_cell(source: str) -> bool:
    """Whether a cell's output is the instructor's answer: an exercise (a solution region) or its check."""
    return BEGIN in source or bool(CHECK_CALL.search(source))


def student_edition(path: Path) -> nbformat.NotebookNode:
    """The student edition of one notebook: solutions removed, and the outputs of exercises and checks.

    Every other cell keeps its recorded output, so a learner without root (Binder) still sees
    what the steps that need root showed when the lesson was recorded."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            if is_answer_cell(cell.source):
                cell.outputs = []
            cell.source = strip_solutions(cell.source)
            cell.execution_count = None
    return notebook


def student_notebooks() -> dict[str, Path]:
    """Every notebook of the student edition by its place in the edition (`05-chroot.ipynb`, `build/B1-...`)."""
    places = {path.name: path for path in lessons()}
    places.update({f"build/{path.name}": path for path in build_levels()})
    return places


def write_student(target: Path, keep_existing: bool = False) -> list[str]:
    """Write the student edition into `target`; with `keep_existing`, a notebook already there is kept.

    Returns the places of the notebooks kept (a learner's work is never overwritten by a refresh)."""
    kept = []
    for place, path in student_notebooks().items():
        destination = target / place
        destination.parent.mkdir(parents=True, exist_ok=True)
        if keep_existing and destination.exists():
            kept.append(place)
            continue
        nbformat.write(student_edition(path), destination)
    for guide in GUIDES:
        (target / guide).write_text((NOTEBOOKS / guide).read_text())
    return kept


def main(argv: list[str]) -> int:
    """Dispatch one course command; see the module docstring."""
    command, args = (argv[0], argv[1:]) if argv else ("help", [])
    if command == "execute":
        execute([Path(a).resolve() for a in args] or lessons())
    elif command == "twins":
        write_twins([Path(a).resolve() for a in args])
    elif command == "check-twins":
        stale = stale_twins()
        if stale:
            print("out of step with their text twins (run `make twins`): " + ", ".join(stale))
            return 1
    elif command == "student":
        write_student(Path(args[0]) if args else ROOT / "_build/student")
    elif command == "classroom" and len(args) == 1:
        kept = write_student(Path(args[0]), keep_existing=True)
        if kept:
            print(f"classroom: kept your own copy of {len(kept)} notebooks in {args[0]} "
                  "(delete one to get it fresh)")
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
