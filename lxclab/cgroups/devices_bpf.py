"""Cgroup v2's device controller: an allow-list ("c 1:3 rwm"...) as an eBPF program attached to the group.

v2 has no devices.allow file. The kernel asks the BPF_PROG_TYPE_CGROUP_DEVICE programs
attached to a process's cgroup (and, with BPF_F_ALLOW_MULTI, its ancestors') before each
mknod, open for reading or writing of a device node; the access is allowed only if every one
returns 1. runc and LXC translate the rules into such a program; so does `device_program`:

    r2 = type (1 block, 2 char), r3 = access (1 mknod, 2 read, 4 write), r4 = major, r5 = minor
    for each rule:   if r2 != its type: next rule         (not for type 'a')
                     if r3 & ~its access: next rule       (not for 'rwm')
                     if r4 != its major: next rule        (not for '*'), the same with r5
                     return 1                             (a rule without conditions ends the program)
    return 0                                              (deny what no rule allows)

`attach` loads it (bpf(BPF_PROG_LOAD), with the verifier's log in the error when it refuses)
and attaches it to a cgroup directory (bpf(BPF_PROG_ATTACH)); the attachment holds the
program, so no file descriptor stays open. It needs root (CAP_SYS_ADMIN, or CAP_BPF and
CAP_NET_ADMIN). `attached` counts the programs on a group (bpf(BPF_PROG_QUERY)).
"""

from __future__ import annotations

import ctypes
import errno as errnos
import os
import struct
from pathlib import Path

from .._libc import check, libc
from ..errors import CgroupError, KernelError
from .vocabulary import DEVICE_ACCESS, DeviceRule, parse_device_rule

# bpf(2): commands, the program and attach types, the flag that lets groups below add their own programs
BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_QUERY = 5, 8, 16
BPF_PROG_TYPE_CGROUP_DEVICE, BPF_CGROUP_DEVICE = 15, 6
BPF_F_ALLOW_MULTI = 1 << 1
_SYS_BPF = {"x86_64": 321, "aarch64": 280, "arm64": 280}
# the program's context, struct bpf_cgroup_dev_ctx: access_type = access << 16 | type, major, minor (u32 each)
DEVICE_TYPE = {"b": 1, "c": 2}
ACCESS_BITS = {"m": 1, "r": 2, "w": 4}
_ALL_ACCESS = 0b111
_LICENSE = b"Apache-2.0"  # this kit's; the device program calls no GPL-only helper
_LOG_BYTES = 1 << 20
_ATTR_BYTES = 128  # union bpf_attr as this module fills it; the kernel wants the bytes it does not know zero

# eBPF opcodes (class | operation | source), and the registers the program uses
_LDX_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
_AND32_K, _RSH32_K, _MOV32_K = 0x54, 0x74, 0xB4  # BPF_ALU (32-bit) with BPF_K: dst &=, >>=, = imm
_JNE_K, _JSET_K, _EXIT = 0x55, 0x45, 0x95  # BPF_JMP: jump `off` instructions on !=, on a common bit; return r0
R0, R1, R2, R3, R4, R5 = range(6)


def instruction(opcode: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One 8-byte eBPF instruction: opcode, the two registers in one byte, a 16-bit offset and a 32-bit value."""
    return struct.pack("<BBhi", opcode, src << 4 | dst, off, imm)


# Split the context into r2 = type, r3 = access, r4 = major, r5 = minor (r1 points to it).
_PROLOGUE = [
    instruction(_LDX_W, R2, R1, 0), instruction(_AND32_K, R2, imm=0xFFFF),
    instruction(_LDX_W, R3, R1, 0), instruction(_RSH32_K, R3, imm=16),
    instruction(_LDX_W, R4, R1, 4), instruction(_LDX_W, R5, R1, 8),
]
_ALLOW = [instruction(_MOV32_K, R0, imm=1), instruction(_EXIT)]
_DENY = [instruction(_MOV32_K, R0, imm=0), instruction(_EXIT)]


def joined_rules(allowed: tuple[str, ...] | list[str]) -> list[DeviceRule]:
    """The parsed rules, those naming the same devices made one with the access of all (as v1 joins them), in order."""
    access: dict[tuple[str, int | None, int | None], set[str]] = {}
    for rule in map(parse_device_rule, allowed):
        access.setdefault((rule.type, rule.major, rule.minor), set()).update(rule.access)
    return [DeviceRule(*devices, "".join(letter for letter in DEVICE_ACCESS if letter in letters))
            for devices, letters in access.items()]


def _conditions(rule: DeviceRule) -> list[tuple[int, int, int]]:
    """The tests a device must pass for `rule` to allow it, as (opcode, register, value) jumps to the next rule."""
    access = sum(ACCESS_BITS[letter] for letter in rule.access)
    tests = [(_JNE_K, R2, DEVICE_TYPE[rule.type])] if rule.type != "a" else []
    if access != _ALL_ACCESS:
        tests.append((_JSET_K, R3, _ALL_ACCESS & ~access))  # any access bit the rule does not grant
    tests += [(_JNE_K, register, number) for register, number in ((R4, rule.major), (R5, rule.minor))
              if number is not None]
    return tests


def device_program(allowed: tuple[str, ...] | list[str]) -> bytes:
    """The eBPF program (8-byte instructions) that allows exactly the `allowed` rules and denies every other device."""
    code = list(_PROLOGUE)
    for rule in joined_rules(allowed):
        tests = _conditions(rule)
        for index, (opcode, register, value) in enumerate(tests):
            code.append(instruction(opcode, register, off=len(tests) - index - 1 + len(_ALLOW), imm=value))
        code += _ALLOW
        if not tests:  # allows everything: what follows could never run, and the verifier refuses dead code
            return b"".join(code)
    return b"".join(code + _DENY)


def _bpf(command: int, attr: bytes, call: str, hints: dict[int, str] | None = None) -> tuple[int, bytes]:
    """Call bpf(2) with `attr`, zero-padded to the union bpf_attr's size here; its result and `attr` after the call."""
    number = _SYS_BPF.get(os.uname().machine)
    if number is None:
        raise KernelError(f"bpf(2)'s number on {os.uname().machine} is unknown here: add it to _SYS_BPF")
    buffer = ctypes.create_string_buffer(attr.ljust(_ATTR_BYTES, b"\0"), _ATTR_BYTES)
    result = check(libc.syscall(ctypes.c_long(number), ctypes.c_int(command), buffer, ctypes.c_uint(_ATTR_BYTES)),
                   call, hints)
    return result, buffer.raw


def load(program: bytes) -> int:
    """Load a device program; its file descriptor. A program the verifier refuses raises CgroupError with its log."""
    try:
        return _load(program, None)
    except KernelError as exc:
        if exc.errno != errnos.EINVAL and exc.errno != errnos.EACCES:
            raise CgroupError(str(exc)) from None
    log = ctypes.create_string_buffer(_LOG_BYTES)
    try:
        return _load(program, log)
    except KernelError as exc:
        raise CgroupError(f"{exc}; the verifier said:\n{log.value.decode(errors='replace').strip()}") from None


def _load(program: bytes, log: ctypes.Array | None) -> int:
    """bpf(BPF_PROG_LOAD) of a BPF_PROG_TYPE_CGROUP_DEVICE program, with the verifier's log in `log` if given."""
    code = ctypes.create_string_buffer(program, len(program))
    license_text = ctypes.create_string_buffer(_LICENSE)
    attr = struct.pack("<IIQQIIQ", BPF_PROG_TYPE_CGROUP_DEVICE, len(program) // 8, ctypes.addressof(code),
                       ctypes.addressof(license_text), 1 if log is not None else 0,
                       len(log) if log is not None else 0, ctypes.addressof(log) if log is not None else 0)
    return _bpf(BPF_PROG_LOAD, attr, f"bpf(BPF_PROG_LOAD, a device program of {len(program) // 8} instructions)",
                {errnos.EPERM: "loading a BPF program needs root (CAP_SYS_ADMIN, or CAP_BPF)",
                 errnos.EACCES: "the verifier refused the program"})[0]


def attach(directory: Path | str, allowed: tuple[str, ...] | list[str]) -> None:
    """Deny every device but the `allowed` rules to the processes in the v2 cgroup `directory` (and its children).

    Attached with BPF_F_ALLOW_MULTI: a program on an ancestor (systemd's) still runs, and a
    runtime inside may add its own below, which can only narrow what this one allows.
    """
    program = load(device_program(allowed))
    try:
        group = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        os.close(program)
        raise CgroupError(f"cannot open cgroup {directory}: {exc.strerror}") from None
    try:
        _bpf(BPF_PROG_ATTACH, struct.pack("<IIII", group, program, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI),
             f"bpf(BPF_PROG_ATTACH, {directory}, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)",
             {errnos.EBADF: "the directory is not a cgroup v2 directory",
              errnos.EPERM: "it needs root; or an ancestor's program, attached without BPF_F_ALLOW_MULTI, "
                            "forbids more below it"})
    except KernelError as exc:
        raise CgroupError(str(exc)) from None
    finally:
        os.close(group)
        os.close(program)


def attached(directory: Path | str) -> int:
    """How many device programs are attached to the v2 cgroup `directory` itself (not counting its ancestors')."""
    group = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        # target_fd, attach_type, query_flags, attach_flags, prog_ids (none: only the count), prog_cnt
        after = _bpf(BPF_PROG_QUERY, struct.pack("<IIIIQI", group, BPF_CGROUP_DEVICE, 0, 0, 0, 0),
                     f"bpf(BPF_PROG_QUERY, {directory}, BPF_CGROUP_DEVICE)")[1]
    except KernelError as exc:
        raise CgroupError(str(exc)) from None
    finally:
        os.close(group)
    return struct.unpack_from("<I", after, 24)[0]
