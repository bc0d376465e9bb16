"""The checkout stands on its own: no code, test, lesson, script or config names a path outside it.

A learner clones lxclab anywhere (often into a 0700 home) with nothing beside it. So nothing
in the project may climb above the checkout: from its own file (`Path(__file__).parents[N]`,
`.parent` chains, `$(dirname "${BASH_SOURCE[0]}")/..` past the checkout) or from a name for
the checkout (`$here/..`, `ROOT.parent`, a search through `ROOT.parents` or the working
directory's parents); nor may it name an absolute path of the machine it was written on
(`/work/...`).
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
MACHINE = re.compile(r"(?:^|[\s\"'=:(,])/work(?:/|\b)")
# Climbs counted from the file's own place: parents[N], a chain of .parent, dirname(...) then N "..".
PARENTS = re.compile(r"__file__.*\.parents\[(\d+)\]")
PARENT_CHAIN = re.compile(r"__file__\)?(?:\.resolve\(\))?((?:\.parent\b)+)")
DIRNAME_UP = re.compile(r"dirname [^)]*\)\"?((?:/\.\.)+)")
# Climbs from a name the project gives its checkout: above it is outside, whatever follows.
CHECKOUT_NAMES = r"(?:here|source|VM_CHECKOUT|ROOT|REPO|CHECKOUT)"
FROM_CHECKOUT = re.compile(rf"\$\{{?{CHECKOUT_NAMES}\}}?/\.\.|\b{CHECKOUT_NAMES}\s*(?:\.parents?\b|/\s*[\"']\.\.)"
                           r"|Path\.cwd\(\)\.parents?\b")  # nor a search upwards from wherever it runs
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
        outside = MACHINE.search(line) or FROM_CHECKOUT.search(line) or climbs_out(relative, line)
        if outside and not any(path == str(relative) and allowed in line for path, allowed in ALLOWED):
            found.append(f"{relative}:{number}: {line.strip()[:160]}")
    return found


def climbs_out(relative: Path, line: str) -> bool:
    """Whether `line` of file `relative` climbs from the file's own place to above the checkout."""
    depth = len(relative.parts)  # parents[depth - 1] is the checkout; parents[depth] is beside it
    climbs = [int(n) for n in PARENTS.findall(line)]
    climbs += [chain.count(".parent") - 1 for chain in PARENT_CHAIN.findall(line)]
    climbs += [ups.count("..") for ups in DIRNAME_UP.findall(line)]
    return any(n >= depth for n in climbs)


def test_the_scan_covers_code_tests_lessons_scripts_and_config():
    names = {str(path.relative_to(ROOT)) for path in project_files()}
    expected = {"kit", "Makefile", ".ci/run", "scripts/test.sh", "lxclab/lessons.py", "tests/conftest.py",
                "notebooks/01-registry-auth.ipynb", "pyproject.toml"}
    assert expected <= names, expected - names


@pytest.mark.parametrize("line, found", [
    ('FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"', True),  # above tests/: outside
    ('ROOT = Path(__file__).resolve().parents[1]', False),  # the checkout itself
    ('REPO = Path(__file__).resolve().parent.parent', False),  # tests/ then the checkout
    ('BESIDE = Path(__file__).resolve().parent.parent.parent', True),
    ('here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"', False),  # tests/ up to the checkout
    ('here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"', True),
    ('return next(folder / "data" for folder in ROOT.parents if folder.is_dir())', True),
    ('exec 9>"$here/../lock"', True),
    ('places = [Path.cwd(), *Path.cwd().parents, CHECKOUT]', True),
    ('FIXTURES = CHECKOUT / ".." / "fixtures"', True),
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
