"""Check for level B8: the learner's `mydocker run` behaves as `lxclab run` does, case by case.

Both run the same commands in the classroom's busybox with the same limits: what they
print, their exit status, the host name, pid 1, and a memory hog killed with status 137.
The learner's function runs in a forked child, so the notebook's process never moves.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from .. import cgroups
from ..chroot import in_child
from ..lessons import has_root
from .capabilities import DOCKER_DEFAULT
from .capability_checks import kernel_mask, permitted
from .feedback import attempt, expect, not_checked, passed
from .isolation_checks import busybox_rootfs

MEMORY, CPUS, PIDS, HOSTNAME = 48 << 20, 0.5, 64, "mydocker"
# (what the case shows, the command, the hint when the learner's run differs)
CASES = [
    ("stdout", ["echo", "hello from the capstone"], "Send the command's stdout to the output file before exec."),
    ("exit status", ["sh", "-c", "exit 3"], "Return the command's exit status, passed up through both forks."),
    ("host name", ["hostname"], "Unshare the UTS namespace and sethostname(hostname) before the command runs."),
    ("pid 1", ["sh", "-c", "echo $$"], "Unshare CLONE_NEWPID and fork again: the command must be pid 1."),
    ("memory limit", ["sh", "-c", "x=a; while true; do x=$x$x; done"],
     "Put the first process into the group (its PID into cgroup.procs) before it unshares or execs, with the "
     "memory limit written: the kernel's SIGKILL must show as 137."),
]


PROBE = ["sh", "-c", "echo pid=$$; echo host=$(hostname); grep CapEff /proc/self/status; cat /proc/self/cgroup"]


def check_run_contained(run_contained: Callable, registry: str) -> None:
    """Run a probe with the learner's run_contained in a fresh group: pid 1, host name, capabilities, cgroup."""
    if not has_root():
        not_checked("run_contained", "containers need root; with it the check runs a probe that prints its pid, host "
                    "name, effective capabilities and cgroups")
        return
    name = f"lxclab-b8-{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="lxclab-b8-") as work, cgroups.detect().create(name) as group:
        rootfs = busybox_rootfs(registry, Path(work, "rootfs"))
        answer = in_child(attempt, run_contained, str(rootfs), PROBE, HOSTNAME, group.dirs, list(DOCKER_DEFAULT))
    expect(isinstance(answer, tuple) and len(answer) == 2, "run_contained must return (exit_code, output)",
           "Return the exit status and the output, as run_isolated does.")
    lines = answer[1].splitlines()
    expect("pid=1" in lines and f"host={HOSTNAME}" in lines, f"the probe says {lines[:2]}",
           "Keep your level-5 steps: unshare, sethostname, fork again, pivot_root, /proc.")
    caps = [int(line.split()[1], 16) for line in lines if line.startswith("CapEff:")]
    expect(caps == [kernel_mask(list(DOCKER_DEFAULT)) & permitted()], f"the command runs with capabilities {caps}",
           "Call drop_capabilities(keep) in pid 1 after pivot_root and before exec.")
    expect(any(name in line for line in lines if "memory" in line or line.startswith("0::")),
           "the command is not in the group", "Write the child's PID into cgroup.procs of each directory in group_dirs "
           "(one on v2) before it unshares, and let it wait on a pipe until you have.")
    passed(f"run_contained: pid 1, host name {HOSTNAME}, Docker's {len(DOCKER_DEFAULT)} capabilities, in its cgroup")


def lxclab_run(image: str, argv: list[str]) -> tuple[int, str]:
    """`lxclab run --rm` of `argv` in `image` with the capstone's limits: its exit status and stdout."""
    done = subprocess.run([sys.executable, "-m", "lxclab", "run", "--rm", "--memory", str(MEMORY), "--cpus", str(CPUS),
                           "--pids", str(PIDS), "--hostname", HOSTNAME, image, *argv],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    return done.returncode, done.stdout


def check_mydocker(mydocker_run: Callable, image: str) -> None:
    """Run each case with the learner's mydocker_run and with `lxclab run`; status and output must agree."""
    if not has_root():
        not_checked("mydocker_run", "containers need root; with it the check runs echo, exit 3, hostname, echo $$ and "
                    "a memory hog in your mydocker and in `lxclab run` and compares them")
        return
    for what, argv, hint in CASES:
        expected = lxclab_run(image, argv)
        answer = in_child(attempt, mydocker_run, image, argv, MEMORY, CPUS, PIDS, HOSTNAME)
        expect(isinstance(answer, tuple) and len(answer) == 2, "mydocker_run must return (exit_code, output)",
               "Return what run_contained returns.")
        expect(answer[0] == expected[0] and answer[1].split() == expected[1].split(),
               f"{what}: mydocker gave status {answer[0]} and {answer[1].strip()[:60]!r}; lxclab run gave "
               f"{expected[0]} and {expected[1].strip()[:60]!r}", hint)
        passed(f"{what}: `{' '.join(argv)}` → status {expected[0]}" + (f", {expected[1].strip()!r}" if expected[1].strip() else "")
               + ", as lxclab run")
