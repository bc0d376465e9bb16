"""Container: one LXC container, with small documented methods in the style of go-lxc.

Each method checks its precondition first (defined, running, stopped, frozen) and
raises a named error that says which container and what to do; liblxc's own failures
become LxcError quoting the end of the container's LXC log.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import paths, validation
from ..errors import (
    AlreadyDefined, AlreadyFrozen, AlreadyRunning, ContainerError, InvalidValue, LxcError, NotDefined, NotFrozen,
    NotRunning,
)
from ..limits import Limits
from ..manifest import ImageConfig
from ..security import Profile, lxckeys
from ._binding import pylxc
from .execute import ExecResult, run_captured, run_interactive
from .foreground import Init, start_foreground
from .hierarchies import monitor_pids, remove_leftovers, start_cgroup
from .resources import ResourcesMixin
from .runfile import read_command, write_command
from .snapshots import SnapshotsMixin
from .state import State

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
SECCOMP_FILE = "lxclab.seccomp"  # beside the config: the profile's seccomp rules in LXC's format


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
        ("lxc.rootfs.path", str(rootfs)),  # a plain path: a 'dir:' prefix is refused
        ("lxc.uts.name", hostname),
        ("lxc.net.0.type", "empty"),  # a network namespace with only loopback
        ("lxc.autodev", "1"),
        ("lxc.cgroup.relative", "1"),  # cgroups under the starter's own, not at each hierarchy's root
        ("lxc.init.cwd", working_dir),
        ("lxc.log.file", str(log_file)),
        ("lxc.log.level", "WARN"),
    ]


class Container(ResourcesMixin, SnapshotsMixin):
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
        value = self._config("lxc.environment", missing=[])
        return tuple([value] if isinstance(value, str) else value)

    @property
    def command(self) -> tuple[str, ...]:
        """Command is the argv start() runs as init when given none (the image's Entrypoint + Cmd)."""
        self._must_be_defined()
        return read_command(self.lxcpath / self.name)

    # --- lifecycle -------------------------------------------------------------------------
    def start(self, argv: Sequence[str] | None = None) -> None:
        """Start starts the container with `argv` (default: its command) as init, from a forked child.

        python-lxc's start moves its caller into LXC's monitor cgroup; a short-lived child
        takes that move, so the caller's own cgroups stay as they were.
        """
        argv = self._argv_to_start(argv)
        if not self._start_in_child(argv):
            raise LxcError(f"LXC could not start container {self.name!r} with {list(argv)!r}: {self._log_tail()}")

    def run(self, argv: Sequence[str] | None = None, stdin: int | None = None, stdout: int | None = None,
            stderr: int | None = None) -> Init:
        """Run starts the container in the foreground, its init on the given descriptors; returns once init runs.

        Init.wait() gives how init ended (its exit code or signal), which start() cannot tell.
        """
        argv = self._argv_to_start(argv)
        return start_foreground(self._lxc, argv, self.log_file, (stdin, stdout, stderr), start_cgroup(self.name))

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
        """Fork a child that calls liblxc's start (which daemonizes a monitor) and report its success.

        On v2 liblxc's caller must not stay in the cgroup LXC enables controllers in, so the
        child instead leaves a foreground starter running in the container's start leaf.
        """
        leaf = start_cgroup(self.name)
        if leaf is not None:
            return self._start_detached(argv, leaf)
        pid = os.fork()
        if pid == 0:  # the child: only liblxc runs here, then _exit skips every Python cleanup
            started = False
            try:
                started = bool(self._lxc.start(cmd=argv))
            finally:
                os._exit(0 if started else 1)  # noqa: B012 - nothing may escape the child
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
        self._must_be_defined()
        if not self.running:
            raise NotRunning(f"container {self.name!r} is {self.state.value}, not running: nothing to stop")
        monitors = monitor_pids(self.name)
        if not self._lxc.stop() or not self._lxc.wait(State.STOPPED.value, timeout):
            raise LxcError(f"LXC could not stop container {self.name!r} within {timeout}s: {self._log_tail()}")
        remove_leftovers(self.name, monitors)

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
        remove_leftovers(self.name)
        self._remove_lock_files()

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
               cwd: str | None = None, stdio: tuple[int | None, int | None, int | None] = (None, None, None)) -> int:
        """Attach runs `argv` (a shell by default) in the container on the caller's terminal; returns its exit code.

        `stdio` replaces the caller's stdin, stdout or stderr with other file descriptors.
        """
        self._must_be_running("attach to it")
        return run_interactive(self._lxc, argv, env, cwd or self.working_dir, stdio)

    # --- helpers ---------------------------------------------------------------------------
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
        """Set a key in the in-memory configuration; save_config() writes it.

        liblxc writes each value as a line of the config file and reads it back later: a
        value with a newline (or any control character) would add config lines of its
        own, like an lxc.hook.* run as root on the host, so it is refused here whatever
        the caller checked before.
        """
        for item in [value] if isinstance(value, str) else value:
            try:
                validation.plain_text(item, f"LXC config value of {key}")
            except InvalidValue as exc:
                raise LxcError(f"refused for container {self.name!r}: {exc}") from None
        if not self._lxc.set_config_item(key, value):
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
