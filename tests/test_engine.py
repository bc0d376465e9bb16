"""The engine against the real kernel: what a container sees, where its writes go, its limits, bad input."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from fixture_engine import busybox, engine_home  # noqa: F401
from fixture_rootfs import FORK_BOMB

from lxclab import paths
from lxclab.limits import Limits
from lxclab.manifest import Platform
from lxclab.security import Profile
from lxclab.engine import containers, gc, pull
from lxclab.engine import run as engine
from lxclab.errors import CommandNotFound, ContainerError, ContainerNotFound, ImageNotFound, InvalidLimit, NotRunning


def test_pid_1_is_the_command_and_the_hostname_is_the_short_id(busybox):
    result = engine.run(busybox, ["sh", "-c", "echo $$; hostname; cat /proc/1/cmdline | tr '\\0' ' '"])
    pid, hostname, cmdline = result.output.splitlines()
    assert (pid, hostname) == ("1", result.container_id[:12])
    assert cmdline.startswith("sh -c echo $$")
    assert os.uname().nodename != hostname


def test_hostname_option_sets_the_containers_own_host_name(busybox):
    result = engine.run(busybox, ["hostname"], hostname="lab-box")
    assert result.output == "lab-box\n"
    assert os.uname().nodename != "lab-box"


def test_host_processes_and_mounts_are_not_visible(busybox, tmp_path):
    script = "ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '; echo; cut -d' ' -f2 /proc/mounts | tr '\\n' ' '"
    result = engine.run(busybox, ["sh", "-c", script])
    pids, mounts = result.output.splitlines()
    assert pids.split()[0] == "1" and max(map(int, pids.split())) < 10  # sh, ls, grep...: the host has hundreds
    assert str(tmp_path) not in mounts and "/work" not in mounts
    masks = set(Profile().masked_paths) | set(Profile().readonly_paths)  # covered or read-only: mounts of their own
    assert set(mounts.split()) <= {"/", "/proc", "/dev", "/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                                   "/dev/urandom", "/dev/tty", "/dev/pts", "/dev/shm", "/sys"} | masks


def test_only_lo_is_visible_without_a_network(busybox):
    result = engine.run(busybox, ["ls", "/sys/class/net"])
    assert result.output.split() == ["lo"]


def test_bridge_network_gives_eth0_that_reaches_the_bridge(busybox):
    script = "ls /sys/class/net; ping -c 1 -W 3 10.213.0.1 >/dev/null && echo reached"
    result = engine.run(busybox, ["sh", "-c", script], net="bridge")
    assert result.output.split() == ["eth0", "lo", "reached"]


def test_env_working_dir_and_cmd_come_from_the_image_config(busybox):
    result = engine.run(busybox, ["sh", "-c", "pwd; echo $LAB; echo $PATH; echo $HOSTNAME"])
    cwd, lab, path, hostname = result.output.splitlines()
    assert (cwd, lab, hostname) == ("/opt/lab", "lxclab", result.container_id[:12])
    assert path.startswith("/opt/lab/bin:")
    default = engine.run(busybox)  # the image's Cmd is `sh`; its stdin is /dev/null, so it ends at once
    assert default.exit_code == 0
    assert containers.find(default.container_id).config.argv == ["sh"]


def test_exit_status_passes_through(busybox):
    assert engine.run(busybox, ["sh", "-c", "exit 3"]).exit_code == 3
    killed = engine.run(busybox, ["sh", "-c", "sleep 30 & kill -KILL $!; wait $!"])
    assert killed.exit_code == 137


def _tree_digest(root: Path) -> str:
    """A digest of every path, mode and file content under `root`."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        digest.update(f"{path.relative_to(root)} {info.st_mode} {info.st_size}".encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_writes_land_in_the_upper_dir_and_never_in_the_shared_layers(busybox):
    engine.run(busybox, ["true"])
    layers_before = _tree_digest(paths.layers_dir())
    result = engine.run(busybox, ["sh", "-c", "echo mine > /etc/written; rm /etc/passwd; echo x >> /opt/lab/bin/hello"])
    assert result.exit_code == 0
    upper = containers.find(result.container_id).upper
    assert (upper / "etc/written").read_text() == "mine\n"
    assert (upper / "opt/lab/bin/hello").read_text().endswith("x\n")  # copied up, then changed
    assert os.major((upper / "etc/passwd").lstat().st_rdev) == 0  # a whiteout hides the image's file
    assert _tree_digest(paths.layers_dir()) == layers_before
    fresh = engine.run(busybox, ["sh", "-c", "ls /etc/written 2>&1; grep -c root /etc/passwd"])
    assert "No such file" in fresh.output and fresh.output.endswith("1\n")


def test_copy_mode_gives_the_same_view(busybox):
    result = engine.run(busybox, ["sh", "-c", "cat /opt/lab/notes/*; ls /etc/motd 2>&1; pwd"], mode="copy")
    overlay = engine.run(busybox, ["sh", "-c", "cat /opt/lab/notes/*; ls /etc/motd 2>&1; pwd"])
    assert result.output == overlay.output
    assert "No such file" in result.output


def test_detached_container_keeps_running_and_exec_joins_it(busybox):
    container = engine.start(busybox, ["sh", "-c", "echo started; exec sleep 60"], name="sleeper")
    assert containers.find("sleeper").status == containers.RUNNING
    with tempfile.TemporaryFile() as output:
        status = engine.exec_in("sleeper", ["sh", "-c", "hostname; cat /proc/1/comm; pwd; exit 4"],
                                stdout=output.fileno(), stderr=output.fileno())
        output.seek(0)
        assert output.read().decode().split() == [container.short_id, "sleep", "/opt/lab"]
    assert status.exit_code == 4
    assert containers.find(container.short_id[:6]).logs() == b"started\n"
    with pytest.raises(ContainerError, match="is running: stop it first"):
        gc.rm("sleeper")
    assert gc.rm("sleeper", force=True) == container.id
    assert not container.directory.exists()
    with pytest.raises(ContainerNotFound, match="no container 'sleeper'"):
        gc.rm("sleeper")


def test_detached_run_with_rm_removes_itself_when_it_exits(busybox):
    container = engine.start(busybox, ["sleep", "0.3"], remove=True)
    deadline = time.monotonic() + 15
    while container.directory.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not container.directory.exists()


def test_forced_rm_of_a_detached_run_with_rm(busybox):
    container = engine.start(busybox, ["sleep", "60"], remove=True)
    assert gc.rm(container.short_id, force=True) == container.id
    assert not container.directory.exists() and containers.containers() == []


def test_exit_is_recorded_for_ps(busybox):
    result = engine.run(busybox, ["sh", "-c", "exit 5"], name="five")
    found = containers.find("five")
    assert found.status == containers.EXITED and found.exit_status.exit_code == 5
    assert found.describe().startswith("Exited (5)")
    with pytest.raises(NotRunning):
        engine.exec_in("five", ["true"])
    assert gc.rm(result.container_id) == result.container_id


def test_memory_hog_is_oom_killed_and_reported(busybox):
    result = engine.run(busybox, ["busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
                        limits=Limits.parse(memory="16m"), name="hog")
    assert result.oom_killed and result.status.signal == 9
    assert "OOM killed" in containers.find("hog").describe()


def test_cpu_spinner_is_held_under_its_quota(busybox):
    container = engine.start(busybox, ["sh", "-c", "while :; do :; done"], limits=Limits.parse(cpus="0.2"))
    time.sleep(0.5)
    before, started = container.stats().cpu_usage_ns, time.monotonic()
    time.sleep(3)
    share = (container.stats().cpu_usage_ns - before) / 1e9 / (time.monotonic() - started)
    assert 0.02 < share <= 0.2 * 1.10  # a ceiling: a busy machine may give less, never more
    assert container.stats().cpu_throttled_periods > 0


def test_fork_bomb_stops_at_the_pids_limit(busybox):
    container = engine.start(busybox, FORK_BOMB, limits=Limits.parse(pids="16"))
    deadline = time.monotonic() + 10
    while container.stats().pids_denied == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    samples = [container.stats().pids for _ in range(50)]
    assert container.stats().pids_denied > 0
    assert 1 < max(samples) <= 16
    assert subprocess.run(["true"]).returncode == 0  # the host still forks


def test_missing_image_says_to_pull_it_first(engine_home):
    with pytest.raises(ImageNotFound, match="pull it first: lxclab pull 127.0.0.1:1/lab/none"):
        engine.run("127.0.0.1:1/lab/none:latest", ["true"])


def test_an_image_for_another_machine_is_refused_before_anything_is_made(seeded_classroom, engine_home):
    ref = f"{seeded_classroom.registry_host}/lab/busybox:latest"
    pull(ref, platform=Platform("linux", "arm64"))
    with pytest.raises(ContainerError, match=r"is for linux/arm64, but this machine is linux/amd64: pull the image"):
        engine.run(ref, ["true"])
    assert containers.containers() == []


def test_missing_command_is_a_clear_error_and_leaves_nothing(busybox, engine_home):
    with pytest.raises(CommandNotFound, match="'no-such-command' not found in the image"):
        engine.run(busybox, ["no-such-command"])
    assert containers.containers() == []
    assert list((engine_home / "containers").iterdir()) == []


def test_bad_limit_and_bad_options_are_refused(busybox):
    with pytest.raises(InvalidLimit, match="invalid memory limit '12 parsecs'"):
        Limits.parse(memory="12 parsecs")
    with pytest.raises(ContainerError, match="unknown network 'wifi'"):
        engine.run(busybox, ["true"], net="wifi")
    with pytest.raises(ContainerError, match="rootless containers use copy mode"):
        engine.run(busybox, ["true"], rootless=True, mode="overlay")
    engine.run(busybox, ["true"], name="taken")
    with pytest.raises(ContainerError, match="the name 'taken' is in use"):
        engine.run(busybox, ["true"], name="taken")


def test_a_containers_limits_stay_typed_through_its_record(busybox):
    limits = Limits(memory_bytes=64 << 20, cpus=0.5, pids=20)
    assert engine.run(busybox, ["true"], name="typed", limits=limits).exit_code == 0
    assert containers.find("typed").config.limits == limits
    assert isinstance(containers.find("typed").config.limits, Limits)
    gc.rm("typed")
