"""Limits as users write them: Docker-style sizes, CPU counts and process counts, with clear errors."""

from __future__ import annotations

import os

import pytest

from lxclab import limits
from lxclab.errors import InvalidLimit
from lxclab.limits import Limits, MiB


@pytest.mark.parametrize("text, size", [
    ("64m", 64 * MiB), ("64M", 64 * MiB), ("1.5g", 1536 * MiB), ("512MiB", 512 * MiB),
    ("2mb", 2 * MiB), ("1048576", MiB), ("4096k", 4 * MiB), (" 32m ", 32 * MiB),
])
def test_parse_memory_understands_docker_sizes(text, size):
    assert limits.parse_memory(text) == size


@pytest.mark.parametrize("text, message", [
    ("12 parsecs", "expected a number with an optional unit"), ("", "expected a number"),
    ("-1m", "expected a number"), ("1.5x", "expected a number"), ("m", "expected a number"),
    ("100k", "below 1 MiB"), ("0", "below 1 MiB"),
])
def test_parse_memory_rejects_bad_values_clearly(text, message):
    with pytest.raises(InvalidLimit, match=message) as caught:
        limits.parse_memory(text)
    assert repr(text) in str(caught.value)


def test_parse_cpus_and_pids():
    assert limits.parse_cpus("0.5") == 0.5
    assert limits.parse_cpus(str(os.cpu_count())) == os.cpu_count()
    assert limits.parse_pids("64") == 64
    assert Limits.parse(memory="64m", cpus="0.5", pids="10") == Limits(64 * MiB, 0.5, 10)
    assert Limits.parse() == Limits()


@pytest.mark.parametrize("function, text, message", [
    (limits.parse_cpus, "half", "expected a number of CPUs"),
    (limits.parse_cpus, "0", "between 0.01 and"),
    (limits.parse_cpus, "1000", "between 0.01 and"),
    (limits.parse_pids, "many", "whole number"),
    (limits.parse_pids, "1.5", "whole number"),
    (limits.parse_pids, "0", "below 1"),
])
def test_parse_cpus_and_pids_reject_bad_values_clearly(function, text, message):
    with pytest.raises(InvalidLimit, match=message):
        function(text)
