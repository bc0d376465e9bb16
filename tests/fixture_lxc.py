"""LXC containers for tests: unique names, a copy of the busybox rootfs each, cleanup whatever happens."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fixture_rootfs import make_busybox_rootfs

from lxclab.lxc import Container, cgroup_version, rootfs_path

# An init that stays up until stopped; PID 1 of a namespace ignores signals it has no handler for.
KEEPALIVE = ("/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done")


def unique_container_name(prefix: str = "lxct") -> str:
    """A container name no other test process uses: LXC's cgroup names are global to the host."""
    return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def host_cgroup_file(container: Container, controller: str, file: str) -> str:
    """A cgroup file of the container's init read from the host's cgroupfs: an oracle beside liblxc."""
    for line in Path(f"/proc/{container.init_pid}/cgroup").read_text().splitlines():
        _id, controllers, path = line.split(":", 2)
        if cgroup_version() == 2 and controllers == "":
            return Path(f"/sys/fs/cgroup{path}/{file}").read_text()
        if controller in controllers.split(","):
            return Path(f"/sys/fs/cgroup/{controllers}{path}/{file}").read_text()
    raise AssertionError(f"init of {container.name} is in no {controller} cgroup")


def discard(container: Container) -> None:
    """Stop and destroy `container` if it still exists (teardown after a failed test)."""
    if container.running:
        container.stop()
    if container.defined:
        container.destroy()


def remove_lock_dirs(lxcpath: Path) -> None:
    """Remove liblxc's (empty) lock directories of `lxcpath` under /run/lxc/lock, used by no one else."""
    lock_dir = Path("/run/lxc/lock") / str(lxcpath).lstrip("/")
    for directory in (lock_dir, lock_dir.parent):
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()


def container_factory(lxcpath: Path, rootfs_source: Callable[[Path], object]) -> tuple[Callable[..., Container],
                                                                                        list[Container]]:
    """A function making defined (not started) containers in `lxcpath`, and the list of those it made."""
    made: list[Container] = []

    def make(name: str | None = None, **options: object) -> Container:
        name = name or unique_container_name()
        rootfs = rootfs_path(name, lxcpath)
        rootfs_source(rootfs)
        options.setdefault("cmd", KEEPALIVE)
        container = Container.create(name, rootfs, lxcpath=lxcpath, **options)
        made.append(container)
        return container

    return make, made


@pytest.fixture
def lxcpath(tmp_path: Path) -> Iterator[Path]:
    """An LXC path of the test's own, so its containers never meet another test's; its lock dirs go after."""
    yield tmp_path / "lxc"
    remove_lock_dirs(tmp_path / "lxc")


@pytest.fixture
def make_container(busybox_rootfs: Path, lxcpath: Path) -> Iterator[Callable[..., Container]]:
    """A factory of defined (not started) containers on copies of the busybox rootfs, destroyed at teardown."""
    make, made = container_factory(lxcpath, lambda rootfs: shutil.copytree(busybox_rootfs, rootfs, symlinks=True))
    yield make
    for container in made:
        discard(container)


@pytest.fixture(scope="module")
def make_module_container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Container]]:
    """The same factory for a whole test module, so that its tests can share a container; destroyed at its end."""
    lxcpath = tmp_path_factory.mktemp("lxc-module") / "lxc"
    make, made = container_factory(lxcpath, make_busybox_rootfs)
    yield make
    for container in made:
        discard(container)
    remove_lock_dirs(lxcpath)
