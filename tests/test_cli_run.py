"""`lxclab run/exec/ps/logs/rm/gc` as a user types them: exit statuses, output, clear errors, rootless mode."""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from cli_process import lxclab
from fixture_engine import busybox, engine_home  # noqa: F401
from fixture_nobody import NobodyPython
from polling import SLOWDOWN

from lxclab.engine import containers
from lxclab.engine.pull import pull
from lxclab.store import Store


def test_run_streams_output_and_passes_the_exit_status_through(busybox):
    done = lxclab("run", "--name", "three", busybox, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
    logs = lxclab("logs", "three")
    assert logs.returncode == 0 and sorted(logs.stdout.split()) == ["err", "out"]
    listed = lxclab("ps", "-a").stdout.splitlines()
    assert listed[0].split()[:3] == ["CONTAINER", "ID", "IMAGE"]
    assert "Exited (3)" in listed[1] and listed[1].rstrip().endswith("three")


def test_run_i_passes_stdin_and_rm_leaves_nothing(busybox):
    done = lxclab("run", "-i", "--rm", busybox, "tr", "a-z", "A-Z", stdin="hello\n")
    assert (done.returncode, done.stdout) == (0, "HELLO\n")
    assert lxclab("ps", "-a").stdout.splitlines()[1:] == []


def test_without_i_the_container_reads_nothing(busybox):
    done = lxclab("run", "--rm", busybox, "sh", "-c", "cat; readlink /proc/self/fd/0", stdin="typed\n")
    assert (done.returncode, done.stdout) == (0, "/dev/null\n")


def on_a_terminal(*args: str, typed: bytes = b"", timeout: float = 60 * SLOWDOWN) -> tuple[int, bytes]:
    """Run the CLI with a new pty as its stdin, stdout and stderr (a user at a terminal); returns (status, output)."""
    import pty

    master, terminal = pty.openpty()
    cli = subprocess.Popen([sys.executable, "-m", "lxclab", *args], stdin=terminal, stdout=terminal, stderr=terminal,
                           start_new_session=True)
    os.close(terminal)
    if typed:
        os.write(master, typed)
    output, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not select.select([master], [], [], 1)[0]:
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the CLI and everything it started closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    try:
        return cli.wait(timeout=30 * SLOWDOWN), output
    except subprocess.TimeoutExpired:
        cli.kill()
        raise AssertionError(f"lxclab {' '.join(args)} did not end; it wrote {output!r}") from None


@pytest.mark.parametrize("runtime", ["namespaces", "lxc"])
def test_the_callers_terminal_never_reaches_the_container(busybox, runtime):
    status, output = on_a_terminal("run", "-i", "--rm", "--runtime", runtime, busybox, "sh", "-c",
                                   "for fd in 0 1 2; do readlink /proc/self/fd/$fd; done; test -t 0 || echo no-tty")
    lines = output.decode().split()
    assert status == 0 and lines[-1] == "no-tty", output
    assert [line.split(":")[0] for line in lines[:3]] == ["pipe", "pipe", "pipe"], output


@pytest.mark.parametrize("runtime", ["namespaces", "lxc"])
def test_run_t_gives_the_container_a_terminal_of_its_own(busybox, runtime):
    status, output = on_a_terminal("run", "-it", "--rm", "--runtime", runtime, busybox, "sh", "-c",
                                   "test -t 0 && test -t 1 && echo on-a-tty; read line; echo got:$line; exit 4",
                                   typed=b"typed\n")
    text = output.decode()
    assert status == 4 and "on-a-tty\r\n" in text and "got:typed\r\n" in text, output


def test_exec_i_and_t(busybox):
    assert lxclab("run", "-d", "--name", "execs", busybox, "sleep", "60").returncode == 0
    try:
        piped = lxclab("exec", "-i", "execs", "tr", "a-z", "A-Z", stdin="quiet\n")
        assert (piped.returncode, piped.stdout) == (0, "QUIET\n")
        status, output = on_a_terminal("exec", "-t", "execs", "sh", "-c", "test -t 1 && echo tty-out; exit 5")
        assert status == 5 and b"tty-out\r\n" in output, output
    finally:
        lxclab("rm", "-f", "execs")


def test_detached_exec_ps_rm(busybox):
    started = lxclab("run", "-d", "--name", "bg", "--hostname", "cli-box", busybox, "sleep", "60")
    assert started.returncode == 0, started.stderr
    container_id = started.stdout.strip()
    assert len(container_id) == 64
    running = lxclab("ps").stdout.splitlines()
    assert len(running) == 2 and running[1].startswith(container_id[:12]) and "Up " in running[1]
    inside = lxclab("exec", "bg", "sh", "-c", "hostname; cat /proc/1/comm; exit 7")
    assert (inside.returncode, inside.stdout.split()) == (7, ["cli-box", "sleep"])
    refused = lxclab("rm", "bg")
    assert refused.returncode == 1 and "is running: stop it first, or force it with lxclab rm -f bg" in refused.stderr
    assert lxclab("rm", "-f", "bg").stdout.strip() == container_id
    again = lxclab("rm", "bg")
    assert again.returncode == 1 and "no container 'bg'" in again.stderr and "lxclab ps -a" in again.stderr


def test_sigterm_to_a_foreground_run_kills_the_container_and_records_it(busybox):
    cli = subprocess.Popen([sys.executable, "-m", "lxclab", "run", "--name", "stopped", busybox, "sleep", "60"],
                           stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30 * SLOWDOWN
    while "Up " not in lxclab("ps").stdout and time.monotonic() < deadline:
        time.sleep(0.1)
    [container] = containers.containers()
    cli.send_signal(signal.SIGTERM)
    assert cli.wait(timeout=30 * SLOWDOWN) == 130
    assert containers.find("stopped").describe().startswith("Exited (137)")
    assert not any(Path(path).exists() for path in container.state.footprint.cgroups)


def test_missing_image_is_pulled_first_with_its_progress_as_docker_run_does(seeded_classroom, engine_home):
    ref = f"{seeded_classroom.registry_host}/lab/busybox:1.0"
    done = lxclab("run", "--rm", ref, "echo", "hello")
    assert (done.returncode, done.stdout) == (0, "hello\n"), done.stderr
    assert f"image {ref} is not in the store: pulling it" in done.stderr
    image = Store(engine_home / "store").image(ref)
    finished = set(re.findall(r"^([0-9a-f]{12}): 100%", done.stderr, re.M))  # a progress bar per layer, filled
    assert finished == {layer.digest[7:19] for layer in image.manifest.layers}, done.stderr
    again = lxclab("run", "--rm", ref, "echo", "again")
    assert (again.returncode, again.stdout, again.stderr) == (0, "again\n", "")  # stored now: no second pull


def test_a_missing_image_that_cannot_be_pulled_says_why(engine_home):
    done = lxclab("run", "127.0.0.1:1/lab/absent:1", "true")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "pulling it" in done.stderr and "127.0.0.1:1" in done.stderr.splitlines()[-1]
    assert lxclab("ps", "-a").stdout.splitlines()[1:] == []


def test_pull_never_refuses_a_missing_image(engine_home):
    done = lxclab("run", "--pull", "never", "127.0.0.1:1/lab/absent:1", "true")
    assert done.returncode == 1
    assert done.stderr.strip().endswith("pull it first: lxclab pull 127.0.0.1:1/lab/absent:1")


def test_missing_command_exits_127_with_a_clear_error(busybox):
    done = lxclab("run", busybox, "no-such-command", "--flag")
    assert done.returncode == 127
    assert "command 'no-such-command' not found in the image" in done.stderr
    assert lxclab("ps", "-a").stdout.splitlines()[1:] == []


@pytest.mark.parametrize("option, value, message", [
    ("--memory", "12parsecs", "invalid memory limit '12parsecs'"),
    ("--cpus", "lots", "invalid CPU limit 'lots'"),
    ("--pids", "0", "pids limit '0' is below 1"),
])
def test_bad_limit_values_are_refused(busybox, option, value, message):
    done = lxclab("run", option, value, busybox, "true")
    assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr
    assert lxclab("ps", "-a").stdout.splitlines()[1:] == []


def test_exec_into_a_stopped_container_is_refused(busybox):
    lxclab("run", "--name", "done", busybox, "true")
    refused = lxclab("exec", "done", "true")
    assert refused.returncode == 1 and "container done is not running" in refused.stderr


@pytest.fixture
def nobodys_home(busybox):
    """A home that user nobody owns, holding the pulled busybox (pytest's tmp_path is closed to nobody)."""
    top = Path(tempfile.mkdtemp(prefix="lxclab-rootless-"))
    top.chmod(0o755)
    home = top / "home"
    pull(busybox, store=Store(home / "store"))
    subprocess.run(["chown", "-R", "nobody:nogroup", str(home)], check=True)
    yield home
    shutil.rmtree(top)


def as_nobody(python: NobodyPython, home: Path, *args: str) -> subprocess.CompletedProcess:
    """The CLI run by user nobody (with a Python it may run) with `home` as its $LXCLAB_HOME."""
    command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", python.python, "-m", "lxclab", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd="/",
                          env=python.env(LXCLAB_HOME=str(home)), stdin=subprocess.DEVNULL)


def test_rootless_run_works_for_user_nobody(busybox, nobodys_home, nobody_python):
    script = "echo $$; id -u; hostname; cat /proc/self/uid_map; ls /sys/class/net; pwd; echo hi > /tmp/mine"
    done = as_nobody(nobody_python, nobodys_home, "run", "--name", "free", "--hostname", "rootless-box", busybox, "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    pid, uid, hostname, uid_map, interfaces, cwd = done.stdout.splitlines()
    assert (pid, uid, hostname, interfaces, cwd) == ("1", "0", "rootless-box", "lo", "/opt/lab")
    assert uid_map.split() == ["0", "65534", "1"]  # root inside is nobody outside
    [record] = (nobodys_home / "containers").iterdir()
    assert (record / "rootfs/tmp/mine").stat().st_uid == 65534  # a private copy, owned by nobody
    assert as_nobody(nobody_python, nobodys_home, "rm", "free").returncode == 0
    limited = as_nobody(nobody_python, nobodys_home, "run", "--memory", "64m", busybox, "true")
    assert limited.returncode == 1 and "limits need a cgroup" in limited.stderr
