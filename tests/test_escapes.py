"""The escape corpus: real ways out of a container, tried as root inside both runtimes.

tests/escape_probe.c holds the probes (each harmless when it succeeds: see its header).
Each is first run through a deliberately weak runner (`unshare --mount` + chroot, the
naive container of lesson 05), where it must get out: that proves the probe works on this
kernel. Then, as root in a container of each runtime with the default profile, each must
be blocked, and the host must look as it did before; so too under `--userns`, where root
inside is a host id of lxclab-remap's range. --privileged and --security-opt
seccomp=unconfined lift exactly what they say, and nothing more.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pty
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from lxclab.engine import containers, gc
from lxclab.engine import run as engine
from lxclab.engine.commit import next_config, next_manifest
from lxclab.engine.create import find_image
from lxclab.engine.pull import pull
from lxclab.engine.rootfs import copy_layers
from lxclab.manifest import Descriptor, OCI_LAYER_GZIP, parse_manifest, sha256_digest
from lxclab.reference import parse
from lxclab.security import Profile
from lxclab.store import Store

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="escapes are tried as root")

RUNTIMES = ["namespaces", "lxc"]
USERNS = "namespaces --userns"  # the namespaces runtime with root remapped (privileged is refused there)
SOURCE = Path(__file__).with_name("escape_probe.c")
# Probes that only capabilities, masks or devices stop: seccomp=unconfined must leave them blocked.
CAPABILITY_BOUND = {"settimeofday", "clock_settime", "mount_device", "mount_proc", "remount_sys_rw", "bpf",
                    "proc_timer_list", "sys_firmware", "mknod_in_root", "image_device_node", "open_by_handle_at",
                    "finit_module", "syslog"}
# Probes that only the seccomp filter stops (root needs no capability for them).
SECCOMP_BOUND = {"keyctl", "add_key", "io_uring", "unshare_user"}
# Probes that namespaces and pivot_root stop, whatever the profile: --privileged is not the host.
NAMESPACE_BOUND = {"chroot_escape", "host_proc_root", "setns_host"}


@pytest.fixture(scope="module")
def probe_binary(tmp_path_factory) -> Path:
    """The probes, compiled static (the image has no libc of the right kind)."""
    binary = tmp_path_factory.mktemp("probe") / "escape_probe"
    subprocess.run(["gcc", "-static", "-O1", "-o", str(binary), str(SOURCE)], check=True)
    return binary


@pytest.fixture(scope="module")
def loop_disk(tmp_path_factory):
    """A small ext2 disk of the test's own on a loop device: (device path, major, minor)."""
    backing = tmp_path_factory.mktemp("disk") / "disk.img"
    backing.write_bytes(b"\0" * (4 << 20))
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext2", str(backing)], check=True)
    device = subprocess.run(["losetup", "-f", "--show", str(backing)], check=True, capture_output=True,
                            text=True).stdout.strip()
    try:
        rdev = os.stat(device).st_rdev
        yield device, os.major(rdev), os.minor(rdev)
    finally:
        subprocess.run(["losetup", "-d", device], check=False)


@pytest.fixture(scope="module")
def host_marker(tmp_path_factory) -> Path:
    """A file only the host has: a probe that sees it got out."""
    marker = tmp_path_factory.mktemp("marker") / "only-on-the-host"
    marker.write_text("host\n")
    return marker


def probe_layer(binary: Path, major: int, minor: int) -> tuple[bytes, str]:
    """A gzip layer holding /probe and /probe-disk, a block device node of the test's loop device."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("probe")
        info.size, info.mode = binary.stat().st_size, 0o755
        with open(binary, "rb") as data:
            tar.addfile(info, data)
        node = tarfile.TarInfo("probe-disk")
        node.type, node.mode, node.devmajor, node.devminor = tarfile.BLKTYPE, 0o600, major, minor
        tar.addfile(node)
    return gzip.compress(buffer.getvalue(), mtime=0), sha256_digest(buffer.getvalue())


@pytest.fixture(scope="module")
def probe_image(seeded_classroom, probe_binary, loop_disk, tmp_path_factory):
    """The seed busybox with the probe layer on top, in a home of this module's own; containers removed after."""
    home = tmp_path_factory.mktemp("escape-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LXCLAB_HOME", str(home))
        base_ref = f"{seeded_classroom.registry_host}/lab/busybox:latest"
        base = pull(base_ref)
        blob, diff_id = probe_layer(probe_binary, loop_disk[1], loop_disk[2])
        store = Store()
        store.write(blob, sha256_digest(blob))
        config = next_config(base.config.raw, diff_id, "COPY escape_probe /probe", "2024-01-01T00:00:00Z")
        store.write(config, sha256_digest(config))
        config_descriptor = Descriptor(base.manifest.config.media_type, sha256_digest(config), len(config))
        raw = next_manifest(base.manifest, config_descriptor, Descriptor(OCI_LAYER_GZIP, sha256_digest(blob),
                                                                         len(blob)))
        ref = f"{seeded_classroom.registry_host}/lab/escape-probe:1"
        store.record_image(parse(ref), parse_manifest(raw), base.platform)
        yield ref
        for container in containers.containers():
            gc.rm(container.id, force=True)
        gc.gc()


def parse_report(output: str) -> dict[str, tuple[str, str]]:
    """The probe's lines as {name: (verdict, detail)}."""
    report = {}
    for line in output.splitlines():
        name, verdict, *detail = line.split(" ", 2)
        report[name] = (verdict, " ".join(detail))
    return report


def with_terminal(run):
    """Call run(stdin_fd) with a fresh pty as stdin (for TIOCSTI); drain what was typed into it."""
    master, slave = pty.openpty()
    try:
        return run(slave)
    finally:
        os.set_blocking(master, False)
        try:
            os.read(master, 4096)
        except (BlockingIOError, OSError):
            pass
        os.close(master)
        os.close(slave)


def weak_run(rootfs: Path, args: list[str], stdin: int) -> str:
    """The naive runner: a private mount namespace, proc, sysfs and a tmpfs /dev, chroot, and nothing else."""
    script = (f'set -e; R="{rootfs}"; mkdir -p "$R/proc" "$R/sys" "$R/dev"; mount -t proc proc "$R/proc"; '
              f'mount -t sysfs sysfs "$R/sys"; mount -t tmpfs tmpfs "$R/dev"; exec chroot "$R" /probe '
              + " ".join(args))
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script], stdin=stdin,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def host_state(device: str) -> dict[str, object]:
    """What a probe must not change on the host: its core pattern, mounts, host name, disk and /sys."""
    with open(device, "rb") as disk:
        digest = hashlib.sha256(disk.read(1 << 20)).hexdigest()
    # only mounts a probe could make or change: other tests on this machine mount and unmount meanwhile
    mounts = sorted(line for line in Path("/proc/self/mountinfo").read_text().splitlines()
                    if f" {device} " in line or line.split()[4] == "/sys")
    return {"core_pattern": Path("/proc/sys/kernel/core_pattern").read_text(), "mounts": mounts,
            "hostname": Path("/proc/sys/kernel/hostname").read_text(), "disk": digest,
            "sys_writable": os.access("/sys/kernel", os.W_OK)}


@pytest.fixture(scope="module")
def baseline(probe_image, probe_binary, loop_disk, host_marker) -> dict[str, tuple[str, str]]:
    """The probes through the weak runner: those that escape there are the ones this kernel can test."""
    # Not under /tmp: Debian 13 mounts a tmpfs there with nodev, which would stop the device probes
    # before the weak runner's (missing) defences are even asked.
    place = Path(tempfile.mkdtemp(prefix="lxclab-weak-", dir="/var/tmp"))
    try:
        rootfs = place / "rootfs"
        copy_layers(find_image(probe_image), rootfs)  # probe_image keeps its $LXCLAB_HOME set while the module runs
        args = [str(loop_disk[1]), str(loop_disk[2]), str(host_marker), str(os.getpid())]
        before = host_state(loop_disk[0])
        report = parse_report(with_terminal(lambda stdin: weak_run(rootfs, args, stdin)))
        assert host_state(loop_disk[0]) == before
    finally:
        shutil.rmtree(place)
    return report


HANDED_NOTHING = {"tiocsti"}  # not refused but never given: the container gets a pipe, not the caller's terminal


def escaped(report: dict[str, tuple[str, str]]) -> set[str]:
    """The probes that got out."""
    return {name for name, (verdict, _) in report.items() if verdict == "escaped"}


def run_probes(ref: str, loop_disk, host_marker: Path, runtime: str, profile: Profile | None = None):
    """The probes as root in a container of `runtime` (or USERNS), a pty as stdin; the report and what changed on
    the host."""
    before = host_state(loop_disk[0])
    args = ["/probe", str(loop_disk[1]), str(loop_disk[2]), str(host_marker), str(os.getpid())]
    options = dict(runtime="namespaces", userns=True) if runtime == USERNS else dict(runtime=runtime)
    result = with_terminal(lambda stdin: engine.run(ref, args, profile=profile, stdin=stdin, remove=True,
                                                    **options))
    assert result.exit_code == 0, result.output
    after = host_state(loop_disk[0])
    return parse_report(result.output), {key: (before[key], after[key]) for key in before if before[key] != after[key]}


def test_the_weak_runner_lets_at_least_20_probes_out(baseline):
    out = escaped(baseline)
    print("\n".join(f"weak runner: {name} {verdict} {detail}" for name, (verdict, detail) in baseline.items()))
    assert len(out) >= 20, baseline
    assert {"image_device_node", "mknod_in_root", "core_pattern", "settimeofday", "keyctl", "bpf", "chroot_escape",
            "tiocsti", "remount_sys_rw", "mount_device", "setns_host", "host_proc_root"} <= out


@pytest.mark.parametrize("runtime", RUNTIMES + [USERNS])
def test_every_probe_is_blocked_inside_and_nothing_changes_outside(probe_image, baseline, loop_disk, host_marker,
                                                                   runtime):
    report, unchanged = run_probes(probe_image, loop_disk, host_marker, runtime)
    assert unchanged == {}
    assert {name: report[name] for name in escaped(report)} == {}
    assert {name for name in escaped(baseline) if report[name][0] != "blocked"} == HANDED_NOTHING, report
    assert report["tiocsti"] == ("absent", "stdin is not a terminal")  # a pipe: the caller's pty stays outside


@pytest.mark.parametrize("runtime", RUNTIMES + [USERNS])
def test_seccomp_unconfined_lifts_only_the_filter(probe_image, baseline, loop_disk, host_marker, runtime):
    profile = Profile.build(security_opt=["seccomp=unconfined"])
    report, unchanged = run_probes(probe_image, loop_disk, host_marker, runtime, profile)
    assert unchanged == {}
    available = escaped(baseline)
    assert SECCOMP_BOUND & available <= escaped(report)
    assert escaped(report) & (CAPABILITY_BOUND | NAMESPACE_BOUND) == set()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_privileged_lifts_the_profile_but_not_the_namespaces(probe_image, baseline, loop_disk, host_marker,
                                                             runtime):
    report, unchanged = run_probes(probe_image, loop_disk, host_marker, runtime, Profile.build(privileged=True))
    assert unchanged == {}
    available = escaped(baseline)
    assert (CAPABILITY_BOUND | SECCOMP_BOUND) & available <= escaped(report)
    assert escaped(report) & NAMESPACE_BOUND == set()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_commit_refuses_a_container_that_swaps_a_file_for_a_host_symlink(probe_image, host_marker, runtime):
    from lxclab.engine.commit import commit
    from lxclab.errors import AlreadyRunning

    secret = "host-only secret " + os.urandom(8).hex()
    host_marker.write_text(secret)
    swap = f"while :; do rm -f /x; echo benign > /x; rm -f /x; ln -s {host_marker} /x; done"
    container = engine.start(probe_image, ["sh", "-c", swap], runtime=runtime)
    with pytest.raises(AlreadyRunning, match="is running: stop it first"):
        commit(container.id, "local/swapped:1")
    gc.stop(container.id)
    layer = commit(container.id, "local/swapped:1", created="2024-01-01T00:00:00Z").layer
    assert secret.encode() not in gzip.decompress(layer.blob)
    gc.rm(container.id)


def test_the_home_the_layers_and_the_containers_are_private_on_every_start(probe_image):
    from lxclab import paths

    paths.home().chmod(0o755)
    engine.run(probe_image, ["true"], remove=True)
    for directory in (paths.home(), paths.layers_dir(), paths.containers_dir()):
        assert directory.stat().st_mode & 0o777 == 0o700, directory
