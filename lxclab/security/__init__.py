"""The security profile: what a container's root may still do, one description that both runtimes apply.

runc, crun and Docker contain a root process with five defences, and so does lxclab:

- capabilities: only the 14 of `capabilities.DEFAULT` stay in the bounding, effective
  and permitted sets (inheritable and ambient empty);
- /proc and /sys: MASKED_PATHS covered (an empty read-only tmpfs or /dev/null),
  READONLY_PATHS and the whole of /sys read-only;
- devices: a fresh /dev holding only DEV_NODES (and pts, shm, the fd links), the root
  and every writable mount `nodev`, so a device node from an image or mknod opens nothing;
  the container's group allows only DEVICES_ALLOWED, Docker's list (v1's devices files
  where the host has them, v2's eBPF program);
- no_new_privs: no setuid binary or file capability can give back what was dropped;
- seccomp: the calls of `seccomp.RULES` refused with EPERM.

`Profile.build` reads Docker's options (--privileged, --cap-add/--cap-drop,
--security-opt seccomp=unconfined / no-new-privileges=false); the namespaces runtime
applies a profile in its first process (`lockdown`), the LXC runtime turns the same
profile into LXC keys (`lxc_keys`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from ..errors import InvalidValue
from . import capabilities

MASKED_PATHS = ("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                "/sys/devices/virtual/powercap")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
# The device nodes of a container's /dev (bind mounts of the host's, which mknod cannot
# make in a user namespace); /dev/console is the container's terminal when it has one.
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
             "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"}
# The device controller's allow-list, Docker's and LXC's (common.conf's, less fuse): mknod of
# any node (opening it is another matter); null, zero, full, random, urandom; tty, console,
# ptmx; and pty slaves (devpts, major 136).
DEVICES_ALLOWED = ("c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
                   "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm")
UNCONFINED = "unconfined"


@dataclass(frozen=True)
class Profile:
    """What a container's processes may do: the capabilities they keep and which defences are on."""

    capabilities: tuple[str, ...] = capabilities.DEFAULT
    no_new_privs: bool = True
    seccomp: bool = True
    masked_paths: tuple[str, ...] = MASKED_PATHS
    readonly_paths: tuple[str, ...] = READONLY_PATHS
    readonly_sys: bool = True
    nodev: bool = True
    privileged: bool = False

    @classmethod
    def build(cls, privileged: bool = False, cap_add: tuple[str, ...] | list[str] = (),
              cap_drop: tuple[str, ...] | list[str] = (), security_opt: tuple[str, ...] | list[str] = ()) -> Profile:
        """The profile Docker's options ask for: the default, or --privileged, then caps and --security-opt."""
        profile = cls.unconfined() if privileged else cls()
        profile = replace(profile, capabilities=capabilities.adjusted(profile.capabilities, tuple(cap_add),
                                                                      tuple(cap_drop)))
        for option in security_opt:
            profile = profile._with_option(option)
        return profile

    @classmethod
    def unconfined(cls) -> Profile:
        """--privileged: every capability, no seccomp, no masks, /sys writable, image devices usable."""
        return cls(capabilities=capabilities.ALL, no_new_privs=False, seccomp=False, masked_paths=(),
                   readonly_paths=(), readonly_sys=False, nodev=False, privileged=True)

    def _with_option(self, option: str) -> Profile:
        """This profile with one --security-opt applied (`seccomp=unconfined`, `no-new-privileges[=bool]`)."""
        key, _, value = option.replace(":", "=", 1).partition("=")
        if key == "seccomp" and value == UNCONFINED:
            return replace(self, seccomp=False)
        if key == "no-new-privileges" and value in ("", "true", "false"):
            return replace(self, no_new_privs=value != "false")
        raise InvalidValue(f"unknown --security-opt {option!r}: lxclab knows seccomp=unconfined and "
                           "no-new-privileges[=true|false]")

    def to_dict(self) -> dict:
        """The profile as JSON-ready data, for a container's record."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> Profile:
        """A profile read back from `to_dict` output; the default profile for an empty or missing record."""
        if not data:
            return cls()
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in data.items()})

    def describe(self) -> list[str]:
        """One line per defence, saying whether it is on, for `inspect`, lessons and errors."""
        dropped = len(capabilities.ALL) - len(self.capabilities)
        return [
            f"capabilities: {len(self.capabilities)} kept, {dropped} dropped ({', '.join(self.capabilities)})",
            f"no_new_privs: {'on' if self.no_new_privs else 'off'}",
            f"seccomp: {'Docker-like deny rules, EPERM' if self.seccomp else UNCONFINED}",
            f"masked: {len(self.masked_paths)} paths; read-only: {len(self.readonly_paths)} paths, "
            f"/sys {'read-only' if self.readonly_sys else 'writable'}",
            f"devices: {'fresh /dev, nodev mounts' if self.nodev else 'image device nodes usable'}",
        ]
