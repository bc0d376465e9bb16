"""A seccomp filter with the semantics of Docker's default profile, written as readable classic BPF.

The kernel runs the filter on every system call the container makes, with a small
record (`struct seccomp_data`) as its input: the call's number, the CPU architecture
and six arguments. Docker's default profile is an allow-list of ~350 calls that answers
EPERM to the rest; the calls it leaves out are the ~50 in RULES below (keyrings, BPF,
modules, kexec, mounts, namespaces, clocks...). This filter names those instead and
answers EPERM to them, so that a learner can read it; calls that Docker allows only with
a capability (mount with SYS_ADMIN, settimeofday with SYS_TIME...) become allowed when
the profile keeps that capability. Where it differs from Docker's: a system call newer
than this table is allowed (an allow-list would refuse it), every call of another
architecture is refused (Docker allows i386 calls on x86_64), and `personality` is not
limited.

Pure functions, no I/O: `program` builds the bytes, `listing` prints them as an
assembler would, `lxc_profile` writes the same rules in LXC's seccomp file format.
"""

from __future__ import annotations

import errno
import functools
import os
import struct
from dataclasses import dataclass

from ..errors import InvalidValue

# Classic BPF instructions: (code, jump-if-true, jump-if-false, constant), 8 bytes each.
LOAD_WORD = 0x20  # BPF_LD | BPF_W | BPF_ABS: A = the 32-bit word at offset k of seccomp_data
JUMP_EQUAL = 0x15  # BPF_JMP | BPF_JEQ | BPF_K: if A == k
JUMP_AT_LEAST = 0x35  # BPF_JMP | BPF_JGE | BPF_K: if A >= k
JUMP_ANY_BIT = 0x45  # BPF_JMP | BPF_JSET | BPF_K: if A & k
RETURN = 0x06  # BPF_RET | BPF_K: the verdict k

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6] (little-endian halves).
NR, ARCH, ARG0_LOW = 0, 4, 16

ALLOW = 0x7FFF0000  # SECCOMP_RET_ALLOW
ERRNO = 0x00050000  # SECCOMP_RET_ERRNO | errno: fail the call with that errno, without running it
X32_BIT = 0x40000000  # x86_64's x32 ABI: the same calls under other numbers

# The architecture each filter checks first (AUDIT_ARCH_*), and the system call numbers
# of the calls the rules name. A call this architecture lacks is simply absent.
ARCHITECTURES = {
    "x86_64": 0xC000003E,
    "aarch64": 0xC00000B7,
}
SYSCALLS = {
    "x86_64": {
        "acct": 163, "add_key": 248, "bpf": 321, "chroot": 161, "clock_adjtime": 305, "clock_settime": 227,
        "clone": 56, "clone3": 435, "create_module": 174, "delete_module": 176, "fanotify_init": 300,
        "finit_module": 313, "fsconfig": 431, "fsmount": 432, "fsopen": 430, "fspick": 433, "get_kernel_syms": 177,
        "get_mempolicy": 239, "init_module": 175, "io_uring_enter": 426, "io_uring_register": 427,
        "io_uring_setup": 425, "ioperm": 173, "iopl": 172, "kcmp": 312, "kexec_file_load": 320, "kexec_load": 246,
        "keyctl": 250, "lookup_dcookie": 212, "mbind": 237, "mount": 165, "mount_setattr": 442, "move_mount": 429,
        "move_pages": 279, "name_to_handle_at": 303, "nfsservctl": 180, "open_by_handle_at": 304, "open_tree": 428,
        "perf_event_open": 298, "pidfd_getfd": 438, "pivot_root": 155, "process_madvise": 440, "query_module": 178,
        "quotactl": 179, "quotactl_fd": 443, "reboot": 169, "request_key": 249, "set_mempolicy": 238,
        "set_mempolicy_home_node": 450, "setns": 308, "settimeofday": 164, "socket": 41, "swapoff": 168,
        "swapon": 167, "syslog": 103, "sysfs": 139, "_sysctl": 156, "umount2": 166, "unshare": 272, "uselib": 134,
        "userfaultfd": 323, "ustat": 136, "vhangup": 153,
    },
    "aarch64": {
        "acct": 89, "add_key": 217, "bpf": 280, "chroot": 51, "clock_adjtime": 266, "clock_settime": 112,
        "clone": 220, "clone3": 435, "delete_module": 106, "fanotify_init": 262, "finit_module": 273,
        "fsconfig": 431, "fsmount": 432, "fsopen": 430, "fspick": 433, "get_mempolicy": 236, "init_module": 105,
        "io_uring_enter": 426, "io_uring_register": 427, "io_uring_setup": 425, "kcmp": 272,
        "kexec_file_load": 294, "kexec_load": 104, "keyctl": 219, "lookup_dcookie": 18, "mbind": 235, "mount": 40,
        "mount_setattr": 442, "move_mount": 429, "move_pages": 239, "name_to_handle_at": 264, "nfsservctl": 42,
        "open_by_handle_at": 265, "open_tree": 428, "perf_event_open": 241, "pidfd_getfd": 438, "pivot_root": 41,
        "process_madvise": 440, "quotactl": 60, "quotactl_fd": 443, "reboot": 142, "request_key": 218,
        "set_mempolicy": 237, "set_mempolicy_home_node": 450, "setns": 268, "settimeofday": 170, "socket": 198,
        "swapoff": 225, "swapon": 224, "syslog": 116, "umount2": 39, "unshare": 97, "userfaultfd": 282,
        "vhangup": 58,
    },
}

NAMESPACE_FLAGS = 0x7E020080  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWTIME
AF_VSOCK = 40


@dataclass(frozen=True)
class Rule:
    """Calls refused (with `errno_value`) unless the container keeps capability `unless`; why, in words.

    With `any_bit_of_arg0`, only calls whose first argument has one of those bits set are
    refused (clone with namespace flags); with `arg0_equals`, only those with that value.
    """

    calls: tuple[str, ...]
    why: str
    unless: str | None = None
    any_bit_of_arg0: int | None = None
    arg0_equals: int | None = None
    errno_value: int = errno.EPERM


RULES = (
    Rule(("add_key", "keyctl", "request_key"), "the kernel keyrings are not namespaced"),
    Rule(("userfaultfd",), "page-fault handling in user space makes kernel races easy to win"),
    Rule(("io_uring_setup", "io_uring_enter", "io_uring_register"), "a second system call path, often exploited"),
    Rule(("kexec_load", "kexec_file_load", "reboot"), "loading or booting another kernel", "SYS_BOOT"),
    Rule(("init_module", "finit_module", "delete_module", "create_module", "get_kernel_syms", "query_module"),
         "kernel modules run as the kernel", "SYS_MODULE"),
    Rule(("bpf",), "BPF programs run in the kernel", "SYS_ADMIN"),
    Rule(("perf_event_open",), "performance counters see the whole machine", "SYS_ADMIN"),
    Rule(("mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick",
          "mount_setattr"), "mounts could uncover what the profile masked", "SYS_ADMIN"),
    Rule(("unshare", "setns"), "new namespaces (a user namespace gives every capability back inside it)",
         "SYS_ADMIN"),
    Rule(("clone",), "clone with namespace flags is unshare by another name", "SYS_ADMIN",
         any_bit_of_arg0=NAMESPACE_FLAGS),
    Rule(("clone3",), "clone3's flags sit in memory a filter cannot read: ENOSYS makes libc fall back to clone",
         "SYS_ADMIN", errno_value=errno.ENOSYS),
    Rule(("quotactl", "quotactl_fd", "lookup_dcookie", "fanotify_init", "nfsservctl", "swapon", "swapoff",
          "sysfs", "_sysctl", "uselib", "ustat"), "host-wide file system and memory settings", "SYS_ADMIN"),
    Rule(("open_by_handle_at", "name_to_handle_at"), "file handles open files outside the root (the shocker "
         "exploit)", "DAC_READ_SEARCH"),
    Rule(("settimeofday", "clock_settime", "clock_adjtime"), "the clock is not namespaced", "SYS_TIME"),
    Rule(("acct",), "process accounting is host-wide", "SYS_PACCT"),
    Rule(("ioperm", "iopl"), "I/O ports are the hardware itself", "SYS_RAWIO"),
    Rule(("kcmp", "pidfd_getfd", "process_madvise"), "reaching into other processes", "SYS_PTRACE"),
    Rule(("syslog",), "the kernel log is host-wide", "SYSLOG"),
    Rule(("vhangup",), "hanging up terminals", "SYS_TTY_CONFIG"),
    Rule(("get_mempolicy", "set_mempolicy", "mbind", "move_pages", "set_mempolicy_home_node"),
         "NUMA memory placement is host-wide", "SYS_NICE"),
    Rule(("chroot",), "a new root", "SYS_CHROOT"),
    Rule(("socket",), "AF_VSOCK talks to the hypervisor", arg0_equals=AF_VSOCK),
)


def machine() -> str:
    """This machine's architecture as SYSCALLS names it; InvalidValue if the filter has no table for it."""
    arch = os.uname().machine
    name = {"arm64": "aarch64", "amd64": "x86_64"}.get(arch, arch)
    if name not in SYSCALLS:
        raise InvalidValue(f"no seccomp table for {name}: lxclab's filter knows {sorted(SYSCALLS)}; "
                           "run with --security-opt seccomp=unconfined")
    return name


def refused_rules(capabilities: tuple[str, ...]) -> list[Rule]:
    """The rules that apply to a container keeping `capabilities`: those whose capability it lacks."""
    return [rule for rule in RULES if rule.unless is None or rule.unless not in capabilities]


def instructions(capabilities: tuple[str, ...], arch: str | None = None) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k) tuples: check the architecture, then each refused call, then allow."""
    arch = arch or machine()
    numbers = SYSCALLS[arch]
    program = [(LOAD_WORD, 0, 0, ARCH), (JUMP_EQUAL, 1, 0, ARCHITECTURES[arch]), (RETURN, 0, 0, ERRNO | errno.EPERM),
               (LOAD_WORD, 0, 0, NR)]
    if arch == "x86_64":
        program += [(JUMP_AT_LEAST, 0, 1, X32_BIT), (RETURN, 0, 0, ERRNO | errno.EPERM)]
    for rule in refused_rules(capabilities):
        verdict = (RETURN, 0, 0, ERRNO | rule.errno_value)
        for call in (c for c in rule.calls if c in numbers):
            if rule.any_bit_of_arg0 is None and rule.arg0_equals is None:
                program += [(JUMP_EQUAL, 0, 1, numbers[call]), verdict]
                continue
            test = (JUMP_ANY_BIT, 0, 1, rule.any_bit_of_arg0) if rule.any_bit_of_arg0 is not None \
                else (JUMP_EQUAL, 0, 1, rule.arg0_equals)
            # if nr == call: A = arg0; if the test holds, refuse; either way reload nr and go on
            program += [(JUMP_EQUAL, 0, 3, numbers[call]), (LOAD_WORD, 0, 0, ARG0_LOW), test, verdict,
                        (LOAD_WORD, 0, 0, NR)]
    return program + [(RETURN, 0, 0, ALLOW)]


@functools.lru_cache(maxsize=16)  # the same few profiles start every container: build each filter once per process
def program(capabilities: tuple[str, ...], arch: str | None = None) -> bytes:
    """The filter as the bytes the kernel takes (struct sock_filter[]), for a container keeping `capabilities`."""
    return b"".join(struct.pack("HBBI", *line) for line in instructions(capabilities, arch))


def listing(capabilities: tuple[str, ...], arch: str | None = None) -> str:
    """The filter as readable assembly, one instruction per line, with the call names it tests."""
    arch = arch or machine()
    calls = {number: name for name, number in SYSCALLS[arch].items()}
    fields = {NR: "nr", ARCH: "arch", ARG0_LOW: "args[0]"}
    lines, loaded = [], None
    for index, (code, jt, jf, k) in enumerate(instructions(capabilities, arch)):
        if code == LOAD_WORD:
            loaded = fields[k]
            text = f"ld  [{loaded}]"
        elif code == RETURN:
            text = "ret ALLOW" if k == ALLOW else f"ret ERRNO({errno.errorcode[k & 0xFFFF]})"
        else:
            operator = {JUMP_EQUAL: "==", JUMP_AT_LEAST: ">=", JUMP_ANY_BIT: "&"}[code]
            name = calls.get(k, "") if loaded == "nr" and code == JUMP_EQUAL else ""
            text = f"if {loaded} {operator} {k:#x}{' (' + name + ')' if name else ''}: goto {index + 1 + jt} " \
                   f"else {index + 1 + jf}"
        lines.append(f"{index:3}  {text}")
    return "\n".join(lines)


def lxc_profile(capabilities: tuple[str, ...]) -> str:
    """The same refusals in LXC's seccomp file format (version 2, a deny-list), for lxc.seccomp.profile."""
    lines = ["2", "denylist", "[all]"]
    for rule in refused_rules(capabilities):
        action = f"errno {rule.errno_value}"
        for call in rule.calls:
            if rule.any_bit_of_arg0 is not None:
                lines += [f"{call} {action} [0,{bit:#x},SCMP_CMP_MASKED_EQ,{bit:#x}]"
                          for bit in (1 << n for n in range(32)) if rule.any_bit_of_arg0 & bit]
            elif rule.arg0_equals is not None:
                lines.append(f"{call} {action} [0,{rule.arg0_equals},SCMP_CMP_EQ]")
            else:
                lines.append(f"{call} {action}")
    return "\n".join(lines) + "\n"


def evaluate(program: list[tuple[int, int, int, int]], nr: int, arch: int, arg0: int = 0) -> int:
    """What the kernel answers for one call under `program`: run its classic BPF on (nr, arch, arg0).

    Only the instructions this module writes are understood (load a word, three jumps,
    return); the answer is the returned verdict, like ALLOW or ERRNO | EPERM.
    """
    data = {NR: nr & 0xFFFFFFFF, ARCH: arch, ARG0_LOW: arg0 & 0xFFFFFFFF}
    accumulator, index = 0, 0
    while index < len(program):
        code, jt, jf, k = program[index]
        if code == RETURN:
            return k
        if code == LOAD_WORD:
            accumulator = data[k]
            index += 1
            continue
        test = {JUMP_EQUAL: accumulator == k, JUMP_AT_LEAST: accumulator >= k, JUMP_ANY_BIT: bool(accumulator & k)}
        if code not in test:
            raise InvalidValue(f"instruction {index} has code {code:#x}, which this evaluator does not know")
        index += 1 + (jt if test[code] else jf)
    raise InvalidValue("the program ran off its end without a return: the kernel refuses such a filter")
