"""Debian packages for any architecture and any release, pinned by their bytes, fetched without touching apt's state.

The seed images are built from one pinned `busybox-static` package file per architecture
(`PinnedDeb`: its file name in Debian's pool and the SHA-256 of its bytes), so every host,
whatever Debian release it runs, builds the same image bytes. A pinned file is taken from
the cache directory, else from apt's own archive of downloaded packages
(`/var/cache/apt/archives`, read only), else downloaded from the pool directory where the
system's apt sources keep the package today. To learn that directory apt is given its own
package lists and cache (`Dir::State::Lists`, `Dir::Cache`) and told about the
architecture (`APT::Architectures::=arm64`): the system's sources are read, nothing of the
system's state is written. A file whose bytes do not match its pin is never used.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import SeedError

APT_ARCHIVES = Path("/var/cache/apt/archives")


@dataclass(frozen=True)
class PinnedDeb:
    """One package file: its name in Debian's pool (like busybox-static_1.35.0-4+deb12u1+b1_amd64.deb) and SHA-256."""

    file_name: str
    sha256: str

    def matches(self, deb: Path) -> bool:
        """Whether `deb` holds exactly the pinned bytes."""
        return deb.is_file() and hashlib.sha256(deb.read_bytes()).hexdigest() == self.sha256


def fetch_debs(cache: Path, package: str, pins: Mapping[str, PinnedDeb]) -> dict[str, Path]:
    """The pinned `.deb` of `package` for each architecture, in `cache` (else copied from apt's archive or fetched)."""
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / ".lock"):
        return {arch: _fetch_deb(cache, package, arch, pin) for arch, pin in pins.items()}


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


def _fetch_deb(cache: Path, package: str, arch: str, pin: PinnedDeb) -> Path:
    cached = _find_pinned(cache, package, arch, pin)
    if cached:
        return cached
    archived = _find_pinned(APT_ARCHIVES, package, arch, pin)
    if archived:
        shutil.copyfile(archived, cache / pin.file_name)
    else:
        _download_into(cache, package, arch, pin)
    return cache / pin.file_name


def _find_pinned(directory: Path, package: str, arch: str, pin: PinnedDeb) -> Path | None:
    """A file of `package` for `arch` in `directory` with the pinned bytes, under any name (apt's has the epoch)."""
    return next((deb for deb in sorted(directory.glob(f"{package}_*_{arch}.deb")) if pin.matches(deb)), None)


def _download_into(cache: Path, package: str, arch: str, pin: PinnedDeb) -> None:
    try:
        with tempfile.TemporaryDirectory(prefix="lxclab-apt-", dir=cache) as scratch:
            download = Path(scratch) / pin.file_name
            url = _pool_directory(Path(scratch), package, arch) + pin.file_name
            _fetch(url, download)
            if not pin.matches(download):
                raise SeedError(f"{url} does not have the pinned bytes (sha256 {pin.sha256})")
            os.replace(download, cache / pin.file_name)
    except SeedError as exc:
        raise SeedError(
            f"cannot fetch {package} for {arch}: {exc}; check the network and the apt sources, "
            f"or copy {pin.file_name} (sha256 {pin.sha256}) into {cache}"
        ) from None


def _pool_directory(scratch: Path, package: str, arch: str) -> str:
    """The URL of the pool directory (ending in /) that holds `package` for `arch` in the system's apt sources."""
    options = _private_apt_options(scratch, arch)
    _run(["apt-get", *options, "update"], f"apt-get update (private lists in {scratch})")
    printed = _run(["apt-get", *options, "download", "--print-uris", f"{package}:{arch}"],
                   f"apt-get download --print-uris {package}:{arch}")
    uris = [line.split()[0].strip("'") for line in printed.splitlines() if line.startswith("'")]
    if not uris:
        raise SeedError(f"apt-get download --print-uris {package}:{arch} named no file")
    return uris[0].rsplit("/", 1)[0] + "/"


def _fetch(url: str, target: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as exc:
        raise SeedError(f"downloading {url} failed: {exc}") from None


def _private_apt_options(scratch: Path, arch: str) -> list[str]:
    lists, cache = scratch / "lists", scratch / "cache"
    (lists / "partial").mkdir(parents=True)
    (cache / "archives" / "partial").mkdir(parents=True)
    settings = [("Dir::State::Lists", lists), ("Dir::Cache", cache), ("APT::Sandbox::User", "root")]
    settings += [("Debug::NoLocking", "true"), ("APT::Architecture", arch), ("APT::Architectures::", arch)]
    return ["-q", *[arg for key, value in settings for arg in ("-o", f"{key}={value}")]]


def _run(command: list[str], what: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
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
