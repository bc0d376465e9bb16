"""`lxclab run --runtime lxc` and the engine's LXC runtime on real LXC: what the container sees, its limits, ps,
exec, start/stop, rm and gc leaving nothing, and the errors a user meets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_process import lxclab
from fixture_engine import busybox, engine_home  # noqa: F401

from lxclab import procfs
from lxclab.engine import containers, gc
from lxclab.engine import lxcrun
from lxclab.engine import run as engine
from lxclab.errors import AlreadyRunning
from lxclab.chroot import ExitStatus
from lxclab.limits import Limits
from lxclab.lxc import State, container_names, default_lxcpath, lxc_cgroups
from lxclab.lxc.foreground import RunLog, read_run_log
from lxclab.lxc.hierarchies import PIVOT, cgroup_version, lxc_bases, swap_accounting
from lxclab.lxc.usage import config_items

MIB = 1 << 20


def lxc_footprint(home: Path, container: containers.ContainerRecord) -> dict[str, object]:
    """What an LXC-runtime container can hold on the host: LXC's own list, its cgroups, mounts, directories."""
    name = container.config.lxc_name
    listed = subprocess.run(["lxc-ls", "-1", "-P", str(default_lxcpath())], capture_output=True, text=True).stdout
    mounts = [point for point in procfs.mount_points() if str(home) in point]
    return {
        "lxc-ls": name in listed.split(),
        "cgroups": [str(path) for path in lxc_cgroups(name)],
        "pivot": [str(base / PIVOT) for base in lxc_bases() if (base / PIVOT).exists()],
        "mounts": mounts,
        "dirs": sorted(str(p) for p in (*home.glob(f"containers/{container.id}"), *home.glob(f"lxc/{name}"))),
    }


NOTHING = {"lxc-ls": False, "cgroups": [], "pivot": [], "mounts": [], "dirs": []}


def host_cgroup_value(pid: int, controller: str, file: str) -> str:
    """A cgroup file of process `pid`, read on the host's cgroupfs (an oracle beside LXC), v1 or v2."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _id, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return Path(f"/sys/fs/cgroup/{controllers}{path}/{file}").read_text().strip()
        if controllers == "" and cgroup_version() == 2:
            return Path(f"/sys/fs/cgroup{path}/{file}").read_text().strip()
    raise AssertionError(f"process {pid} is in no {controller} cgroup")


def test_cli_run_passes_pid_1_hostname_env_output_and_exit_status(busybox, engine_home):
    script = "echo $$; hostname; echo $LAB; pwd; cat /proc/1/cmdline | tr '\\0' ' '; echo; echo oops >&2; exit 3"
    done = lxclab("run", "--runtime", "lxc", "--name", "lxc-one", "--hostname", "lxc-box", busybox, "sh", "-c", script)
    assert (done.returncode, done.stderr) == (3, "oops\n")
    pid, hostname, lab, cwd, cmdline = done.stdout.splitlines()
    assert (pid, hostname, lab, cwd) == ("1", "lxc-box", "lxclab", "/opt/lab")  # LXC's init is the command itself
    assert cmdline.startswith("sh -c echo $$")
    listed = lxclab("ps", "-a").stdout.splitlines()
    assert listed[0].split()[-2:] == ["RUNTIME", "NAME"]
    assert "Exited (3)" in listed[1] and listed[1].split()[-2:] == ["lxc", "lxc-one"]
    assert sorted(lxclab("logs", "lxc-one").stdout.split()) == sorted(done.stdout.split() + ["oops"])

    container = containers.find("lxc-one")
    held = lxc_footprint(engine_home, container)
    assert held["lxc-ls"] and held["dirs"] and not held["mounts"]  # exited: defined until rm, root unmounted
    assert lxclab("rm", "lxc-one").stdout.strip() == container.id
    assert lxc_footprint(engine_home, container) == NOTHING


def test_library_run_uses_the_image_config_and_the_upper_dir(busybox, engine_home):
    result = engine.run(busybox, ["sh", "-c", "echo $PATH; echo new > /opt/lab/notes/new.txt; rm /opt/lab/README.txt"],
                        runtime="lxc", name="lxc-lib")
    assert result.exit_code == 0 and result.output.startswith("/opt/lab/bin:")
    container = containers.find("lxc-lib")
    assert (container.upper / "opt/lab/notes/new.txt").read_text() == "new\n"
    assert (container.upper / "opt/lab/README.txt").lstat().st_rdev == 0  # an overlay whiteout: a 0/0 device
    assert not any(path.name.startswith("lxc") for path in container.upper.iterdir())  # LXC wrote nothing else
    gc.rm("lxc-lib")
    assert lxc_footprint(engine_home, container) == NOTHING


def test_limits_are_lxcs_cgroup_keys_and_the_kernel_enforces_them(busybox, engine_home):
    limits = Limits.parse(memory="48m", cpus="0.5", pids="24")
    limited = engine.start(busybox, ["sleep", "60"], runtime="lxc", name="lxc-limits", limits=limits)
    init = limited.state.pid[0]
    memory_file = "memory.limit_in_bytes" if cgroup_version() == 1 else "memory.max"
    assert host_cgroup_value(init, "memory", memory_file) == str(48 * MIB)
    assert host_cgroup_value(init, "pids", "pids.max") == "24"
    assert host_cgroup_value(init, "cpu", "cpu.cfs_quota_us" if cgroup_version() == 1 else "cpu.max") in (
        "50000", "50000 100000")
    config = (default_lxcpath() / limited.config.lxc_name / "config").read_text()
    assert all(f"{key} = {value}" in config for key, value in config_items(limits, cgroup_version(), swap_accounting()))
    forks = subprocess.run([sys.executable, "-m", "lxclab", "exec", "lxc-limits", "sh", "-c",
                            "for i in $(seq 40); do sleep 5 & done 2>&1; wait"], capture_output=True, text=True,
                           timeout=60)
    assert "can't fork" in forks.stdout + forks.stderr
    gc.rm("lxc-limits", force=True)

    hog = engine.run(busybox, ["busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"], runtime="lxc",
                     limits=Limits.parse(memory="16m"), remove=True)
    assert hog.status.signal == signal.SIGKILL and hog.exit_code == 137  # the OOM killer, through LXC


def test_detached_exec_start_stop_and_rm_leave_nothing(busybox, engine_home):
    started = lxclab("run", "-d", "--runtime", "lxc", "--name", "lxc-bg", "--hostname", "bg-box", busybox,
                     "sleep", "60")
    assert started.returncode == 0, started.stderr
    container = containers.find("lxc-bg")
    assert started.stdout.strip() == container.id
    running = lxclab("ps").stdout.splitlines()
    assert len(running) == 2 and "Up " in running[1] and running[1].split()[-2:] == ["lxc", "lxc-bg"]
    inside = lxclab("exec", "lxc-bg", "sh", "-c", "hostname; cat /proc/1/comm; echo $LAB; pwd; exit 7")
    assert (inside.returncode, inside.stdout.split()) == (7, ["bg-box", "sleep", "lxclab", "/opt/lab"])
    assert lxclab("exec", "lxc-bg", "no-such-command").returncode == 127

    twice = lxclab("start", "lxc-bg")
    assert twice.returncode == 1 and "container lxc-bg is already running: stop it first" in twice.stderr
    assert lxclab("stop", "lxc-bg").stdout.strip() == container.id
    assert containers.find("lxc-bg").describe().startswith("Exited (137)")
    stopped = lxclab("exec", "lxc-bg", "true")
    assert stopped.returncode == 1 and "container lxc-bg is not running" in stopped.stderr
    assert lxclab("stop", "lxc-bg").returncode == 1

    again = lxclab("start", "lxc-bg")  # the same LXC container, its root and changes kept
    assert again.returncode == 0, again.stderr
    assert lxclab("exec", "lxc-bg", "hostname").stdout == "bg-box\n"
    assert lxclab("rm", "-f", "lxc-bg").stdout.strip() == container.id
    assert lxc_footprint(engine_home, container) == NOTHING


def test_sigkilled_supervisor_then_gc_leaves_nothing(busybox, engine_home):
    started = lxclab("run", "-d", "--runtime", "lxc", "--memory", "64m", "--name", "lxc-victim", busybox,
                     "sh", "-c", "sleep 300 & sleep 300")
    assert started.returncode == 0, started.stderr
    victim = containers.find("lxc-victim")
    os.kill(victim.state.owner[0], signal.SIGKILL)  # the supervisor that `lxclab run -d` left behind
    deadline = time.monotonic() + 10
    while containers.find("lxc-victim").status != containers.DEAD and time.monotonic() < deadline:
        time.sleep(0.05)
    assert containers.find("lxc-victim").status == containers.DEAD
    assert procfs.is_alive(victim.state.pid)  # the container outlived its lxclab process
    held = lxc_footprint(engine_home, victim)
    assert held["lxc-ls"] and held["cgroups"] and held["mounts"] and held["dirs"]

    done = lxclab("gc")
    assert done.returncode == 0, done.stderr
    assert f"removed container {victim.short_id} (lxc-victim)" in done.stdout
    assert not procfs.is_alive(victim.state.pid)
    assert lxc_footprint(engine_home, victim) == NOTHING


def test_gc_destroys_an_lxc_container_that_no_record_names(busybox, engine_home):
    container = engine.start(busybox, ["sleep", "60"], runtime="lxc", name="lxc-orphan")
    gc.stop("lxc-orphan")
    container.remove_directory()  # as if a crash lost the record between rm's steps
    assert container.config.lxc_name in container_names()
    assert gc.gc() == [f"LXC container {container.config.lxc_name} (no record names it) and its root"]
    assert lxc_footprint(engine_home, container) == NOTHING


@pytest.mark.parametrize("args, message", [
    (["--net", "bridge"], "the LXC runtime gives a container only lo (--net none)"),
    (["--rootless"], "the LXC runtime needs root here"),
    (["--memory", "12parsecs"], "invalid memory limit '12parsecs'"),
])
def test_options_the_lxc_runtime_cannot_honour_are_refused(busybox, args, message):
    done = lxclab("run", "--runtime", "lxc", *args, busybox, "true")
    assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr
    assert lxclab("ps", "-a").stdout.splitlines()[1:] == []


def test_image_not_pulled_and_missing_command(busybox, engine_home):
    absent = lxclab("run", "--pull", "never", "--runtime", "lxc", "127.0.0.1:1/lab/absent:1", "true")
    assert absent.returncode == 1
    assert absent.stderr.strip().endswith("pull it first: lxclab pull 127.0.0.1:1/lab/absent:1")
    missing = lxclab("run", "--runtime", "lxc", busybox, "no-such-command")
    assert missing.returncode == 127 and "'no-such-command': No such file or directory" in missing.stderr
    assert lxclab("ps", "-a").stdout.splitlines()[1:] == []
    assert container_names() == []


def test_the_lxc_library_refuses_a_second_start(busybox, engine_home):
    container = engine.start(busybox, ["sleep", "60"], runtime="lxc", name="lxc-twice")
    box = lxcrun.lxc_container(container)
    assert box.state is State.RUNNING
    with pytest.raises(AlreadyRunning, match="is already RUNNING: stop it before starting it"):
        box.start()
    gc.rm("lxc-twice", force=True)


@pytest.mark.parametrize("runtime", ["namespaces", "lxc"])
def test_start_runs_an_exited_container_again_on_its_own_root(busybox, runtime):
    script = "echo run >> /tmp/runs; wc -l < /tmp/runs"
    first = lxclab("run", "--runtime", runtime, "--name", "again", busybox, "sh", "-c", script)
    assert (first.returncode, first.stdout.strip()) == (0, "1"), first.stderr
    assert lxclab("start", "again").returncode == 0
    deadline = time.monotonic() + 20
    while containers.find("again").status != containers.EXITED and time.monotonic() < deadline:
        time.sleep(0.05)
    assert containers.find("again").describe().startswith("Exited (0)")
    assert lxclab("logs", "again").stdout.split() == ["1", "2"]  # the second run saw the first one's file


@pytest.mark.parametrize("log, expected", [
    ('... post_start:2205 - Started "/bin/sh" with pid "2198"\n'
     "... lxc_error_set_and_log:31 - Child <2198> ended on error (3)\n", RunLog(2198, ExitStatus(code=3))),
    ('... Started "sleep" with pid "2204"\n... lxc_error_set_and_log:34 - Child <2204> ended on signal Killed(9)\n',
     RunLog(2204, ExitStatus(signal=9))),
    ('... Started "true" with pid "2208"\n... Child <77> ended on error (1)\n', RunLog(2208, None)),  # 0: no line
    ('... start.c:start:2197 - No such file or directory - Failed to exec "/nonexistent"\n',
     RunLog(None, None, "'/nonexistent': No such file or directory")),
    ("", RunLog()),
])
def test_the_run_log_gives_init_pid_and_exit_status(log, expected):
    assert read_run_log(log) == expected
