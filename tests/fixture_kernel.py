"""Helpers for kernel tests: mounts below a path, a rootfs that user nobody can enter."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from fixture_rootfs import make_busybox_rootfs


def children() -> set[int]:
    """This process's living and unreaped children (a session's classroom servers among them)."""
    return {int(pid) for task in Path("/proc/self/task").iterdir()
            for pid in (task / "children").read_text().split()}


def open_fds() -> set[str]:
    """This process's open file descriptors; some may close meanwhile (a finalizer, another thread): not a leak."""
    return set(os.listdir("/proc/self/fd"))


def mounts_under(*paths) -> list[str]:
    """Mount points at or below `paths`; the whole mountinfo changes while other test files run in parallel."""
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points for path in map(str, paths) if p == path or p.startswith(path.rstrip("/") + "/")]


@pytest.fixture
def world_readable_rootfs():
    """A busybox rootfs in a directory that user nobody may enter (pytest's tmp_path is 0700)."""
    top = Path(tempfile.mkdtemp(prefix="lxclab-rootless-"))
    top.chmod(0o755)
    yield make_busybox_rootfs(top / "rootfs")
    shutil.rmtree(top)
