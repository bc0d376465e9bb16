"""Running a command inside a running LXC container through python-lxc's attach_wait.

attach_wait forks a child that enters the container's namespaces and cgroups and
execs the command, then waits for it and returns its raw wait status. Output goes to
files in memory (memfd_create: no path, no disk, gone with their last descriptor), never
pipes: a pipe holds 64 KiB, and a command that fills it blocks forever because nobody
reads the pipe until attach_wait returns.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from ..chroot import ExitStatus
from ..errors import LxcError
from ._binding import pylxc


@dataclass(frozen=True)
class ExecResult:
    """ExecResult is what a command run in a container left: its exit code, stdout and stderr.

    exit_code is as a shell reports it, as everywhere in lxclab: the command's exit status, or
    128 + N when signal N killed it (an OOM kill is 137).
    """

    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """Whether the command exited with status 0."""
        return self.exit_code == 0


def _attach_options(env: Mapping[str, str] | None, cwd: str | None) -> dict[str, Any]:
    """attach_wait options: a clean environment (the container's lxc.environment plus `env`) and `cwd`."""
    options: dict[str, Any] = {"env_policy": pylxc().LXC_ATTACH_CLEAR_ENV}
    if env:
        options["extra_env_vars"] = [f"{key}={value}" for key, value in env.items()]
    if cwd:
        options["initial_cwd"] = cwd
    return options


def _wait_status(name: str, argv: Sequence[str], status: int) -> ExitStatus:
    """How the command ended, from attach_wait's raw wait status; a negative status means LXC could not attach."""
    if status < 0:
        raise LxcError(f"LXC could not attach to container {name!r} to run {list(argv)!r} "
                       f"({os.strerror(-status)}): is it still running?")
    return ExitStatus.from_wait_status(status)


def run_captured(container: Any, argv: Sequence[str], env: Mapping[str, str] | None = None,
                 cwd: str | None = None, stdin: bytes | None = None) -> ExecResult:
    """Run `argv` in the running python-lxc `container` and capture its output, of any size.

    Like a file on tmpfs, the output's pages count against the memory limit of the
    container whose command writes them, until the call returns.
    """
    with _memory_file("stdout") as out, _memory_file("stderr") as err, _stdin_file(stdin) as inp:
        status = container.attach_wait(pylxc().attach_run_command, list(argv), stdin=inp, stdout=out,
                                       stderr=err, **_attach_options(env, cwd))
        ended = _wait_status(container.name, argv, status)
        return ExecResult(ended.exit_code, _read_text(out), _read_text(err))


def run_interactive(container: Any, argv: Sequence[str], env: Mapping[str, str] | None = None,
                    cwd: str | None = None, stdio: Sequence[int | None] = (None, None, None)) -> ExitStatus:
    """Run `argv` in the running python-lxc `container` on the caller's stdio, or on the descriptors in `stdio`."""
    given = {name: fd for name, fd in zip(("stdin", "stdout", "stderr"), stdio) if fd is not None}
    status = container.attach_wait(pylxc().attach_run_command, list(argv), **given, **_attach_options(env, cwd))
    return _wait_status(container.name, argv, status)


def _memory_file(name: str) -> IO[bytes]:
    """A new, empty file in memory (memfd_create), open for reading and writing; `name` shows in /proc/PID/fd."""
    return open(os.memfd_create(f"lxclab-{name}", os.MFD_CLOEXEC), "w+b")


def _stdin_file(data: bytes | None) -> IO[bytes]:
    """A file to feed the command: `data` in a file in memory, or /dev/null."""
    if data is None:
        return open(os.devnull, "rb")
    feed = _memory_file("stdin")
    feed.write(data)
    feed.seek(0)
    return feed


def _read_text(file: IO[bytes]) -> str:
    """All an output file holds, decoded as UTF-8 (undecodable bytes replaced)."""
    file.seek(0)
    return file.read().decode("utf-8", errors="replace")
