"""lxclab's files beside each LXC config: the run file (the image's Cmd, which lxc.init.cmd cannot hold) and seccomp rules.

LXC 5.0 splits lxc.init.cmd on spaces and ignores quotes, so `sh -c 'a; b'` would reach
init as four arguments. The argv is kept as JSON instead and passed to start() whole.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

RUN_FILE = "lxclab.json"
SECCOMP_FILE = "lxclab.seccomp"  # the profile's seccomp rules in LXC's format, named by lxc.seccomp.profile


def write_command(container_dir: Path, argv: Sequence[str]) -> None:
    """Record `argv` as the command the container in `container_dir` runs as init."""
    (container_dir / RUN_FILE).write_text(json.dumps({"cmd": list(argv)}))


def read_command(container_dir: Path) -> tuple[str, ...]:
    """The command recorded for the container in `container_dir`, or () when none was."""
    path = container_dir / RUN_FILE
    return tuple(json.loads(path.read_text())["cmd"]) if path.exists() else ()


def copy_lxclab_files(source_dir: Path, target_dir: Path) -> None:
    """Carry lxclab's files along with a copy LXC made of a container (a snapshot, a restore or a clone)."""
    for name in (RUN_FILE, SECCOMP_FILE):
        if (source_dir / name).exists():
            shutil.copyfile(source_dir / name, target_dir / name)
