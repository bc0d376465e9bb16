"""Checks for level B7: the learner's capability mask against the kernel, and the drop in a child.

The mask is compared with what the kernel reports for a process that util-linux's
`setpriv` gave the same bounding set; the drop runs in a forked child, which then reads
its own capability sets from /proc and tries a step that needs CAP_SYS_ADMIN.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from .. import _linux
from ..chroot import in_child
from ..errors import KernelError
from ..exercises import check_against
from ..lessons import effective_capabilities, has_root
from .capabilities import CAP_LAST_CAP, CAPABILITIES, DOCKER_DEFAULT
from .feedback import attempt, expect, not_checked, passed

SETS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")


def kernel_mask(names: list[str]) -> int:
    """The bounding set the kernel reports for a process that setpriv limited to `names` (libcap's capsh without root)."""
    if not effective_capabilities() >> CAPABILITIES["SETPCAP"] & 1:  # setpriv needs it to shrink a bounding set
        return _capsh_mask(names)
    caps = ",".join(["-all"] + [f"+{name.lower()}" for name in names])
    status = subprocess.run(["setpriv", f"--bounding-set={caps}", "cat", "/proc/self/status"],
                            capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("CapBnd:")), 16)


def _capsh_mask(names: list[str]) -> int:
    """The mask of `names` as libcap numbers them: `capsh --decode` of every single bit this kernel knows."""
    wanted, mask = {f"cap_{name.lower()}" for name in names}, 0
    for number in range(int(Path(CAP_LAST_CAP).read_text()) + 1):
        decoded = subprocess.run(["capsh", f"--decode={1 << number:#x}"], capture_output=True, text=True, check=True)
        if decoded.stdout.strip().partition("=")[2] in wanted:
            mask |= 1 << number
    return mask


def permitted() -> int:
    """This process's permitted capability set, from /proc/self/status."""
    status = Path("/proc/self/status").read_text().splitlines()
    return int(next(line.split()[1] for line in status if line.startswith("CapPrm:")), 16)


def check_capability_mask(capability_mask: Callable) -> None:
    """The learner's mask must be the bits the kernel uses for the same names."""
    cases = [(["CHOWN"],), (["SYS_ADMIN", "NET_ADMIN"],), (list(DOCKER_DEFAULT),), (["CHECKPOINT_RESTORE", "BPF"],)]
    check_against(capability_mask, kernel_mask, cases,
                  hint="Capability number n is bit n: add 1 << CAPABILITIES[name] for each name (each once).")


def _drop_and_report(drop_capabilities: Callable, keep: list[str]) -> tuple[dict[str, int], str]:
    """In the child: the learner's drop, then its capability sets and what unshare(CLONE_NEWUTS) says."""
    attempt(drop_capabilities, keep, hint="Drop from the bounding set first (prctl needs CAP_SETPCAP), then capset.")
    status = Path("/proc/self/status").read_text().splitlines()
    sets = {line.split(":")[0]: int(line.split()[1], 16) for line in status if line.split(":")[0] in SETS}
    try:
        _linux.unshare(_linux.CLONE_NEWUTS)
        refused = "allowed"
    except KernelError:
        refused = "refused"
    return sets, refused


def check_drop_capabilities(drop_capabilities: Callable) -> None:
    """Drop to Docker's default set in a child; every set must be right and CAP_SYS_ADMIN must be gone."""
    if not has_root():
        not_checked("drop_capabilities", "only a process that holds capabilities can drop them; as root the check "
                    "drops to Docker's default list in a child and reads its sets from /proc/self/status")
        return
    keep = kernel_mask(list(DOCKER_DEFAULT)) & permitted()
    sets, unshare = in_child(_drop_and_report, drop_capabilities, list(DOCKER_DEFAULT))
    expect(sets["CapBnd"] == keep, f"the bounding set is {sets['CapBnd']:#x}, not {keep:#x}",
           "Drop every capability you do not keep from the bounding set with prctl(PR_CAPBSET_DROP, n), "
           "n from 0 to /proc/sys/kernel/cap_last_cap; otherwise exec of a setuid or file-capability program gets them back.")
    expect(sets["CapEff"] == keep and sets["CapPrm"] == keep,
           f"the effective set is {sets['CapEff']:#x} and the permitted {sets['CapPrm']:#x}, not {keep:#x}",
           "The bounding set only limits what exec may gain: capset the effective and permitted sets to the mask too.")
    expect(sets["CapInh"] == 0 and sets["CapAmb"] == 0, "the inheritable or ambient set is not empty",
           "capset inheritable to 0 and clear the ambient set (prctl PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL).")
    expect(unshare == "refused", "after the drop, unshare(CLONE_NEWUTS) was still allowed", "CAP_SYS_ADMIN must be gone.")
    passed(f"drop_capabilities: bounding, permitted and effective sets are Docker's {len(DOCKER_DEFAULT)}, "
           "inheritable and ambient empty; unshare (CAP_SYS_ADMIN) refused")
