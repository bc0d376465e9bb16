"""The LXC benchmark runs once per contender, prints its table and leaves no container, cgroup or lock behind.

No timing is asserted: speed is what the benchmark prints, not what tests check.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from bench import bench_lxc
from lxclab.lxc import lxc_cgroups

REPO = Path(__file__).resolve().parents[1]
ROW = r"\s+\d+\.\d{4}\s+\d+\.\d{4}\s+\d+\.\d{2,4}x$"


def test_lxc_bench_prints_a_row_for_lxcs_tools_lxclab_and_python_lxc(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "bench.bench_lxc", "--runs", "1", "--warmup", "0"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    table = done.stdout
    assert table.startswith("start + execute `true` + stop of an LXC container\nimage: lab/busybox for ")
    for name in (f"{bench_lxc.TOOLS} (baseline)", bench_lxc.LXCLAB, bench_lxc.PYLXC):
        assert re.search(rf"^{re.escape(name)}{ROW}", table, re.MULTILINE), f"no row for {name!r} in:\n{table}"
    assert re.search(rf"^{re.escape(bench_lxc.TOOLS)} \(baseline\)\s+\S+\s+\S+\s+1\.00x$", table, re.MULTILINE)
    assert list(tmp_path.iterdir()) == []  # the workspace is gone
    assert [path for path in lxc_cgroups() if "benchlxc-" in path.name] == []
    lock_dir = bench_lxc.LOCK_DIR / str(tmp_path).lstrip("/")  # liblxc made it for the workspace's lxcpaths
    assert not lock_dir.exists() or list(lock_dir.iterdir()) == []
    if lock_dir.exists():
        lock_dir.rmdir()
