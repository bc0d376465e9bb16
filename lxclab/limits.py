"""Resource limits as a user writes them ('64m', '1.5g', '0.5' CPUs, '100' processes), parsed and checked.

Pure data, no I/O: the CLI and the engine check limits here before touching any cgroup.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .errors import InvalidLimit

MiB = 1024 * 1024
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_MEMORY_UNITS = {"": 1, "k": 1024, "m": MiB, "g": 1024 * MiB, "t": 1024 * 1024 * MiB}


def parse_memory(text: str | int) -> int:
    """Bytes from a Docker-style size like '64m', '1.5g', '512MiB' or '1048576' (binary units)."""
    match = _MEMORY.match(str(text))
    if not match:
        raise InvalidLimit(f"invalid memory limit {text!r}: expected a number with an optional unit "
                           "b, k, m, g or t (like '64m' or '1.5g')")
    size = int(float(match.group(1)) * _MEMORY_UNITS[match.group(2).lower()])
    if size < MiB:
        raise InvalidLimit(f"memory limit {text!r} is below 1 MiB: no process can start in that; give at least '1m'")
    return size


def parse_cpus(text: str | float) -> float:
    """A CPU quota in CPUs from text like '0.5' or '2'; between 0.01 and the number of CPUs here."""
    try:
        cpus = float(text)
    except ValueError:
        raise InvalidLimit(f"invalid CPU limit {text!r}: expected a number of CPUs like '0.5' or '2'") from None
    available = os.cpu_count() or 1
    if not 0.01 <= cpus <= available:
        raise InvalidLimit(f"CPU limit {text!r} is out of range: give between 0.01 and {available} (CPUs on this host)")
    return cpus


def parse_pids(text: str | int) -> int:
    """A maximum number of processes from text like '64'; at least 1."""
    try:
        pids = int(str(text).strip())
    except ValueError:
        raise InvalidLimit(f"invalid pids limit {text!r}: expected a whole number of processes like '64'") from None
    if pids < 1:
        raise InvalidLimit(f"pids limit {text!r} is below 1: the container's first process needs one")
    return pids


@dataclass(frozen=True)
class Limits:
    """Resource limits of a group; None means unlimited."""

    memory_bytes: int | None = None
    cpus: float | None = None
    pids: int | None = None

    @classmethod
    def parse(cls, memory: str | None = None, cpus: str | None = None, pids: str | None = None) -> "Limits":
        """Limits from command-line style text ('64m', '0.5', '100'); raises InvalidLimit on bad values."""
        return cls(
            memory_bytes=None if memory is None else parse_memory(memory),
            cpus=None if cpus is None else parse_cpus(cpus),
            pids=None if pids is None else parse_pids(pids),
        )
