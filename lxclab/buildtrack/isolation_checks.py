"""Checks for level B5: the learner's isolated process against lxclab's namespaces.run on the same rootfs.

The learner's function is itself called inside a forked child (chroot.in_child), so even an
answer that unshares its caller cannot change the Jupyter kernel's namespaces; the check
notices it and says so.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .. import namespaces
from ..chroot import in_child, run_chrooted
from ..engine import pull
from ..lessons import has_root
from ..manifest import Platform
from ..unionfs.image import image_layers, unpack_layers
from .feedback import attempt, expect, not_checked, passed

PROBE = ["sh", "-c", "echo host=$(hostname); echo pid=$$; echo init=$(cat /proc/1/comm); "
         "echo root=$(ls / | tr '\\n' ' '); exit 3"]
HOSTNAME = "mydocker"
CHROOT_PROBE = ["sh", "-c", "echo cwd=$(pwd); echo root=$(ls / | tr '\\n' ' '); exit 4"]


def busybox_rootfs(registry: str, target: Path) -> Path:
    """The classroom's busybox unpacked (copy mode) at `target`, for the isolation levels to run in."""
    image = pull(f"{registry.split('://', 1)[-1]}/lab/busybox", platform=Platform.parse("linux/amd64"))
    return unpack_layers(image_layers(image), target).target


def check_chroot_run(chroot_run: Callable, registry: str) -> None:
    """Run a probe with the learner's fork + chroot and with lxclab's run_chrooted; output and status must agree."""
    if not has_root("CAP_SYS_CHROOT"):
        not_checked("chroot_run", "chroot needs root (CAP_SYS_CHROOT); with it the check runs `pwd; ls /` in your "
                    "chroot and in lxclab's and compares them")
        return
    with tempfile.TemporaryDirectory(prefix="lxclab-b5-") as work:
        rootfs = busybox_rootfs(registry, Path(work, "rootfs"))
        expected = run_chrooted(rootfs, CHROOT_PROBE)
        answer = in_child(attempt, chroot_run, str(rootfs), CHROOT_PROBE)
    expect(isinstance(answer, tuple) and len(answer) == 2, "chroot_run must return (exit_code, output)",
           "Return the exit code (os.waitstatus_to_exitcode) and the text the command wrote.")
    code, output = answer
    expect(output.split() == expected.output.split(), f"your chroot printed {output.strip()!r}, lxclab's "
           f"{expected.output.strip()!r}", "In the child: os.chroot(rootfs), then os.chdir('/') — without it the working "
           "directory stays outside the new root (the classic escape) — then send stdout to the file and exec.")
    expect(code == expected.status.exit_code, f"exit status {code}, lxclab's {expected.status.exit_code}",
           "Wait for the child and return os.waitstatus_to_exitcode(status).")
    passed(f"chroot_run: the same / and working directory as lxclab's chroot, exit status {code}")


def _call_and_compare_namespaces(run_isolated: Callable, rootfs: Path) -> tuple:
    """In a child: the learner's answer, and whether the caller's own UTS and PID namespaces stayed put."""
    before = [os.readlink(f"/proc/self/ns/{kind}") for kind in ("uts", "pid", "mnt")]
    answer = attempt(run_isolated, str(rootfs), PROBE, HOSTNAME, hint="Fork first; do every privileged step in the child.")
    after = [os.readlink(f"/proc/self/ns/{kind}") for kind in ("uts", "pid", "mnt")]
    return answer, before == after


def check_run_isolated(run_isolated: Callable, registry: str) -> None:
    """Run a probe with the learner's function and with lxclab's; exit status and every line must agree."""
    if not has_root():
        not_checked("run_isolated", "namespaces, pivot_root and mounting /proc need root; with it the check runs "
                    "`hostname; echo $$; ls /` in your container and in lxclab's and compares them")
        return
    with tempfile.TemporaryDirectory(prefix="lxclab-b5-") as work:
        rootfs = busybox_rootfs(registry, Path(work, "rootfs"))
        expected = namespaces.run(rootfs, PROBE, hostname=HOSTNAME, namespaces={"mnt", "uts", "pid", "ipc"}, timeout=30)
        answer, caller_untouched = in_child(_call_and_compare_namespaces, run_isolated, rootfs)
    expect(caller_untouched, "run_isolated changed the namespaces of the process that called it",
           "os.fork() first and unshare only in the child: the caller (your notebook) must stay on the host.")
    expect(isinstance(answer, tuple) and len(answer) == 2, "run_isolated must return (exit_code, output)",
           "Return the exit code (os.waitstatus_to_exitcode) and the text the command wrote.")
    code, output = answer
    lines, wanted = output.splitlines(), expected.output.splitlines()
    for name, hint in (("host", "unshare CLONE_NEWUTS, then sethostname(hostname) before the command runs"),
                       ("pid", "unshare CLONE_NEWPID, then fork again: only the children of the caller of unshare "
                               "are in the new PID namespace, and the first one is pid 1"),
                       ("init", "mount a fresh proc at <rootfs>/proc inside the new mount and PID namespaces"),
                       ("root", "bind-mount the rootfs on itself, pivot_root into it and detach the old root")):
        mine = next((line for line in lines if line.startswith(f"{name}=")), f"{name}= (missing)")
        theirs = next(line for line in wanted if line.startswith(f"{name}="))
        expect(mine.split() == theirs.split(), f"your container says {mine.strip()!r}, lxclab's {theirs.strip()!r}", hint)
    expect(code == expected.status.exit_code, f"exit status {code}, lxclab's {expected.status.exit_code}",
           "Wait for the command and return its exit status (os.waitstatus_to_exitcode).")
    passed(f"run_isolated: hostname {HOSTNAME}, pid 1, its own /proc and root, exit status {code}: as lxclab's")
