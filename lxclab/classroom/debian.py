"""Debian packages for any architecture, fetched without touching the system's apt state.

The seed images are built from the `busybox-static` package, for amd64 and arm64. apt can
download a package of a foreign architecture when it is given its own package lists and
cache (`Dir::State::Lists`, `Dir::Cache`) and told about the architecture
(`APT::Architectures::=arm64`): the system's sources are read, nothing of the system's
state is written. Downloaded packages are kept in a cache directory, so a second build
needs no network; the package's bytes pin the image's bytes.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import SeedError


def cached_deb(cache: Path, package: str, arch: str) -> Path | None:
    """The package file for `arch` already in `cache`, if any (the highest name if several)."""
    found = sorted(cache.glob(f"{package}_*_{arch}.deb"))
    return found[-1] if found else None


def fetch_debs(cache: Path, package: str, architectures: tuple[str, ...]) -> dict[str, Path]:
    """The `.deb` of `package` for each architecture: from `cache`, else downloaded into it with private apt state."""
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / ".lock"):
        found = {arch: cached_deb(cache, package, arch) for arch in architectures}
        missing = tuple(arch for arch, deb in found.items() if deb is None)
        if missing:
            _download_into(cache, package, missing)
        return {arch: found[arch] or cached_deb(cache, package, arch) for arch in architectures}


def read_member(deb: Path, member: str) -> bytes:
    """The bytes of one file (like `bin/busybox`) inside a `.deb`, unpacked with `dpkg-deb -x`."""
    with tempfile.TemporaryDirectory(prefix="lxclab-deb-") as scratch:
        _run(["dpkg-deb", "-x", str(deb), scratch], f"unpacking {deb.name}")
        source = Path(scratch) / member
        if not source.is_file():
            raise SeedError(f"{deb.name} has no file {member!r}; is it the right package?")
        return source.read_bytes()


def deb_version(deb: Path) -> str:
    """The package version recorded in a `.deb`'s control file, like 1:1.35.0-4+deb12u1+b1."""
    return _run(["dpkg-deb", "-f", str(deb), "Version"], f"reading {deb.name}").strip()


def _download_into(cache: Path, package: str, architectures: tuple[str, ...]) -> None:
    try:
        with tempfile.TemporaryDirectory(prefix="lxclab-apt-", dir=cache) as scratch:
            for download in _apt_download(Path(scratch), package, architectures):
                os.replace(download, cache / download.name)
    except SeedError as exc:
        raise SeedError(
            f"cannot fetch {package} for {', '.join(architectures)}: {exc}; check the network and the apt "
            f"sources, or copy {package}_<version>_<arch>.deb into {cache}"
        ) from None


def _apt_download(scratch: Path, package: str, architectures: tuple[str, ...]) -> list[Path]:
    options = _private_apt_options(scratch, architectures)
    _run(["apt-get", *options, "update"], f"apt-get update (private lists in {scratch})")
    target = scratch / "download"
    target.mkdir()
    wanted = [f"{package}:{arch}" for arch in architectures]
    _run(["apt-get", *options, "download", *wanted], f"apt-get download {' '.join(wanted)}", cwd=target)
    debs = [next(iter(sorted(target.glob(f"{package}_*_{arch}.deb"))), None) for arch in architectures]
    if None in debs:
        raise SeedError(f"apt-get download {' '.join(wanted)} left no .deb for some of them in {target}")
    return debs


def _private_apt_options(scratch: Path, architectures: tuple[str, ...]) -> list[str]:
    lists, cache = scratch / "lists", scratch / "cache"
    (lists / "partial").mkdir(parents=True)
    (cache / "archives" / "partial").mkdir(parents=True)
    settings = [("Dir::State::Lists", lists), ("Dir::Cache", cache), ("APT::Sandbox::User", "root")]
    settings += [("Debug::NoLocking", "true"), ("APT::Architecture", architectures[0])]  # else the native one too
    settings += [("APT::Architectures::", arch) for arch in architectures]
    return ["-q", *[arg for key, value in settings for arg in ("-o", f"{key}={value}")]]


def _run(command: list[str], what: str, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise SeedError(f"{what}: {command[0]} is not installed; install it with apt-get") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise SeedError(f"{what} failed (exit {done.returncode}): {' / '.join(detail)}")
    return done.stdout


@contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
