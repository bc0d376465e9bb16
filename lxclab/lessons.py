"""Helpers for the lesson notebooks: say plainly when a step cannot run here, never fake it.

On Binder (and on any learner's machine without root) the registry, manifest, layer and
copy-mode union steps run for real, but mounts, namespaces, cgroups and LXC need root with
CAP_SYS_ADMIN. A lesson guards such a step with `needs_root`, which returns True when the
step can run, and otherwise prints one line naming what is missing, after which the
lesson shows what the step would have done:

    if needs_root("mount the image's layers with overlayfs"):
        with overlay_mount(stack, target) as merged:
            ...
    else:
        print("mount -t overlay overlay -o", options, target)
"""

from __future__ import annotations

import os
from pathlib import Path

# Bit numbers in the capability sets of /proc/<pid>/status (linux/capability.h).
CAPABILITIES = {"CAP_SETUID": 7, "CAP_NET_ADMIN": 12, "CAP_SYS_CHROOT": 18, "CAP_SYS_ADMIN": 21}
STATUS_FILE = Path("/proc/self/status")
CHECKOUT = Path(__file__).resolve().parents[1]  # the lxclab clone, whose notebooks/data the lessons replay


def effective_capabilities(status_file: Path = STATUS_FILE) -> int:
    """This process's effective capability set as a bit mask, read from the `CapEff:` line of /proc."""
    for line in status_file.read_text().splitlines():
        name, _, value = line.partition(":")
        if name == "CapEff":
            return int(value.strip(), 16)
    return 0


def has_root(capability: str = "CAP_SYS_ADMIN") -> bool:
    """Whether this process is root (euid 0) with `capability`, as mounts and namespaces require CAP_SYS_ADMIN."""
    return os.geteuid() == 0 and bool(effective_capabilities() >> CAPABILITIES[capability] & 1)


def missing_root_message(step: str, would_do: str = "", capability: str = "CAP_SYS_ADMIN") -> str:
    """The one line a lesson prints when `step` cannot run here, ending with what it would have done."""
    return (f"This step needs root ({capability}): {step}. "
            f"On Binder you are not root; here is what it would do: {would_do}").rstrip()


def needs_root(step: str, would_do: str = "", capability: str = "CAP_SYS_ADMIN") -> bool:
    """True when `step` can run (euid 0 with `capability`, one of CAPABILITIES); else print what is missing, False."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}: use one of {', '.join(CAPABILITIES)}")
    if has_root(capability):
        return True
    print(missing_root_message(step, would_do, capability), flush=True)
    return False


def course_folder(*relatives: str, holding: str) -> Path:
    """The first of `relatives` that holds file `holding`, in the current folder or else in the lxclab checkout.

    Lessons find their recorded data (notebooks/data) this way, whether they run from the
    notebooks folder, from a student edition copied elsewhere, or on Binder.
    """
    for place in (Path.cwd(), CHECKOUT):
        for relative in relatives:
            if (place / relative / holding).is_file():
                return place / relative
    raise FileNotFoundError(f"no {' or '.join(relatives)} holding {holding} in {Path.cwd()} "
                            f"or in the lxclab checkout {CHECKOUT}: is this checkout complete (git status)?")
