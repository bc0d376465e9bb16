"""`docker run` from first principles: an image's layers, a private upper dir, namespaces and a cgroup.

One run, step by step (each host resource is written into the container's record before
it is made, so that `gc` can remove it after a crash):

1. `create` (lxclab.engine.create): find the pulled image, work out the command,
   environment, working directory and user from its config, and record the container;
2. the root: the image's layers, extracted once each into the shared layer cache, stacked
   by overlayfs under a per-container upper dir (mounted inside the container's own mount
   namespace, so it disappears with it), or flattened by copying (copy mode, rootless);
3. a cgroup with the memory, CPU and pids limits, then (with --net bridge) a network
   namespace plugged into this home's bridge;
4. namespaces.spawn: PID 1 in new PID, mount, UTS, IPC, network and cgroup namespaces;
5. wait, copying its output to the log (and to the terminal in the foreground), then
   record the exit status and OOM kills and release the cgroup and network.

A detached run (`start`) hands steps 2-5 to a supervisor process of its own, which keeps
waiting after the caller exits; `restart` hands an exited container to a new one. Steps
2-4 are the container's runtime's (lxclab.engine.runtimes: lxclab's namespaces, or liblxc);
the rest is the same for both.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from .. import errors
from ..chroot import ExitStatus
from ..errors import AlreadyRunning, ContainerError, LxclabError, NotRunning
from ..procfs import identity, is_alive
from ..footprint import Footprint, release
from .containers import DEAD, EXITED, RUNNING, ContainerRecord, find, secure_home
from .create import create, find_image
from .runtimes import Started, runtime_for
from .streams import Streams

_SUPERVISOR = ("import sys; from lxclab.engine.run import supervise_detached; "
               "supervise_detached(sys.argv[1], int(sys.argv[2]))")


@dataclass(frozen=True)
class RunResult:
    """A finished foreground run: which container, how PID 1 ended, whether the OOM killer struck, its output."""

    container_id: str
    name: str
    status: ExitStatus
    oom_killed: bool
    output: str = ""

    @property
    def exit_code(self) -> int:
        """The status as a shell reports it: the code, or 128 + the signal number."""
        return self.status.exit_code


def run(ref: str, command: list[str] | None = None, *, stdin: int | None = None, stdout=None, stderr=None,
        tty: bool = False, **options) -> RunResult:
    """Run a command in a new container of pulled image `ref` and wait for it to end (`docker run`).

    `options` are those of `create`. Output always goes to the container's log; with
    `stdout`/`stderr` (binary streams such as sys.stdout.buffer) it is copied there too as
    it comes, otherwise RunResult.output holds it. `stdin` is a file descriptor whose bytes
    are copied in through a pipe (default /dev/null); `tty` gives the container a pty of its
    own (`-t`). Overlay mode, limits and a bridge network need root.
    """
    container = create(ref, command, **options)
    return supervise(container, Streams(container.log_path, stdin, stdout, stderr, tty=tty))


def supervise(container: ContainerRecord, streams: Streams, ready=None) -> RunResult:
    """Start a recorded container from this process, wait for it, record how it ended and release its resources.

    `ready()` is called once it runs. Interrupted (Ctrl-C, SIGTERM), it kills the container
    first; if this process is SIGKILLed instead, `gc` cleans up.
    """
    secure_home()
    container.state.owner = identity(os.getpid())
    container.save()
    with streams:
        try:
            process = _launch(container, streams.fds)
        except BaseException:
            _abandon(container)
            raise
        streams.started()
        if ready is not None:
            ready()
        try:
            streams.pump()
            status = process.wait()
        except BaseException:
            process.kill()
            finish(container, process.wait())
            raise
    return finish(container, status, capture=not streams.echoing)


def _launch(container: ContainerRecord, stdio: tuple[int, int, int]) -> Started:
    """Check the image is still the one recorded, and have the container's runtime start its PID 1."""
    config = container.config
    image = find_image(config.image)
    if image.digest != config.image_digest:
        raise ContainerError(f"image {config.image} changed since container {container.short_id} was created "
                             f"({config.image_digest} -> {image.digest}); create the container again")
    started = runtime_for(config.runtime).launch(container, image, stdio)
    _mark_running(container)
    container.save()
    return started


def _mark_running(container: ContainerRecord) -> None:
    """Record (in memory) that a new run of the container has begun, forgetting how an earlier one ended."""
    container.state = replace(container.state, status=RUNNING, started=time.time(), finished=None, exit_code=None,
                              signal=None, oom_killed=False)


def _abandon(container: ContainerRecord) -> None:
    """Undo a launch that failed: a new container goes entirely; a restarted one stays exited, with its files."""
    resources = container.state.footprint
    if container.state.status != EXITED:
        release(resources)
        return
    release(replace(resources, dirs=[], lxc=[]))
    container.state.footprint = Footprint(dirs=resources.dirs, lxc=resources.lxc)
    container.save()


def finish(container: ContainerRecord, status: ExitStatus, capture: bool = False) -> RunResult:
    """Record how PID 1 ended and whether the OOM killer struck, release the cgroup and network, honour --rm."""
    group = container.cgroup()
    oom_killed = bool(group is not None and group.stats().oom_kills)
    resources = container.state.footprint
    mounts = runtime_for(container.config.runtime).after_exit(container)
    release(Footprint(mounts=mounts, cgroups=resources.cgroups, endpoints=resources.endpoints, netns=resources.netns))
    container.state.footprint = Footprint(dirs=resources.dirs, lxc=resources.lxc)
    container.state.status, container.state.finished = EXITED, time.time()
    container.state.exit_code, container.state.signal = status.code, status.signal
    container.state.oom_killed = oom_killed
    container.save()
    output = container.logs().decode(errors="replace") if capture else ""
    if container.config.remove:
        release(container.state.footprint)
    return RunResult(container.id, container.name, status, oom_killed, output)


# --- detached runs ------------------------------------------------------------------------
def start(ref: str, command: list[str] | None = None, **options) -> ContainerRecord:
    """Start a new container in the background (`docker run -d`) and return once its PID 1 runs.

    A supervisor process of its own (adopted by init, in a session of its own) waits for
    it, records its exit and, with remove=True, removes it. `options` are those of `create`.
    """
    return start_detached(create(ref, command, **options))


def restart(name_or_id: str) -> ContainerRecord:
    """Start an exited container again in the background (`docker start`), with its own root and changes kept."""
    container = find(name_or_id)
    status = container.status
    if status == RUNNING:
        raise AlreadyRunning(f"container {container.name} is already running: stop it first (lxclab stop "
                             f"{container.name}), or run a new one")
    if status == DEAD:
        raise ContainerError(f"container {container.name} is dead (its lxclab process ended without recording "
                             "an exit): `lxclab gc` cleans up")
    if status != EXITED:
        raise ContainerError(f"container {container.name} is {status}: only an exited container can start again")
    return start_detached(container)


def start_detached(container: ContainerRecord) -> ContainerRecord:
    """Hand a recorded container to a supervisor process of its own; return once its PID 1 runs."""
    read_end, write_end = os.pipe()
    try:
        with open(container.directory / "supervisor.log", "ab") as log:
            subprocess.run([sys.executable, "-c", _SUPERVISOR, str(container.directory), str(write_end)],
                           pass_fds=(write_end,), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                           start_new_session=True, cwd="/", check=False)
    finally:
        os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        message = reader.read().decode(errors="replace")
    if message != "ok":
        if container.state.status != EXITED:
            _forget(container)  # a new container that never ran; an exited one keeps its record
        raise _error_from(message, container)
    return container.refresh()


def supervise_detached(directory: str, ready_fd: int) -> None:
    """The supervisor of a detached container (run in a process of its own by `start`): start, report, wait.

    It forks once so that `start` can reap its first process at once; the second is
    adopted by init. It writes "ok" or "ErrorClass:message" to `ready_fd`.
    """
    if os.fork():
        os._exit(0)
    container = ContainerRecord.load(Path(directory))
    reported = []

    def ready() -> None:
        os.write(ready_fd, b"ok")
        os.close(ready_fd)
        reported.append(True)

    try:
        supervise(container, Streams(container.log_path, None, None, None), ready)
    except LxclabError as exc:
        if not reported:
            os.write(ready_fd, f"{type(exc).__name__}:{exc}".encode())
        raise


def _forget(container: ContainerRecord) -> None:
    """Remove what is left of a container whose supervisor failed to start it."""
    if container.directory.exists():
        release(container.refresh().state.footprint)


def _error_from(message: str, container: ContainerRecord) -> LxclabError:
    """Rebuild the error the supervisor reported as 'ErrorClass:message'."""
    name, _, text = message.partition(":")
    kind = getattr(errors, name, None)
    if text and isinstance(kind, type) and issubclass(kind, LxclabError):
        return kind(text)
    return ContainerError(f"the supervisor of container {container.short_id} ended before starting it "
                          f"({message or 'no report'}); see {container.directory / 'supervisor.log'}")


# --- exec ---------------------------------------------------------------------------------
def exec_in(name_or_id: str, command: list[str], stdin: int | None = None, stdout: int | None = None,
            stderr: int | None = None) -> ExitStatus:
    """Run `command` inside a running container (`docker exec`): join its namespaces and cgroup, wait.

    Its environment, working directory and user are the container's; stdio are file
    descriptors (default: this process's own). Needs root (setns).
    """
    container = find(name_or_id)
    if container.status != RUNNING or not is_alive(container.state.pid):
        raise NotRunning(f"container {container.name} is not running ({container.describe()}): "
                         "start a new one with lxclab run -d")
    if not command:
        raise ContainerError("exec needs a command to run")
    return runtime_for(container.config.runtime).exec(container, command, (stdin, stdout, stderr))


def exec_attached(name_or_id: str, command: list[str], streams: Streams) -> ExitStatus:
    """`exec_in` with `streams` as the command's stdio, copied by a thread of this process while it runs."""
    pump = threading.Thread(target=streams.pump, name="exec-streams", daemon=True)
    pump.start()
    try:
        return exec_in(name_or_id, command, *streams.fds)
    finally:
        streams.started()
        pump.join()
