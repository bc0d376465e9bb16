"""Checks for level B6: the learner writes the cgroup limit files, for cgroup v1 and v2.

lxclab only detects the host's cgroups and creates an empty group under the caller's own
(`cgroups.detect().create`); the learner decides which files get which values and writes
them. The names and values are checked against what lxclab's own CgroupV1/CgroupV2 write,
for both versions whatever this host runs; the writing is checked against the kernel: it
must hold the values, and a memory hog in the group must be killed.
"""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

from .. import cgroups
from ..cgroups import CONTROLLERS, CgroupV1, CgroupV2, Limits
from ..exercises import check_against
from ..lessons import has_root
from .feedback import ExerciseError, attempt, expect, not_checked, passed

MEMORY, CPUS, PIDS = 48 << 20, 0.5, 20
HOG = 128 << 20
SWAP_FILES = {1: "memory.memsw.limit_in_bytes", 2: "memory.swap.max"}


def library_files(version: int, memory_bytes: int, cpus: float, pids: int) -> dict[tuple[str, str], str]:
    """What lxclab writes for these limits on cgroup `version`: {(controller, file name): value}."""
    with tempfile.TemporaryDirectory(prefix="lxclab-b6-") as scratch:
        dirs = {c: Path(scratch, c if version == 1 else "") for c in CONTROLLERS}
        for directory in dirs.values():
            directory.mkdir(exist_ok=True)
        (dirs["memory"] / SWAP_FILES[version]).touch()  # as on a host with swap accounting
        (CgroupV1 if version == 1 else CgroupV2)("oracle", dirs).set_limits(Limits(memory_bytes, cpus, pids))
        written = {path for directory in set(dirs.values()) for path in directory.iterdir()}
        return {(path.name.split(".")[0], path.name): path.read_text().strip() for path in written}


def check_limit_files(limit_files: Callable) -> None:
    """The learner's file names and values must be lxclab's, for v1 and for v2."""
    cases = [(1, 64 << 20, 0.5, 20), (2, 64 << 20, 0.5, 20), (1, 32 << 20, 1.5, 100), (2, 32 << 20, 1.5, 100)]
    check_against(limit_files, library_files, cases,
                  hint="Keys are (controller, file name), values strings. v1: memory.limit_in_bytes and "
                       "memory.memsw.limit_in_bytes, cpu.cfs_period_us = 100000 and cpu.cfs_quota_us = cpus × period, "
                       "pids.max. v2: memory.max, memory.swap.max = 0, cpu.max = 'QUOTA PERIOD', pids.max.")


def _hog_in(group: cgroups.Cgroup) -> int:
    """Fork a child into `group` that allocates HOG bytes; return its wait status."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(write_end)
        os.read(read_end, 1)
        data = b"x" * HOG  # every page written, so it is really charged
        os._exit(0 if data else 1)
    os.close(read_end)
    group.add(pid)
    os.close(write_end)
    return os.waitpid(pid, 0)[1]


def check_write_limits(write_limits: Callable, limit_files: Callable) -> None:
    """Write the learner's limits into a fresh group; the kernel must hold them and kill a memory hog."""
    if not has_root():
        not_checked("write_limits", "cgroup files need root; with it the check creates a group, lets you write its "
                    "limits, reads them back from the kernel and runs a 128 MiB hog under a 48 MiB limit")
        return
    hierarchy = cgroups.detect()
    files = limit_files(hierarchy.version, MEMORY, CPUS, PIDS)
    with hierarchy.create(f"lxclab-b6-{os.getpid()}") as group:
        attempt(write_limits, group.dirs, files, hint="Write each value to dirs[controller] / file name.")
        for (controller, name), value in files.items():
            path = group.dirs[controller] / name
            if name == SWAP_FILES[hierarchy.version] and not path.exists():
                continue  # this kernel keeps no swap accounting
            expect(path.read_text().strip() == value, f"{controller}/{name} holds {path.read_text().strip()!r}, "
                   f"not {value!r}", "Write every file limit_files gives, each in the directory of its controller.")
        status = _hog_in(group)
    expect(os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL,
           "a 128 MiB hog in your group was not killed", "The memory limit must be in place before the process runs.")
    passed(f"write_limits: the kernel holds your {len(files)} values; a {HOG >> 20} MiB hog under "
           f"{MEMORY >> 20} MiB was killed by SIGKILL (exit status 137 in a shell)")


__all__ = ["ExerciseError", "check_limit_files", "check_write_limits", "library_files"]
