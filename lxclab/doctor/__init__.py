"""`lxclab doctor`: what this machine can do for each lesson, found by trying each thing.

Each check (`checks`) reports one fact about the machine: root, kernel, cgroups, user
namespaces, overlayfs, LXC, the classroom's ports, disk, AppArmor, KVM, Debian packages;
with the one line that fixes it. Probes that create namespaces or mounts run in a forked
child (`probes`), so the caller never changes. `diagnose` then reads each lesson's code
cells to find what it needs, and says whether it runs for real, only shows its privileged
steps (no root, as on Binder), or fails.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import lessons
from . import checks, ports
from .checks import Check

__all__ = ["Check", "Lesson", "Report", "Verdict", "diagnose", "find_lessons", "judge", "run_checks"]

NOTEBOOKS = lessons.CHECKOUT / "notebooks"
LESSON_FILE = re.compile(r"^(\d\d)-(.+)\.ipynb$")
# Debian packages ./kit setup installs (scripts/setup.sh; a test keeps the two lists equal), and what needs them.
PACKAGES = {
    "python3": "the kit", "python3-venv": "./kit setup", "python3-dev": "python-lxc's build",
    "docker-registry": "the classroom registry", "busybox-static": "the seed images", "skopeo": "tests",
    "umoci": "tests", "crun": "tests", "lxc": "lessons 08, 09", "lxc-dev": "python-lxc's build",
    "pkg-config": "python-lxc's build", "gcc": "python-lxc's build", "zstd": "tests",
    "iproute2": "lesson 06", "util-linux": "the kit", "uidmap": "rootless runs", "chromium": "browser tests",
    "rsync": "LXC snapshots (lesson 08)", "e2fsprogs": "tests", "qemu-system-x86": "tests, ./kit vm-test",
}
# What a lesson's code names (a regex over its code cells) -> the need; a need -> the checks it rests on.
NEED_MARKERS = {
    "registry": r"\bClassroom\(", "root": r"\bneeds_root\(", "overlayfs": r"\boverlay",
    "cgroups": r"\bcgroups\b", "lxc": r"\blxclab\.lxc\b|^\s*import lxc\b", "userns": r"\brootless",
    "network": r"\bCAP_NET_ADMIN\b",
}
CLASSROOM_CHECKS = ("docker-registry", "registry port", "token port")
NEED_CHECKS = {
    "registry": ("python", *CLASSROOM_CHECKS, "disk"), "root": ("root",),
    "overlayfs": ("overlayfs",), "cgroups": ("cgroups",), "lxc": ("cgroups", "lxc", "python-lxc", "apparmor"),
    "userns": ("user namespaces",), "network": ("iproute2",),
}
SHOWN_WITHOUT = {"root", "user namespaces"}  # the lesson says what is missing and shows the step instead
UNDER_ROOT = {"overlayfs", "cgroups", "lxc", "python-lxc", "apparmor", "iproute2"}  # moot while root is missing
STEP = re.compile(r"""\bneeds_root\(\s*(["'])(.*?)\1""")


@dataclass(frozen=True)
class Lesson:
    """A lesson notebook: its number, name, what its code cells need, and its steps that need root.

    `steps` names each kind of step once; `guarded` counts the cells' needs_root guards.
    """

    number: str
    name: str
    needs: tuple[str, ...]
    steps: tuple[str, ...]
    guarded: int = 0


@dataclass(frozen=True)
class Verdict:
    """How a lesson goes here: "real", "shown" (privileged steps only shown) or "fails"; the checks missing."""

    lesson: Lesson
    outcome: str
    missing: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    """Every check, and every lesson's verdict."""

    checks: tuple[Check, ...]
    verdicts: tuple[Verdict, ...]

    @property
    def needed(self) -> set[str]:
        """The names of the checks the lessons rest on (with no lessons found: all that any lesson could)."""
        needs = {need for verdict in self.verdicts for need in verdict.lesson.needs} if self.verdicts else NEED_CHECKS
        return {name for need in needs for name in NEED_CHECKS[need]}

    @property
    def ready(self) -> bool:
        """True when every lesson runs for real here (with no lessons found: when every needed check is ok)."""
        if not self.verdicts:
            return all(check.ok for check in self.checks if check.name in self.needed)
        return all(verdict.outcome == "real" for verdict in self.verdicts)

    def check(self, name: str) -> Check:
        """The check called `name`."""
        return next(check for check in self.checks if check.name == name)

    def as_json(self) -> dict:
        """The report as plain data, for `lxclab doctor --json`."""
        return {"ready": self.ready, "checks": [asdict(check) for check in self.checks],
                "lessons": [{**asdict(v.lesson), "outcome": v.outcome, "missing": list(v.missing)}
                            for v in self.verdicts]}


def diagnose(notebooks: Path = NOTEBOOKS) -> Report:
    """Run every check, then judge each lesson in `notebooks` against them."""
    found = run_checks()
    by_name = {check.name: check for check in found}
    return Report(tuple(found), tuple(judge(lesson, by_name) for lesson in find_lessons(notebooks)))


def run_checks() -> list[Check]:
    """Every check, in the order the table shows them."""
    packages = checks.installed_packages(list(PACKAGES))
    python = checks.check_python()
    return [
        checks.check_root(), checks.check_kernel(), checks.check_cgroups(), *checks.check_user_namespaces(),
        checks.check_overlayfs(), checks.check_lxc(packages), checks.check_python_lxc(), checks.check_apparmor(),
        python, *classroom_checks(packages, python), checks.check_disk(), checks.check_iproute2(),
        checks.check_userns_remap(), checks.check_kvm(),
        checks.check_packages(packages, PACKAGES),
    ]


def classroom_checks(packages: dict[str, str | None], python: Check) -> list[Check]:
    """The registry binary and the classroom's two ports, once lxclab's Python packages are there (./kit setup)."""
    if not python.ok:
        return [Check(name, False, "not checked: lxclab's Python packages are missing", python.fix)
                for name in CLASSROOM_CHECKS]
    from ..classroom import Classroom  # needs httpx, which only ./kit setup installs

    classroom = Classroom.recorded()
    pids = classroom.status().pids
    return [
        ports.check_registry(classroom, packages),
        ports.check_port("registry port", classroom.host, classroom.registry_port, pids["registry"],
                          "LXCLAB_REGISTRY_PORT"),
        ports.check_port("token port", classroom.host, classroom.token_port, pids["token"], "LXCLAB_TOKEN_PORT"),
    ]


def judge(lesson: Lesson, found: dict[str, Check]) -> Verdict:
    """Whether `lesson` runs for real, only shows its privileged steps, or fails, given the checks `found`."""
    names = dict.fromkeys(name for need in lesson.needs for name in NEED_CHECKS[need])
    missing = tuple(name for name in names if not found[name].ok)
    root = "root" not in missing
    failing = [name for name in missing if name not in SHOWN_WITHOUT and (root or name not in UNDER_ROOT)]
    return Verdict(lesson, "fails" if failing else "shown" if missing else "real", missing)


def find_lessons(notebooks: Path = NOTEBOOKS) -> list[Lesson]:
    """The lessons in `notebooks` (NN-name.ipynb), each with what its code cells need."""
    if not notebooks.is_dir():
        return []
    found = []
    for path in sorted(notebooks.iterdir()):
        match = LESSON_FILE.match(path.name)
        if match:
            code = lesson_code(path)
            needs = tuple(need for need, marker in NEED_MARKERS.items() if re.search(marker, code, re.M))
            steps = [step for _, step in STEP.findall(code)]
            found.append(Lesson(match[1], match[2], needs, tuple(dict.fromkeys(steps)), len(steps)))
    return found


def lesson_code(path: Path) -> str:
    """The source of every code cell of notebook `path`, joined."""
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
