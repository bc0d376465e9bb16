"""What /proc says about mounts and processes, read in one place: mountinfo, stat, cgroup, status.

- `/proc/PID/mountinfo`: one line per mount, its paths octal-escaped (a space is `\\040`);
  `mounts` gives them as `Mount` records with the escapes undone.
- `/proc/PID/stat`: a process's state and start time. The command name sits in parentheses
  and may itself hold spaces and `) (`, so the fields are counted from the last `)`. A PID
  with its start time (`identity`) names one process for good, never a later one that
  reuses the PID.
- `/proc/PID/cgroup`: the process's cgroup in each hierarchy, `ID:CONTROLLERS:PATH` (v1)
  or `0::PATH` (v2).
- `/proc/PID/status`: among much else, the signals a process blocks, ignores and catches
  (SigBlk, SigIgn, SigCgt: bit N-1 stands for signal N); `/proc/PID/wchan`, the kernel
  function a sleeping process waits in.

And one way to kill processes and wait until they are gone. Reading needs no privileges;
signalling another user's process needs root.
"""

from __future__ import annotations

import math
import os
import re
import select
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

_ESCAPE = re.compile(r"\\([0-7]{3})")
_STATE, _START_TIME = 0, 19  # fields 3 and 22 of stat(5), counted after the command name
_PARENT = 1  # field 4 of stat(5), the parent's PID
SIGTIMEDWAIT = "do_sigtimedwait"  # where a process waits in sigtimedwait (the kernel may add a suffix: .isra.0)
ZOMBIE = "Z"  # the state of a process that has ended and waits for its parent to collect it


@dataclass(frozen=True)
class Mount:
    """One line of mountinfo: which part (`root`) of which filesystem is mounted where (`point`), and how."""

    mount_id: int
    parent_id: int
    root: str
    point: str
    options: str
    fstype: str
    source: str
    super_options: str


def unescape(field: str) -> str:
    """Undo mountinfo's octal escapes: `\\040` is a space, `\\011` a tab, `\\012` a newline, `\\134` a backslash."""
    return _ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of a mountinfo text, in its order (parents before children)."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        tail = fields.index("-", 6)  # optional fields (shared:N, master:N) end at the lone "-"
        fstype, source, super_options = fields[tail + 1:tail + 4]
        mounts.append(Mount(int(fields[0]), int(fields[1]), unescape(fields[3]), unescape(fields[4]), fields[5],
                            fstype, unescape(source), super_options))
    return mounts


def mounts(pid: int | str = "self") -> list[Mount]:
    """The mounts that process `pid` sees (its mount namespace), from /proc/PID/mountinfo."""
    return parse_mountinfo(Path(f"/proc/{pid}/mountinfo").read_text())


def mount_points(pid: int | str = "self") -> list[str]:
    """Where something is mounted in process `pid`'s mount namespace, in mountinfo's order."""
    return [mount.point for mount in mounts(pid)]


def is_mountpoint(target: str | os.PathLike) -> bool:
    """True if something is mounted exactly at `target` (symlinks resolved) in this mount namespace."""
    return str(Path(target).resolve()) in mount_points()


def parse_cgroup(text: str) -> dict[frozenset[str], str]:
    """{controllers of a hierarchy: the cgroup path in it} of a /proc/PID/cgroup text; frozenset() keys v2's line."""
    paths = {}
    for line in text.splitlines():
        _, controllers, path = line.split(":", 2)
        paths[frozenset(controllers.split(",")) if controllers else frozenset()] = path
    return paths


def cgroup_paths(pid: int | str = "self") -> dict[frozenset[str], str]:
    """Process `pid`'s cgroup in each hierarchy, from /proc/PID/cgroup (see `parse_cgroup`)."""
    return parse_cgroup(Path(f"/proc/{pid}/cgroup").read_text())


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone before the open, or between the open and the read
        return None
    return text.rpartition(")")[2].split()


def start_time(pid: int) -> int:
    """When process `pid` started, in clock ticks since boot (-1 once it is gone): with the PID it names one process."""
    fields = _stat(pid)
    return -1 if fields is None else int(fields[_START_TIME])


def identity(pid: int) -> list[int]:
    """[PID, start time] of a live process, as records keep it: it names that process and no later one."""
    return [pid, start_time(pid)]


def running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie (dead, waiting only for its parent to collect it)."""
    fields = _stat(pid)
    return fields is not None and fields[_STATE] != ZOMBIE


def settled_for(pid: int, signum: int) -> bool:
    """Whether a PID namespace's init `pid` would take `signum` now (True once `pid` is gone: nothing to wait for).

    The kernel drops a signal sent to such an init that neither catches, blocks nor ignores it,
    as every init does right after exec, before it sets up its signals. An init that waits for
    its signals in sigtimedwait (busybox init) shows them in none of those sets meanwhile, so
    where it waits (`/proc/PID/wchan`) counts too.
    """
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        waits_in = Path(f"/proc/{pid}/wchan").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    masks = [int(value, 16) for key, _, value in (line.partition(":\t") for line in lines)
             if key in ("SigBlk", "SigIgn", "SigCgt")]
    return any(mask >> (signum - 1) & 1 for mask in masks) or waits_in.startswith(SIGTIMEDWAIT)


def has_execed(pid: int) -> bool:
    """Whether `pid` runs another program than its parent (a forked child that has not exec'ed yet runs the same).

    True once either is gone: nothing to wait for."""
    try:
        own, parents = os.stat(f"/proc/{pid}/exe"), os.stat(f"/proc/{parent_pid(pid)}/exe")
    except OSError:
        return True
    return (own.st_dev, own.st_ino) != (parents.st_dev, parents.st_ino)


def parent_pid(pid: int) -> int:
    """The PID of process `pid`'s parent (-1 once `pid` is gone)."""
    fields = _stat(pid)
    return -1 if fields is None else int(fields[_PARENT])


def open_parent(pid: int) -> tuple[int, int] | None:
    """(PID, pidfd) of the parent of process `pid`, pinned while `pid` was still its child; None if either has gone.

    The pidfd names that one process for good, whatever later reuses its PID: the parent is
    looked up, opened, then checked to be `pid`'s parent still (a child whose parent dies is
    given another at once).
    """
    before = _stat(pid)
    parent = -1 if before is None else int(before[_PARENT])
    if parent <= 0:
        return None
    try:
        pidfd = os.pidfd_open(parent)
    except ProcessLookupError:
        return None
    after = _stat(pid)  # the same process (start time), with the same parent
    if after is None or (after[_PARENT], after[_START_TIME]) != (before[_PARENT], before[_START_TIME]):
        os.close(pidfd)
        return None
    return parent, pidfd


def pidfd_exited(pidfd: int, timeout: float) -> bool:
    """Whether the process behind `pidfd` ends within `timeout` seconds (0: has it ended?); the kernel wakes the wait."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)  # readable once the process has exited
    return bool(poller.poll(math.ceil(max(timeout, 0) * 1000)))


def is_alive(recorded: list[int] | None) -> bool:
    """True if the process recorded as [PID, start time] (`identity`) still runs; a zombie counts as ended."""
    if not recorded:
        return False
    fields = _stat(recorded[0])
    return fields is not None and int(fields[_START_TIME]) == recorded[1] and fields[_STATE] != ZOMBIE


def send(pids: Iterable[int], signum: int = signal.SIGKILL) -> None:
    """Send `signum` (SIGKILL) to each of `pids`, skipping any that has just gone away."""
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def wait_gone(find: Callable[[], Iterable[int]], timeout: float, kill: bool = False) -> list[int]:
    """Wait until `find` names no process, SIGKILLing what it names when `kill`; what it still names at the deadline.

    `find` is asked again each round (every 10 ms), so processes forked meanwhile are
    seen too; an empty list means every one went within `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    while pids := sorted(find()):
        if time.monotonic() > deadline:
            return pids
        if kill:
            send(pids)
        time.sleep(0.01)
    return []


def kill_and_wait(find: Callable[[], Iterable[int]], timeout: float = 5.0) -> list[int]:
    """SIGKILL the processes `find` names until it names none; those it still names after `timeout` s ([] if none)."""
    return wait_gone(find, timeout, kill=True)
