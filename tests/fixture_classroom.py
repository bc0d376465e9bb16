"""A real classroom (registry + token server) on free ports, for any test that needs a registry."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from lxclab.classroom import Classroom


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
