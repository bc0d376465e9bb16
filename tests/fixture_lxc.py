"""LXC containers for tests: unique names, a copy of the busybox rootfs each, cleanup whatever happens."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lxclab.lxc import Container, rootfs_path

# An init that stays up until stopped; PID 1 of a namespace ignores signals it has no handler for.
KEEPALIVE = ("/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done")


def unique_container_name(prefix: str = "lxct") -> str:
    """A container name no other test process uses: LXC's cgroup names are global to the host."""
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def discard(container: Container) -> None:
    """Stop and destroy `container` if it still exists (teardown after a failed test)."""
    if container.running:
        container.stop()
    if container.defined:
        container.destroy()


@pytest.fixture
def lxcpath(tmp_path: Path) -> Iterator[Path]:
    """An LXC path of the test's own, so its containers never meet another test's; its lock dirs go after."""
    yield tmp_path / "lxc"
    # liblxc keeps a lock directory per lxcpath under /run/lxc/lock; only this test used these two.
    lock_dir = Path("/run/lxc/lock") / str(tmp_path / "lxc").lstrip("/")
    for directory in (lock_dir, lock_dir.parent):
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()


@pytest.fixture
def make_container(busybox_rootfs: Path, lxcpath: Path) -> Iterator[Callable[..., Container]]:
    """A factory of defined (not started) containers on copies of the busybox rootfs, destroyed at teardown."""
    made: list[Container] = []

    def make(name: str | None = None, **options: object) -> Container:
        name = name or unique_container_name()
        rootfs = rootfs_path(name, lxcpath)
        shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
        options.setdefault("cmd", KEEPALIVE)
        container = Container.create(name, rootfs, lxcpath=lxcpath, **options)
        made.append(container)
        return container

    yield make
    for container in made:
        discard(container)
