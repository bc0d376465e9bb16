"""Footprint records and `release`, which rm and gc use (network parts are in test_network.py)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from lxclab import cgroups, namespaces
from lxclab.errors import LxclabError
from lxclab.procfs import mount_points, start_time
from lxclab.footprint import Footprint, release


def test_resources_round_trip_through_json():
    record = Footprint(pids=[[12, 3456]], mounts=["/m"], cgroups=["/sys/fs/cgroup/pids/x"], netns=["lxclab-x"],
                       endpoints=[{"container": "c", "netns": "lxclab-c", "veth": "lx2", "address": "10.213.0.2/24",
                                   "gateway": "10.213.0.1", "bridge_netns": "lxclab-net-n"}], dirs=["/d"])
    assert Footprint.from_json(record.to_json()) == record


def test_release_kills_the_process_removes_its_cgroup_mount_and_directory(busybox_rootfs, tmp_path):
    scratch = tmp_path / "container"
    (scratch / "merged").mkdir(parents=True)
    group = cgroups.create(f"lxclab-test-{uuid.uuid4().hex[:10]}")
    process = namespaces.spawn(busybox_rootfs, ["sleep", "600"], cgroup=group)
    subprocess.run(["mount", "-t", "tmpfs", "lxclab-test", str(scratch / "merged")], check=True)
    record = Footprint(pids=[process.identity()], mounts=[str(scratch / "merged")], cgroups=group.paths,
                       dirs=[str(scratch)])
    release(Footprint.from_json(record.to_json()))
    assert process.wait(timeout=10).signal == 9
    assert str(scratch / "merged") not in mount_points()
    assert not scratch.exists()
    assert not any(Path(p).exists() for p in group.paths)
    release(record)  # everything is gone already: nothing to do, no error


def test_release_spares_a_process_whose_pid_was_reused(busybox_rootfs):
    process = namespaces.spawn(busybox_rootfs, ["sleep", "600"])
    try:
        release(Footprint(pids=[[process.pid, start_time(process.pid) + 1]]))  # same PID, another start time
        assert process.poll() is None
    finally:
        process.kill()
        process.wait()


def test_release_refuses_a_directory_with_a_mount_inside_but_does_the_rest(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "free").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "lxclab-test", str(tmp_path / "busy")], check=True)
    try:
        with pytest.raises(LxclabError, match="still mounted there; unmount first"):
            release(Footprint(dirs=[str(tmp_path), str(tmp_path / "free")]))
        assert (tmp_path / "busy").is_dir() and not (tmp_path / "free").exists()
    finally:
        subprocess.run(["umount", str(tmp_path / "busy")], check=True)
