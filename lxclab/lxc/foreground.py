"""Running a container in the foreground: init gets the caller's stdio, and its exit status comes back.

python-lxc's `start(daemonize=False)` blocks until the container stops, and answers only
True or False: liblxc 5.0 keeps how init ended to itself (`error_num`, which the binding
does not expose) except in its log. There, start.c writes the NOTICE line
`Started "CMD" with pid "PID"` once init runs, and error.c the INFO line
`Child <PID> ended on error (N)` or `ended on signal NAME(N)` when it ends other than
with status 0. So a foreground run forks a starter process (which becomes the container's
monitor, and takes liblxc's move into the monitor cgroup), sets the log level to INFO and
the console to none in the starter's copy of the config (init then inherits the starter's
stdin, stdout and stderr, with no pty between), and reads those lines back.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..chroot import ExitStatus
from ..errors import CommandNotFound, LxcError
from .hierarchies import join

STARTED = re.compile(r'Started "[^"]*" with pid "(\d+)"')
ENDED = re.compile(r"Child <(\d+)> ended on (?:error \((\d+)\)|signal [^(]*\((\d+)\))")
EXEC_FAILED = re.compile(r' - ([^-]+?) - Failed to exec "([^"]*)"')
POLL_INTERVAL = 0.005


@dataclass(frozen=True)
class RunLog:
    """What a foreground run's part of the LXC log says: init's PID once it ran, how it ended, an exec failure."""

    init_pid: int | None = None
    status: ExitStatus | None = None
    exec_failure: str | None = None


def read_run_log(text: str) -> RunLog:
    """Read init's PID, exit status (no 'ended' line: status 0) and any exec failure from one run's log lines."""
    started = STARTED.search(text)
    failed = EXEC_FAILED.search(text)
    failure = f"{failed.group(2)!r}: {failed.group(1).strip()}" if failed else None
    if started is None:
        return RunLog(exec_failure=failure)
    pid = int(started.group(1))
    for ended in ENDED.finditer(text):
        if int(ended.group(1)) == pid:
            code, signum = ended.group(2), ended.group(3)
            status = ExitStatus(signal=int(signum)) if signum else ExitStatus(code=int(code))
            return RunLog(pid, status, failure)
    return RunLog(pid, None, failure)


class Init:
    """A container started in the foreground: its monitor (the starter process), its init, and how init ended."""

    def __init__(self, name: str, monitor_pid: int, log_file: Path, offset: int) -> None:
        self.name = name
        self.monitor_pid = monitor_pid
        self._log_file, self._offset = log_file, offset
        self._monitor_status: int | None = None
        self.init_pid: int | None = None
        self.status: ExitStatus | None = None

    def __repr__(self) -> str:
        return f"<Init of {self.name!r} pid={self.init_pid} {self.status or 'running'}>"

    def _log(self) -> RunLog:
        """This run's part of the container's LXC log, read."""
        try:
            with open(self._log_file, "rb") as log:
                log.seek(self._offset)
                return read_run_log(log.read().decode(errors="replace"))
        except FileNotFoundError:
            return RunLog()

    def _monitor_exited(self) -> bool:
        """Whether the starter has ended (reaping it once)."""
        if self._monitor_status is None:
            pid, status = os.waitpid(self.monitor_pid, os.WNOHANG)
            if pid:
                self._monitor_status = status
        return self._monitor_status is not None

    def ready(self) -> None:
        """Wait until init runs (or already ended); raise CommandNotFound or LxcError if it never started."""
        while not self._monitor_exited():
            self.init_pid = self._log().init_pid
            if self.init_pid is not None:
                return
            time.sleep(POLL_INTERVAL)
        self._finish()

    def wait(self, timeout: float | None = None) -> ExitStatus | None:
        """How init ended, once the container has stopped; None if `timeout` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.status is None:
            if self._monitor_status is None and deadline is None:
                self._monitor_status = os.waitpid(self.monitor_pid, 0)[1]
            if self._monitor_exited():
                self._finish()
            elif time.monotonic() >= deadline:
                return None
            else:
                time.sleep(POLL_INTERVAL)
        return self.status

    def _finish(self) -> None:
        """Turn the ended starter and the log into init's exit status, or the reason it never ran."""
        log = self._log()
        self.init_pid = self.init_pid or log.init_pid
        if log.init_pid is None:
            if log.exec_failure:
                raise CommandNotFound(f"LXC could not run the command of container {self.name!r}: "
                                      f"{log.exec_failure} (check the command and the image's PATH)")
            raise LxcError(f"LXC could not start container {self.name!r} (its starter "
                           f"{ExitStatus.from_wait_status(self._monitor_status)}): see {self._log_file}")
        if os.WIFSIGNALED(self._monitor_status):
            raise LxcError(f"the monitor of container {self.name!r} was killed "
                           f"({ExitStatus.from_wait_status(self._monitor_status)}): how init ended is unknown")
        self.status = log.status or ExitStatus(code=0)

    def kill(self) -> None:
        """SIGKILL init (which ends every process of the container); the monitor too if init never ran."""
        if self.status is not None or self._monitor_exited():
            return
        try:
            os.kill(self.init_pid or self.monitor_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start_foreground(lxc_container: Any, argv: Sequence[str], log_file: Path,
                     stdio: tuple[int | None, int | None, int | None], cgroup: Path | None = None) -> Init:
    """Fork a starter that runs python-lxc's start(daemonize=False) with `stdio` as init's; return once init runs.

    The starter first joins `cgroup` (on v2, the container's start leaf: hierarchies.start_cgroup).
    """
    offset = log_file.stat().st_size if log_file.exists() else 0
    pid = os.fork()
    if pid == 0:  # the starter: only liblxc runs here, then _exit skips every Python cleanup
        started = False
        try:
            join(cgroup)
            _hand_over_stdio(stdio)
            lxc_container.set_config_item("lxc.console.path", "none")
            lxc_container.set_config_item("lxc.log.level", "INFO")
            started = bool(lxc_container.start(daemonize=False, close_fds=True, cmd=tuple(argv)))
        finally:
            os._exit(0 if started else 1)  # noqa: B012 - nothing may escape the child
    init = Init(lxc_container.name, pid, log_file, offset)
    init.ready()
    return init


def _hand_over_stdio(stdio: tuple[int | None, int | None, int | None]) -> None:
    """Make the given descriptors this process's 0, 1 and 2 (None: /dev/null for stdin, kept for the others)."""
    stdin, stdout, stderr = stdio
    if stdin is None:
        stdin = os.open(os.devnull, os.O_RDONLY)
    for target, fd in enumerate((stdin, stdout, stderr)):
        if fd is not None and fd != target:
            os.dup2(fd, target)
