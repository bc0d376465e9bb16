"""The named checkpoints: the reference solution of every level, for a learner who is behind.

Each function is the one the level's exercise asks for, written the way a learner could
write it from that level's text, using only the library pieces the level allows.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import httpx

from .. import _linux, cgroups
from ..chroot import ExitStatus
from ..layers import read_entries
from ..manifest import ACCEPT
from .capabilities import (CAP_LAST_CAP, CAPABILITIES, DOCKER_DEFAULT, LINUX_CAPABILITY_VERSION_3, PR_CAP_AMBIENT,
                           PR_CAP_AMBIENT_CLEAR_ALL, PR_CAPBSET_DROP, CapData, CapHeader)
from .layer_tools import extract_files, safe_path

_PAIR = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


# B1: the token dance
def parse_challenge(header: str) -> dict[str, str]:
    """The parameters of a `Bearer realm=...,service=...,scope=...` challenge, names lowercased, quotes removed."""
    _scheme, _, rest = header.partition(" ")
    return {name.lower(): re.sub(r"\\(.)", r"\1", quoted) if quoted else bare for name, quoted, bare in _PAIR.findall(rest)}


def get_token(registry: str, repository: str) -> str:
    """A pull token for `repository` from the token server that the registry's challenge names."""
    ping = httpx.get(f"{registry}/v2/", trust_env=False)
    challenge = parse_challenge(ping.headers["www-authenticate"])
    params = {"service": challenge["service"], "scope": f"repository:{repository}:pull"}
    answer = httpx.get(challenge["realm"], params=params, trust_env=False)
    answer.raise_for_status()
    return answer.json()["token"]


def fetch(registry: str, repository: str, kind: str, reference: str, token: str) -> bytes:
    """The bytes of a manifest or blob (`kind` is "manifests" or "blobs"), asked for with the token."""
    headers = {"Authorization": f"Bearer {token}", "Accept": ACCEPT}
    answer = httpx.get(f"{registry}/v2/{repository}/{kind}/{reference}", headers=headers,
                       follow_redirects=True, trust_env=False)
    answer.raise_for_status()
    return answer.content


# B2: index -> manifest -> config
def choose_manifest(index: dict, architecture: str) -> str:
    """The digest of the index's manifest for linux on `architecture`."""
    for descriptor in index["manifests"]:
        platform = descriptor.get("platform", {})
        if platform.get("os") == "linux" and platform.get("architecture") == architecture:
            return descriptor["digest"]
    raise LookupError(f"the index has no manifest for linux/{architecture}")


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The ChainID of each layer: the first is its DiffID, then sha256 of "<previous ChainID> <DiffID>"."""
    result: list[str] = []
    for diff_id in diff_ids:
        if result:
            diff_id = "sha256:" + hashlib.sha256(f"{result[-1]} {diff_id}".encode()).hexdigest()
        result.append(diff_id)
    return result


def walk(registry: str, repository: str, tag: str, architecture: str) -> tuple[dict, dict]:
    """The manifest and the config of `repository:tag` for `architecture`, each checked against its digest."""
    token = get_token(registry, repository)
    top = json.loads(fetch(registry, repository, "manifests", tag, token))
    manifest = top
    if "manifests" in top:
        digest = choose_manifest(top, architecture)
        raw = fetch(registry, repository, "manifests", digest, token)
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest, f"manifest {digest} arrived damaged"
        manifest = json.loads(raw)
    digest = manifest["config"]["digest"]
    raw = fetch(registry, repository, "blobs", digest, token)
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest, f"config {digest} arrived damaged"
    return manifest, json.loads(raw)


# B3: layers with whiteouts and opaque directories
def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def apply_layer(layer: Path, root: Path) -> None:
    """Apply one layer blob to `root`: opaque directories emptied, whiteouts deleted, then its own files added."""
    entries = read_entries(layer)
    for entry in entries:
        if entry.kind == "opaque":
            directory = safe_path(root, entry.path)
            for child in directory.iterdir() if directory.is_dir() else ():
                _remove(child)
    for entry in entries:
        if entry.kind == "whiteout":
            _remove(safe_path(root, entry.path))
    extract_files(layer, root)


def unpack(registry: str, repository: str, tag: str, architecture: str, root: Path) -> dict:
    """Pull `repository:tag` and apply its layers, bottom first, into `root`; return the image config."""
    manifest, config = walk(registry, repository, tag, architecture)
    token = get_token(registry, repository)
    Path(root).mkdir(parents=True, exist_ok=True)
    for layer in manifest["layers"]:
        with tempfile.NamedTemporaryFile() as blob:
            data = fetch(registry, repository, "blobs", layer["digest"], token)
            assert "sha256:" + hashlib.sha256(data).hexdigest() == layer["digest"], f"layer {layer['digest']} arrived damaged"
            blob.write(data)
            blob.flush()
            apply_layer(Path(blob.name), Path(root))
    return config


# B4: the overlay mount
def overlay_options(lowers: list[Path], upper: Path, work: Path) -> str:
    """overlayfs's mount options for layer directories given bottom first: lowerdir lists them top first."""
    return f"lowerdir={':'.join(str(p) for p in reversed(lowers))},upperdir={upper},workdir={work}"


def mount_overlay(lowers: list[Path], upper: Path, work: Path, target: Path) -> None:
    """Mount the layers (bottom first) with `upper` and `work` at `target`; needs CAP_SYS_ADMIN."""
    _linux.mount("overlay", str(target), "overlay", 0, overlay_options(lowers, upper, work))


# B5: fork, namespaces, pivot_root, /proc
def _enter_root(rootfs: str) -> None:
    """In the container's first process: private mounts, rootfs bound on itself, /proc mounted, pivot_root."""
    _linux.mount("none", "/", None, _linux.MS_REC | _linux.MS_PRIVATE)
    _linux.mount(rootfs, rootfs, None, _linux.MS_BIND | _linux.MS_REC)
    _linux.mount("proc", f"{rootfs}/proc", "proc", 0)
    os.chdir(rootfs)
    _linux.pivot_root(".", ".")
    _linux.umount(".", _linux.MNT_DETACH)
    os.chdir("/")


def run_isolated(rootfs: str, argv: list[str], hostname: str) -> tuple[int, str]:
    """Run `argv` in `rootfs` in new mount, UTS, PID and IPC namespaces; return its exit code and output."""
    with tempfile.TemporaryFile() as output:
        pid = os.fork()
        if pid == 0:
            _isolate_and_exec(rootfs, argv, hostname, output.fileno())
        status = os.waitpid(pid, 0)[1]
        output.seek(0)
        return os.waitstatus_to_exitcode(status), output.read().decode(errors="replace")


def _isolate_and_exec(rootfs: str, argv: list[str], hostname: str, output: int,
                      before_exec: Callable[[], None] = lambda: None) -> NoReturn:
    """In a forked child: new namespaces, then a first process that enters `rootfs` and execs `argv`; exit with it."""
    try:
        _linux.unshare(_linux.CLONE_NEWNS | _linux.CLONE_NEWUTS | _linux.CLONE_NEWPID | _linux.CLONE_NEWIPC)
        _linux.sethostname(hostname)
        first = os.fork()
        if first == 0:
            _enter_root(rootfs)
            os.dup2(output, 1)
            os.dup2(output, 2)
            before_exec()
            os.execvpe(argv[0], argv, {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        os._exit(ExitStatus.from_wait_status(os.waitpid(first, 0)[1]).exit_code)
    except BaseException:  # noqa: BLE001 - the child must never return into the caller's code
        os._exit(127)


def chroot_run(rootfs: str, argv: list[str]) -> tuple[int, str]:
    """Run `argv` in a forked child whose root directory is `rootfs`; return its exit code and output."""
    with tempfile.TemporaryFile() as output:
        pid = os.fork()
        if pid == 0:
            try:
                os.chroot(rootfs)
                os.chdir("/")
                os.dup2(output.fileno(), 1)
                os.dup2(output.fileno(), 2)
                os.execvpe(argv[0], argv, {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
            except BaseException:  # noqa: BLE001 - the child must never return into the caller's code
                os._exit(127)
        status = os.waitpid(pid, 0)[1]
        output.seek(0)
        return os.waitstatus_to_exitcode(status), output.read().decode(errors="replace")


# B6: cgroup limits
def limit_files(version: int, memory_bytes: int, cpus: float, pids: int) -> dict[tuple[str, str], str]:
    """The cgroup files (controller, name) and values that set these limits on cgroup `version` (1 or 2)."""
    period = 100_000
    quota = round(cpus * period)
    if version == 1:
        return {("memory", "memory.limit_in_bytes"): str(memory_bytes),
                ("memory", "memory.memsw.limit_in_bytes"): str(memory_bytes),
                ("cpu", "cpu.cfs_period_us"): str(period), ("cpu", "cpu.cfs_quota_us"): str(quota),
                ("pids", "pids.max"): str(pids)}
    return {("memory", "memory.max"): str(memory_bytes), ("memory", "memory.swap.max"): "0",
            ("cpu", "cpu.max"): f"{quota} {period}", ("pids", "pids.max"): str(pids)}


def write_limits(dirs: dict[str, Path], files: dict[tuple[str, str], str]) -> None:
    """Write each (controller, name) value into that controller's directory; skip swap files the kernel lacks."""
    for (controller, name), value in files.items():
        path = Path(dirs[controller]) / name
        if ("swap" in name or "memsw" in name) and not path.exists():
            continue
        path.write_text(value)


# B7: capabilities
def capability_mask(names: list[str]) -> int:
    """The bit mask of capabilities `names` (like "CHOWN"), bit n for capability number n."""
    return sum(1 << CAPABILITIES[name] for name in set(names))


def drop_capabilities(keep: list[str]) -> None:
    """Keep only `keep` in the caller's bounding, permitted and effective sets; empty inheritable and ambient."""
    libc = ctypes.CDLL(None, use_errno=True)
    status = dict(line.split(":\t") for line in Path("/proc/self/status").read_text().splitlines() if ":\t" in line)
    mask = capability_mask(keep) & int(status["CapPrm"], 16)  # one cannot keep what one never had
    for number in range(int(Path(CAP_LAST_CAP).read_text()) + 1):
        if not mask >> number & 1 and libc.prctl(PR_CAPBSET_DROP, number, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), f"prctl(PR_CAPBSET_DROP, {number}) failed")
    if libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_CAP_AMBIENT_CLEAR_ALL) failed")
    low, high = mask & 0xFFFFFFFF, mask >> 32
    data = (CapData * 2)(CapData(low, low, 0), CapData(high, high, 0))
    if libc.capset(ctypes.byref(CapHeader(LINUX_CAPABILITY_VERSION_3, 0)), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


# B8: the capstone
def run_contained(rootfs: str, argv: list[str], hostname: str, group_dirs: dict[str, Path], keep: list[str]) -> tuple[int, str]:
    """run_isolated, with the first process in the cgroup `group_dirs` and only the capabilities `keep`."""
    with tempfile.TemporaryFile() as output:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(write_end)
            os.read(read_end, 1)  # wait until the parent has put this process into the group
            _isolate_and_exec(rootfs, argv, hostname, output.fileno(), lambda: drop_capabilities(keep))
        os.close(read_end)
        for directory in {str(d) for d in group_dirs.values()}:
            Path(directory, "cgroup.procs").write_text(str(pid))
        os.close(write_end)
        status = os.waitpid(pid, 0)[1]
        output.seek(0)
        return ExitStatus.from_wait_status(status).exit_code, output.read().decode(errors="replace")


def mydocker_run(image: str, argv: list[str], memory_bytes: int = 64 << 20, cpus: float = 0.5, pids: int = 64,
                 hostname: str = "mydocker") -> tuple[int, str]:
    """Pull and unpack `image` (host:port/repository[:tag]) and run `argv` in it, contained and limited."""
    host, _, path = image.partition("/")
    repository, _, tag = path.partition(":")
    work = Path(tempfile.mkdtemp(prefix="mydocker-"))
    try:
        unpack(f"http://{host}", repository, tag or "latest", "amd64", work / "rootfs")
        hierarchy = cgroups.detect()
        with hierarchy.create(f"mydocker-{os.getpid()}") as group:
            write_limits(group.dirs, limit_files(hierarchy.version, memory_bytes, cpus, pids))
            return run_contained(str(work / "rootfs"), argv, hostname, group.dirs, list(DOCKER_DEFAULT))
    finally:
        shutil.rmtree(work)
