"""Saved registry logins: `lxclab login` writes them, pulls and pushes read them.

They live in one JSON file (`lxclab.paths.credentials_file()`, mode 0600) mapping a
registry (`127.0.0.1:5000`, `docker.io`) to a username and password. The environment
variables LXCLAB_USERNAME and LXCLAB_PASSWORD override the file for the one registry that
LXCLAB_REGISTRY names (handy in CI and in a classroom); set without it they are refused,
so a password meant for one registry never reaches another. LXCLAB_TOKEN_REALMS names
token-server hosts (comma-separated) trusted with credentials besides a registry's own.

A registry whose certificate comes from a private CA (a classroom served on the network)
is trusted through `$LXCLAB_HOME/certs.d/<host:port>/ca.crt`, as Docker reads
/etc/docker/certs.d; with that file present lxclab speaks HTTPS to the registry, even on
loopback.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .. import paths
from ..errors import RegistryError

USERNAME_VARIABLE = "LXCLAB_USERNAME"
PASSWORD_VARIABLE = "LXCLAB_PASSWORD"
REGISTRY_VARIABLE = "LXCLAB_REGISTRY"
REALMS_VARIABLE = "LXCLAB_TOKEN_REALMS"


def lookup(registry: str) -> tuple[str, str] | None:
    """The credentials to use for `registry`: the environment's (if bound to it), else the saved ones, else None."""
    user, password = os.environ.get(USERNAME_VARIABLE), os.environ.get(PASSWORD_VARIABLE)
    if user and password is not None:
        bound = os.environ.get(REGISTRY_VARIABLE)
        if not bound:
            raise RegistryError(
                f"{USERNAME_VARIABLE} and {PASSWORD_VARIABLE} are set but {REGISTRY_VARIABLE} is not: "
                f"set {REGISTRY_VARIABLE} to the one registry they are for (like 127.0.0.1:5000)"
            )
        if bound == registry:
            return user, password
    entry = _load().get(registry)
    return (entry["username"], entry["password"]) if entry else None


def named_realms() -> tuple[str, ...]:
    """The token-server hosts the user trusts with credentials besides a registry's own (LXCLAB_TOKEN_REALMS)."""
    return tuple(host.strip() for host in os.environ.get(REALMS_VARIABLE, "").split(",") if host.strip())


def ca_file(registry: str) -> Path | None:
    """The CA certificate the user trusts for `registry` (`$LXCLAB_HOME/certs.d/<registry>/ca.crt`), if any."""
    path = paths.home() / "certs.d" / registry / "ca.crt"
    return path if path.is_file() else None


def save(registry: str, username: str, password: str) -> None:
    """Remember a login for `registry`, in a file only its owner can read."""
    logins = _load()
    logins[registry] = {"username": username, "password": password}
    _write(logins)


def forget(registry: str) -> bool:
    """Remove the saved login for `registry`; False if there was none."""
    logins = _load()
    if logins.pop(registry, None) is None:
        return False
    _write(logins)
    return True


def _load() -> dict:
    path = paths.credentials_file()
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        raise RegistryError(f"cannot read saved logins in {path}: {exc}; delete the file and log in again") from None


def _write(logins: dict) -> None:
    """Write the file atomically, created with mode 0600 so the password is never world-readable."""
    path = paths.credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".credentials-")
    with os.fdopen(fd, "w") as out:
        json.dump(logins, out, indent=2)
    os.chmod(temp, 0o600)
    os.replace(temp, path)
