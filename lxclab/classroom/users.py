"""The classroom's accounts: a teacher who may push anywhere, and students added by name.

Passwords are never stored: `users.json` keeps a random salt and an scrypt hash per user,
and the file is replaced atomically, so a running token server always reads a whole file.
The teacher's generated password is the one secret written in clear, in `teacher.json`
(mode 0600), so the instructor can read it back.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from pathlib import Path

from ..errors import ClassroomError
from .access import STUDENT, TEACHER

USERS_FILE = "users.json"
TEACHER_FILE = "teacher.json"
TEACHER_NAME = "teacher"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
_HASHING_AT_ONCE = threading.BoundedSemaphore(4)  # 100 logins at once must not take 100 x 16 MiB
_USERNAME = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
_DUMMY_SALT = secrets.token_bytes(16)  # an unknown name is hashed too, so it answers no faster than a known one


def hash_password(password: str, salt: bytes) -> bytes:
    """The scrypt hash of `password` with `salt` (n=2^14, r=8, p=1: 16 MiB and tens of ms per guess)."""
    with _HASHING_AT_ONCE:
        return hashlib.scrypt(password.encode("utf-8"), salt=salt, **_SCRYPT)


def add_user(state_dir: Path, name: str, password: str, role: str = STUDENT) -> None:
    """Create or update account `name` in `state_dir/users.json`; its repositories are `name/...`."""
    if not _USERNAME.fullmatch(name):
        raise ClassroomError(
            f"cannot add user {name!r}: a user name is lowercase letters and digits, "
            "optionally separated by '.', '_' or '-' (it becomes a repository namespace)"
        )
    if not password:
        raise ClassroomError(f"cannot add user {name!r} with an empty password")
    users = load_users(state_dir)
    if users.get(name, {}).get("role", role) != role:
        raise ClassroomError(f"cannot add user {name!r}: that name is the teacher's account; pick another name")
    salt = secrets.token_bytes(16)
    users[name] = {"role": role, "salt": salt.hex(), "scrypt": hash_password(password, salt).hex()}
    _write_private_json(state_dir / USERS_FILE, users)


def load_users(state_dir: Path) -> dict[str, dict]:
    """Every account in `state_dir/users.json` (empty when there is none yet)."""
    path = state_dir / USERS_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ClassroomError(f"cannot read {path}: {exc}; fix or delete it and add the users again") from exc


def check_password(users: dict[str, dict], name: str, password: str) -> str | None:
    """The role of `name` when `password` is right, else None; an unknown name costs the same scrypt."""
    record = users.get(name)
    if record is None:
        hash_password(password, _DUMMY_SALT)
        return None
    digest = hash_password(password, bytes.fromhex(record["salt"]))
    return record["role"] if hmac.compare_digest(digest, bytes.fromhex(record["scrypt"])) else None


def ensure_teacher(state_dir: Path) -> tuple[str, str]:
    """The teacher's (username, password): generated and saved on the first call, then reused."""
    path = state_dir / TEACHER_FILE
    if path.exists():
        saved = json.loads(path.read_text())
        if saved["username"] in load_users(state_dir):
            return saved["username"], saved["password"]
    credentials = (TEACHER_NAME, secrets.token_urlsafe(18))
    add_user(state_dir, *credentials, role=TEACHER)
    _write_private_json(path, {"username": credentials[0], "password": credentials[1]})
    return credentials


def teacher_file(state_dir: Path) -> Path:
    """Where the teacher's credentials are kept (mode 0600)."""
    return state_dir / TEACHER_FILE


def make_private(state_dir: Path) -> None:
    """Create `state_dir` if needed and make it 0700 and every file directly in it 0600, whoever made them."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(state_dir, 0o700)
    with os.scandir(state_dir) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                os.chmod(entry.path, 0o600)


def _write_private_json(path: Path, value: dict) -> None:
    """Replace `path` atomically with `value` as JSON, readable by its owner only."""
    write_private(path, json.dumps(value, indent=2))


def write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with `text`, mode 0600, in a directory made private (0700)."""
    make_private(path.parent)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    os.replace(temporary, path)
