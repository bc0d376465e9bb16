"""`./kit classroom` as a learner starts it: the registry up and seeded, JupyterLab serving the student edition.

It runs in a network namespace of its own (so the classroom's fixed ports 5000 and 5001 never meet
one already running on the host), with a private LXCLAB_HOME that holds only the package cache:
the seed then needs no network, as at a workshop.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxclab.classroom.seed import default_cache_dir, fetch_busybox
from fixture_jupyterlab import private_jupyter_dirs
from fixture_lessons import ROOT, load_tool
from polling import SLOWDOWN

course = load_tool("course")
START_TIMEOUT = 240 * SLOWDOWN  # setup's checks, registry up, seed, the student edition and JupyterLab, on a busy host
PORT = 8890
ANSWER_TIMEOUT = 5 * SLOWDOWN  # one contents API answer (under TCG a notebook took longer than 5 s)


def inside(netns: str, *command: str, **kwargs) -> subprocess.CompletedProcess:
    """Run `command` in the network namespace `netns` and return what it did."""
    return subprocess.run(["ip", "netns", "exec", netns, *command], capture_output=True, text=True, **kwargs)


def contents(netns: str, token: str, path: str = "") -> subprocess.CompletedProcess:
    """Ask JupyterLab's contents API for `path` with curl, inside `netns`."""
    url = f"http://127.0.0.1:{PORT}/api/contents/{path}?token={token}"
    return inside(netns, "curl", "-sS", "-f", "--max-time", str(ANSWER_TIMEOUT), url)


def served(netns: str, token: str) -> dict | None:
    """JupyterLab's listing of the folder it serves, or None while it is not serving yet."""
    answer = contents(netns, token)
    return json.loads(answer.stdout) if answer.returncode == 0 else None


def notebook_served(netns: str, token: str, name: str) -> dict:
    """The notebook `name` as JupyterLab serves it, once the lab is up; fails with what curl said."""
    answer = contents(netns, token, name)
    assert answer.returncode == 0, f"JupyterLab did not give {name}: {answer.stderr.strip()}"
    return json.loads(answer.stdout)["content"]


@pytest.fixture
def netns() -> Iterator[str]:
    """A fresh network namespace with loopback up; deleted afterwards."""
    name = f"lxclab-kit-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


@pytest.fixture
def classroom_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a learner's shell: a private LXCLAB_HOME holding the package cache, private Jupyter dirs."""
    fetch_busybox(default_cache_dir())  # on the host's network, once: the classroom itself stays offline
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    shutil.copytree(default_cache_dir(), home / "cache")
    return (os.environ | private_jupyter_dirs(tmp_path / "jupyter")
            | {"LXCLAB_HOME": str(home), "LXCLAB_STUDENT_DIR": str(tmp_path / "student")})


def start_kit_classroom(netns: str, env: dict[str, str], token: str, log: Path, *extra: str) -> subprocess.Popen:
    """`./kit classroom [extra]` in `netns`, JupyterLab on PORT with `token`; its output goes to `log`."""
    command = ["ip", "netns", "exec", netns, str(ROOT / "kit"), "classroom", *extra,
               f"--port={PORT}", "--port-retries=0", f"--IdentityProvider.token={token}"]
    with log.open("wb") as output:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True)


def wait_for_lab(kit: subprocess.Popen, netns: str, token: str, log: Path) -> dict:
    """The root listing once JupyterLab serves it; fail with the kit's log if it exits or takes too long."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert kit.poll() is None, f"./kit classroom exited with {kit.returncode}:\n{log.read_text()[-3000:]}"
        listing = served(netns, token)
        if listing is not None:
            return listing
        time.sleep(1)
    raise AssertionError(f"./kit classroom did not serve within {START_TIMEOUT} s:\n{log.read_text()[-3000:]}")


def stop_kit_classroom(kit: subprocess.Popen, netns: str, env: dict[str, str]) -> None:
    """Stop JupyterLab (the kit's own process group) and the classroom registry it left running."""
    if kit.poll() is None:
        os.killpg(kit.pid, signal.SIGTERM)
        try:
            kit.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(kit.pid, signal.SIGKILL)
            kit.wait()
    inside(netns, str(ROOT / ".venv/bin/lxclab"), "registry", "down", env=env, timeout=60)


@pytest.mark.slow
def test_kit_classroom_serves_the_student_edition_and_keeps_a_learners_work(netns, classroom_env, tmp_path):
    token = secrets.token_hex(16)
    student = Path(classroom_env["LXCLAB_STUDENT_DIR"])
    kit = start_kit_classroom(netns, classroom_env, token, tmp_path / "kit.log")
    try:
        listing = wait_for_lab(kit, netns, token, tmp_path / "kit.log")
        names = {item["name"] for item in listing["content"]}
        assert {path.name for path in course.lessons()} <= names and {"build", "TROUBLESHOOTING.md"} <= names
        lesson = notebook_served(netns, token, "05-chroot.ipynb")
        sources = "\n".join("".join(cell["source"]) for cell in lesson["cells"])
        assert course.BEGIN not in sources and "raise NotImplementedError(" in sources
        pull = inside(netns, str(ROOT / ".venv/bin/lxclab"), "pull", "127.0.0.1:5000/lab/busybox",
                      env=classroom_env, timeout=120)
        assert pull.returncode == 0, pull  # the registry is up, with its token server, and seeded
    finally:
        stop_kit_classroom(kit, netns, classroom_env)
    mine = student / "05-chroot.ipynb"
    mine.write_text(mine.read_text().replace("NotImplementedError", "print('my answer')#", 1))
    again = start_kit_classroom(netns, classroom_env, token, tmp_path / "again.log")
    try:
        wait_for_lab(again, netns, token, tmp_path / "again.log")
        assert "print('my answer')" in mine.read_text()  # a second start never overwrites a learner's notebook
        assert "kept your own copy" in (tmp_path / "again.log").read_text()
    finally:
        stop_kit_classroom(again, netns, classroom_env)


@pytest.mark.slow
def test_kit_classroom_instructor_serves_the_notebooks_with_solutions(netns, classroom_env, tmp_path):
    token = secrets.token_hex(16)
    kit = start_kit_classroom(netns, classroom_env, token, tmp_path / "kit.log", "--instructor")
    try:
        wait_for_lab(kit, netns, token, tmp_path / "kit.log")
        lesson = notebook_served(netns, token, "05-chroot.ipynb")
        assert course.BEGIN in "\n".join("".join(cell["source"]) for cell in lesson["cells"])
        assert not Path(classroom_env["LXCLAB_STUDENT_DIR"]).exists()
    finally:
        stop_kit_classroom(kit, netns, classroom_env)
