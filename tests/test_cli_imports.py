"""The CLI imports only what a command uses: no HTTP client, python-lxc or plotting for local commands.

Each command runs in a fresh interpreter (`python -c`), which then reports the modules
it loaded; a module that sneaks back in at import time fails the test with its name. The
program ends as soon as its command is done (no module teardown), with its status, its output
flushed and the atexit handlers run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest
from fixture_engine import busybox, engine_home  # noqa: F401

from lxclab import cli

HEAVY = ("httpx", "lxc", "matplotlib", "ipywidgets", "cryptography", "tqdm", "zstandard", "lxclab.registry", "lxclab.lxc")
NOT_FOR_PULL = ("lxc", "matplotlib", "ipywidgets", "cryptography", "tqdm", "lxclab.lxc", "lxclab.layers", "lxclab.unionfs",
                "lxclab.tarball", "tarfile", "lxclab.cgroups", "lxclab.namespaces", "lxclab.security", "lxclab.engine.run")
NOT_FOR_A_CACHED_RUN = ("lxclab.tarball", "tarfile", "gzip", "zstandard", "platform", "lxclab.unionfs.model")

REPORTER = """
import json, os, sys
from lxclab.cli import main
try:
    status = main(sys.argv[1:])
except SystemExit as exc:
    status = exc.code
sys.stdout.flush()
os.write(int(os.environ["REPORT_FD"]), json.dumps([status, sorted(sys.modules)]).encode())
"""


def loaded_by(*args: str) -> tuple[int, set[str], str]:
    """Run `lxclab ARGS` in a new interpreter; its exit status, the modules it loaded and its stdout."""
    read, write = os.pipe()
    done = subprocess.run([sys.executable, "-c", REPORTER, *args], pass_fds=(write,), capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, env={**os.environ, "REPORT_FD": str(write)})
    os.close(write)
    with open(read) as report:
        status, modules = json.loads(report.read())
    return status, set(modules), done.stdout


def heavy(modules: set[str], names: tuple[str, ...] = HEAVY) -> list[str]:
    """The packages of `names` (or their submodules) among `modules`."""
    return sorted(m for m in modules if m in names or m.startswith(tuple(f"{h}." for h in names)))


def test_version_prints_the_version_and_loads_no_command():
    status, modules, out = loaded_by("--version")
    assert (status, out) == (0, f"lxclab {__import__('lxclab').__version__}\n")
    assert not [m for m in modules if m.startswith("lxclab.cli.")]


@pytest.mark.parametrize("args", [("--help",), ("images",), ("ps", "-a")])
def test_local_commands_load_nothing_heavy(engine_home, args):
    status, modules, _ = loaded_by(*args)
    assert status == 0 and heavy(modules) == []


def test_run_of_a_stored_image_loads_no_http_client_or_liblxc(busybox):
    status, modules, out = loaded_by("run", "--rm", busybox, "echo", "ran")
    assert (status, out) == (0, "ran\n")
    assert heavy(modules) == []


def test_run_of_an_extracted_image_loads_no_layer_code_and_a_first_or_copy_run_does(busybox):
    first = loaded_by("run", "--rm", busybox, "echo", "first")  # extracts the three layers into the cache
    cached = loaded_by("run", "--rm", busybox, "echo", "cached")
    copied = loaded_by("run", "--rm", "--mode", "copy", busybox, "echo", "copied")
    assert [(status, out) for status, _, out in (first, cached, copied)] == [
        (0, "first\n"), (0, "cached\n"), (0, "copied\n")]
    assert heavy(cached[1], NOT_FOR_A_CACHED_RUN) == []
    # only metadata.py: the container's upper dir takes the metadata of the top layer's root directory
    assert heavy(cached[1], ("lxclab.layers",)) == ["lxclab.layers", "lxclab.layers.metadata"]
    assert {"lxclab.layers.apply", "tarfile"} <= first[1] & copied[1]


LAZY_PACKAGE = """
import json, sys
package = __import__(sys.argv[1], fromlist=["__all__"])
loaded = lambda: sorted(m for m in sys.modules if m.startswith(sys.argv[1] + "."))
before = loaded()
exec(f"from {sys.argv[1]} import *")  # AttributeError if a name of __all__ cannot be found
print(json.dumps([before, loaded(), sorted(set(package.__all__) - set(dir(package))), hasattr(package, "nothing")]))
"""


@pytest.mark.parametrize("package", ["lxclab.layers", "lxclab.unionfs"])
def test_a_lazy_package_keeps_its_names_and_loads_their_modules_when_asked(package):
    done = subprocess.run([sys.executable, "-c", LAZY_PACKAGE, package], capture_output=True, text=True, timeout=60,
                          check=True)
    before, after, missing_from_dir, has_nothing = json.loads(done.stdout)
    assert (before, missing_from_dir, has_nothing) == ([], [], False)
    assert {f"{package}.{module}" for module in __import__(package, fromlist=["_HOMES"])._HOMES.values()} <= set(after)


def test_pull_loads_the_registry_client_and_nothing_that_unpacks_or_runs(busybox):
    status, modules, _ = loaded_by("pull", "-q", busybox)
    assert status == 0 and {"httpx", "lxclab.registry.client"} <= modules
    assert heavy(modules, NOT_FOR_PULL) == []


def test_unpack_of_a_stored_image_loads_no_http_client_engine_or_progress_bar(busybox, tmp_path):
    status, modules, out = loaded_by("unpack", "--mode", "copy", busybox, str(tmp_path / "rootfs"))
    assert status == 0 and out.endswith("unpacked 3 layers into " + str(tmp_path / "rootfs") + "\n")
    assert heavy(modules) == [] and heavy(modules, ("lxclab.engine",)) == []


def test_every_command_is_registered_by_the_module_commands_names():
    for module in sorted(set(cli.COMMANDS.values())):
        subparsers = argparse.ArgumentParser().add_subparsers()
        __import__(f"lxclab.cli.{module}", fromlist=["register"]).register(subparsers)
        assert {name: module for name in subparsers.choices} == {
            name: owner for name, owner in cli.COMMANDS.items() if owner == module}


@pytest.mark.parametrize("argv, modules", [
    (["--version"], []), (["run", "--rm", "x", "true"], ["run"]), (["--help"], None), ([], None),
    (["nosuchcommand"], None), (["pull", "--help"], ["images"]), (["-h"], None),
])
def test_a_command_line_names_the_modules_it_needs(argv, modules):
    assert cli.modules_for(argv) == modules


PROGRAM = """
import atexit, sys, threading, time
from lxclab.cli import main
if sys.argv[1] == "thread":  # a command that left a (non-daemon) thread running: the exit waits for it
    threading.Thread(target=lambda: (time.sleep(0.2), print("thread done", flush=True))).start()
atexit.register(lambda: print("atexit ran", flush=True))
sys.argv[1:] = sys.argv[2:]
main()
print("not reached")
"""


def program(*args: str) -> subprocess.CompletedProcess:
    """Run `main()` as the `lxclab` program does (no argv), with an atexit handler of its own."""
    return subprocess.run([sys.executable, "-c", PROGRAM, *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("mode", ["plain", "thread"])
def test_the_program_ends_with_its_commands_status_output_flushed_and_atexit_run(engine_home, mode):
    done = program(mode, "images")
    lines = done.stdout.splitlines()
    printed = ["REPOSITORY  TAG  DIGEST  PLATFORM  SIZE"] + (["thread done"] if mode == "thread" else [])
    # the thread and the command print in either order (a slow VM lists images after 0.2 s); atexit comes last
    assert (done.returncode, sorted(lines[:-1]), lines[-1:]) == (0, sorted(printed), ["atexit ran"])


def test_the_program_ends_with_status_1_after_an_error(engine_home):
    done = program("plain", "inspect", "no/such")
    assert done.returncode == 1 and done.stdout == "atexit ran\n"
    assert done.stderr.startswith("lxclab: error: image no/such:latest is not in the store")
