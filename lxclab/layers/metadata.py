"""File metadata (owner, mode, times, xattrs): read from tar headers, applied without following links.

Order matters: chown first (it clears setuid/setgid), then chmod, then xattrs, then the
times (every other change touches ctime, and adding children touches a directory's mtime).
Only root may chown; others keep their own uid and gid. Overlayfs's own attributes
(`trusted.overlay.*`) never come from a layer: a layer could otherwise forge an opaque
directory or a redirect.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a container's start reads and applies metadata without loading tarfile
    import tarfile

XATTR_PAX_PREFIX = "SCHILY.xattr."
OVERLAY_XATTR_PREFIX = "trusted.overlay."
_XATTR_UNSUPPORTED = (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.EACCES)


@dataclass(frozen=True)
class Metadata:
    """What a tar header says about a file besides its content: mode bits, owner, mtime, xattrs."""

    mode: int
    uid: int = 0
    gid: int = 0
    mtime_ns: int = 0
    xattrs: tuple[tuple[str, bytes], ...] = field(default=())


DEFAULT_DIRECTORY = Metadata(0o755)
"""A directory the layer implies but never lists (a parent of a listed path): 0755, root's, mtime 0."""


def privileged() -> bool:
    """True when running as root, so ownership can be restored."""
    return os.geteuid() == 0


def from_tarinfo(info: tarfile.TarInfo) -> Metadata:
    """The metadata a tar header carries, with mtime to the nanosecond when a PAX header gives it."""
    xattrs = tuple(
        (key[len(XATTR_PAX_PREFIX):], value.encode("utf-8", "surrogateescape"))
        for key, value in sorted(info.pax_headers.items())
        if key.startswith(XATTR_PAX_PREFIX)
    )
    return Metadata(stat.S_IMODE(info.mode), info.uid, info.gid, _mtime_ns(info), xattrs)


def _mtime_ns(info: tarfile.TarInfo) -> int:
    from decimal import Decimal, InvalidOperation  # only PAX headers' exact mtimes need it
    exact = info.pax_headers.get("mtime")
    try:
        return int(Decimal(exact) * 1_000_000_000) if exact else int(info.mtime) * 1_000_000_000
    except (InvalidOperation, ValueError):
        return int(info.mtime * 1_000_000_000)


def read_metadata(path: Path) -> Metadata:
    """The metadata of an existing file, not following a final symlink (xattrs left out)."""
    st = os.lstat(path)
    return Metadata(stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns)


def dir_metadata(path: Path) -> Metadata:
    """A directory's (or file's) metadata including its xattrs (overlayfs's own left out)."""
    st = os.lstat(path)
    xattrs = tuple(
        (name, os.getxattr(path, name, follow_symlinks=False))
        for name in sorted(os.listxattr(path, follow_symlinks=False))
        if not name.startswith(OVERLAY_XATTR_PREFIX)
    )
    return Metadata(stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns, xattrs)


def apply_metadata(path: Path, meta: Metadata, warnings: list[str] | None = None) -> None:
    """Give `path` (never followed if it is a symlink) the owner, mode, xattrs and mtime of `meta`."""
    is_link = stat.S_ISLNK(os.lstat(path).st_mode)
    if privileged():
        os.chown(path, meta.uid, meta.gid, follow_symlinks=False)
    if not is_link:
        chmod_nofollow(path, meta.mode)
    for name, value in meta.xattrs:
        set_xattr(path, name, value, warnings)
    os.utime(path, ns=(meta.mtime_ns, meta.mtime_ns), follow_symlinks=False)


def chmod_nofollow(path: Path, mode: int) -> None:
    """chmod that refuses to follow a symlink (where libc can; callers already checked the type)."""
    try:
        os.chmod(path, mode, follow_symlinks=False)
    except NotImplementedError:
        os.chmod(path, mode)


def set_xattr(path: Path, name: str, value: bytes, warnings: list[str] | None) -> None:
    """Set one extended attribute; overlayfs's own and unsupported ones become warnings."""
    if name.startswith(OVERLAY_XATTR_PREFIX):
        _warn(warnings, f"ignored xattr {name}: overlayfs markers come only from whiteouts")
        return
    try:
        os.setxattr(path, name, value, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in _XATTR_UNSUPPORTED:
            raise
        _warn(warnings, f"xattr {name} not kept: {os.strerror(exc.errno)}")


def clear_foreign_xattrs(path: Path, keep: tuple[tuple[str, bytes], ...]) -> None:
    """Remove xattrs of a reused directory that the layer does not list (overlay markers stay)."""
    wanted = {name for name, _ in keep}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return
    for name in names:
        if name not in wanted and not name.startswith(OVERLAY_XATTR_PREFIX):
            try:
                os.removexattr(path, name, follow_symlinks=False)
            except OSError:
                pass


def _warn(warnings: list[str] | None, message: str) -> None:
    if warnings is not None and message not in warnings:
        warnings.append(message)
