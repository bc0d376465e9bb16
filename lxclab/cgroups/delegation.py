"""The v2 subtree lxclab may manage: a cgroup with no process of its own whose children get cpu, memory and pids.

cgroup v2 lets a cgroup hand controllers to its children (`cgroup.subtree_control`) only
while it holds no process itself (the root excepted), and systemd owns every group it
made. So lxclab never enables controllers where its caller lives and never writes into
systemd's groups:

- with systemd, it asks systemd for a transient service `lxclab-cgroups.service` with
  `Delegate=yes` (`systemd-run`). Its one process, a keeper (`sleep infinity`), is moved
  into the leaf `keeper/`; the service's cgroup is then empty, lxclab enables the
  controllers there and creates the containers' groups beside the keeper. The service
  lives until reboot (stopping it kills every container in it).
- without systemd, it takes `lxclab/` under the root cgroup, which is exempt from the rule.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path

from ..errors import CgroupError

UNIT = "lxclab-cgroups.service"
KEEPER = "keeper"
OWN_SUBTREE = "lxclab"
DELEGATED = ("cpu", "memory", "pids")
_LOCK = Path("/run/lxclab-cgroups.lock")


def systemd_running() -> bool:
    """Whether systemd manages this host's cgroups (sd_booted: /run/systemd/system exists)."""
    return Path("/run/systemd/system").is_dir()


def delegated_parent(mount: Path, systemd: bool) -> Path:
    """The v2 cgroup lxclab creates groups under, made ready: no process in it, cpu memory pids enabled."""
    base = _systemd_subtree(mount) if systemd else _own_subtree(mount)
    enable_controllers(base)
    return base


def _own_subtree(mount: Path) -> Path:
    """`lxclab/` under the root of the v2 mount, with the controllers its parent must hand down."""
    enable_controllers(mount)
    base = mount / OWN_SUBTREE
    try:
        base.mkdir(exist_ok=True)
    except OSError as exc:
        raise CgroupError(f"cannot create cgroup {base}: {exc.strerror}; run as root") from None
    return base


def _systemd_subtree(mount: Path) -> Path:
    """The cgroup of lxclab's delegated service, started once, with its keeper in a leaf of it."""
    base = mount / "system.slice" / UNIT
    if processes(base / KEEPER):
        return base
    with _locked():
        base = mount / _start_unit().lstrip("/")
        keep_in_leaf(base)
    return base


def _start_unit() -> str:
    """Start the delegated keeper service unless it runs; its cgroup path (as systemd names it)."""
    state = _systemctl("show", "--property=ActiveState", "--value", UNIT)
    if state != "active":
        _systemctl("reset-failed", UNIT, check=False)
        _run(["systemd-run", f"--unit={UNIT}", "--property=Delegate=yes", "--quiet",
              "--description=lxclab: the delegated cgroup of lxclab's containers", "sleep", "infinity"])
    return _systemctl("show", "--property=ControlGroup", "--value", UNIT)


def keep_in_leaf(base: Path) -> None:
    """Move every process of `base` into its leaf `keeper/`, so that `base` may enable controllers."""
    leaf = base / KEEPER
    try:
        leaf.mkdir(exist_ok=True)
        for pid in processes(base):
            (leaf / "cgroup.procs").write_text(f"{pid}\n")
    except OSError as exc:
        raise CgroupError(f"cannot move the processes of {base} into {leaf}: {exc.strerror}; "
                          f"is {UNIT} delegated (Delegate=yes)?") from None


def processes(group: Path) -> list[int]:
    """The PIDs in cgroup `group` ([] when it does not exist)."""
    try:
        return [int(pid) for pid in (group / "cgroup.procs").read_text().split()]
    except FileNotFoundError:
        return []


def enable_controllers(parent: Path, wanted: tuple[str, ...] = DELEGATED) -> None:
    """Let the v2 children of `parent` use `wanted` controllers (cgroup.subtree_control), if not yet."""
    try:
        available = set((parent / "cgroup.controllers").read_text().split())
        enabled = set((parent / "cgroup.subtree_control").read_text().split())
    except FileNotFoundError:
        raise CgroupError(f"{parent} is not a v2 cgroup: mount cgroup2 on /sys/fs/cgroup") from None
    missing = sorted(set(wanted) - available)
    if missing:
        raise CgroupError(f"cgroup {parent} lacks controllers {missing}: ask for them to be delegated")
    change = " ".join(f"+{c}" for c in sorted(set(wanted) - enabled))
    if not change:
        return
    try:
        (parent / "cgroup.subtree_control").write_text(f"{change}\n")
    except OSError as exc:
        raise CgroupError(f"cannot write {change!r} to {parent}/cgroup.subtree_control: {exc.strerror}; "
                          "v2 allows it only in a cgroup with no processes of its own (or the root)") from None


def _systemctl(*args: str, check: bool = True) -> str:
    """systemctl's output, stripped."""
    return _run(["systemctl", *args], check)


def _run(argv: list[str], check: bool = True) -> str:
    """Run a systemd tool; its stdout, or CgroupError quoting its stderr."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CgroupError(f"cannot run {argv[0]} to get a delegated cgroup from systemd: {exc}") from None
    if check and done.returncode != 0:
        raise CgroupError(f"{' '.join(argv)} failed ({done.stderr.strip()}): lxclab needs systemd to "
                          f"delegate a cgroup to it as root")
    return done.stdout.strip()


class _locked:
    """An exclusive lock on /run/lxclab-cgroups.lock, so two lxclab processes start the unit once."""

    def __enter__(self) -> None:
        try:
            self._fd = os.open(_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise CgroupError(f"cannot open {_LOCK} to start {UNIT}: {exc.strerror}; run as root") from None
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc_info: object) -> None:
        os.close(self._fd)
