"""Namespaces: run a command as PID 1 of its own world of processes, mounts, host name and network.

`spawn` forks a small waiter process that enters new user/PID namespaces (or joins a
network namespace) and forks the container's first process; that process unshares the
mount, UTS, IPC, network and cgroup namespaces, mounts /proc, a minimal /dev and /sys
into the root, pivots into it and execs the command. The waiter passes the exit status
back. The calling process itself never changes namespaces, mounts or cgroups.

Two kinds of user namespace: rootless mode maps the caller alone to root (the only map an
unprivileged process may write); `--userns` (root only, Docker's userns-remap) maps ids
0..65535 to the subordinate range of user `lxclab-remap` in /etc/subuid and /etc/subgid.
For the latter the waiter, still host root, makes the namespace in a helper child, writes
its maps, mounts the container's root in a private mount namespace (image layers as
idmapped binds, so that host root's files show as the range's root) and only then joins it.
"""

from __future__ import annotations

import os
import select
import signal
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from . import _linux, procfs
from . import validation
from .chroot import DEFAULT_PATH, Completed, ExitStatus, private_mount_namespace
from .container_init import (DEFAULT_NAMESPACES, KINDS, IdMap, Mount, Plan, namespace_flags, report_error,
                             run_first_process)
from .errors import CommandNotFound, KernelError, SpawnError
from .security import lockdown

if TYPE_CHECKING:
    from .cgroups import Cgroup
    from .security import Profile

_JOIN_ORDER = ("user", "ipc", "uts", "net", "pid", "cgroup", "mnt")  # mnt last: it moves the root
REMAP_USER = "lxclab-remap"  # whose /etc/subuid and /etc/subgid ranges --userns uses (Docker's dockremap)
SUBUID, SUBGID = Path("/etc/subuid"), Path("/etc/subgid")


class Process:
    """A running container process: its host PID, and a way to wait for its exit status."""

    def __init__(self, pid: int, waiter_pid: int, status_fd: int):
        self.pid = pid  # the host's PID of the container's first process (PID 1 inside)
        self.waiter_pid = waiter_pid
        self._status_fd = status_fd
        self.status: ExitStatus | None = None

    def wait(self, timeout: float | None = None) -> ExitStatus | None:
        """The exit status once the process has ended; None if `timeout` seconds pass first."""
        if self.status is None:
            if timeout is not None and not select.select([self._status_fd], [], [], timeout)[0]:
                return None
            line = _read_line(self._status_fd)
            os.close(self._status_fd)
            os.waitpid(self.waiter_pid, 0)
            if not line:
                raise SpawnError(f"the waiter of container process {self.pid} died without reporting its status")
            self.status = ExitStatus.from_wait_status(int(line))
        return self.status

    def poll(self) -> ExitStatus | None:
        """The exit status if the process has ended, else None, without blocking."""
        return self.wait(timeout=0)

    def kill(self, signum: int = signal.SIGKILL) -> None:
        """Send a signal; SIGKILL to PID 1 ends every process of its PID namespace."""
        if self.status is None:
            procfs.send([self.pid], signum)

    def identity(self) -> list[int]:
        """[PID, start time] of the container process, for a Footprint record; its waiter ends with it."""
        return procfs.identity(self.pid)

    def namespace_ids(self) -> dict[str, str]:
        """The namespaces the process is in, like {'pid': 'pid:[4026532301]'}, while it runs."""
        return {kind: os.readlink(f"/proc/{self.pid}/ns/{kind}") for kind in sorted(KINDS)}

    def __repr__(self) -> str:
        return f"<Process pid={self.pid} {self.status or 'running'}>"


def spawn(rootfs: str | os.PathLike, argv: list[str], namespaces: set[str] | frozenset[str] | None = None,
          hostname: str | None = None, env: dict[str, str] | None = None, cwd: str = "/",
          user: str | None = None, cgroup: Cgroup | None = None, netns: str | None = None, rootless: bool | None = None,
          stdin: int | None = None, stdout: int | None = None, stderr: int | None = None,
          status_file: str | None = None, mounts: list[Mount] | tuple[Mount, ...] = (),
          profile: Profile | None = None, userns: IdMap | None = None) -> Process:
    """Run `argv` in `rootfs` inside new namespaces and return once it has been exec'd.

    `namespaces` names the kinds to create (default all but user); "mnt" pivots into the
    root and mounts /proc, /dev and /sys, without it the root is only chroot'ed. `netns`
    is a network namespace file to join instead of a new one; `cgroup` receives the first
    process before it runs anything. Root is needed, or `rootless` (default for non-root
    users), which adds a user namespace mapping the caller to root inside. `user` is
    Docker's "uid[:gid]" or "name[:group]"; stdio are file descriptors to hand over;
    the waiter also writes the raw wait status to `status_file` if given. `mounts` are
    made inside the container's mount namespace first (like its overlay root) and vanish
    with it. `profile` (lxclab.security) locks the process down as runc does; without
    one the process keeps every capability of its namespaces (lesson 06's bare containers).
    `userns` (root only, `remap_range()`) puts it in a user namespace whose root is that
    range's first id on the host; `mounts` are then made by host root before it joins.
    """
    kinds = frozenset(DEFAULT_NAMESPACES if namespaces is None else namespaces)
    rootless = os.geteuid() != 0 if rootless is None else rootless
    _check_namespace_request(kinds, rootless, netns, bool(mounts), userns)
    user_namespace = {"user"} if rootless or userns else set()
    plan = Plan(argv=list(argv), rootfs=os.path.abspath(rootfs), namespaces=kinds | user_namespace,
                hostname=hostname, env={"PATH": DEFAULT_PATH, **(env or {})}, cwd=cwd, user=user,
                netns_path=netns, outer_ids=(os.geteuid(), os.getegid()), stdio=(stdin, stdout, stderr),
                status_file=status_file, mounts=tuple(mounts), profile=profile,
                seccomp_filter=lockdown.seccomp_filter(profile), idmap=userns)
    return _start(plan, cgroup)


def run(rootfs: str | os.PathLike, argv: list[str], timeout: float | None = None, **options) -> Completed:
    """spawn(rootfs, argv, **options), wait, and return the status with stdout and stderr together.

    Output goes through a temporary file, never a pipe that could fill up while nobody reads
    it. After `timeout` seconds the container is killed (and reported killed by SIGKILL).
    """
    with tempfile.TemporaryFile() as output:
        process = spawn(rootfs, argv, stdout=output.fileno(), stderr=output.fileno(), **options)
        if process.wait(timeout) is None:
            process.kill()
        status = process.wait()
        output.seek(0)
        return Completed(status, output.read().decode(errors="replace"))


def enter(pid: int, argv: list[str], env: dict[str, str] | None = None, cwd: str = "/", user: str | None = None,
          cgroup: Cgroup | None = None, stdin: int | None = None, stdout: int | None = None,
          stderr: int | None = None, profile: Profile | None = None) -> Process:
    """Run `argv` inside every namespace of running process `pid` (what `docker exec` does); needs root.

    setns joins a PID namespace only for children, so a waiter joins and forks the command;
    give the container's `profile` so that the command is as restricted as its PID 1.
    """
    plan = Plan(argv=list(argv), env={"PATH": DEFAULT_PATH, **(env or {})}, cwd=cwd, user=user,
                join_pid=pid, stdio=(stdin, stdout, stderr), profile=profile,
                seccomp_filter=lockdown.seccomp_filter(profile))
    return _start(plan, cgroup)


def remap_range(user: str = REMAP_USER) -> IdMap:
    """The --userns maps: 65536 ids from `user`'s ranges in /etc/subuid and /etc/subgid (made by ./kit setup)."""
    starts = []
    for path in (SUBUID, SUBGID):
        try:
            text = path.read_text()
        except FileNotFoundError:
            text = ""
        starts.append(validation.subordinate_start(text, user, IdMap.size, str(path)))
    return IdMap(*starts)


def _check_namespace_request(kinds: frozenset[str], rootless: bool, netns: str | None, mounts: bool,
                             userns: IdMap | None) -> None:
    """Refuse namespace combinations that cannot work, before anything is forked."""
    if userns and (rootless or os.geteuid() != 0):
        raise SpawnError("--userns maps a range of host ids, which only root may do; rootless mode already "
                         "runs in a user namespace of the caller's own")
    if userns and "mnt" not in kinds:
        raise SpawnError("--userns needs a mount namespace ('mnt'): the root is mounted before the user "
                         "namespace is joined")
    unknown = kinds - KINDS
    if unknown:
        raise SpawnError(f"unknown namespace kinds {sorted(unknown)}: choose from {sorted(KINDS)}")
    if netns and "net" in kinds:
        raise SpawnError("give either a new network namespace ('net' in namespaces) or netns=PATH to join, not both")
    if rootless and netns:
        raise SpawnError("a rootless container cannot join a network namespace made by root; use 'net' (only lo)")
    if rootless and "mnt" not in kinds:
        raise SpawnError("rootless mode needs a mount namespace: chroot alone needs root")
    if mounts and "mnt" not in kinds:
        raise SpawnError("extra mounts need a mount namespace ('mnt'): they would land on the host otherwise")


def _start(plan: Plan, cgroup: Cgroup | None) -> Process:
    """Fork the waiter, put the first process into its cgroup, let it go on and check that it exec'd."""
    status_r, status_w = os.pipe()
    go_r, go_w = os.pipe()
    error_r, error_w = os.pipe()
    waiter = os.fork()
    if waiter == 0:
        for fd in (status_r, go_w, error_r):
            os.close(fd)
        _waiter_main(plan, status_w, go_r, error_w)
    for fd in (status_w, go_r, error_w):
        os.close(fd)
    pid = _read_line(status_r)
    try:
        if pid and cgroup is not None:
            cgroup.add(int(pid))
        if pid:
            os.write(go_w, b"go")
    except BaseException:
        _abandon(waiter, go_w, error_r, status_r)
        raise
    os.close(go_w)
    error = _read_all(error_r)
    if error or not pid:
        _reap(waiter, status_r)
        raise _error_from_child(error or b"SpawnError:the waiter died before starting the command")
    return Process(int(pid), waiter, status_r)


def _abandon(waiter: int, go_w: int, error_r: int, status_r: int) -> None:
    """Give up a start: without "go" the first process exits before it does anything; collect all."""
    os.close(go_w)
    _read_all(error_r)
    _reap(waiter, status_r)


def _reap(waiter: int, status_r: int) -> None:
    """Collect a failed start's waiter and close its pipe."""
    _read_line(status_r)
    os.close(status_r)
    os.waitpid(waiter, 0)


def _error_from_child(message: bytes) -> Exception:
    """Rebuild the error a child reported as 'ClassName:message'."""
    name, _, text = message.decode(errors="replace").partition(":")
    return {"CommandNotFound": CommandNotFound, "KernelError": KernelError}.get(name, SpawnError)(text)


def _read_line(fd: int) -> bytes:
    """Read one line (without its newline) from a pipe, byte by byte so nothing is over-read."""
    line = b""
    while (byte := os.read(fd, 1)) not in (b"", b"\n"):
        line += byte
    return line


def _read_all(fd: int) -> bytes:
    """Read a pipe to its end and close it."""
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


# --- in the waiter: the first fork --------------------------------------------------------
def _waiter_main(plan: Plan, status_w: int, go_r: int, error_w: int) -> None:
    """Enter user/PID namespaces (or join a container's), fork the first process, report its status."""
    try:
        _close_fds_except({status_w, go_r, error_w, *(fd for fd in plan.stdio if fd is not None)})
        if plan.join_pid is not None:
            _join_namespaces(plan.join_pid)
        else:
            _enter_waiter_namespaces(plan)
        child = os.fork()
        if child == 0:
            os.close(status_w)
            run_first_process(plan, go_r, error_w)
        for fd in {go_r, error_w, *(fd for fd in plan.stdio if fd is not None and fd > 2)}:
            os.close(fd)
        os.write(status_w, f"{child}\n".encode())
        _, status = os.waitpid(child, 0)
        if plan.status_file:
            Path(plan.status_file).write_text(f"{status}\n")
        os.write(status_w, f"{status}\n".encode())
    except BrokenPipeError:
        pass  # nobody is listening any more (a detached container): the status file has it
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent
        report_error(error_w, exc)
        os._exit(1)
    os._exit(0)


def _close_fds_except(keep: set[int]) -> None:
    """Close inherited descriptors above stderr so a long-lived waiter holds nothing of its parent's."""
    start = 3
    for fd in sorted(fd for fd in keep if fd >= 3):
        os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, os.sysconf("SC_OPEN_MAX"))


def _enter_waiter_namespaces(plan: Plan) -> None:
    """Join the network namespace if asked, then create (or, with --userns, join) the user and PID namespaces."""
    if plan.netns_path:
        fd = os.open(plan.netns_path, os.O_RDONLY | os.O_CLOEXEC)
        _linux.setns(fd, _linux.CLONE_NEWNET)
        os.close(fd)
    if plan.idmap is not None:
        _remap(plan)
    flags = namespace_flags(plan.namespaces & ({"pid"} if plan.idmap else {"user", "pid"}))
    if flags:
        _linux.unshare(flags)
    if "user" in plan.namespaces and plan.idmap is None:
        _map_caller_to_root(*plan.outer_ids)


def _remap(plan: Plan) -> None:
    """--userns: make the remapped user namespace, mount the root as host root in a private mount namespace, join it.

    The first process's own mount namespace (owned by the new user namespace) inherits these
    mounts locked: root inside can neither unmount nor change them.
    """
    userns = _remapped_user_namespace(plan.idmap)
    try:
        private_mount_namespace()
        for mount in plan.mounts:
            mount.make(userns)
        _linux.setns(userns, _linux.CLONE_NEWUSER)
    finally:
        os.close(userns)


def _remapped_user_namespace(idmap: IdMap) -> int:
    """A new user namespace with `idmap`'s maps, as an open fd: a helper child unshares, this process writes the maps.

    Host root may write any range into another process's uid_map and gid_map (newuidmap's
    job for other users); the fd keeps the namespace alive after the helper exits.
    """
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    helper = os.fork()
    if helper == 0:
        os.close(ready_r)
        os.close(done_w)
        try:
            _linux.unshare(_linux.CLONE_NEWUSER)
            os.write(ready_w, b"u")
            os.read(done_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"u":
            raise SpawnError("the helper could not create a user namespace for --userns: see "
                             "/proc/sys/user/max_user_namespaces")
        uid_line, gid_line = idmap.lines()
        Path(f"/proc/{helper}/uid_map").write_text(uid_line)
        Path(f"/proc/{helper}/gid_map").write_text(gid_line)
        return os.open(f"/proc/{helper}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(done_w)
        os.waitpid(helper, 0)


def _map_caller_to_root(uid: int, gid: int) -> None:
    """Map the caller's uid and gid to 0 in its new user namespace (the only map it may write alone).

    After a setuid the process is not dumpable and its /proc files belong to root, so set
    PR_SET_DUMPABLE first; "deny" setgroups before an unprivileged gid_map.
    """
    _linux.prctl(_linux.PR_SET_DUMPABLE, 1)
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
    Path("/proc/self/gid_map").write_text(f"0 {gid} 1")


def _join_namespaces(pid: int) -> None:
    """setns into each namespace of `pid` that differs from ours, user first and mount last."""
    fds = {kind: os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC) for kind in _JOIN_ORDER}
    for kind in _JOIN_ORDER:
        if os.stat(f"/proc/self/ns/{kind}").st_ino != os.fstat(fds[kind]).st_ino:
            _linux.setns(fds[kind], _linux.NAMESPACE_FLAGS[kind])
        os.close(fds[kind])
