"""The classroom's checks: its registry binary, and its two ports, free or held by whom.

A port is fine when it is free or when this $LXCLAB_HOME's classroom already serves there.
Otherwise the classroom's own `port_holder` names what holds it (Debian's docker-registry
service, or a program and its PID), as `lxclab registry up` does when it cannot start.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ClassroomError
from .checks import Check

if TYPE_CHECKING:
    from ..classroom import Classroom

DEBIAN_REGISTRY_ENABLED = Path("/etc/systemd/system/multi-user.target.wants/docker-registry.service")


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
    from ..classroom.daemon import check_port_free, port_holder  # the classroom needs httpx: known to be there

    what = {"registry port": "registry", "token port": "token server"}.get(name, name)
    if pid is not None:
        return Check(name, True, f"{host}:{port}: lxclab's classroom {what} serves here (pid {pid})")
    try:
        check_port_free(host, port, f"classroom {what}", variable)
    except ClassroomError:
        return Check(name, False, f"{host}:{port}: in use by {port_holder(port)}",
                     f"stop it, or export {variable}=<a free port> before ./kit classroom")
    return Check(name, True, f"{host}:{port}: free; ./kit classroom starts the {what} here")
