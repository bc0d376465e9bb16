"""A real classroom (registry + token server) on free ports, for any test that needs a registry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lxclab.classroom import Classroom
from lxclab.classroom.daemon import free_port


def started_classroom(tmp_path_factory: pytest.TempPathFactory, name: str, **options) -> Classroom:
    """A classroom in a fresh state directory, up on two free ports."""
    classroom = Classroom(tmp_path_factory.mktemp(name), registry_port=free_port(), token_port=free_port(), **options)
    classroom.up()
    return classroom


@pytest.fixture(scope="session")
def classroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Classroom]:
    """A running classroom (tokens live 300 s); `classroom.teacher` may push anywhere."""
    running = started_classroom(tmp_path_factory, "classroom")
    try:
        yield running
    finally:
        running.down()


@pytest.fixture(scope="session")
def short_token_classroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Classroom]:
    """A running classroom whose tokens expire after 2 seconds, for expiry tests."""
    running = started_classroom(tmp_path_factory, "short-token-classroom", token_ttl=2)
    try:
        yield running
    finally:
        running.down()
