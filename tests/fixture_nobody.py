"""A Python that user nobody can run with lxclab and this venv's packages, wherever the checkout lives.

A learner's checkout may sit in a home that only its owner may enter (/root is 0700), and so
does its venv: nobody can neither import lxclab from there nor run the venv's python. Tests
that run as nobody use a world-readable copy instead: the lxclab package and the venv's
site-packages, hard-linked (copied when the temporary folder is on another filesystem) into a
0755 folder under /tmp, run by this venv's base interpreter, and removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE_PACKAGES = next(Path(path) for path in sys.path if path.endswith("site-packages") and path.startswith(sys.prefix))


@dataclass(frozen=True)
class NobodyPython:
    """A Python interpreter and a PYTHONPATH (lxclab first, then the venv's packages) that nobody may use."""

    python: str
    pythonpath: str

    def env(self, **extra: str) -> dict[str, str]:
        """A plain environment for nobody: PATH, this PYTHONPATH, no user site, plus `extra`."""
        return {"PATH": os.environ["PATH"], "PYTHONPATH": self.pythonpath, "PYTHONNOUSERSITE": "1", **extra}


def open_to_all(path: Path) -> bool:
    """Whether every user may reach `path`: each folder above it lets others search it (o+x)."""
    return all(os.stat(folder).st_mode & 0o001 for folder in path.parents)


def base_python() -> str:
    """This venv's interpreter, or Debian's of the same version when the venv's sits in a closed folder."""
    base = Path(sys.executable).resolve()
    return str(base) if open_to_all(base) else f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"


def link_tree(source: Path, target: Path) -> None:
    """Hard-link the tree `source` as `target` (`cp -al`), or copy it when they are on different filesystems."""
    if subprocess.run(["cp", "-al", str(source), str(target)], capture_output=True).returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run(["cp", "-a", str(source), str(target)], check=True)


@pytest.fixture(scope="session")
def nobody_python() -> Iterator[NobodyPython]:
    """lxclab and this venv's packages in a 0755 folder under /tmp, and the interpreter to run them, for nobody."""
    folder = Path(tempfile.mkdtemp(prefix="lxclab-python-", dir="/tmp"))
    try:
        folder.chmod(0o755)
        link_tree(ROOT / "lxclab", folder / "lxclab")
        link_tree(SITE_PACKAGES, folder / "site-packages")
        yield NobodyPython(base_python(), f"{folder}{os.pathsep}{folder / 'site-packages'}")
    finally:
        shutil.rmtree(folder)
