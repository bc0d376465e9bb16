"""Background servers that outlive the command that started them, found again by PID file.

A daemon here is a child started in its own session, its output appended to a log file
and its PID written next to it. Whoever comes later (another `lxclab registry` command,
a notebook kernel) reads the PID file and checks `/proc/PID/cmdline`, so a stale file or a
PID reused by an unrelated process never counts as "running" and is never killed.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import socket
import subprocess
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from .. import procfs
from ..errors import ClassroomError

_STARTED: dict[int, subprocess.Popen] = {}  # children of this process, reaped when they end
_ENDED: dict[int, int] = {}  # how those children ended: exit status, or -N for signal N


@dataclass(frozen=True)
class Daemon:
    """One background server: its command line, and where its PID file and log live."""

    name: str
    argv: tuple[str, ...]
    state_dir: Path
    marker: str  # an argument that only this server's command line holds

    @property
    def pid_file(self) -> Path:
        """Where the running server's PID is recorded."""
        return self.state_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        """Where the server's standard output and error go."""
        return self.state_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The PID of the running server, or None when it is not running (stale PID files too)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if is_alive(pid, self.marker) else None

    def start(self, env: dict[str, str] | None = None) -> int:
        """Start the server in its own session, logging to its log file; return its PID."""
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(_private(self.log_file, os.O_APPEND), "ab") as log:
            try:
                process = subprocess.Popen(
                    self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=env, start_new_session=True, cwd=self.state_dir,
                )
            except OSError as exc:
                raise ClassroomError(f"cannot start the {self.name} ({self.argv[0]}): {exc}") from exc
        _STARTED[process.pid] = process
        with open(_private(self.pid_file, os.O_TRUNC), "w") as pid_file:
            pid_file.write(f"{process.pid}\n")
        return process.pid

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server by its recorded PID (SIGTERM, then SIGKILL) and remove the PID file."""
        pid = self.pid()
        if pid is not None:
            def server() -> list[int]:
                return [pid] if is_alive(pid, self.marker) else []

            procfs.send([pid], signal.SIGTERM)
            if procfs.wait_gone(server, timeout):
                procfs.kill_and_wait(server, timeout)
        self.pid_file.unlink(missing_ok=True)

    def how_it_ended(self) -> str:
        """How the server this process last started has ended, like `killed by signal 9` ("" when unknown)."""
        try:
            status = _ENDED.get(int(self.pid_file.read_text().strip()))
        except (OSError, ValueError):
            status = None
        if status is None:
            return ""
        return f"killed by signal {-status}" if status < 0 else f"exit status {status}"

    def log_tail(self, lines: int = 15) -> str:
        """The last `lines` lines of the server's log, for error messages."""
        try:
            with open(self.log_file, errors="replace") as log:
                return "".join(deque(log, maxlen=lines)).rstrip()
        except OSError:
            return "(no log)"


TCP_LISTEN = "0A"  # the state column of /proc/net/tcp for a listening socket
DEBIAN_REGISTRY_UNIT = "docker-registry.service"  # the systemd unit of Debian's own registry, in /proc/PID/cgroup


def is_alive(pid: int, marker: str) -> bool:
    """Whether `pid` is a live (not zombie) process whose command line holds `marker`."""
    child = _STARTED.get(pid)
    if child is not None:  # this process's own: its cmdline may still be empty, exec not quite done (under load)
        if child.poll() is None:
            return True
        _ENDED[pid] = _STARTED.pop(pid).returncode
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return marker.encode() in cmdline and procfs.running(pid)


def check_port_free(host: str, port: int, what: str, flag: str) -> None:
    """Raise ClassroomError naming the port and the flag to change it when host:port is taken."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ClassroomError(
                    f"cannot start the {what}: port {port} on {host} is already in use by {port_holder(port)}; "
                    f"pick another with {flag} N (or stop what is using it)"
                ) from exc
            raise ClassroomError(f"cannot start the {what} on {host}:{port}: {exc.strerror}") from exc


def port_holder(port: int) -> str:
    """Who listens on TCP `port` in this network namespace, in words a user can act on."""
    pid = _listener_pid(port)
    if pid is None:
        return "another program"
    try:
        cgroups = procfs.cgroup_paths(pid).values()
        command = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "another program"
    if any(DEBIAN_REGISTRY_UNIT in path for path in cgroups):
        return f"Debian's docker-registry service (PID {pid}; stop it for good: systemctl disable --now docker-registry)"
    return f"{command} (PID {pid})"


def _listener_pid(port: int) -> int | None:
    """The PID of a process holding a socket that listens on TCP `port` (any address), if one can be found."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for fields in map(str.split, rows):
            if int(fields[1].rpartition(":")[2], 16) == port and fields[3] == TCP_LISTEN:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd) in inodes:
                return int(fd.parts[2])
        except OSError:
            continue
    return None


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_FREE_PORT = 10000


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nothing listens on right now, for classrooms on any port.

    It is chosen below the kernel's ephemeral range, so the source port of some outgoing
    connection cannot take it between now and the moment a server binds it (or binds it again
    after a restart)."""
    top = int(EPHEMERAL_RANGE.read_text().split()[0]) if EPHEMERAL_RANGE.exists() else 32768
    for port in random.sample(range(LOWEST_FREE_PORT, max(top, LOWEST_FREE_PORT + 1000)), 200):
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise ClassroomError(f"no free TCP port on {host} between {LOWEST_FREE_PORT} and {top} after 200 tries")


def _private(path: Path, flags: int) -> int:
    """A file descriptor of `path` for writing, created 0600 (and made 0600 if it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o600)
    os.fchmod(fd, 0o600)
    return fd
