"""Containers on disk: one directory per container with its config, its state and its log.

Layout under lxclab.paths.containers_dir():

    <id>/config.json    how it was asked to run (image, command, limits...), written once
    <id>/state.json     status; the lxclab process that owns the run and PID 1, each as
                        [PID, start time] so a reused PID is never mistaken for them; the
                        exit status; every host resource the run created (footprint.Footprint)
    <id>/container.log  what the container wrote to stdout and stderr
    <id>/rootfs/        its root: an overlay mount point (overlay mode) or a copy (copy mode)
    <id>/upper/ work/   its overlay upper and work directories: where its writes land
    .tmp-*/             a container being created, renamed to <id> once its record is complete

A container of the LXC runtime (config.runtime == "lxc") also has an LXC container,
`$LXCLAB_HOME/lxc/lxclab-<short id>/`, whose rootfs is its overlay mount point on the
host (or its copy); its record lists that container, mount and LXC's cgroups too.

A resource is added to state.json *before* it is created, so that after a crash, even a
SIGKILL, `gc` knows everything that may exist. Records are replaced by an atomic rename;
they are not fsync'ed: they describe processes, cgroups and namespaces, which a power
loss clears anyway. The overlay itself is mounted inside the container's own mount
namespace, so the host has no mount to record: it vanishes with the container's processes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import cgroups, paths
from ..limits import Limits
from ..chroot import ExitStatus
from ..container_init import IdMap
from ..errors import ContainerError, ContainerNotFound, NotRunning
from ..procfs import identity, is_alive
from ..footprint import Footprint
from ..security import Profile

CREATED, RUNNING, EXITED, DEAD = "created", "running", "exited", "dead"
NET_NONE, NET_BRIDGE = "none", "bridge"
NAMESPACES, LXC = "namespaces", "lxc"  # runtimes: lxclab's own namespaces code, or liblxc
CONFIG, STATE, LOG = "config.json", "state.json", "container.log"
SHORT = 12  # hex digits of the short ID, as Docker shows


PRIVATE = 0o700  # $LXCLAB_HOME, layers/ and containers/: they hold image setuid files and device nodes


def secure_home() -> None:
    """Make $LXCLAB_HOME, its layer cache and containers/ private to their owner (0700), creating them if need be.

    Called on every create and start, not only when the directories are made: a home made
    by an older lxclab, or by a umask of 022, is put right before anything runs from it.
    """
    for directory in (paths.home(), paths.layers_dir(), paths.containers_dir()):
        directory.mkdir(mode=PRIVATE, parents=True, exist_ok=True)
        if directory.stat().st_uid == os.geteuid() and directory.stat().st_mode & 0o777 != PRIVATE:
            directory.chmod(PRIVATE)


@contextmanager
def creation_lock() -> Iterator[None]:
    """Hold this home's lock on creating containers: a name checked free stays free until its record exists.

    The lock is flock(2) on containers/ itself, so it leaves no file behind.
    """
    secure_home()
    fd = os.open(paths.containers_dir(), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


def new_id() -> str:
    """A new container ID: 64 random hex digits, the first 12 of which name it in short."""
    return secrets.token_hex(32)


def bridge_name() -> str:
    """The name of this lxclab home's bridge: one per $LXCLAB_HOME, so two homes never share one."""
    return "h" + hashlib.sha256(str(paths.home().resolve()).encode()).hexdigest()[:8]


@dataclass(frozen=True)
class ContainerConfig:
    """How a container was asked to run: its image, command, environment, limits and options."""

    id: str
    name: str
    image: str
    image_digest: str
    argv: list[str]
    env: dict[str, str]
    cwd: str = "/"
    user: str | None = None
    hostname: str = ""
    limits: Limits = field(default_factory=Limits)
    net: str = NET_NONE
    mode: str = "overlay"
    rootless: bool = False
    remove: bool = False
    created: float = 0.0
    runtime: str = NAMESPACES
    security: dict = field(default_factory=dict)  # lxclab.security.Profile.to_dict(); {} is the default profile
    userns: IdMap | None = None  # --userns: the host ids its root and users are, fixed at create

    @classmethod
    def from_json(cls, text: str) -> "ContainerConfig":
        """A config read back from its JSON (as `asdict` wrote it): the limits and the --userns map typed again."""
        data = json.loads(text)
        userns = IdMap(**data["userns"]) if data.get("userns") else None
        return cls(**{**data, "limits": Limits(**data.get("limits", {})), "userns": userns})

    @property
    def cgroup_name(self) -> str:
        """The name of its cgroup: unique on the host, like its ID."""
        return f"lxclab-{self.id[:SHORT]}"

    @property
    def lxc_name(self) -> str:
        """The name of its LXC container (LXC runtime): unique on the host, since LXC's cgroups are named after it."""
        return f"lxclab-{self.id[:SHORT]}"

    @property
    def profile(self) -> Profile:
        """Its security profile (lxclab.security): what its root may still do."""
        return Profile.from_dict(self.security)


@dataclass
class ContainerState:
    """What happened to a container so far; footprint lists everything on the host it may still hold."""

    status: str = CREATED
    owner: list[int] | None = None  # the lxclab process that runs and waits for it
    pid: list[int] | None = None  # its PID 1, as the host sees it
    exit_code: int | None = None
    signal: int | None = None
    oom_killed: bool = False
    started: float | None = None
    finished: float | None = None
    cgroup: dict | None = None  # {"version": 1, "dirs": {controller: path}}
    footprint: Footprint = field(default_factory=Footprint)

    def to_json(self) -> str:
        """The state as a JSON object."""
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ContainerState":
        """A state read back from `to_json` output."""
        data = json.loads(text)
        return cls(**{**data, "footprint": Footprint(**data["footprint"])})


class ContainerRecord:
    """A container's record: its directory, config and state, and what can be read of it live."""

    def __init__(self, directory: Path, config: ContainerConfig, state: ContainerState):
        self.directory = directory
        self.config = config
        self.state = state

    @classmethod
    def create(cls, config: ContainerConfig) -> "ContainerRecord":
        """Write a new container's record atomically, owned by this process until a supervisor takes over.

        The directory appears complete or not at all.
        """
        secure_home()
        root = paths.containers_dir()
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
        directory = root / config.id
        state = ContainerState(owner=identity(os.getpid()), footprint=Footprint(dirs=[str(directory)]))
        (staging / CONFIG).write_text(json.dumps(asdict(config), indent=1, sort_keys=True))
        (staging / STATE).write_text(state.to_json())
        staging.chmod(PRIVATE)
        os.rename(staging, directory)
        return cls(directory, config, state)

    @classmethod
    def load(cls, directory: Path) -> "ContainerRecord":
        """Read a container's record; ContainerError if it is missing or unreadable."""
        try:
            config = ContainerConfig.from_json((directory / CONFIG).read_text())
            state = ContainerState.from_json((directory / STATE).read_text())
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise ContainerError(f"the record of container {directory.name} is unreadable ({exc}); "
                                 "`lxclab gc` removes it") from None
        return cls(directory, config, state)

    @property
    def id(self) -> str:
        """The full 64-hex-digit ID."""
        return self.config.id

    @property
    def short_id(self) -> str:
        """The first 12 hex digits of the ID."""
        return self.config.id[:SHORT]

    @property
    def name(self) -> str:
        """Its name (given with --name, else the short ID)."""
        return self.config.name

    @property
    def log_path(self) -> Path:
        """The file holding its output."""
        return self.directory / LOG

    @property
    def rootfs(self) -> Path:
        """Its root directory as the host sees it (empty on the host in overlay mode)."""
        return self.directory / "rootfs"

    @property
    def upper(self) -> Path:
        """Its overlay upper directory: every file it created or changed, and nothing else."""
        return self.directory / "upper"

    def save(self) -> None:
        """Replace state.json atomically with the state in memory."""
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".state-")
        with os.fdopen(fd, "w") as out:
            out.write(self.state.to_json())
        os.replace(temp, self.directory / STATE)

    def record(self, **resources: list) -> None:
        """Add resources (like cgroups=[...], netns=[...]) to the record and save it, before creating them."""
        for kind, items in resources.items():
            recorded = getattr(self.state.footprint, kind)
            recorded.extend(item for item in items if item not in recorded)
        self.save()

    def refresh(self) -> "ContainerRecord":
        """Read the state again from disk (another process may have changed it); ContainerNotFound once removed."""
        try:
            self.state = ContainerState.from_json((self.directory / STATE).read_text())
        except FileNotFoundError:
            raise ContainerNotFound(f"container {self.name} has been removed") from None
        return self

    @property
    def status(self) -> str:
        """created, running or exited; dead when the lxclab process running it ended without recording an exit."""
        if self.state.status == EXITED:
            return EXITED
        return self.state.status if is_alive(self.state.owner) else DEAD

    @property
    def exit_status(self) -> ExitStatus | None:
        """How PID 1 ended, once it has."""
        if self.state.status != EXITED:
            return None
        return ExitStatus(self.state.exit_code, self.state.signal)

    def cgroup(self) -> cgroups.Cgroup | None:
        """Its cgroup, rebuilt from the record, while it has one (none in rootless mode or after exit)."""
        record = self.state.cgroup
        if record is None or not any(Path(p).exists() for p in record["dirs"].values()):
            return None
        kind = cgroups.CgroupV1 if record["version"] == 1 else cgroups.CgroupV2
        return kind(self.config.cgroup_name, {c: Path(p) for c, p in record["dirs"].items()})

    def stats(self) -> cgroups.Stats:
        """Its cgroup's counters now (memory, CPU, pids, OOM kills); NotRunning if it has no cgroup."""
        group = self.cgroup()
        if group is None:
            raise NotRunning(f"container {self.name} has no cgroup (stopped, or rootless): nothing to measure")
        return group.stats()

    def logs(self) -> bytes:
        """Everything it wrote to stdout and stderr so far."""
        try:
            return self.log_path.read_bytes()
        except FileNotFoundError:
            return b""

    def describe(self, now: float | None = None) -> str:
        """Its status as `ps` shows it, like 'Up 3s', 'Exited (137, OOM killed) 2m ago' or 'Dead'."""
        now = time.time() if now is None else now
        status = self.status
        if status == RUNNING:
            return f"Up {ago(now - (self.state.started or now))}"
        if status == EXITED:
            code = self.exit_status.exit_code
            oom = ", OOM killed" if self.state.oom_killed else ""
            return f"Exited ({code}{oom}) {ago(now - (self.state.finished or now))} ago"
        if status == DEAD:
            return "Dead (its lxclab process ended; `lxclab gc` cleans up)"
        return "Created"

    def remove_directory(self) -> None:
        """Delete the container's directory and everything in it."""
        shutil.rmtree(self.directory, ignore_errors=True)

    def __repr__(self) -> str:
        return f"<ContainerRecord {self.short_id} {self.name!r} {self.state.status}>"


def ago(seconds: float) -> str:
    """A short duration like '42s', '3m' or '5h'."""
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def scan() -> tuple[list[ContainerRecord], list[Path]]:
    """Every container record in this home, newest first, and the directories whose record is unreadable."""
    found, broken = [], []
    root = paths.containers_dir()
    for directory in sorted(root.iterdir()) if root.is_dir() else ():
        if directory.name.startswith("."):
            continue
        try:
            found.append(ContainerRecord.load(directory))
        except ContainerError:
            broken.append(directory)
    return sorted(found, key=lambda c: c.config.created, reverse=True), broken


def containers() -> list[ContainerRecord]:
    """Every readable container record in this home, newest first."""
    return scan()[0]


def find(name_or_id: str) -> ContainerRecord:
    """The container with this name, full ID or unique ID prefix; ContainerNotFound otherwise."""
    everything = containers()
    for container in everything:
        if name_or_id in (container.id, container.name):
            return container
    matches = [c for c in everything if name_or_id and c.id.startswith(name_or_id)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ContainerNotFound(f"{name_or_id!r} matches {len(matches)} containers: give more of the ID")
    raise ContainerNotFound(f"no container {name_or_id!r} in {paths.containers_dir()}: "
                            "`lxclab ps -a` lists the containers there are")
