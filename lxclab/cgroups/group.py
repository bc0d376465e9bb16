"""What every control group has, whatever the version: the cgroup file helpers, the
Cgroup base class, and killing the processes in cgroup directories and removing them.

A cgroup file holds one value ("max" meaning unlimited) or flat "key value" lines; writing one
needs root (or a delegated cgroup). A directory can be removed only once no process is in it.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import CgroupError
from ..procfs import kill_and_wait
from ..limits import Limits
from .vocabulary import SWAP_LIMIT_FILE, Stats, limit_writes, parse_stats, stat_files


def _write(path: Path, value: object) -> None:
    """Write one value to a cgroup file, turning the kernel's refusal into CgroupError."""
    try:
        path.write_text(f"{value}\n")
    except OSError as exc:
        raise CgroupError(f"cannot write {value!r} to {path}: {exc.strerror}; "
                          "cgroup files need root (or a delegated cgroup)") from None


class Cgroup:
    """A control group this process created: limit it, add processes, sample it, kill and remove it."""

    version = 0

    def __init__(self, name: str, dirs: dict[str, Path]):
        self.name = name
        self.dirs = dirs  # controller -> directory; v2 maps every controller to the same one

    @property
    def paths(self) -> list[str]:
        """The group's distinct directories, for a Footprint record and `remove_dirs`."""
        return sorted({str(d) for d in self.dirs.values()})

    def add(self, pid: int) -> None:
        """Move process `pid` (and its future children) into the group."""
        for path in self.paths:
            _write(Path(path) / "cgroup.procs", pid)

    def pids(self) -> list[int]:
        """The processes in the group now."""
        return processes_in(self.paths)

    def set_limits(self, limits: Limits) -> None:
        """Apply the memory, CPU and pids limits that are not None (vocabulary.limit_writes, in its order)."""
        memory = self.dirs["memory"]
        swap = (memory / SWAP_LIMIT_FILE[self.version]).exists()
        current = self.stats().memory_limit_bytes if swap and limits.memory_bytes is not None else None
        for controller, file, value in limit_writes(limits, self.version, swap, current):
            _write(self.dirs[controller] / file, value)

    def allow_devices(self, allowed: tuple[str, ...]) -> None:
        """Deny the group's processes every device but the `allowed` rules ("c 1:3 rwm"), as this version can."""
        raise NotImplementedError

    def stats(self) -> Stats:
        """Read memory, CPU, pids and OOM counters now (about 15 µs a file; a missing file reads as 0)."""
        texts = {}
        for controller, file in stat_files(self.version):
            try:
                texts[file] = (self.dirs[controller] / file).read_text()
            except FileNotFoundError:
                continue
        return parse_stats(self.version, texts)

    def kill(self, timeout: float = 5.0) -> None:
        """SIGKILL every process in the group, stopping forks first, and wait until it is empty."""
        self._stop_forks()
        kill_all(self.paths, timeout)

    def _stop_forks(self) -> None:
        """Lower pids.max to 0 (when limited by pids) so nothing new is born while killing."""
        if "pids" in self.dirs and (self.dirs["pids"] / "pids.max").exists():
            (self.dirs["pids"] / "pids.max").write_text("0\n")

    def remove(self) -> None:
        """Kill what is left in the group and remove its directories; removing twice is harmless."""
        if any(Path(p).exists() for p in self.paths):
            self.kill()
        remove_dirs(self.paths)

    def __enter__(self) -> "Cgroup":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.paths}>"


def processes_in(paths: list[str]) -> list[int]:
    """The PIDs listed in the cgroup.procs files of `paths`."""
    found: set[int] = set()
    for procs in (Path(path) / "cgroup.procs" for path in paths):
        if procs.exists():
            found.update(int(line) for line in procs.read_text().split())
    return sorted(found)


def kill_all(paths: list[str], timeout: float = 5.0) -> None:
    """SIGKILL the processes in the cgroups at `paths` until none is left (new ones may appear while killing)."""
    survivors = kill_and_wait(lambda: processes_in(paths), timeout)
    if survivors:
        raise CgroupError(f"cgroup {paths[0]}: processes {survivors} survived SIGKILL for {timeout} s")


def remove_dirs(paths: list[str], timeout: float = 5.0) -> None:
    """Remove cgroup directories, killing any process still in them; paths already gone are skipped.

    This is what `gc` calls with the paths a crashed run recorded.
    """
    for path in map(Path, paths):
        if not path.exists():
            continue
        kill_all([str(path)], timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                path.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as exc:  # EBUSY while the last exiting task lets go
                if time.monotonic() > deadline:
                    raise CgroupError(f"cannot remove cgroup {path}: {exc.strerror}; "
                                      "is a process still in it?") from None
                time.sleep(0.01)
