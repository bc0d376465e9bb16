"""The benchmarks run and report: each script on a tiny image, and the shared runner's bookkeeping.

No timing is asserted anywhere: speed is what the benchmarks print, not what tests check.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import harness
from lxclab import _linux

REPO = Path(__file__).resolve().parents[1]
ROW = r"\s+\d+\.\d{4}\s+\d+\.\d{4}\s+\d+\.\d{2,4}x$"


def run_bench(module: str, tmp_path: Path, *options: str) -> str:
    """Run `python -m bench.MODULE` once per contender with its temporary files under `tmp_path`."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", f"bench.{module}", "--runs", "1", "--warmup", "0", *options],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def assert_rows(table: str, names: list[str], baseline: str) -> None:
    """Every contender has a row with median, minimum and ratio; the baseline's ratio is 1.00x."""
    for name in names:
        label = f"{name} (baseline)" if name == baseline else name
        assert re.search(rf"^{re.escape(label)}{ROW}", table, re.MULTILINE), f"no row for {label!r} in:\n{table}"
    assert re.search(rf"^{re.escape(baseline)} \(baseline\)\s+\S+\s+\S+\s+1\.00x$", table, re.MULTILINE)


def assert_nothing_left(tmp_path: Path) -> None:
    """The benchmark removed its workspace and left nothing mounted or running under it."""
    assert list(tmp_path.glob("lxclab-bench-*")) == []
    assert harness.mounts_under(tmp_path) == []


def test_pull_bench_prints_a_row_for_skopeo_the_cli_and_the_library(tmp_path: Path) -> None:
    from bench import bench_pull

    table = run_bench("bench_pull", tmp_path, "--size-mb", "2")
    assert table.startswith("pull lab/bench:latest: 6 layers, ")
    assert_rows(table, [bench_pull.SKOPEO, bench_pull.CLI, bench_pull.LIBRARY], bench_pull.SKOPEO)
    assert_nothing_left(tmp_path)


def test_unpack_bench_prints_umoci_tar_copy_and_overlay_rows_and_unmounts(tmp_path: Path) -> None:
    from bench import bench_unpack as b

    document = json.loads(run_bench("bench_unpack", tmp_path, "--size-mb", "2", "--json"))
    names = [b.UMOCI, b.TAR, b.COPY_CLI, b.COPY_LIBRARY, b.OVERLAY_CLI, b.OVERLAY_EXTRACT, b.OVERLAY_MOUNT]
    assert [result["name"] for result in document["results"]] == names
    assert document["baseline"] == b.UMOCI
    table = harness.format_table([harness.Result(r["name"], r["seconds"]) for r in document["results"]], b.UMOCI,
                                 document["title"])
    assert_rows(table, names, b.UMOCI)
    assert_nothing_left(tmp_path)


def test_run_bench_prints_crun_unshare_the_cli_and_the_library_and_leaves_no_container(tmp_path: Path) -> None:
    from bench import bench_run as b

    table = run_bench("bench_run", tmp_path)
    assert table.startswith("start-to-exit latency of `true` in a container\n")
    assert_rows(table, [b.CRUN, b.UNSHARE, b.CLI, b.LIBRARY, b.UNCONFINED, b.VERSION, b.HELP], b.CRUN)
    assert_nothing_left(tmp_path)


def test_lxc_bench_prints_a_row_for_lxcs_tools_lxclab_and_python_lxc(tmp_path: Path) -> None:
    from bench import bench_lxc as b
    from lxclab.lxc import lxc_cgroups

    table = run_bench("bench_lxc", tmp_path)
    assert table.startswith("start + execute `true` + stop of an LXC container\nimage: lab/busybox for ")
    assert_rows(table, [b.TOOLS, b.LXCLAB, b.UNCONFINED, b.PYLXC], b.TOOLS)
    assert list(tmp_path.iterdir()) == []  # the workspace is gone
    assert [path for path in lxc_cgroups() if "benchlxc-" in path.name] == []
    lock_dir = b.LOCK_DIR / str(tmp_path).lstrip("/")  # liblxc made it for the workspace's lxcpaths
    assert not lock_dir.exists() or list(lock_dir.iterdir()) == []
    if lock_dir.exists():
        lock_dir.rmdir()


def test_contenders_run_interleaved_in_rotating_order_and_only_timed_runs_are_kept(tmp_path: Path) -> None:
    calls: list[str] = []
    contenders = [harness.Contender(name, lambda scratch, name=name: calls.append(name)) for name in "abc"]
    results = harness.run_interleaved(contenders, runs=3, workdir=tmp_path / "runs", warmup=1)
    assert "".join(calls) == "abc" + "bca" + "cab" + "abc"
    assert [(r.name, len(r.seconds)) for r in results] == [("a", 3), ("b", 3), ("c", 3)]
    assert list((tmp_path / "runs").iterdir()) == []


def test_prepare_and_cleanup_run_around_each_run_and_the_scratch_dir_goes_even_on_failure(tmp_path: Path) -> None:
    seen: list[tuple[str, bool]] = []

    def fail(scratch: Path) -> None:
        (scratch / "half-written").write_text("x")
        raise RuntimeError("the contender broke")

    contender = harness.Contender("breaks", fail, prepare=lambda s: seen.append(("prepare", s.is_dir())),
                                  cleanup=lambda s: seen.append(("cleanup", (s / "half-written").exists())))
    with pytest.raises(RuntimeError, match="the contender broke"):
        harness.time_once(contender, tmp_path / "scratch")
    assert seen == [("prepare", True), ("cleanup", True)]
    assert not (tmp_path / "scratch").exists()


def test_table_and_json_give_each_median_as_a_ratio_of_the_baselines() -> None:
    results = [harness.Result("peer", [2.0, 4.0, 3.0]), harness.Result("ours", [1.0, 9.0, 1.5])]
    table = harness.format_table(results, "peer", "title", ["a fact"])
    assert table.splitlines()[:2] == ["title", "a fact"]
    assert re.search(r"^peer \(baseline\)\s+3\.0000\s+2\.0000\s+1\.00x$", table, re.MULTILINE)
    assert re.search(r"^ours\s+1\.5000\s+1\.0000\s+0\.50x$", table, re.MULTILINE)
    tiny = harness.format_table([*results, harness.Result("mount", [0.003])], "peer", "title")
    assert re.search(r"^mount\s+0\.0030\s+0\.0030\s+0\.0010x$", tiny, re.MULTILINE)
    document = json.loads(harness.to_json(results, "peer", "title"))
    assert [(r["name"], r["median"], r["min"], r["ratio"]) for r in document["results"]] == [
        ("peer", 3.0, 2.0, 1.0), ("ours", 1.5, 1.0, 0.5)]


def test_an_unknown_baseline_is_a_clear_error() -> None:
    with pytest.raises(harness.BenchmarkError, match="no contender named 'skopeo'"):
        harness.format_table([harness.Result("ours", [1.0])], "skopeo", "title")


def test_a_failing_command_reports_its_exit_status_and_stderr() -> None:
    with pytest.raises(harness.BenchmarkError, match=r"exit status 2:\n.*No such file"):
        harness.run_command(["ls", "/nonexistent-lxclab-bench-path"])


def test_release_detaches_mounts_left_under_the_directory_and_removes_it(tmp_path: Path) -> None:
    left = tmp_path / "work" / "rootfs"
    left.mkdir(parents=True)
    _linux.mount("tmpfs", str(left), "tmpfs", 0, "size=1m")
    try:
        (left / "inside").write_text("written into the mount")
        assert harness.mounts_under(tmp_path / "work") == [str(left)]
        harness.release(tmp_path / "work")
        assert harness.mounts_under(tmp_path) == []
        assert not (tmp_path / "work").exists()
    finally:
        if harness.mounts_under(tmp_path):
            _linux.umount(str(left), _linux.MNT_DETACH)
