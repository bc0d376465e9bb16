"""libc through ctypes, shared by both columns of the layers: its handle, the error check, mount and umount.

The I/O column (`unionfs/`) mounts overlays and the kernel column (`_linux`, `chroot`,
`namespaces`, `lxc/`) mounts everything else; both call mount(2) and umount2(2) here.
Every other system call is wrapped in `_linux`, which builds on this module. Each
function raises KernelError naming the call, its arguments and errno's meaning, with the
errno kept as `.errno`.
"""

from __future__ import annotations

import ctypes
import errno as errnos
import os

from .errors import KernelError

# the one handle on libc: the C library this Python already runs on (find_library would run `ldconfig -p` at every start)
libc = ctypes.CDLL(None, use_errno=True)

# mount(2) flags
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
# umount2(2) flags
MNT_DETACH = 0x2

_HINTS = {
    errnos.EPERM: "it needs CAP_SYS_ADMIN: run as root, or inside a user namespace you created",
    errnos.EACCES: "permission denied: check ownership and that the caller may use this path",
    errnos.ENOENT: "a path does not exist: create the target first",
    errnos.EBUSY: "the target is busy: a process or mount still uses it",
}


def check(result: int, call: str, hints: dict[int, str] | None = None) -> int:
    """Return `result`, or raise KernelError describing `call` if it is -1."""
    if result == -1:
        number = ctypes.get_errno()
        hint = (hints or {}).get(number) or _HINTS.get(number)
        message = f"{call} failed: {os.strerror(number)} (errno {number})"
        error = KernelError(f"{message}; {hint}" if hint else message)
        error.errno = number
        raise error
    return result


def mount(source: str, target: str, fstype: str | None = None, flags: int = 0, data: str | None = None) -> None:
    """Mount `source` on `target`; needs CAP_SYS_ADMIN and an existing target."""
    check(
        libc.mount(
            source.encode(), str(target).encode(), fstype.encode() if fstype else None,
            ctypes.c_ulong(flags), data.encode() if data else None,
        ),
        f"mount({source!r}, {str(target)!r}, {fstype!r}, data={data!r})",
    )


def umount(target: str, flags: int = 0) -> None:
    """Unmount `target` (umount2); MNT_DETACH detaches it now and frees it when no longer busy."""
    check(libc.umount2(str(target).encode(), flags), f"umount2({str(target)!r}, {flags})")
