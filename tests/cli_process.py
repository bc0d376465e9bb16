"""The lxclab CLI as a user runs it: a process of its own, in this test's environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from polling import SLOWDOWN


def lxclab(*args: str, stdin: str | None = None, home: Path | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `python -m lxclab ARGS` with `stdin` (else none) and $LXCLAB_HOME=`home` if given, capturing what it says."""
    env = {**os.environ, "LXCLAB_HOME": str(home)} if home else None
    return subprocess.run([sys.executable, "-m", "lxclab", *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout * SLOWDOWN, env=env, stdin=None if stdin is not None else subprocess.DEVNULL)
