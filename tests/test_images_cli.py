"""The image commands of the CLI: login, pull, images, inspect, tag, push, logout."""

from __future__ import annotations

import io
import json
import stat
import subprocess
import sys

import pytest
from cli_process import lxclab
from fixture_images import unique_repository

from lxclab import manifest as m
from lxclab.cli import main
from lxclab.paths import credentials_file
from lxclab.registry import credentials
from lxclab.store import Store


@pytest.fixture
def run(lxclab_home, capsys):
    """Run `lxclab ARGS...` in this process; returns (status, stdout, stderr)."""

    def run_command(*args: str, stdin: str | None = None):
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        try:
            status = main(list(args))
        finally:
            sys.stdin = sys.__stdin__
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run_command


def test_login_checks_the_password_before_saving_it(run, classroom):
    user, password = classroom.teacher
    status, _, err = run("login", "-u", user, "--password-stdin", classroom.registry_host, stdin="wrong\n")
    assert status == 1 and "refused user 'teacher'" in err and not credentials_file().exists()
    status, out, _ = run("login", "-u", user, "--password-stdin", classroom.registry_host, stdin=password + "\n")
    assert status == 0 and out.startswith(f"Login succeeded: {user} at {classroom.registry_host}")
    assert credentials.lookup(classroom.registry_host) == (user, password)
    assert stat.S_IMODE(credentials_file().stat().st_mode) == 0o600
    status, out, _ = run("logout", classroom.registry_host)
    assert status == 0 and credentials.lookup(classroom.registry_host) is None


def test_pull_prints_the_digest_and_shows_progress_on_stderr(run, pushed_image):
    status, out, err = run("pull", pushed_image.ref)
    assert (status, out) == (0, pushed_image.image.digest + "\n")
    for layer in pushed_image.image.layers:
        short = m.sha256_digest(layer)[7:19]
        assert any(short in line and "100%" in line for line in err.replace("\r", "\n").splitlines())
    status, out, _ = run("pull", "-q", pushed_image.ref)
    assert (status, out) == (0, pushed_image.image.digest + "\n")


def test_images_lists_what_was_pulled(run, pushed_image):
    run("pull", "-q", pushed_image.ref)
    status, out, _ = run("images")
    header, row = out.splitlines()
    assert header.split() == ["REPOSITORY", "TAG", "DIGEST", "PLATFORM", "SIZE"]
    assert row.split()[:4] == [f"{pushed_image.registry}/{pushed_image.repository}", "1", pushed_image.image.digest[7:19], "linux/amd64"]


def test_inspect_shows_history_with_empty_layers_diff_ids_and_chain_ids(run, pushed_image):
    run("pull", "-q", pushed_image.ref)
    status, out, _ = run("inspect", pushed_image.ref)
    image = Store().image(pushed_image.ref)
    assert status == 0 and f"Digest      {image.digest}" in out
    history = out.split("History")[1].split("ChainIDs")[0].splitlines()[1:]
    steps = [line.split(None, 2) for line in history if line.strip()]
    assert [s[1] for s in steps] == [*image.config.diff_ids, "(empty"]
    chain_lines = out.split("ChainIDs")[1].splitlines()[1:]
    assert [line.split()[1] for line in chain_lines if line.strip()] == image.config.chain_ids
    status, out, _ = run("inspect", "--json", pushed_image.ref)
    assert json.loads(out)["config"]["rootfs"]["diff_ids"] == list(image.config.diff_ids)


def test_tag_and_push_with_a_saved_login(run, classroom, pushed_image):
    run("pull", "-q", pushed_image.ref)
    target = f"{classroom.registry_host}/{unique_repository()}:tagged"
    status, out, _ = run("tag", pushed_image.ref, target)
    assert status == 0 and pushed_image.image.digest in out
    status, _, err = run("push", target)
    assert status == 1 and f"lxclab login {classroom.registry_host}" in err
    run("login", "-u", classroom.teacher[0], "--password-stdin", classroom.registry_host, stdin=classroom.teacher[1])
    status, out, _ = run("push", target)
    assert (status, out) == (0, pushed_image.image.digest + "\n")


def test_errors_are_one_clear_line(run, classroom):
    status, _, err = run("pull", "-q", f"{classroom.registry_host}/{unique_repository()}:missing")
    assert status == 1 and err.startswith("lxclab: error: manifest") and "not found" in err
    status, _, err = run("inspect", "lab/never-pulled:1")
    assert status == 1 and "run `lxclab pull lab/never-pulled:1`" in err
    with pytest.raises(SystemExit) as usage:
        run("pull", "--platform", "linux", "busybox")
    assert usage.value.code == 2


def test_the_installed_command_runs(lxclab_home):
    done = lxclab("images")
    assert done.returncode == 0 and done.stdout.split() == ["REPOSITORY", "TAG", "DIGEST", "PLATFORM", "SIZE"]


def test_a_reader_that_stops_early_is_not_an_error(run, pushed_image):
    run("pull", "-q", pushed_image.ref)
    inspect = subprocess.Popen([sys.executable, "-m", "lxclab", "inspect", pushed_image.ref],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    inspect.stdout.close()  # the reader is gone before a line was written, like `lxclab inspect REF | true`
    _, err = inspect.communicate(timeout=60)
    assert (inspect.returncode, err) == (0, b"")
