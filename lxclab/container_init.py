"""What a container's first process does in its new namespaces before it becomes the command.

It runs in the second forked child of namespaces.spawn, after the parent has put it into
its cgroup: leave the caller's session (setsid: the caller's terminal is no longer its
controlling terminal, so TIOCSTI cannot type into it), unshare the remaining namespaces,
with --userns become the range's root (a host id such as 100000, see `IdMap`),
make the root nodev, mount /proc, a fresh /dev and /sys into it with the profile's masked
and read-only paths, pivot_root into it, set the host name, bring lo up, restrict the
process (bounding set, no_new_privs, seccomp), switch to the image's user, settle its
capabilities and exec. Nothing here may run in the calling process.
"""

from __future__ import annotations

import fcntl
import os
import signal
import termios
from dataclasses import dataclass, field
from pathlib import Path

from . import _linux
from .chroot import bind_root, pivot_into, private_mount_namespace
from .errors import CommandNotFound, KernelError, SpawnError
from .security import DEV_NODES, Profile, capabilities, lockdown

__all__ = ["BARE", "DEFAULT_NAMESPACES", "DEV_NODES", "IdMap", "KINDS", "Mount", "Plan", "namespace_flags",
           "report_error", "resolve_user", "run_first_process"]

KINDS = frozenset(_linux.NAMESPACE_FLAGS)  # mnt uts ipc net pid user cgroup
DEFAULT_NAMESPACES = KINDS - {"user"}  # rootless mode adds "user"
# The mounts of a bare spawn (no profile: lesson 06's namespaces one at a time): no masks,
# /sys read-only, devices as the image has them; the process keeps all it has.
BARE = Profile(capabilities=capabilities.ALL, no_new_privs=False, seccomp=False, masked_paths=(),
               readonly_paths=(), nodev=False)


@dataclass(frozen=True)
class IdMap:
    """A user namespace's maps for `--userns`: ids 0..size-1 inside are host ids from uid (gid) onwards."""

    uid: int
    gid: int
    size: int = 65536

    def lines(self) -> tuple[str, str]:
        """The texts to write to uid_map and gid_map."""
        return f"0 {self.uid} {self.size}", f"0 {self.gid} {self.size}"


@dataclass(frozen=True)
class Mount:
    """A mount made in the container's own mount namespace before its root is set up, gone when it ends.

    Give the image's overlay this way (target = the rootfs) and a crash can never leak it.
    `idmapped` makes it a bind of `source` whose owners are shifted into the container's
    --userns range (an image layer that stays owned by host root on disk).
    """

    source: str
    target: str
    fstype: str | None = None
    flags: int = 0
    data: str | None = None
    idmapped: bool = False

    def make(self, userns_fd: int | None = None) -> None:
        """Mount it here, now; an idmapped bind needs the fd of the user namespace whose maps it takes."""
        if self.idmapped:
            _linux.bind_idmapped(self.source, self.target, userns_fd)
        else:
            _linux.mount(self.source, self.target, self.fstype, self.flags, self.data)


@dataclass(frozen=True)
class Plan:
    """Everything the child processes need, prepared in the parent before fork."""

    argv: list[str]
    rootfs: str | None = None  # None when joining a running container (`enter`)
    namespaces: frozenset[str] = DEFAULT_NAMESPACES
    hostname: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "/"
    user: str | None = None
    netns_path: str | None = None
    join_pid: int | None = None
    outer_ids: tuple[int, int] = (0, 0)
    stdio: tuple[int | None, int | None, int | None] = (None, None, None)
    status_file: str | None = None
    mounts: tuple[Mount, ...] = ()
    profile: Profile | None = None  # None: a bare spawn, no restriction
    seccomp_filter: bytes | None = None  # the profile's filter, built before fork (lockdown.seccomp_filter)
    idmap: IdMap | None = None  # --userns: root inside is a host id of this range, not host root


def namespace_flags(kinds: set[str] | frozenset[str]) -> int:
    """The CLONE_NEW* flags of a set of namespace kinds."""
    flags = 0
    for kind in kinds:
        flags |= _linux.NAMESPACE_FLAGS[kind]
    return flags


def run_first_process(plan: Plan, go_r: int, error_w: int) -> None:
    """Wait for the parent's go, build the container's view of the world, and exec the command."""
    try:
        released = os.read(go_r, 2) == b"go"
        os.close(go_r)
        if not released:
            os._exit(1)  # the parent gave up (a cgroup it could not join); it reports why
        os.setsid()
        _attach_stdio(plan.stdio)
        _take_terminal()
        if plan.join_pid is None:
            _build_world(plan)
        _become_user_and_exec(plan)
    except BaseException as exc:  # noqa: BLE001
        report_error(error_w, exc)
    os._exit(127)


def _attach_stdio(stdio: tuple[int | None, int | None, int | None]) -> None:
    """Put the given descriptors on 0, 1 and 2."""
    for target, fd in enumerate(stdio):
        if fd is not None and fd != target:
            os.dup2(fd, target)


def _take_terminal() -> None:
    """Make a terminal on stdin (a pty of the container's own, `-t`) this new session's controlling terminal.

    The kernel refuses one that is already another session's (the caller's own terminal):
    that is left as it is, and the container stays without a controlling terminal."""
    if os.isatty(0):
        try:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        except OSError:
            pass


def _build_world(plan: Plan) -> None:
    """Unshare the remaining namespaces, set up the root (pivot_root or chroot), the host name and lo."""
    _linux.unshare(namespace_flags(plan.namespaces & {"uts", "ipc", "net", "cgroup"}))
    if "mnt" in plan.namespaces:
        private_mount_namespace()
        if plan.idmap is None:  # with --userns the waiter made them, as host root (namespaces._remap)
            for mount in plan.mounts:
                mount.make()
        bind_root(plan.rootfs)
        os.chdir(plan.rootfs)  # from here on "." is the root: a --userns root may not walk the host's 0700 dirs
        if plan.idmap is not None:
            become_mapped_root()
        profile = plan.profile or BARE
        if profile.nodev:
            lockdown.mount_root_nodev(".")
        _mount_pseudo_filesystems(".", profile, sysfs="net" in plan.namespaces or "user" not in plan.namespaces)
        pivot_into(".")
    else:
        os.chroot(plan.rootfs)
        os.chdir("/")
    if "uts" in plan.namespaces and plan.hostname:
        _linux.sethostname(plan.hostname)
    if "net" in plan.namespaces:
        _linux.set_link_up("lo")


def become_mapped_root() -> None:
    """Take uid and gid 0 of the --userns namespace (host ids of its range) with no supplementary groups.

    Until then the process is host root seen from inside (an unmapped id): files it made on
    the container's own tmpfs or devpts would have no owner there, and the kernel refuses that.
    """
    os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def _mount_pseudo_filesystems(rootfs: str, profile: Profile, sysfs: bool) -> None:
    """Mount /proc, a fresh /dev and (if `sysfs`: not in a user namespace without a network namespace) /sys
    inside `rootfs`, then cover the profile's masked and read-only paths."""
    lockdown.mount_proc(rootfs)
    lockdown.mount_dev(rootfs, profile)
    if sysfs:
        lockdown.mount_sys(rootfs, profile)
    lockdown.cover(rootfs, profile)


def _become_user_and_exec(plan: Plan) -> None:
    """Switch to the image's user, go to the working directory and exec the command."""
    uid, gid, groups = resolve_user(plan.user, _read_text("/etc/passwd"), _read_text("/etc/group"))
    os.makedirs(plan.cwd, exist_ok=True)
    os.chdir(plan.cwd)
    if plan.profile is not None:
        lockdown.restrict(plan.profile, plan.seccomp_filter)
    if _read_text("/proc/self/setgroups").strip() != "deny":  # denied in our user namespaces
        os.setgroups(groups)
    os.setgid(gid)
    os.setuid(uid)
    if plan.profile is not None:
        lockdown.settle_capabilities(plan.profile)
    for signum in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(signum, signal.SIG_DFL)  # Python ignores these; the command must not inherit that
    try:
        os.execvpe(plan.argv[0], plan.argv, plan.env)
    except FileNotFoundError:
        raise CommandNotFound(f"command {plan.argv[0]!r} not found in the image (PATH={plan.env.get('PATH')}); "
                              "check the image's Cmd/Entrypoint or give the full path") from None


def _read_text(path: str) -> str:
    """A file's text, or '' if it is missing."""
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        return ""


def report_error(error_w: int, exc: BaseException) -> None:
    """Send an error to the parent as 'ClassName:message'."""
    name = type(exc).__name__ if isinstance(exc, (CommandNotFound, KernelError)) else "SpawnError"
    try:
        os.write(error_w, f"{name}:{exc}".encode())
    except OSError:
        pass


def resolve_user(spec: str | None, passwd: str, group: str) -> tuple[int, int, list[int]]:
    """(uid, gid, supplementary gids) for Docker's "user[:group]" given /etc/passwd and /etc/group text.

    Names and numbers both work; a number missing from /etc/passwd is fine, a name is not.
    """
    user_part, _, group_part = (spec or "0").partition(":")
    users = {f[0]: f for f in (line.split(":") for line in passwd.splitlines()) if len(f) >= 4}
    groups = [f for f in (line.split(":") for line in group.splitlines()) if len(f) >= 4]
    by_uid = {f[2]: f for f in users.values()}
    entry = users.get(user_part) or by_uid.get(user_part)
    if entry is None and not user_part.isdigit():
        raise SpawnError(f"user {user_part!r} is not in the image's /etc/passwd; give a number or add the user")
    uid = int(entry[2]) if entry else int(user_part)
    gid = int(entry[3]) if entry else 0
    if group_part:
        match = [f for f in groups if group_part in (f[0], f[2])]
        if not match and not group_part.isdigit():
            raise SpawnError(f"group {group_part!r} is not in the image's /etc/group; give a number or add it")
        gid = int(match[0][2]) if match else int(group_part)
    name = entry[0] if entry else None
    extra = sorted({int(f[2]) for f in groups if name and name in f[3].split(",")} - {gid})
    return uid, gid, extra
