"""The only module that calls libc directly (through ctypes): mounts, namespaces, pivot_root.

Each function raises KernelError naming the call, its arguments and errno's meaning.
All of them need privileges (CAP_SYS_ADMIN in the relevant user namespace).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

from .errors import KernelError

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

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


def _check(result: int, call: str) -> int:
    if result == -1:
        errno = ctypes.get_errno()
        raise KernelError(f"{call} failed: {os.strerror(errno)} (errno {errno})")
    return result


def mount(source: str, target: str, fstype: str | None = None, flags: int = 0, data: str | None = None) -> None:
    """Mount `source` on `target`; needs CAP_SYS_ADMIN and an existing target."""
    _check(
        _libc.mount(
            source.encode(), str(target).encode(), fstype.encode() if fstype else None,
            ctypes.c_ulong(flags), data.encode() if data else None,
        ),
        f"mount({source!r}, {str(target)!r}, {fstype!r}, data={data!r})",
    )


def umount(target: str, flags: int = 0) -> None:
    """Unmount `target` (umount2); MNT_DETACH detaches it now and frees it when no longer busy."""
    _check(_libc.umount2(str(target).encode(), flags), f"umount2({str(target)!r}, {flags})")
