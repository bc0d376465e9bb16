"""chroot, the classic escape that shows why chroot alone is not a container, then pivot_root.

`chroot` only changes where a process's path lookups start; the process keeps the host's
mounts, processes and network, and root inside can walk back out. `pivot_root` in a
mount namespace of its own replaces the root mount itself and detaches the old one, so
there is no host "/" left to walk back to. Everything here that changes roots or mounts
runs in a forked child: the calling process (a Jupyter kernel, a test) never changes.
"""

from __future__ import annotations

import os
import pickle
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import _linux
from .errors import KernelError, LxclabError

ESCAPE_DIR = ".lxclab-escape"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ExitStatus:
    """How a process ended: an exit code, or the signal that killed it."""

    code: int | None = None
    signal: int | None = None

    @classmethod
    def from_wait_status(cls, status: int) -> "ExitStatus":
        """Decode a raw wait status as returned by os.waitpid."""
        if os.WIFSIGNALED(status):
            return cls(signal=os.WTERMSIG(status))
        return cls(code=os.WEXITSTATUS(status))

    @property
    def exit_code(self) -> int:
        """The status as a shell reports it: the code, or 128 + the signal number."""
        return self.code if self.signal is None else 128 + self.signal

    def __str__(self) -> str:
        if self.signal is not None:
            return f"killed by {signal.Signals(self.signal).name}"
        return f"exited with {self.code}"


@dataclass(frozen=True)
class Completed:
    """A finished command: how it ended and what it wrote to stdout and stderr."""

    status: ExitStatus
    output: str


def in_child(function: Callable[..., Any], *args: Any) -> Any:
    """Run `function(*args)` in a forked child and return its (picklable) result or raise its error.

    Use it for anything that changes namespaces, roots or mounts, which must never happen
    to the calling process; the child is single-threaded, so it may unshare(CLONE_NEWUSER).
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _child_report(write_end, function, args)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        payload = reader.read()
    os.waitpid(pid, 0)
    if not payload:
        raise KernelError(f"the child running {function.__name__} died before reporting; see its stderr")
    ok, value = pickle.loads(payload)
    if not ok:
        raise value
    return value


def _child_report(write_end: int, function: Callable[..., Any], args: tuple) -> None:
    """In the child: run the function, send (ok, result-or-error) up the pipe, and _exit."""
    try:
        outcome = (True, function(*args))
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent
        outcome = (False, exc if isinstance(exc, LxclabError) else KernelError(f"{type(exc).__name__}: {exc}"))
    try:
        payload = pickle.dumps(outcome)
    except Exception as exc:  # noqa: BLE001
        payload = pickle.dumps((False, KernelError(f"result of the child cannot be sent back: {exc}")))
    with os.fdopen(write_end, "wb") as writer:
        writer.write(payload)
    os._exit(0)


def run_chrooted(rootfs: str | os.PathLike, argv: list[str], env: dict[str, str] | None = None) -> Completed:
    """Run `argv` with `rootfs` as its root directory and capture its output; needs CAP_SYS_CHROOT.

    Only the root directory changes: the command still sees the host's processes, mounts,
    network and host name, which is why chroot alone is not a container.
    """
    environment = {"PATH": DEFAULT_PATH, **(env or {})}
    with tempfile.TemporaryFile() as output:
        pid = os.fork()
        if pid == 0:
            _exec_chrooted(str(rootfs), argv, environment, output.fileno())
        _, status = os.waitpid(pid, 0)
        output.seek(0)
        return Completed(ExitStatus.from_wait_status(status), output.read().decode(errors="replace"))


def _exec_chrooted(rootfs: str, argv: list[str], env: dict[str, str], output_fd: int) -> None:
    """In the child: chroot, chdir to the new root, send output to `output_fd`, exec."""
    try:
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.chroot(rootfs)
        os.chdir("/")
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        os.write(2, f"lxclab: cannot run {argv[0]!r} in {rootfs}: {exc.strerror}\n".encode())
    os._exit(127)


def private_mount_namespace() -> None:
    """Move the caller into a new mount namespace whose mounts never propagate to or from the host.

    Needs CAP_SYS_ADMIN (root, or a user namespace of the caller's own).
    """
    _linux.unshare(_linux.CLONE_NEWNS)
    _linux.mount("none", "/", None, _linux.MS_REC | _linux.MS_PRIVATE)


def bind_root(rootfs: str | os.PathLike) -> None:
    """Bind-mount `rootfs` onto itself, making it the mount point that pivot_root requires.

    Call it in a private mount namespace (private_mount_namespace), before mounting /proc,
    /dev and /sys inside the root.
    """
    _linux.mount(str(rootfs), str(rootfs), None, _linux.MS_BIND | _linux.MS_REC)


def pivot_into(rootfs: str | os.PathLike) -> None:
    """Make the mount at `rootfs` the root of this mount namespace and detach the old root.

    `rootfs` must be a mount point (bind_root) in a private mount namespace.
    `pivot_root(".", ".")` stacks the old root on top of the new one, so no put_old
    directory is needed; `umount2(".", MNT_DETACH)` then lets the old root go.
    """
    os.chdir(rootfs)
    _linux.pivot_root(".", ".")
    _linux.umount(".", _linux.MNT_DETACH)
    os.chdir("/")


def escape(rootfs: str | os.PathLike, use_pivot_root: bool = False) -> list[str]:
    """Confine a child to `rootfs` (chroot, or pivot_root), try the classic escape, return what "/" then holds.

    The escape needs CAP_SYS_CHROOT: chroot into a subdirectory leaves the working directory
    outside the new root, so enough chdir("..") climbs to the real root and chroot(".")
    makes it the root again. After pivot_root there is no host root left to climb to.
    Compare the result with os.listdir("/") to see who won.
    """
    try:
        return in_child(_confine_and_escape, str(rootfs), use_pivot_root)
    finally:
        escape_dir = Path(rootfs) / ESCAPE_DIR
        if escape_dir.is_dir():
            escape_dir.rmdir()


def _confine_and_escape(rootfs: str, use_pivot_root: bool) -> list[str]:
    """In the child: get confined, then climb out the classic way and list "/"."""
    if use_pivot_root:
        private_mount_namespace()
        bind_root(rootfs)
        pivot_into(rootfs)
    else:
        os.chroot(rootfs)
        os.chdir("/")
    os.makedirs(ESCAPE_DIR, exist_ok=True)
    os.chroot(ESCAPE_DIR)  # the root moves down, the working directory stays above it
    for _ in range(64):  # ".." of the real root is the real root itself, so climbing too far is harmless
        os.chdir("..")
    os.chroot(".")
    return sorted(name for name in os.listdir("/") if name != ESCAPE_DIR)
