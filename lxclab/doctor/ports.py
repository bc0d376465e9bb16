"""The classroom's checks: its registry binary, and its two ports, free or held by whom.

A port is fine when it is free or when this $LXCLAB_HOME's classroom already serves there.
Otherwise the listening socket is found in /proc/net/tcp and its holder by the socket's
inode among /proc/PID/fd (every process for root, only one's own for other users), and
named: Debian's docker-registry service, another lxclab classroom, or any program.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ClassroomError
from .checks import Check

if TYPE_CHECKING:
    from ..classroom import Classroom

DEBIAN_REGISTRY_CONFIG = "/etc/docker/registry/config.yml"  # what Debian's docker-registry service serves
DEBIAN_REGISTRY_ENABLED = Path("/etc/systemd/system/multi-user.target.wants/docker-registry.service")
REGISTRY_CONFIG_FILE = "registry.yml"  # the classroom's (classroom.server names it, but importing it needs httpx)
LISTEN = "0A"  # the TCP state column of /proc/net/tcp for a listening socket


def check_registry(classroom: Classroom, packages: dict[str, str | None]) -> Check:
    """The distribution registry binary and busybox-static, from which the classroom and its seed images come."""
    missing = [p for p, there in (("docker-registry", classroom.registry_binary.exists()),
                                  ("busybox-static", packages.get("busybox-static"))) if not there]
    if missing:
        return Check("docker-registry", False, f"not installed: {', '.join(missing)}",
                     f"apt-get install {' '.join(missing)}")
    service = ""
    if DEBIAN_REGISTRY_ENABLED.exists():
        service = "; Debian's docker-registry service is enabled (under systemd it takes port 5000)"
    version = f" {packages['docker-registry']}" if packages.get("docker-registry") else ""
    return Check("docker-registry", True, f"{classroom.registry_binary}{version}{service}")


def check_port(name: str, host: str, port: int, pid: int | None, variable: str) -> Check:
    """Whether the classroom can serve on `port`: free, or already held by this classroom's own server (`pid`)."""
    from ..classroom.daemon import check_port_free  # the classroom needs httpx: imported once known to be there

    what = {"registry port": "registry", "token port": "token server"}.get(name, name)
    if pid is not None:
        return Check(name, True, f"{host}:{port}: lxclab's classroom {what} serves here (pid {pid})")
    try:
        check_port_free(host, port, f"classroom {what}", variable)
    except ClassroomError:
        holder, fix = _holder(port, variable)
        return Check(name, False, f"{host}:{port}: in use by {holder}", fix)
    return Check(name, True, f"{host}:{port}: free; ./kit classroom starts the {what} here")


def _holder(port: int, variable: str) -> tuple[str, str]:
    """Who listens on `port`, and how to get it back."""
    elsewhere = f"or export {variable}=<a free port> before ./kit classroom"
    pids = port_listeners(port)
    if not pids:
        return "a process this user cannot see (another user's)", f"find it: sudo ss -ltnp 'sport = :{port}'; {elsewhere}"
    argv = command_line(pids[0])
    state = classroom_state(argv)
    if DEBIAN_REGISTRY_CONFIG in argv:
        return (f"Debian's docker-registry service (pid {pids[0]})",
                f"systemctl disable --now docker-registry (lxclab runs its own registry), {elsewhere}")
    if state:
        return (f"another lxclab classroom (pid {pids[0]}, state in {state})",
                f"LXCLAB_CLASSROOM_DIR={state} lxclab registry down, {elsewhere}")
    return f"pid {pids[0]}: {' '.join(argv)[:60]}", f"stop pid {pids[0]}, {elsewhere}"


def classroom_state(argv: list[str]) -> str | None:
    """The state directory of an lxclab classroom server from its arguments, or None for any other program."""
    if len(argv) >= 3 and argv[-2] == "serve" and argv[-1].endswith(f"/{REGISTRY_CONFIG_FILE}"):
        return str(Path(argv[-1]).parent)
    if "lxclab.classroom.tokenserver" in argv and "--state-dir" in argv[:-1]:
        return argv[argv.index("--state-dir") + 1]
    return None


def port_listeners(port: int) -> list[int]:
    """The PIDs holding a listening TCP socket on `port` (any address) in this network namespace.

    Only processes whose /proc/PID/fd this user may read are found: all of them for root.
    """
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if int(fields[1].rpartition(":")[2], 16) == port and fields[3] == LISTEN:
                inodes.add(f"socket:[{fields[9]}]")
    return sorted(pid for pid in _pids() if inodes and _holds(pid, inodes)) if inodes else []


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _holds(pid: int, sockets: set[str]) -> bool:
    """Whether process `pid` has one of `sockets` (like 'socket:[1234]') open."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in sockets:
                return True
        except OSError:
            continue
    return False


def command_line(pid: int) -> list[str]:
    """The arguments of process `pid` ([] once it has gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")[:-1]
