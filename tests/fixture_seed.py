"""The seed images, built once per test session, and a classroom registry that holds them."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxclab.classroom import Classroom
from lxclab.classroom.ocilayout import OciLayout
from lxclab.classroom.publish import push_layout
from lxclab.classroom.seed import build_seed_layout
from lxclab.registry import RegistryClient


@pytest.fixture(scope="session")
def seed_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OCI layout holding lab/busybox (latest, 1.0, latest-amd64, latest-arm64); packages from the shared cache."""
    root = tmp_path_factory.mktemp("seed-layout")
    build_seed_layout(root)
    return root


@pytest.fixture(scope="session")
def seeded_classroom(classroom: Classroom, seed_layout: Path) -> Classroom:
    """The session's running classroom, with every seed image pushed to it by the teacher."""
    with RegistryClient(classroom.registry_host, classroom.teacher) as client:
        push_layout(OciLayout(seed_layout), client)
    return classroom
