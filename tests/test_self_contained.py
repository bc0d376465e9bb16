"""The checkout stands on its own: no code, test, lesson, script or config names a path outside it.

A learner clones lxclab anywhere (often into a 0700 home) with nothing beside it. So nothing
in the project may reach for a folder beside the clone (`../shared`), climb above it from its
own file (`Path(__file__).parents[N]` past the checkout), or name an absolute path of the
machine it was written on (`/work/...`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIPPED_DIRS = {".git", ".venv", "node_modules", "_build", "test-artifacts", "__pycache__", ".pytest_cache",
                ".ipynb_checkpoints"}
SCANNED_SUFFIXES = {".py", ".sh", ".ipynb", ".md", ".toml", ".cfg", ".ini", ".yml", ".yaml", ".json", ".txt", ".in"}
SCANNED_NAMES = {"kit", "Makefile", "run", "Dockerfile", "postBuild", "apt.txt"}
SKIPPED_FILES = {"package-lock.json", "tests/test_self_contained.py"}
BESIDE = re.compile(r"\.\./shared\b|\bshared/fixtures\b")
MACHINE = re.compile(r"(?:^|[\s\"'=:(,])/work(?:/|\b)")
PARENTS = re.compile(r"__file__.*\.parents\[(\d+)\]")
# Lines allowed to name /work, each with its reason.
ALLOWED = {("tests/test_engine.py", '"/work" not in mounts'): "asserts the mount table does not show the checkout"}


def project_files() -> list[Path]:
    """Every text file of the project that code, tests, lessons, scripts or config live in."""
    found = []
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT)
        if SKIPPED_DIRS & set(relative.parts) or not path.is_file() or str(relative) in SKIPPED_FILES:
            continue
        if path.suffix in SCANNED_SUFFIXES or path.name in SCANNED_NAMES:
            found.append(path)
    return sorted(found)


def outside_paths(relative: Path, text: str) -> list[str]:
    """The lines of file `relative` (its text) that name a path outside the checkout, as `path:line: text`."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        climbs = [int(n) for n in PARENTS.findall(line)]
        outside = (BESIDE.search(line) or MACHINE.search(line) or any(n >= len(relative.parts) for n in climbs))
        if outside and not any(path == str(relative) and allowed in line for path, allowed in ALLOWED):
            found.append(f"{relative}:{number}: {line.strip()[:160]}")
    return found


def test_the_scan_covers_code_tests_lessons_scripts_and_config():
    names = {str(path.relative_to(ROOT)) for path in project_files()}
    expected = {"kit", "Makefile", ".ci/run", "scripts/test.sh", "lxclab/lessons.py", "tests/conftest.py",
                "notebooks/01-registry-auth.ipynb", "pyproject.toml"}
    assert expected <= names, expected - names


@pytest.mark.parametrize("line, found", [
    ('FIXTURES = Path(__file__).resolve().parents[2] / "shared"', True),  # above tests/: outside
    ('ROOT = Path(__file__).resolve().parents[1]', False),  # the checkout itself
    ('course_folder("shared/fixtures/dockerhub", holding="x")', True),
    ('exec 9>"$here/../shared/lock"', True),
    ('cd /work/main && ./kit test', True),
    ('"workdir:  $LXCLAB_HOME/mounts/<this mount>/work"', False),
    ('(rootfs / "tmp/up").symlink_to("../../../../..")', False),  # a lesson's hostile symlink, inside a rootfs
])
def test_the_scan_tells_outside_from_inside(line: str, found: bool):
    assert bool(outside_paths(Path("tests/test_x.py"), line)) is found


def test_nothing_names_a_path_outside_the_checkout():
    found = [hit for path in project_files()
             for hit in outside_paths(path.relative_to(ROOT), path.read_text(errors="replace"))]
    assert found == [], "paths outside the checkout:\n" + "\n".join(found)
