"""Values that reach an LXC config key, a file name or a process, checked before anything uses them.

Pure functions, no I/O. liblxc writes every config value into a file that it reads back
line by line, so a newline in a value is a new config line (an `lxc.hook.*` that runs as
root on the host). Each check raises InvalidValue naming the field and the value, and
returns the value it accepted, so that a caller can write `name = container_name(name)`.
"""

from __future__ import annotations

import re

from .errors import InvalidValue

PATH_MAX = 4096
HOSTNAME_MAX = 64  # the kernel's limit on a UTS host name, in bytes
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTAINER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}")  # Docker's container name grammar
_HOST_LABEL = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")
_USER_PART = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,31}\$?")  # a name (POSIX portable) or a number
_ENV_KEY = re.compile(r"[^=\s\x00-\x1f\x7f]+")


def plain_text(value: object, field: str) -> str:
    """`value` if it is a string with no control character (newline, NUL, escape...); else InvalidValue."""
    if not isinstance(value, str):
        raise InvalidValue(f"{field} must be a string, not {type(value).__name__} ({value!r})")
    bad = _CONTROL.search(value)
    if bad:
        raise InvalidValue(f"{field} {value!r} holds the control character {bad.group()!r} at {bad.start()}: "
                           "a newline would start a new line in a config file; remove it")
    return value


def container_name(name: str) -> str:
    """A container name by Docker's grammar: a letter or digit, then letters, digits, '_', '.', '-' (64 at most)."""
    if not isinstance(name, str) or not _CONTAINER_NAME.fullmatch(name):
        raise InvalidValue(f"invalid container name {name!r}: use letters, digits, '_', '.' and '-', "
                           "starting with a letter or digit (at most 64)")
    return name


def hostname(name: str) -> str:
    """A host name: dot-separated labels of letters, digits and inner '-', at most 64 bytes (the kernel's limit)."""
    plain_text(name, "host name")
    if len(name.encode()) > HOSTNAME_MAX or not all(_HOST_LABEL.fullmatch(label) for label in name.split(".")):
        raise InvalidValue(f"invalid host name {name!r}: use labels of letters, digits and '-' separated by '.', "
                           f"at most {HOSTNAME_MAX} bytes")
    return name


def working_dir(path: str, field: str = "WorkingDir") -> str:
    """A clean absolute path (no '.', '..' or empty components); a trailing '/' is dropped; '' means '/'."""
    plain_text(path, field)
    if path == "":
        return "/"
    parts = path.rstrip("/").split("/")[1:] if path != "/" else []
    if not path.startswith("/") or len(path) > PATH_MAX or any(part in ("", ".", "..") for part in parts):
        raise InvalidValue(f"{field} {path!r} is not a clean absolute path: start with '/', with no '.', '..' "
                           f"or empty components (at most {PATH_MAX} bytes)")
    return "/" + "/".join(parts)


def user(spec: str, field: str = "User") -> str:
    """Docker's user[:group]: each a name (letters, digits, '_', '.', '-') or a number; '' means root."""
    plain_text(spec, field)
    if spec and not all(_USER_PART.fullmatch(part) for part in spec.split(":", 1)):
        raise InvalidValue(f"{field} {spec!r} is not user[:group]: give names (letters, digits, '_', '.', '-') "
                           "or numbers, like 1000:1000 or nobody")
    return spec


def env_entry(entry: str, field: str = "Env") -> tuple[str, str]:
    """A KEY=value environment entry as (KEY, value): no '=', space or control in the key, no control in the value."""
    plain_text(entry, field)
    key, equals, value = entry.partition("=")
    if not equals or not _ENV_KEY.fullmatch(key):
        raise InvalidValue(f"{field} entry {entry!r} is not KEY=value with a key of no '=', spaces or "
                           "control characters")
    return key, value


def argv(words: object, field: str) -> tuple[str, ...]:
    """A command as a list of strings without NUL (which exec cannot pass); InvalidValue otherwise."""
    if not isinstance(words, (list, tuple)) or not all(isinstance(word, str) for word in words):
        raise InvalidValue(f"{field} must be a list of strings, not {words!r}")
    if any("\x00" in word for word in words):
        raise InvalidValue(f"{field} {list(words)!r} holds a NUL byte, which no command line can carry")
    return tuple(words)


def subordinate_start(text: str, user: str, size: int, field: str = "/etc/subuid") -> int:
    """The first id of `user`'s first range of `size` ids or more in /etc/subuid (or subgid) text (name:start:count)."""
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] == user and parts[1].isdigit() and parts[2].isdigit() \
                and int(parts[2]) >= size and int(parts[1]) > 0:
            return int(parts[1])
    raise InvalidValue(f"{field} gives user {user!r} no range of {size} ids: run ./kit setup, or as root: "
                       f"useradd --system {user} && usermod --add-subuids 100000-165535 "
                       f"--add-subgids 100000-165535 {user}")
