"""A tiny root filesystem made from the host's busybox-static, for kernel and LXC tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

BUSYBOX = Path("/bin/busybox")
# A fork bomb for busybox sh. PID 1 forks once, to start it, then execs sleep: a shell whose own fork is
# refused exits 2, and a PID 1 that exits ends the container before the test measures it.
FORK_BOMB = ["sh", "-c", "bomb() { bomb | bomb & }; bomb & exec sleep 60"]


def make_busybox_rootfs(root: Path) -> Path:
    """Fill `root` with busybox-static, a symlink per applet, and the usual empty directories."""
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "home"):
        (root / d).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    shutil.copy2(BUSYBOX, root / "bin/busybox")
    applets = subprocess.run([str(BUSYBOX), "--list-full"], capture_output=True, text=True, check=True)
    for path in applets.stdout.split():
        link = root / path
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/bin/busybox")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    (root / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
    return root


@pytest.fixture
def busybox_rootfs(tmp_path: Path) -> Path:
    """A fresh busybox root filesystem in a temporary directory."""
    return make_busybox_rootfs(tmp_path / "rootfs")
