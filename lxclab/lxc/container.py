"""Container: one LXC container, with small documented methods in the style of go-lxc.

Each method checks its precondition first (defined, running, stopped, frozen) and
raises a named error that says which container and what to do; liblxc's own failures
become LxcError quoting the end of the container's LXC log.
"""

from __future__ import annotations

import math
import os
import re
import signal
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import paths, procfs, validation
from ..chroot import ExitStatus
from ..errors import (
    AlreadyDefined, AlreadyFrozen, AlreadyRunning, ContainerError, InvalidValue, LxcError, LxcUnavailable, NotDefined,
    NotFrozen, NotRunning, RebootFailed, ShutdownTimeout, UnknownConfigKey,
)
from ..limits import Limits
from ..manifest import ImageConfig
from ..security import Profile, lxckeys
from ._binding import liblxc_set_config_item, pylxc
from .execute import ExecResult, run_captured, run_interactive
from .foreground import Init, start_foreground
from .hierarchies import Monitor, remove_leftovers, start_cgroup
from .usage import UsageMixin
from .runfile import SECCOMP_FILE, copy_lxclab_files, read_command, write_command
from .snapshots import SnapshotsMixin
from .state import State

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
LXC_START = "lxc-start"  # LXC's tool: liblxc's start in a small process of its own


def default_lxcpath() -> Path:
    """lxclab's own LXC path, $LXCLAB_HOME/lxc, so its containers never mix with /var/lib/lxc."""
    return paths.home() / "lxc"


def rootfs_path(name: str, lxcpath: Path | str | None = None) -> Path:
    """Where a container's own rootfs belongs, <lxcpath>/<name>/rootfs; LXC snapshots only paths holding the name."""
    return Path(lxcpath or default_lxcpath()).absolute() / name / "rootfs"


def container_names(lxcpath: Path | str | None = None) -> list[str]:
    """ContainerNames lists the containers defined or running in `lxcpath`."""
    return sorted(pylxc().list_containers(config_path=str(lxcpath or default_lxcpath())))


def _base_config(rootfs: Path, hostname: str, working_dir: str, log_file: Path) -> list[tuple[str, str]]:
    """The LXC keys every lxclab container needs on LXC 5.0 (see DESIGN.md, 'LXC 5.0.2 on this host').

    lxc.mount.auto (proc and sys) comes with the security profile (lxclab.security.lxckeys).
    """
    return [
        ("lxc.rootfs.path", str(rootfs)),  # a plain path; liblxc reads 'dir:<path>' as the same (lesson 08)
        ("lxc.uts.name", hostname),
        ("lxc.net.0.type", "empty"),  # a network namespace with only loopback
        ("lxc.autodev", "1"),
        ("lxc.cgroup.relative", "1"),  # cgroups under the starter's own, not at each hierarchy's root
        ("lxc.init.cwd", working_dir),
        ("lxc.log.file", str(log_file)),
        ("lxc.log.level", "WARN"),
    ]


class Container(UsageMixin, SnapshotsMixin):
    """Container is an LXC container on a root filesystem of its own, driven through python-lxc."""

    def __init__(self, name: str, lxcpath: Path | str | None = None) -> None:
        """Open container `name` in `lxcpath` (default: default_lxcpath()); it need not be defined yet."""
        if not _NAME.fullmatch(name):
            raise ContainerError(f"invalid container name {name!r}: use letters, digits, '_', '.', '-' (at most 63)")
        self.name = name
        self.lxcpath = Path(lxcpath or default_lxcpath()).absolute()
        self._lxc = pylxc().Container(name, str(self.lxcpath))

    def __repr__(self) -> str:
        return f"<Container {self.name!r} in {self.lxcpath} {self._lxc.state}>"

    @classmethod
    def create(cls, name: str, rootfs: Path | str, *, cmd: Sequence[str] = (),
               env: Mapping[str, str] | Sequence[str] = (), working_dir: str = "/", hostname: str | None = None,
               limits: Limits | None = None, lxcpath: Path | str | None = None,
               profile: Profile | None = None) -> Container:
        """Create defines a new container on `rootfs`, which becomes its own: destroy() deletes it.

        Give it a copy or an overlay upper of its own, never an image's shared layers.
        `profile` is what its root may do (default: runc's and Docker's defaults, lxclab.security).
        """
        container = cls(name, lxcpath)
        if container.defined:
            raise AlreadyDefined(f"container {name!r} already exists in {container.lxcpath}: "
                                 "choose another name or destroy it first")
        rootfs = Path(rootfs).absolute()
        if not rootfs.is_dir():
            raise ContainerError(f"cannot create container {name!r}: its rootfs {rootfs} is not a directory")
        container.lxcpath.mkdir(parents=True, exist_ok=True)
        log_file = container.lxcpath / name / "lxc.log"
        for key, value in _base_config(rootfs, hostname or name, working_dir or "/", log_file):
            container._set_config(key, value)
        variables = [f"{k}={v}" for k, v in env.items()] if isinstance(env, Mapping) else list(env)
        if variables:
            container._set_config("lxc.environment", variables)
        container._configure_limits(limits or Limits())
        profile = profile or Profile()
        seccomp_path = container.lxcpath / name / SECCOMP_FILE
        for key, value in lxckeys.keys(profile, seccomp_path):
            container._set_config(key, value)
        container._save_config()
        seccomp_path.write_text(lxckeys.seccomp_file(profile))
        write_command(container.lxcpath / name, cmd)
        return container

    @classmethod
    def from_image(cls, name: str, rootfs: Path | str, config: ImageConfig, **options: Any) -> Container:
        """Create a container that runs like the image: Entrypoint + Cmd, Env and WorkingDir from its config."""
        return cls.create(name, rootfs, cmd=config.entrypoint + config.cmd, env=config.env,
                          working_dir=config.working_dir, **options)

    # --- what it is ------------------------------------------------------------------------
    @property
    def defined(self) -> bool:
        """Defined reports whether the container has a configuration in its lxcpath."""
        return bool(self._lxc.defined)

    @property
    def running(self) -> bool:
        """Running reports whether the container's init is alive (running or frozen)."""
        return bool(self._lxc.running)

    @property
    def state(self) -> State:
        """State is the container's state as liblxc reports it."""
        return State(self._lxc.state)

    @property
    def config_file(self) -> Path:
        """ConfigFile is the LXC configuration file of the container."""
        return Path(self._lxc.config_file_name)

    @property
    def log_file(self) -> Path:
        """LogFile is where liblxc writes this container's warnings and errors."""
        return Path(self._config("lxc.log.file"))

    @property
    def rootfs(self) -> Path:
        """Rootfs is the container's own root directory (deleted by destroy)."""
        return Path(self._config("lxc.rootfs.path"))

    @property
    def hostname(self) -> str:
        """Hostname is the name the container sees in uname (lxc.uts.name)."""
        return self._config("lxc.uts.name")

    @property
    def working_dir(self) -> str:
        """WorkingDir is where init and executed commands start (the image's WorkingDir)."""
        return self._config("lxc.init.cwd") or "/"

    @property
    def env(self) -> tuple[str, ...]:
        """Env is the container's environment as KEY=value strings (the image's Env)."""
        return self.config_item("lxc.environment")

    @property
    def command(self) -> tuple[str, ...]:
        """Command is the argv start() runs as init when given none (the image's Entrypoint + Cmd)."""
        self._must_be_defined()
        return read_command(self.lxcpath / self.name)

    # --- lifecycle -------------------------------------------------------------------------
    def start(self, argv: Sequence[str] | None = None) -> None:
        """Start starts the container with `argv` (default: its command) as init, from a short-lived child.

        liblxc's start moves its caller into LXC's monitor cgroup; the child takes that move,
        so the caller's own cgroups stay as they were. A start that fails leaves no cgroup.
        """
        argv = self._argv_to_start(argv)
        if not self._start_in_child(argv):
            remove_leftovers(self.name, self.lxcpath)
            raise LxcError(f"LXC could not start container {self.name!r} with {list(argv)!r}: {self._log_tail()}")

    def run(self, argv: Sequence[str] | None = None, stdin: int | None = None, stdout: int | None = None,
            stderr: int | None = None) -> Init:
        """Run starts the container in the foreground, its init on the given descriptors; returns once init runs.

        Init.wait() gives how init ended (its exit code or signal), which start() cannot tell.
        """
        argv = self._argv_to_start(argv)
        leaf = start_cgroup(self.name, self.lxcpath)
        return start_foreground(self._lxc, argv, self.log_file, (stdin, stdout, stderr), leaf)

    def _argv_to_start(self, argv: Sequence[str] | None) -> tuple[str, ...]:
        """The command to start (default: its own), once the container is known to be defined and stopped."""
        self._must_be_defined()
        if self.state is not State.STOPPED:
            raise AlreadyRunning(f"container {self.name!r} is already {self.state.value}: stop it before starting it")
        argv = tuple(argv or self.command)
        if not argv:
            raise ContainerError(f"container {self.name!r} has no command to run: the image has no Cmd; "
                                 "pass argv to start()")
        return argv

    def _start_in_child(self, argv: tuple[str, ...]) -> bool:
        """Start the container from a child that calls liblxc's start (which daemonizes a monitor); its success.

        On v1 the child is LXC's own `lxc-start -d`, spawned (vfork and exec): liblxc's forks
        (its intermediate child, the monitor, init) then copy a small C program, not this
        Python process, whose copies cost milliseconds each. On v2 liblxc's caller must not
        stay in the cgroup LXC enables controllers in, so a forked child instead leaves a
        foreground starter running in the container's start leaf.
        """
        leaf = start_cgroup(self.name, self.lxcpath)
        if leaf is not None:
            return self._start_detached(argv, leaf)
        command = [LXC_START, "-n", self.name, "-P", str(self.lxcpath), "-d", "--", *argv]
        quiet = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]  # errors go to its log
        try:
            pid = os.posix_spawnp(LXC_START, command, os.environ, file_actions=quiet)
        except FileNotFoundError:
            raise LxcUnavailable(f"LXC's {LXC_START} is not on PATH: install LXC's tools (Debian: the lxc package)") \
                from None
        _pid, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status) == 0

    def _start_detached(self, argv: tuple[str, ...], leaf: Path) -> bool:
        """Fork a child (a session of its own) that starts a foreground monitor in `leaf`; it exits once init runs."""
        pid = os.fork()
        if pid == 0:  # the child: its starter, orphaned when it exits, is the container's monitor
            started = False
            try:
                os.setsid()
                devnull = os.open(os.devnull, os.O_RDWR)
                start_foreground(self._lxc, argv, self.log_file, (devnull, devnull, devnull), leaf)
                started = True
            finally:
                os._exit(0 if started else 1)  # noqa: B012 - nothing may escape the child
        _pid, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status) == 0

    def stop(self, timeout: int = 10) -> None:
        """Stop kills the container's processes and waits until it is STOPPED, then removes LXC's leftover cgroups."""
        self._must_be_up("stop")
        with self._held_monitor() as monitor:
            if not self._lxc.stop() or not self._lxc.wait(State.STOPPED.value, timeout):
                raise LxcError(f"LXC could not stop container {self.name!r} within {timeout}s: {self._log_tail()}")
            self._clear_run(monitor)

    def shutdown(self, timeout: int = 10) -> None:
        """Shutdown asks init to halt (LXC's halt signal, SIGPWR) and waits up to `timeout` seconds for STOPPED.

        An init that handles the signal (busybox init) stops its processes and exits; one
        that does not (sh, sleep: PID 1 ignores signals it has no handler for) keeps running,
        and ShutdownTimeout says so; stop() kills it instead. A just-started init is given the
        time to set up its signals first, since the kernel drops one that comes before.
        """
        self._must_be_up("shut down")
        with self._held_monitor() as monitor:
            deadline = self._await_settled_init(self._lxc.init_pid, "lxc.signal.halt", signal.SIGPWR, timeout)
            if not self._lxc.shutdown(max(1, math.ceil(deadline - time.monotonic()))):  # 0 would not wait
                raise ShutdownTimeout(f"container {self.name!r} still runs {timeout}s after LXC sent its init the "
                                      "halt signal (SIGPWR unless lxc.signal.halt names another): an init like sh or "
                                      "sleep ignores it; run one that handles it (busybox init) or stop() the container")
            self._clear_run(monitor)

    def reboot(self, timeout: int = 10) -> None:
        """Reboot asks init to reboot (LXC's reboot signal, SIGINT) and waits up to `timeout` seconds for a new init.

        LXC starts the container again only when init ends through reboot(2), which needs
        CAP_SYS_BOOT: Docker's defaults drop it, so give the container
        Profile.build(cap_add=["SYS_BOOT"]) and an init that handles SIGINT (busybox init).
        As shutdown() does, it lets a just-started init set up its signals before it sends one.
        """
        self._must_be_up("reboot")
        old_init = self._lxc.init_pid
        with self._held_monitor(old_init) as monitor:
            deadline = self._await_settled_init(old_init, "lxc.signal.reboot", signal.SIGINT, timeout)
            if not self._lxc.reboot():
                raise LxcError(f"LXC could not signal the init of container {self.name!r}: {self._log_tail()}")
            while time.monotonic() < deadline:
                if self.running and self._lxc.init_pid not in (old_init, -1):
                    return
                if monitor and not self.running and not monitor.alive():
                    break  # stopped for good: a reboot keeps the monitor
                time.sleep(0.1)
            if self.running:
                raise RebootFailed(f"container {self.name!r} still runs its first init {timeout}s after LXC sent it "
                                   "the reboot signal (SIGINT unless lxc.signal.reboot names another): an init like "
                                   "sh or sleep ignores it, and busybox init needs a few seconds (it syncs and pauses); "
                                   "give it a longer timeout, or stop() and start() the container")
            self._clear_run(monitor)
        raise RebootFailed(f"container {self.name!r} stopped instead of rebooting: its init could not call "
                           "reboot(2) without CAP_SYS_BOOT; create it with profile=Profile.build(cap_add=['SYS_BOOT'])"
                           " or start() it again")

    def freeze(self) -> None:
        """Freeze freezes every process of the running container (the freezer cgroup)."""
        self._must_be_defined()
        if self.state is State.FROZEN:
            raise AlreadyFrozen(f"container {self.name!r} is already frozen: unfreeze it first")
        self._must_be_running("freeze the processes")
        if not self._lxc.freeze():
            raise LxcError(f"LXC could not freeze container {self.name!r}: {self._log_tail()}")

    def unfreeze(self) -> None:
        """Unfreeze thaws the frozen container's processes."""
        self._must_be_defined()
        if self.state is not State.FROZEN:
            raise NotFrozen(f"container {self.name!r} is {self.state.value}, not frozen: nothing to unfreeze")
        if not self._lxc.unfreeze():
            raise LxcError(f"LXC could not unfreeze container {self.name!r}: {self._log_tail()}")

    def wait(self, state: State | str, timeout: float = -1) -> bool:
        """Wait waits up to `timeout` seconds (-1: forever) for the container to reach `state`; False on timeout."""
        return bool(self._lxc.wait(State(state).value, timeout))

    def destroy(self) -> None:
        """Destroy deletes the stopped container: snapshots, config, rootfs directory, locks and leftover cgroups."""
        self._must_be_defined()
        if self.running:
            raise AlreadyRunning(f"container {self.name!r} is {self.state.value}: stop it before destroying it")
        self._destroy_snapshots()
        if not self._lxc.destroy():
            raise LxcError(f"LXC could not destroy container {self.name!r}: {self._log_tail()}")
        remove_leftovers(self.name, self.lxcpath)
        self._remove_lock_files()

    def clone(self, new_name: str, lxcpath: Path | str | None = None) -> Container:
        """Clone copies the stopped container (config, rootfs, command, profile) as stopped container `new_name`.

        The copy goes to `lxcpath` (default: this container's), its rootfs at rootfs_path(new_name),
        and keeps the original's hostname (LXC would name the host after the copy).
        """
        self._must_be_stopped("clone it")
        target = Path(lxcpath or self.lxcpath).absolute()
        self._must_be_free(new_name, f"clone {self.name!r}", target)
        target.mkdir(parents=True, exist_ok=True)
        if not self._lxc.clone(new_name, config_path=str(target)):
            raise LxcError(f"LXC could not clone container {self.name!r} as {new_name!r}: {self._log_tail()}")
        return self._adopt_copy(new_name, target, self.lxcpath / self.name)

    def rename(self, new_name: str) -> None:
        """Rename gives the stopped container a new name: a clone under it, then the original destroyed, as liblxc does.

        This object then names the renamed container (python-lxc's rename returns one that
        looks for it in the default lxcpath instead).
        """
        self._must_be_stopped("rename it")
        if self.snapshots():
            raise ContainerError(f"cannot rename container {self.name!r}: it has snapshots, which a rename would "
                                 "lose (liblxc refuses too); restore or destroy them first")
        renamed = self.clone(new_name)
        self.destroy()
        self.name, self._lxc = renamed.name, renamed._lxc

    def _adopt_copy(self, new_name: str, lxcpath: Path, source_dir: Path) -> Container:
        """Open the copy LXC just made of this container as `new_name` and give it files of its own.

        LXC names the copy's host after it and leaves its log and seccomp profile pointing at
        the original's: the copy gets the original's hostname, its own log, seccomp and run files.
        """
        copy = type(self)(new_name, lxcpath)
        copy_dir = copy.lxcpath / new_name
        copy_lxclab_files(source_dir, copy_dir)
        copy._set_config("lxc.uts.name", self.hostname)
        copy._set_config("lxc.log.file", str(copy_dir / "lxc.log"))
        if copy._config("lxc.seccomp.profile"):
            copy._set_config("lxc.seccomp.profile", str(copy_dir / SECCOMP_FILE))
        copy._save_config()
        return copy

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the container if it runs and destroy it if it is defined."""
        if self.running:
            self.stop()
        if self.defined:
            self.destroy()

    # --- running commands ------------------------------------------------------------------
    def execute(self, argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | None = None,
                stdin: bytes | None = None) -> ExecResult:
        """Execute runs `argv` in the running container and returns its exit code, stdout and stderr."""
        self._must_be_running("execute a command")
        return run_captured(self._lxc, argv, env, cwd or self.working_dir, stdin)

    def attach(self, argv: Sequence[str] = ("/bin/sh",), env: Mapping[str, str] | None = None,
               cwd: str | None = None, stdio: tuple[int | None, int | None, int | None] = (None, None, None)) -> ExitStatus:
        """Attach runs `argv` (a shell by default) in the container on the caller's terminal; returns how it ended.

        `stdio` replaces the caller's stdin, stdout or stderr with other file descriptors.
        """
        self._must_be_running("attach to it")
        return run_interactive(self._lxc, argv, env, cwd or self.working_dir, stdio)

    # --- configuration ---------------------------------------------------------------------
    def config_item(self, key: str) -> tuple[str, ...]:
        """ConfigItem returns the values of LXC config `key` (none when unset); UnknownConfigKey for a key LXC lacks."""
        validation.plain_text(key, "LXC config key")
        try:
            value = self._lxc.get_config_item(key)
        except KeyError:
            raise UnknownConfigKey(f"LXC knows no config key {key!r}: check its spelling in "
                                   "lxc.container.conf(5)") from None
        if value in (False, "", []):
            return ()
        return (value,) if isinstance(value, str) else tuple(value)

    def set_config_item(self, key: str, value: str | Sequence[str]) -> None:
        """SetConfigItem sets LXC config `key` to `value` (a list for a key that repeats) and saves the config.

        It takes liblxc's own verdict: python-lxc's set_config_item reads the value back and
        calls a value liblxc stores in another form ('dir:/path' as '/path') a failure.
        """
        self._must_be_defined()
        self.config_item(key)
        self._set_config(key, value if isinstance(value, str) else list(value))
        self._save_config()

    # --- helpers ---------------------------------------------------------------------------
    def _must_be_up(self, action: str) -> None:
        """Raise NotRunning unless the container's init is alive (running or frozen)."""
        self._must_be_defined()
        if not self.running:
            raise NotRunning(f"container {self.name!r} is {self.state.value}, not running: nothing to {action}")

    def _await_settled_init(self, pid: int, key: str, default: signal.Signals, timeout: float) -> float:
        """Wait until init `pid` would take the signal LXC config `key` names (a just-started init drops it).

        Return the deadline. An init that never sets up its signals (sleep) is waited for until
        then: it would drop the signal anyway.
        """
        signum = int(self._lxc.get_config_item(key) or 0) or default  # LXC gives "0" when the key is unset
        deadline = time.monotonic() + timeout
        # LXC's child blocks signals until it execs init, which starts with them at their defaults
        while not (procfs.has_execed(pid) and procfs.settled_for(pid, signum)) and time.monotonic() < deadline:
            time.sleep(0.01)
        return deadline

    @contextmanager
    def _held_monitor(self, init_pid: int | None = None) -> Iterator[Monitor | None]:
        """The running container's monitor, held by a pidfd with its cgroups noted, for the block (None if init went)."""
        monitor = Monitor.of(self.name, self._lxc.init_pid if init_pid is None else init_pid)
        try:
            yield monitor
        finally:
            if monitor is not None:
                monitor.close()

    def _clear_run(self, monitor: Monitor | None) -> None:
        """Once the container has stopped: wait for its monitor to exit, then remove the cgroups LXC left of the run."""
        if monitor is None:  # init had gone before it could be asked: sweep every hierarchy by name
            remove_leftovers(self.name, self.lxcpath)
        else:
            monitor.release()

    def _must_be_free(self, name: str, action: str, lxcpath: Path | None = None) -> None:
        """Raise AlreadyDefined if a container `name` exists in `lxcpath` (default: this container's)."""
        other = type(self)(name, lxcpath or self.lxcpath)
        if other.defined:
            raise AlreadyDefined(f"cannot {action} as {name!r}: that container exists in {other.lxcpath}; "
                                 "choose another name")

    def _must_be_defined(self) -> None:
        """Raise NotDefined unless the container has a configuration."""
        if not self._lxc.defined:
            raise NotDefined(f"container {self.name!r} does not exist in {self.lxcpath}: create it first")

    def _must_be_running(self, action: str) -> None:
        """Raise NotRunning unless the container is RUNNING (a frozen one must be unfrozen first)."""
        self._must_be_defined()
        state = self.state
        if state is not State.RUNNING:
            hint = "unfreeze it" if state is State.FROZEN else "start it"
            raise NotRunning(f"cannot {action} in container {self.name!r}: "
                             f"it is {state.value}, not RUNNING; {hint} first")

    def _config(self, key: str, missing: Any = "") -> Any:
        """A key of the container's LXC configuration, or `missing` when it is not set."""
        try:
            value = self._lxc.get_config_item(key)
        except KeyError:
            return missing
        return missing if value in (False, "", []) else value

    def _set_config(self, key: str, value: str | list[str]) -> None:
        """Set a key (every value of a list) in the in-memory configuration; _save_config() writes it.

        liblxc writes each value as a line of the config file and reads it back later: a
        key or value with a newline (or any control character) would add config lines of
        its own, like an lxc.hook.* run as root on the host, so it is refused here whatever
        the caller checked before.
        """
        values = [value] if isinstance(value, str) else value
        try:
            validation.plain_text(key, "LXC config key")
            for item in values:
                validation.plain_text(item, f"LXC config value of {key}")
        except InvalidValue as exc:
            raise LxcError(f"refused for container {self.name!r}: {exc}") from None
        self._lxc.clear_config_item(key)
        if not all(liblxc_set_config_item(self._lxc, key, item) for item in values):
            raise LxcError(f"LXC refused {key} = {value!r} for container {self.name!r}")

    def _save_config(self) -> None:
        """Write the configuration to the container's config file."""
        if not self._lxc.save_config():
            raise LxcError(f"LXC could not write the config of container {self.name!r} in {self.lxcpath}")

    def _log_tail(self, lines: int = 3) -> str:
        """The last lines of the container's LXC log, to quote in an error."""
        try:
            tail = self.log_file.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return "LXC wrote no log"
        return "; ".join(tail) + f" (full log: {self.log_file})" if tail else "LXC logged nothing"

    def _remove_lock_files(self) -> None:
        """Remove liblxc's lock files for this container (/run/lxc/lock/<lxcpath>/.<name> and <name>/)."""
        runtime = Path("/run") if os.geteuid() == 0 else Path(os.environ.get("XDG_RUNTIME_DIR", "/run"))
        lock_dir = runtime / "lxc" / "lock" / str(self.lxcpath).lstrip("/")
        (lock_dir / f".{self.name}").unlink(missing_ok=True)
        for parent, dirs, files in os.walk(lock_dir / self.name, topdown=False):
            for file in files:
                os.unlink(os.path.join(parent, file))
            for directory in dirs:
                os.rmdir(os.path.join(parent, directory))
        if (lock_dir / self.name).is_dir():
            os.rmdir(lock_dir / self.name)
