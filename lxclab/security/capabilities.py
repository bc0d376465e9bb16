"""Capabilities: root's powers split into 41 bits, and the 14 that runc and Docker leave a container.

Pure data and a parser here; `lockdown` applies them. Names are the kernel's without
the CAP_ prefix (`SYS_ADMIN`), as `docker run --cap-add` takes them.
"""

from __future__ import annotations

from ..errors import InvalidValue

# Bit number of each capability (include/uapi/linux/capability.h).
NUMBERS = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6,
    "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9, "NET_BIND_SERVICE": 10, "NET_BROADCAST": 11,
    "NET_ADMIN": 12, "NET_RAW": 13, "IPC_LOCK": 14, "IPC_OWNER": 15, "SYS_MODULE": 16, "SYS_RAWIO": 17,
    "SYS_CHROOT": 18, "SYS_PTRACE": 19, "SYS_PACCT": 20, "SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23,
    "SYS_RESOURCE": 24, "SYS_TIME": 25, "SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28, "AUDIT_WRITE": 29,
    "AUDIT_CONTROL": 30, "SETFCAP": 31, "MAC_OVERRIDE": 32, "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35,
    "BLOCK_SUSPEND": 36, "AUDIT_READ": 37, "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}
ALL = tuple(NUMBERS)

# What runc, crun and Docker keep by default: enough to run services as root and change
# users, files and ports, and nothing that reaches past the container's own namespaces.
DEFAULT = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
           "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE")


def canonical(name: str) -> str:
    """A capability's name as NUMBERS spells it: 'cap_sys_admin' and 'sys_admin' become 'SYS_ADMIN'."""
    upper = name.strip().upper()
    upper = upper[4:] if upper.startswith("CAP_") else upper
    if upper != "ALL" and upper not in NUMBERS:
        raise InvalidValue(f"unknown capability {name!r}: use a name like SYS_ADMIN or NET_ADMIN, or ALL")
    return upper


def adjusted(base: tuple[str, ...], add: tuple[str, ...] = (), drop: tuple[str, ...] = ()) -> tuple[str, ...]:
    """`base` adjusted as Docker does: --cap-add ALL keeps all but the dropped; else drop (ALL: all), then add."""
    dropped = {canonical(name) for name in drop}
    added = {canonical(name) for name in add}
    if "ALL" in added:
        kept = set(ALL) - dropped
    else:
        kept = (set() if "ALL" in dropped else set(base) - dropped) | added
    return tuple(name for name in ALL if name in kept)


def mask(names: tuple[str, ...] | list[str]) -> int:
    """The bit mask of a set of capabilities, as capset and /proc/PID/status (CapEff...) write it."""
    bits = 0
    for name in names:
        bits |= 1 << NUMBERS[name]
    return bits


def names(bits: int) -> tuple[str, ...]:
    """The capabilities in a bit mask, like the hex of CapEff: in /proc/PID/status."""
    return tuple(name for name, number in NUMBERS.items() if bits >> number & 1)
