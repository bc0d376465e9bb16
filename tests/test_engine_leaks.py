"""Nothing leaks: many runs, and a run whose lxclab process was SIGKILLed followed by `lxclab gc`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cli_process import lxclab
from fixture_engine import busybox, engine_home, host_footprint, mentioning  # noqa: F401
from fixture_kernel import open_fds

from lxclab import network, procfs
from lxclab.engine import containers, gc
from lxclab.engine import run as engine

RUNS = 200
BRIDGE_EVERY = 10  # every tenth run also gets a veth on the bridge


def test_many_runs_leave_no_mount_cgroup_netns_veth_directory_process_or_fd(busybox, engine_home):
    gc.rm(engine.run(busybox, ["true"]).container_id)  # the layer cache is filled once, and stays
    before, fds, names = host_footprint(engine_home), open_fds(), {containers.bridge_name()}
    for number in range(RUNS):
        net = "bridge" if number % BRIDGE_EVERY == 0 else "none"
        result = engine.run(busybox, ["true"], remove=number % 2 == 0, net=net)
        assert result.exit_code == 0
        names.add(result.container_id[:12])
        if number % 2:
            gc.rm(result.container_id)
    assert gc.gc() == [f"network namespace lxclab-net-{containers.bridge_name()} (this home's bridge, unused)"]
    after = host_footprint(engine_home)
    assert mentioning(after, names) == {"mounts": set(), "cgroups": set(), "netns": set(), "dirs": set()}
    assert (after["mounts"], after["dirs"]) == (before["mounts"], before["dirs"])
    assert open_fds() <= fds, "a descriptor was left open"
    assert containers.containers() == []


def _veth_aliases() -> list[str]:
    """The container names on this home's bridge (the aliases of its ports)."""
    return network.Bridge(containers.bridge_name()).endpoints()


def test_sigkilled_run_then_gc_leaves_nothing(busybox, engine_home):
    before = host_footprint(engine_home)
    keeper = engine.start(busybox, ["sleep", "60"], net="bridge", name="keeper")
    command = [sys.executable, "-m", "lxclab", "run", "--net", "bridge", "--memory", "64m", "--pids", "32",
               "--name", "victim", busybox, "sh", "-c", "sleep 300 & sleep 300"]
    cli = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        victim = _wait_for_running_named("victim")
    finally:
        os.kill(cli.pid, signal.SIGKILL)
        cli.wait()
    held = mentioning(host_footprint(engine_home), {victim.short_id})
    assert held["cgroups"] and held["netns"] and held["dirs"]
    assert sorted(_veth_aliases()) == sorted([keeper.short_id, victim.short_id])
    assert containers.find("victim").status == containers.DEAD
    assert procfs.is_alive(victim.state.pid)  # the container outlived its lxclab process

    done = lxclab("gc")
    assert done.returncode == 0, done.stderr
    assert f"removed container {victim.short_id} (victim)" in done.stdout
    assert not procfs.is_alive(victim.state.pid)
    assert mentioning(host_footprint(engine_home), {victim.short_id}) == {k: set() for k in held}
    assert _veth_aliases() == [keeper.short_id]  # the victim's veth is gone, the keeper's stays

    gc.rm("keeper", force=True)
    gc.gc()
    after = host_footprint(engine_home)
    names = {keeper.short_id, victim.short_id, containers.bridge_name()}
    assert mentioning(after, names) == mentioning(before, names)
    assert (after["mounts"], after["dirs"]) == (before["mounts"], before["dirs"])


def _wait_for_running_named(name: str, deadline_s: float = 30) -> containers.ContainerRecord:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        found = [c for c in containers.containers() if c.name == name and c.state.status == containers.RUNNING]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"container {name} never started")


def test_gc_removes_abandoned_half_created_records(engine_home):
    abandoned = engine_home / "containers" / ".tmp-abandoned"
    abandoned.mkdir(parents=True)
    (abandoned / "config.json").write_text("{")
    old = time.time() - 3600
    os.utime(abandoned, (old, old))
    fresh = engine_home / "containers" / ".tmp-in-progress"
    fresh.mkdir()
    assert gc.gc() == [f"unreadable record {abandoned}"]
    assert not abandoned.exists() and fresh.exists()
    assert Path(fresh).is_dir()
