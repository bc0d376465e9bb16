"""The conda, Binder and pip descriptions of the environment agree with each other."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# Every program the kit, its tests and LXC run on the host, and the Debian package that brings it.
PROGRAMS = {"docker-registry": "docker-registry", "skopeo": "skopeo", "umoci": "umoci", "crun": "crun",
            "lxc-ls": "lxc", "lxc-attach": "lxc", "rsync": "rsync", "ip": "iproute2", "unshare": "util-linux",
            "setpriv": "util-linux", "newuidmap": "uidmap", "chattr": "e2fsprogs",
            "zstd": "zstd", "chromium": "chromium", "gcc": "gcc", "pkg-config": "pkg-config",
            "qemu-system-x86_64": "qemu-system-x86"}


def _pip_requirements(env_file: Path) -> set[str]:
    env = yaml.safe_load(env_file.read_text())
    pip = next(dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict))
    return set(pip)


def _name(requirement: str) -> str:
    return re.split(r"[<>=!\[ ]", requirement, maxsplit=1)[0].lower()


def test_binder_environment_is_identical_to_the_root_one():
    assert (ROOT / "binder/environment.yml").read_bytes() == (ROOT / "environment.yml").read_bytes()


def test_environment_holds_every_runtime_dependency_of_the_package():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = set(pyproject["project"]["dependencies"])
    missing = runtime - _pip_requirements(ROOT / "environment.yml")
    assert not missing, f"environment.yml lacks {sorted(missing)} (same pins as pyproject.toml)"


def test_binder_apt_packages_are_installed_by_the_setup_script_too():
    setup = (ROOT / "scripts/setup.sh").read_text()
    for package in (ROOT / "binder/apt.txt").read_text().split():
        assert re.search(rf"\b{re.escape(package)}\b", setup), f"{package} is in binder/apt.txt but not scripts/setup.sh"


def test_binder_installs_the_package_and_seeds_the_registry():
    post_build = (ROOT / "binder/postBuild").read_text()
    assert "pip install" in post_build and "lxclab seed" in post_build
    assert _name("lxclab") not in {_name(r) for r in _pip_requirements(ROOT / "environment.yml")}


@pytest.mark.parametrize("program, package", sorted(PROGRAMS.items()))
def test_setup_installs_every_program_the_kit_runs(program: str, package: str):
    debs = re.search(r"^debs=\(([^)]*)\)", (ROOT / "scripts/setup.sh").read_text(), re.M).group(1).split()
    assert package in debs, f"scripts/setup.sh does not install {package}, which brings {program}"
    assert shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin"), f"{program} is not installed"
