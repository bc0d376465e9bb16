"""The same security profile as LXC configuration keys, for the LXC runtime.

Pure functions: `keys` turns a Profile into (key, value) pairs for python-lxc's
set_config_item, `seccomp_file` into the text of the file that lxc.seccomp.profile names.
They stand in for `lxc.include = /usr/share/lxc/config/common.conf`, which drops only
five capabilities (lxc.cap.drop, which LXC refuses beside lxc.cap.keep) and denies only
kexec, module and open_by_handle_at calls: the profile asks for more. Its devices
allow-list is the same as common.conf's, less fuse. (LXC, through libseccomp, also adds
each rule for the compat architectures, i386 and x32 on x86_64, and allows their other
calls, as Docker does; lxclab's own filter refuses every call of another architecture.)
"""

from __future__ import annotations


from . import DEVICES_ALLOWED, Profile, capabilities, seccomp

# The masked paths that are directories (an empty tmpfs covers them; /dev/null covers the files),
# named here rather than looked up, so that a container's config is the same on every host.
MASKED_DIRECTORIES = frozenset({"/proc/acpi", "/proc/asound", "/proc/scsi", "/sys/firmware",
                                "/sys/devices/virtual/powercap"})
SHM_ENTRY = "shm dev/shm tmpfs nosuid,nodev,noexec,mode=1777,create=dir 0 0"


def keys(profile: Profile, seccomp_path: Path | str) -> list[tuple[str, str | list[str]]]:
    """The LXC keys that apply `profile`; the seccomp rules must be written to `seccomp_path` (seccomp_file)."""
    pairs: list[tuple[str, str | list[str]]] = [
        ("lxc.mount.auto", "proc:mixed sys:ro" if profile.readonly_sys else "proc:rw sys:rw"),
        ("lxc.no_new_privs", "1" if profile.no_new_privs else "0"),
        ("lxc.pty.max", "1024"),  # a devpts of its own, with /dev/ptmx, as common.conf sets
    ]
    if set(profile.capabilities) != set(capabilities.ALL):
        kept = [name.lower() for name in profile.capabilities] or ["none"]
        pairs.append(("lxc.cap.keep", kept))  # one value each: liblxc refuses a space-separated list here
    if profile.seccomp:
        pairs.append(("lxc.seccomp.profile", str(seccomp_path)))
    if profile.privileged:  # as Docker's --privileged: no AppArmor profile either (LXC's own would refuse mounts)
        pairs.append(("lxc.apparmor.profile", "unconfined"))
    if profile.nodev:
        pairs.append(("lxc.rootfs.options", "nodev"))
        for version in ("cgroup", "cgroup2"):
            pairs += [(f"lxc.{version}.devices.deny", "a"), (f"lxc.{version}.devices.allow", list(DEVICES_ALLOWED))]
    entries = [SHM_ENTRY] + [mask_entry(path) for path in profile.masked_paths] + \
        [readonly_entry(path) for path in profile.readonly_paths if not _covered_by_mixed_proc(path)]
    pairs.append(("lxc.mount.entry", entries))
    return pairs


def seccomp_file(profile: Profile) -> str:
    """The text of the LXC seccomp profile for `profile` (the rules of lxclab.security.seccomp)."""
    return seccomp.lxc_profile(profile.capabilities)


def mask_entry(path: str) -> str:
    """An lxc.mount.entry covering `path` as runc does (`optional`: skipped where this kernel lacks it)."""
    if path in MASKED_DIRECTORIES:
        return f"tmpfs {path.lstrip('/')} tmpfs ro,nosuid,nodev,noexec,size=0k,mode=555,optional 0 0"
    return f"/dev/null {path.lstrip('/')} none bind,optional 0 0"


def readonly_entry(path: str) -> str:
    """An lxc.mount.entry binding the kernel's `path` read-only at the same place (`optional`, as above)."""
    return f"{path} {path.lstrip('/')} none bind,ro,nosuid,nodev,noexec,optional 0 0"


def _covered_by_mixed_proc(path: str) -> bool:
    """Whether LXC's `proc:mixed` already makes `path` read-only (/proc/sys and /proc/sysrq-trigger)."""
    return path in ("/proc/sys", "/proc/sysrq-trigger")
