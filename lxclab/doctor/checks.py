"""The doctor's checks: one fact each about this machine, with the one line that fixes it."""

from __future__ import annotations

import importlib.metadata
import os
import pwd
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import cgroups, lessons, namespaces, paths
from ..errors import CgroupError, LxcUnavailable, LxclabError
from ..limits import Limits
from ..lxc._binding import pylxc
from . import probes

DISK_NEEDED = 1 << 30  # the seed images, a few pulls, unpacked layers and containers, with room to spare
USERXATTR_KERNEL = (5, 11)  # overlayfs in a user namespace (rootless), keeping its xattrs in user.*
V2_WANTED = ("cpu", "memory", "pids")
PROBE_LIMITS = Limits(memory_bytes=64 << 20, cpus=0.5, pids=64)
APPARMOR = Path("/sys/module/apparmor/parameters/enabled")
APPARMOR_PROFILES = Path("/sys/kernel/security/apparmor/profiles")
SYSCTLS = {  # file -> (value that forbids unprivileged user namespaces, the fix)
    "/proc/sys/kernel/unprivileged_userns_clone": ("0", "sysctl -w kernel.unprivileged_userns_clone=1"),
    "/proc/sys/user/max_user_namespaces": ("0", "sysctl -w user.max_user_namespaces=15000"),
    "/proc/sys/kernel/apparmor_restrict_unprivileged_userns":
        ("1", "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"),
}
SETUP = "./kit setup (as root)"
GUIDE = "notebooks/TROUBLESHOOTING.md"  # explains each check and its fix
ROOT_FIX = "run the lessons as root: sudo ./kit classroom (on Binder this cannot change)"


@dataclass(frozen=True)
class Check:
    """One fact about this machine: whether it holds, what was found, and the line that fixes it."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def check_root() -> Check:
    """Root with CAP_SYS_ADMIN, as the lessons' mounts, namespaces, cgroups and LXC steps need."""
    uid = os.geteuid()
    if lessons.has_root("CAP_SYS_ADMIN"):
        net = "" if lessons.has_root("CAP_NET_ADMIN") else "; no CAP_NET_ADMIN, so lesson 06's veth step is shown"
        return Check("root", True, f"uid 0 with CAP_SYS_ADMIN{net}")
    who = "uid 0 without CAP_SYS_ADMIN" if uid == 0 else f"uid {uid} ({_user_name(uid)}), not root"
    return Check("root", False, f"{who}: mounts, namespaces, cgroups and LXC are only shown",
                 ROOT_FIX)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return "no name"


def kernel_version() -> tuple[int, int]:
    """(major, minor) of the running kernel, from uname."""
    major, minor = re.findall(r"\d+", os.uname().release)[:2]
    return int(major), int(minor)


def check_kernel() -> Check:
    """The kernel release; 5.11 or later lets overlayfs work in a user namespace (rootless)."""
    release = os.uname().release
    if kernel_version() >= USERXATTR_KERNEL:
        return Check("kernel", True, f"Linux {release}")
    return Check("kernel", False, f"Linux {release}: older than 5.11, so no rootless overlay (userxattr)",
                 "boot a newer kernel (Debian 12 ships 6.1)")


def check_cgroups() -> Check:
    """The cgroup version, the controllers where lxclab creates its groups, and a real group made there (as root)."""
    try:
        hierarchy = cgroups.detect()
    except CgroupError as exc:
        return Check("cgroups", False, str(exc), "mount cgroup2 on /sys/fs/cgroup (Debian does at boot)")
    # v1: the caller's own groups; v2: the root, whose controllers lxclab's delegated subtree gets
    where = hierarchy.own_dirs.get("memory") if hierarchy.version == 1 else hierarchy.mount
    if hierarchy.version == 1:
        have = [c for c in cgroups.CONTROLLERS if c in hierarchy.own_dirs]
        missing = [c for c in cgroups.CONTROLLERS if c not in hierarchy.own_dirs]
        fix = f"mount the v1 {', '.join(missing)} hierarchies, or boot with cgroup v2 only"
    else:
        have = [c for c in V2_WANTED if c in (_read(str(where / "cgroup.controllers")) or "").split()]
        missing = [c for c in V2_WANTED if c not in have]
        fix = f"delegate {', '.join(missing)} to lxclab's cgroup (systemd: Delegate=yes)"
    detail = f"v{hierarchy.version}: {', '.join(have) or 'no controllers'} at {where}"
    if missing:
        return Check("cgroups", False, f"{detail}; missing {', '.join(missing)}", fix)
    if not lessons.has_root():
        return Check("cgroups", False, f"{detail}; creating groups there needs root", ROOT_FIX)
    return _try_cgroup(hierarchy, detail)


def _try_cgroup(hierarchy: cgroups.Hierarchy, detail: str) -> Check:
    """Create a group with memory, CPU and pids limits where lxclab would, read its statistics, remove it."""
    try:
        with cgroups.create(f"lxclab-doctor-{os.getpid()}", PROBE_LIMITS, hierarchy) as group:
            group.stats()
    except CgroupError as exc:
        return Check("cgroups", False, f"{detail}; {exc}", f"see {GUIDE}, section 'cgroup v1 or v2'")
    return Check("cgroups", True, f"{detail}; made a group with limits there")


def check_user_namespaces() -> tuple[Check, Check]:
    """A real unprivileged user namespace (root tries as nobody), then a `userxattr` overlay inside it."""
    userns, overlay = probes.unprivileged()
    blocked = [(f"{Path(f).name} is {value}", fix) for f, (value, fix) in SYSCTLS.items() if _read(f) == value]
    sysctls = "; ".join(reason for reason, _ in blocked)
    detail = "; ".join(part for part in (userns.detail, sysctls) if part)
    fix = blocked[0][1] if blocked else f"see {GUIDE}, section 'User namespaces disabled'"
    namespaces = Check("user namespaces", userns.ok, detail, "" if userns.ok else fix)
    if kernel_version() < USERXATTR_KERNEL:
        return namespaces, Check("userxattr", False, "needs kernel 5.11", "rootless runs use --mode copy")
    overlay_fix = "" if overlay.ok else "rootless runs use --mode copy instead (nothing to do)"
    return namespaces, Check("userxattr", overlay.ok, f"rootless overlay: {overlay.detail}", overlay_fix)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def existing_home() -> Path:
    """$LXCLAB_HOME, or the nearest folder above it that exists yet."""
    home = paths.home()
    return next(folder for folder in (home, *home.parents) if folder.is_dir())


def check_overlayfs() -> Check:
    """A real overlay mount (write, whiteout) in a child, under a temporary dir in $LXCLAB_HOME; needs root."""
    known = "overlay" in (_read("/proc/filesystems") or "").split()
    if not lessons.has_root():
        state = "in /proc/filesystems" if known else "not loaded yet"
        return Check("overlayfs", False, f"not tried: mounting needs root (overlay {state})", ROOT_FIX)
    probe = probes.root_overlay(existing_home())
    fix = "" if probe.ok else "modprobe overlay; keep $LXCLAB_HOME on ext4 or xfs (not on an overlay or NFS)"
    return Check("overlayfs", probe.ok, f"{probe.detail} (under {existing_home()})", fix)


def check_lxc(packages: dict[str, str | None]) -> Check:
    """LXC's tools and library (Debian's lxc package)."""
    if shutil.which("lxc-start") or Path("/usr/bin/lxc-start").exists():
        return Check("lxc", True, f"lxc {packages.get('lxc') or 'installed'}")
    return Check("lxc", False, "lxc-start is not installed", "apt-get install lxc lxc-dev (or ./kit setup)")


def check_python_lxc() -> Check:
    """The python-lxc binding (PyPI `lxc`) imports."""
    try:
        binding = pylxc()
    except LxcUnavailable as exc:
        return Check("python-lxc", False, str(exc).split(":")[0],
                     "./kit setup (pip builds PyPI lxc against lxc-dev, with pkg-config and gcc)")
    return Check("python-lxc", True, f"imports (liblxc {binding.version})")


def check_apparmor() -> Check:
    """AppArmor's state; when it is on, LXC needs its container profile loaded."""
    if _read(str(APPARMOR)) != "Y":
        return Check("apparmor", True, "not enabled")
    profiles = _read(str(APPARMOR_PROFILES))
    if profiles is None:
        return Check("apparmor", True, "enabled (which profiles are loaded only root can read)")
    if "lxc-container-default" not in profiles:
        return Check("apparmor", False, "enabled, but LXC's lxc-container-default profile is not loaded",
                     "apparmor_parser -r -W /etc/apparmor.d/lxc-containers")
    return Check("apparmor", True, "enabled, LXC's lxc-container-default profile loaded")


def check_python() -> Check:
    """lxclab and its Python dependencies (and JupyterLab, where the lessons run) in this interpreter."""
    try:
        requires = importlib.metadata.requires("lxclab") or []
    except importlib.metadata.PackageNotFoundError:
        return Check("python", False, f"lxclab is not installed for {sys.executable}", SETUP)
    names = [re.split(r"[\s<>=!~;\[]", line)[0] for line in requires if "extra ==" not in line] + ["jupyterlab"]
    missing = [name for name in names if not _distribution(name)]
    if missing:
        return Check("python", False, f"missing from {sys.prefix}: {', '.join(missing)}", SETUP)
    return Check("python", True, f"lxclab {_distribution('lxclab')} and JupyterLab {_distribution('jupyterlab')} "
                                 f"in {sys.prefix}")


def _distribution(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_disk() -> Check:
    """Free space where $LXCLAB_HOME keeps images, layers and containers."""
    free = shutil.disk_usage(existing_home()).free
    detail = f"{free / (1 << 30):.1f} GiB free for {paths.home()}"
    if free < DISK_NEEDED:
        return Check("disk", False, f"{detail}; the lessons need about 1 GiB",
                     "free some space, or export LXCLAB_HOME=<a folder on a bigger disk>")
    return Check("disk", True, detail)


def check_iproute2() -> Check:
    """The `ip` command, with which lesson 06 wires a veth pair into a network namespace."""
    if shutil.which("ip") or Path("/usr/sbin/ip").exists():
        return Check("iproute2", True, "ip is installed")
    return Check("iproute2", False, "no ip command", "apt-get install iproute2")


def check_userns_remap() -> Check:
    """The subordinate ids of user lxclab-remap, which `lxclab run --userns` maps a container's root to."""
    try:
        ids = namespaces.remap_range()
    except LxclabError as exc:
        return Check("userns remap", False, probes.first_clause(exc), "./kit setup (as root)")
    return Check("userns remap", True, f"lxclab run --userns maps root to host uid {ids.uid}-{ids.uid + ids.size - 1}")


def check_kvm() -> Check:
    """/dev/kvm, which `./kit vm-test` and `./kit vm-image` use when they can (else QEMU's slower TCG)."""
    if not Path("/dev/kvm").exists():
        return Check("kvm", False, "no /dev/kvm: VMs run under TCG (slow)",
                     "enable virtualisation (nested, in a VM); nothing else needs it")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return Check("kvm", False, "/dev/kvm is not usable by this user", "adduser $USER kvm")
    return Check("kvm", True, "/dev/kvm usable")


def installed_packages(names: list[str]) -> dict[str, str | None]:
    """{package: installed version, or None} for Debian packages `names` (all None without dpkg)."""
    found: dict[str, str | None] = dict.fromkeys(names)
    try:
        done = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\t${Version}\n", *names],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return found
    for row in done.stdout.splitlines():
        name, status, version = row.split("\t")
        if status.startswith("ii") and name.partition(":")[0] in found:
            found[name.partition(":")[0]] = version
    return found


def check_packages(packages: dict[str, str | None], needed_by: dict[str, str]) -> Check:
    """Every Debian package ./kit setup installs; says what each missing one is for."""
    missing = [name for name, version in packages.items() if version is None]
    if missing:
        reasons = ", ".join(f"{name} ({needed_by[name]})" for name in missing)
        return Check("packages", False, f"missing {reasons}", SETUP)
    return Check("packages", True, f"all {len(packages)} that ./kit setup installs")
