"""Applying a profile inside the namespaces runtime's first process: the mounts, then the process itself.

Run in that process only (never in the caller), in this order: `mount_root_nodev`,
`mount_proc`, `mount_dev`, `mount_sys` and `cover` before pivot_root (while the host's
/dev/null can be bound); then `restrict` while still root with every capability (it needs CAP_SETPCAP to
shrink the bounding set, and CAP_SYS_ADMIN or no_new_privs to install the filter); then
the switch to the image's user; then `settle_capabilities` just before exec.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import _linux
from . import DEV_LINKS, DEV_NODES, Profile, capabilities, seccomp

SAFE = _linux.MS_NOSUID | _linux.MS_NODEV | _linux.MS_NOEXEC
# statvfs flags a user namespace may not clear on a remount (ST_* value -> MS_* value)
_LOCKED = {os.ST_RDONLY: _linux.MS_RDONLY, os.ST_NOSUID: _linux.MS_NOSUID, os.ST_NODEV: _linux.MS_NODEV,
           os.ST_NOEXEC: _linux.MS_NOEXEC, os.ST_NOATIME: 1 << 10, os.ST_NODIRATIME: 1 << 11,
           os.ST_RELATIME: 1 << 21}


def locked_flags(path: str | Path) -> int:
    """The mount flags of the mount holding `path` that a remount must repeat (a user namespace cannot drop them)."""
    flags = os.statvfs(path).f_flag
    result = 0
    for st_flag, ms_flag in _LOCKED.items():
        if flags & st_flag:
            result |= ms_flag
    return result


def remount(path: str | Path, flags: int) -> None:
    """Remount the bind mount at `path` adding `flags` (MS_RDONLY, MS_NODEV...), keeping its locked flags."""
    _linux.mount("none", str(path), None, _linux.MS_BIND | _linux.MS_REMOUNT | locked_flags(path) | flags)


def mount_root_nodev(rootfs: str | Path) -> None:
    """Make the container's root (already a bind mount of its own) nodev: image device nodes open nothing."""
    remount(rootfs, _linux.MS_NODEV)


def mount_dev(rootfs: str | Path, profile: Profile) -> None:
    """A fresh tmpfs /dev with only DEV_NODES (bound from the host's), pts, shm and the fd links.

    The tmpfs itself is nodev (unless the profile allows devices), so a node made there
    with mknod cannot be opened; the bound nodes are mounts of their own and still work.
    """
    dev = Path(rootfs) / "dev"
    dev.mkdir(exist_ok=True)
    nodev = _linux.MS_NODEV if profile.nodev else 0
    _linux.mount("tmpfs", dev, "tmpfs", _linux.MS_NOSUID | _linux.MS_NOEXEC | nodev, "mode=755,size=1m")
    for node in DEV_NODES:
        (dev / node).touch()
        _linux.mount(f"/dev/{node}", dev / node, None, _linux.MS_BIND)
    for name, target in DEV_LINKS.items():
        (dev / name).symlink_to(target)
    (dev / "pts").mkdir()
    _linux.mount("devpts", dev / "pts", "devpts", _linux.MS_NOSUID | _linux.MS_NOEXEC,
                 "newinstance,ptmxmode=0666,mode=620")
    (dev / "shm").mkdir()
    _linux.mount("shm", dev / "shm", "tmpfs", SAFE, "mode=1777")


def mount_proc(rootfs: str | Path) -> None:
    """Mount a proc filesystem at /proc in `rootfs` (before pivot_root: a user namespace may mount proc only
    while a full proc is visible)."""
    (Path(rootfs) / "proc").mkdir(exist_ok=True)
    _linux.mount("proc", Path(rootfs) / "proc", "proc", SAFE)


def mount_sys(rootfs: str | Path, profile: Profile) -> None:
    """Mount sysfs at /sys in `rootfs`, read-only unless the profile allows writing it."""
    (Path(rootfs) / "sys").mkdir(exist_ok=True)
    _linux.mount("sysfs", Path(rootfs) / "sys", "sysfs", SAFE | (_linux.MS_RDONLY if profile.readonly_sys else 0))


def cover(rootfs: str | Path, profile: Profile) -> None:
    """Cover the profile's masked paths and make its read-only paths so, under /proc and /sys in `rootfs`."""
    root = Path(rootfs)
    for path in profile.masked_paths:
        mask(root / path.lstrip("/"))
    for path in profile.readonly_paths:
        make_readonly(root / path.lstrip("/"))


def mask(path: Path) -> None:
    """Hide what `path` shows: /dev/null over a file, an empty read-only tmpfs over a directory; absent: nothing."""
    if path.is_dir():
        _linux.mount("tmpfs", path, "tmpfs", SAFE | _linux.MS_RDONLY, "size=0k,mode=555")
    elif path.exists():
        _linux.mount("/dev/null", path, None, _linux.MS_BIND)


def make_readonly(path: Path) -> None:
    """Bind `path` onto itself and remount that bind read-only; absent: nothing."""
    if path.exists():
        _linux.mount(str(path), str(path), None, _linux.MS_BIND | _linux.MS_REC)
        remount(path, _linux.MS_RDONLY)


def seccomp_filter(profile: Profile | None) -> bytes | None:
    """The seccomp program `profile` asks for (None: no filter); build it in the parent, before fork."""
    if profile is None or not profile.seccomp:
        return None
    return seccomp.program(profile.capabilities)


def restrict(profile: Profile, program: bytes | None = None) -> None:
    """Shrink the bounding set to the profile's capabilities, set no_new_privs, install the seccomp filter.

    Call it while still root with every capability; the filter (`program`, else built
    here) lets the user switch, capset and execve that follow through.
    """
    keep = capabilities.mask(profile.capabilities)
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for number in range(last + 1):
        if not keep >> number & 1:
            _linux.drop_bounding(number)
    if profile.no_new_privs:
        _linux.prctl(_linux.PR_SET_NO_NEW_PRIVS, 1)
    if profile.seccomp:
        _linux.set_seccomp_filter(program or seccomp.program(profile.capabilities))


def held(field: str) -> int:
    """One of this process's capability sets (CapPrm, CapBnd...) as /proc/self/status shows it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1], 16)
    raise KeyError(f"/proc/self/status has no {field} line")


def settle_capabilities(profile: Profile) -> None:
    """After the user switch: root keeps the profile's capabilities as effective and permitted, others none.

    Inheritable stays empty (as runc does since CVE-2022-24769) and ambient is cleared.
    """
    keep = capabilities.mask(profile.capabilities) & held("CapPrm") if os.getuid() == 0 else 0
    _linux.capset(keep, keep, 0)
    _linux.prctl(_linux.PR_CAP_AMBIENT, _linux.PR_CAP_AMBIENT_CLEAR_ALL)
