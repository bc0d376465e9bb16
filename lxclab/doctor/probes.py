"""Real probes for the doctor: try the thing in a forked child and say what happened.

Each probe that creates a namespace or mounts something runs in a child (`chroot.in_child`)
and returns a short result, so the caller's namespaces and mounts never change; the child
removes the temporary directories it made before it exits.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import _linux, chroot
from ..errors import LxclabError
from ..namespaces import _map_caller_to_root

NOBODY = 65534


@dataclass(frozen=True)
class Probe:
    """What one probe found: whether it worked, and the kernel's answer when it did not."""

    ok: bool
    detail: str


def overlay_probe(base: Path, options: str = "") -> Probe:
    """Mount an overlay of lower/upper/work dirs made under `base`, write and delete through it, unmount.

    Deleting a lower file must leave a whiteout (a 0/0 character device) in the upper dir.
    Call it in a child, in a mount namespace of its own.
    """
    dirs = {name: base / name for name in ("lower", "upper", "work", "merged")}
    for directory in dirs.values():
        directory.mkdir()
    (dirs["lower"] / "gone").write_text("from the lower layer\n")
    data = f"lowerdir={dirs['lower']},upperdir={dirs['upper']},workdir={dirs['work']}{options}"
    _linux.mount("overlay", str(dirs["merged"]), "overlay", 0, data)
    try:
        (dirs["merged"] / "new").write_text("written through the overlay\n")
        (dirs["merged"] / "gone").unlink()
        whiteout = os.lstat(dirs["upper"] / "gone")
    finally:
        _linux.umount(str(dirs["merged"]))
    if not ((dirs["upper"] / "new").is_file() and stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0):
        return Probe(False, "mounted, but writes did not land in the upper dir as overlayfs's")
    return Probe(True, "mounted, wrote through it, left a whiteout")


def root_overlay(parent: Path) -> Probe:
    """In a child with a private mount namespace, mount an overlay under a temporary dir in `parent`; needs root."""
    try:
        return chroot.in_child(_root_overlay_child, parent)
    except LxclabError as exc:
        return Probe(False, first_clause(exc))


def _root_overlay_child(parent: Path) -> Probe:
    chroot.private_mount_namespace()
    base = Path(tempfile.mkdtemp(prefix=".lxclab-doctor-", dir=parent))
    try:
        return overlay_probe(base)
    finally:
        remove(base)


def unprivileged(uid: int = NOBODY) -> tuple[Probe, Probe]:
    """As an unprivileged user (root becomes `uid` first): create a user namespace, then mount an overlay with
    `userxattr` in it, as a rootless container does; returns (user namespace, userxattr overlay)."""
    try:
        return chroot.in_child(_unprivileged_child, uid)
    except LxclabError as exc:
        failed = Probe(False, first_clause(exc))
        return failed, failed


def _unprivileged_child(uid: int) -> tuple[Probe, Probe]:
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    outer = os.getuid(), os.getgid()
    base = Path(tempfile.mkdtemp(prefix="lxclab-doctor-"))
    try:
        try:
            _linux.unshare(_linux.CLONE_NEWUSER | _linux.CLONE_NEWNS)
            _map_caller_to_root(*outer)
        except (LxclabError, OSError) as exc:
            return Probe(False, f"uid {outer[0]}: {first_clause(exc)}"), Probe(False, "needs a user namespace")
        userns = Probe(True, f"uid {outer[0]} made one and became root in it")
        try:
            return userns, overlay_probe(base, ",userxattr")
        except (LxclabError, OSError) as exc:
            return userns, Probe(False, first_clause(exc))
    finally:
        remove(base)


def first_clause(error: Exception) -> str:
    """An error's message up to its advice (lxclab's messages put advice after a ';')."""
    return str(error).split(";")[0]


def remove(base: Path) -> None:
    """Delete a probe's directory; overlayfs leaves its work/work dir with mode 000."""
    for root, dirs, _ in os.walk(base):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o700)
    shutil.rmtree(base, ignore_errors=True)
