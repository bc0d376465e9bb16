"""A private lxclab home with the seed busybox pulled into it, for engine tests; every container removed after."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxclab import cgroups, network
from lxclab.engine import containers, gc
from lxclab.engine.pull import pull
from lxclab.errors import ContainerNotFound


@pytest.fixture
def engine_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """$LXCLAB_HOME in tmp_path; afterwards every container of it is force-removed and gc runs."""
    home = tmp_path / "home"
    monkeypatch.setenv("LXCLAB_HOME", str(home))
    yield home
    for container in containers.containers():
        try:
            gc.rm(container.id, force=True)
        except ContainerNotFound:
            pass  # a --rm container that removed itself meanwhile
    gc.gc()


@pytest.fixture
def busybox(seeded_classroom, engine_home: Path) -> str:
    """The reference of the seed lab/busybox image, pulled into the test's own home."""
    ref = f"{seeded_classroom.registry_host}/lab/busybox:latest"
    pull(ref)
    return ref


def host_footprint(home: Path) -> dict[str, set[str]]:
    """What lxclab containers can leave on the host, limited to this home's and its containers' names.

    Mount points mentioning the home, cgroup dirs named lxclab-*, network namespaces named
    lxclab-*, and the directories under the home. Compare two footprints, filtering other
    tests' names out by the IDs of the containers a test made.
    """
    mounts = {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(home) in line}
    hierarchy = cgroups.detect()
    groups = {str(p) for d in set(hierarchy.parent_dirs().values()) for p in d.glob("lxclab-*")}
    netns = {name for name in network.list_netns() if name.startswith(network.PREFIX)}
    dirs = {str(p.relative_to(home)) for p in home.glob("containers/**/*")} | {
        str(p.relative_to(home)) for p in home.glob("containers/*")}
    return {"mounts": mounts, "cgroups": groups, "netns": netns, "dirs": dirs}


def mentioning(footprint: dict[str, set[str]], names: set[str]) -> dict[str, set[str]]:
    """The footprint entries naming any of `names` (short container IDs, the home's bridge)."""
    pattern = re.compile("|".join(map(re.escape, names))) if names else None
    return {kind: {item for item in items if pattern and pattern.search(item)} for kind, items in footprint.items()}
