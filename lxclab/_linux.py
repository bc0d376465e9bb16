"""The kernel column's system calls through ctypes: namespaces, pivot_root, host names, capabilities, seccomp, links.

It builds on `_libc` (the libc handle and its error check, with mount and umount, which the
I/O column's overlays need too) and offers mount, umount and their flags again, so that the
kernel column and the lessons find every system call here. Each function raises
KernelError naming the call, its arguments and errno's meaning, with the errno kept as
`.errno`. All of them need privileges: CAP_SYS_ADMIN (CAP_NET_ADMIN for links) in the user
namespace that owns the namespace being changed.
"""

from __future__ import annotations

import ctypes
import errno as errnos
import fcntl
import os
import socket
import struct

from ._libc import (MNT_DETACH, MS_BIND, MS_MOVE, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE,  # noqa: F401
                    MS_RDONLY, MS_REC, MS_REMOUNT, MS_SLAVE, check, libc, mount, umount)  # offered again, as above
from .errors import KernelError

# clone(2) / unshare(2) / setns(2) flags: one per namespace kind
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# The namespace names of /proc/PID/ns/ and the flag that makes a new one of each.
NAMESPACE_FLAGS = {
    "mnt": CLONE_NEWNS,
    "uts": CLONE_NEWUTS,
    "ipc": CLONE_NEWIPC,
    "net": CLONE_NEWNET,
    "pid": CLONE_NEWPID,
    "user": CLONE_NEWUSER,
    "cgroup": CLONE_NEWCGROUP,
}

# prctl(2) options
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SECCOMP_MODE_FILTER = 2
_CAPABILITY_VERSION_3 = 0x20080522  # 64-bit capability sets, as two 32-bit halves

# pivot_root has no glibc wrapper: the raw system call number differs per architecture.
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41}
# The new mount API (Linux 5.2, idmapped mounts 5.12) has one number on every architecture.
_SYS_OPEN_TREE, _SYS_MOVE_MOUNT, _SYS_MOUNT_SETATTR = 428, 429, 442
_AT_FDCWD, _AT_EMPTY_PATH, _AT_RECURSIVE = -100, 0x1000, 0x8000
_OPEN_TREE_CLONE, _O_CLOEXEC = 1, 0o2000000
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_IDMAP = 0x00100000

def unshare(flags: int) -> None:
    """Move the caller into new namespaces of the kinds in `flags` (CLONE_NEW*).

    CLONE_NEWUSER needs a single-threaded caller (fork first); the other kinds need
    CAP_SYS_ADMIN; CLONE_NEWPID only affects children created afterwards.
    """
    check(
        libc.unshare(ctypes.c_int(flags)), f"unshare({namespace_names(flags)})",
        {errnos.EINVAL: "CLONE_NEWUSER needs a single-threaded process: fork a child and unshare there",
         errnos.ENOSPC: "too many namespaces of this kind: see /proc/sys/user/max_*_namespaces"},
    )


def setns(fd: int, nstype: int = 0) -> None:
    """Join the namespace that `fd` (an open /proc/PID/ns/KIND file) refers to.

    Needs CAP_SYS_ADMIN over that namespace; joining a PID namespace only affects children
    created afterwards, and a multi-threaded process cannot join a user or mount namespace.
    """
    check(libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), f"setns(fd {fd}, {namespace_names(nstype)})")


def pivot_root(new_root: str, put_old: str) -> None:
    """Make `new_root` the root of the caller's mount namespace and move the old root to `put_old`.

    `new_root` must be a mount point, not on the same mount as the current root, and the
    mounts involved must not be shared: use a new mount namespace with MS_PRIVATE first.
    """
    number = _SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        raise KernelError(f"pivot_root: no system call number known for {os.uname().machine}; add it to _linux")
    check(
        libc.syscall(ctypes.c_long(number), str(new_root).encode(), str(put_old).encode()),
        f"pivot_root({str(new_root)!r}, {str(put_old)!r})",
        dict.fromkeys((errnos.EINVAL, errnos.EBUSY), "new_root must be a mount point of its own (bind-mount it "
                      "onto itself) in a private, non-shared mount namespace"),
    )


def bind_idmapped(source: str, target: str, userns_fd: int) -> None:
    """Bind `source` (and mounts below it) onto `target`, its owners shifted by user namespace `userns_fd`'s maps.

    A file owned by uid N on disk shows as the namespace's N (like 100000 + N on the host);
    open_tree clones the tree, mount_setattr(MOUNT_ATTR_IDMAP) shifts it, move_mount
    attaches it. Needs CAP_SYS_ADMIN where the mount is made and a file system that
    supports idmapped mounts (ext4, xfs, btrfs since 5.12; tmpfs since 6.3).
    """
    class MountAttr(ctypes.Structure):
        _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                    ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]

    tree = check(libc.syscall(ctypes.c_long(_SYS_OPEN_TREE), ctypes.c_int(_AT_FDCWD), str(source).encode(),
                              ctypes.c_uint(_OPEN_TREE_CLONE | _O_CLOEXEC | _AT_RECURSIVE)), f"open_tree({source!r})")
    try:
        attr = MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
        check(libc.syscall(ctypes.c_long(_SYS_MOUNT_SETATTR), ctypes.c_int(tree), b"",
                           ctypes.c_uint(_AT_EMPTY_PATH | _AT_RECURSIVE), ctypes.byref(attr),
                           ctypes.c_size_t(ctypes.sizeof(attr))),
              f"mount_setattr({source!r}, MOUNT_ATTR_IDMAP)",
              dict.fromkeys((errnos.EINVAL, errnos.EOPNOTSUPP), "this file system cannot be idmapped on this "
                            "kernel: put the layers on ext4, xfs or btrfs, or use copy mode"))
        check(libc.syscall(ctypes.c_long(_SYS_MOVE_MOUNT), ctypes.c_int(tree), b"", ctypes.c_int(_AT_FDCWD),
                           str(target).encode(), ctypes.c_uint(_MOVE_MOUNT_F_EMPTY_PATH)),
              f"move_mount({source!r} -> {target!r})")
    finally:
        os.close(tree)


def sethostname(name: str) -> None:
    """Set the host name of the caller's UTS namespace; needs CAP_SYS_ADMIN over it, at most 64 bytes."""
    raw = name.encode()
    check(libc.sethostname(raw, ctypes.c_size_t(len(raw))), f"sethostname({name!r})")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """Call prctl(2) with integer arguments, e.g. PR_SET_DUMPABLE after setuid, before writing uid_map."""
    args = [ctypes.c_ulong(a) for a in (arg2, arg3, arg4, arg5)]
    return check(libc.prctl(ctypes.c_int(option), *args), f"prctl({option}, {arg2}, {arg3}, {arg4}, {arg5})")


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set the calling thread's effective, permitted and inheritable capability sets (bit masks).

    A set may only shrink, except that effective and inheritable may take capabilities
    from permitted (inheritable also needs them in the bounding set, or CAP_SETPCAP).
    """
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    halves = (Data * 2)(*[Data(*((mask >> shift) & 0xFFFFFFFF for mask in (effective, permitted, inheritable)))
                          for shift in (0, 32)])
    header = Header(_CAPABILITY_VERSION_3, 0)
    check(libc.capset(ctypes.byref(header), halves),
           f"capset(effective={effective:#x}, permitted={permitted:#x}, inheritable={inheritable:#x})",
           {errnos.EPERM: "a capability set may only shrink: raise nothing that is not in the permitted set"})


def drop_bounding(capability: int) -> None:
    """Remove one capability from the bounding set, for good (PR_CAPBSET_DROP); needs CAP_SETPCAP."""
    check(libc.prctl(ctypes.c_int(PR_CAPBSET_DROP), ctypes.c_ulong(capability), ctypes.c_ulong(0),
                       ctypes.c_ulong(0), ctypes.c_ulong(0)), f"prctl(PR_CAPBSET_DROP, {capability})")


def set_seccomp_filter(program: bytes) -> None:
    """Install a classic BPF seccomp filter (8-byte instructions) on the calling thread, for good.

    The kernel needs no_new_privs set first, or CAP_SYS_ADMIN; filters stack and are
    inherited across fork and execve.
    """
    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    if len(program) % 8:
        raise KernelError(f"a seccomp program is whole 8-byte instructions, not {len(program)} bytes")
    code = ctypes.create_string_buffer(program, len(program))
    fprog = Program(len(program) // 8, ctypes.cast(code, ctypes.c_void_p))
    check(libc.prctl(ctypes.c_int(PR_SET_SECCOMP), ctypes.c_ulong(SECCOMP_MODE_FILTER),
                       ctypes.c_ulong(ctypes.addressof(fprog)), ctypes.c_ulong(0), ctypes.c_ulong(0)),
           f"prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, {len(program) // 8} instructions)",
           {errnos.EACCES: "set no_new_privs first (PR_SET_NO_NEW_PRIVS), or keep CAP_SYS_ADMIN until the filter "
                           "is installed",
            errnos.EINVAL: "the kernel refused the BPF program: check its jumps and its last instruction"})


def set_link_up(interface: str) -> None:
    """Bring a network interface of the caller's network namespace up; needs CAP_NET_ADMIN over it."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh22x", interface.encode(), 0)
        try:
            flags = struct.unpack("16sh22x", fcntl.ioctl(sock, siocgifflags, request))[1]
            fcntl.ioctl(sock, siocsifflags, struct.pack("16sh22x", interface.encode(), flags | iff_up))
        except OSError as exc:
            error = KernelError(f"ioctl(SIOCSIFFLAGS, {interface!r}, up) failed: {exc.strerror}; "
                                "it needs CAP_NET_ADMIN in the interface's network namespace")
            error.errno = exc.errno
            raise error from None


def namespace_names(flags: int) -> str:
    """The CLONE_NEW* flags in `flags` as readable text, like 'CLONE_NEWNS|CLONE_NEWPID'."""
    names = [f"CLONE_NEW{kind.upper() if kind != 'mnt' else 'NS'}"
             for kind, flag in NAMESPACE_FLAGS.items() if flags & flag]
    return "|".join(names) or "0"
