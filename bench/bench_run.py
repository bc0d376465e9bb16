"""Benchmark the start-to-exit latency of `true` in a container: `lxclab run` against crun and unshare + chroot.

    python -m bench.bench_run [--runs 20] [--warmup 2] [--json]

Serves the seed image `lab/busybox` from a classroom registry of its own, pulls it into a
home in the workspace (one untimed run fills the layer cache) and makes an OCI runtime
bundle of the same image for this machine with `umoci unpack`. Then times, interleaved:

- `crun run` on the bundle (baseline): PID, mount, IPC, UTS and network namespaces,
  /proc, /dev and /sys mounted, capabilities dropped; no cgroup (see below);
- `unshare -fmuipn --mount-proc chroot ROOTFS true`: namespaces and a chroot, nothing else;
- `lxclab run --rm REF true` (CLI, Python start-up included): overlay upper dir over the
  cached layers, namespaces, a cgroup, pivot_root, records, log, removal;
- `lxclab.engine.run.run(REF, ["true"], remove=True)`, the same as a library call;
- `lxclab --version` and `lxclab --help`: Python's start-up and the CLI's own imports, no container.

crun 1.8 refuses this host's hybrid cgroup layout ("drop all controllers from cgroupv2":
the v2 mount holds hugetlb), so it runs in a mount namespace without the v2 mount, kept by
a holder process and entered with nsenter (about a millisecond); crun then makes no cgroup.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lxclab.classroom.seed import BUSYBOX_REPOSITORY
from lxclab.engine import gc
from lxclab.engine import run as engine
from lxclab.engine.pull import pull
from lxclab.security import Profile

from .harness import (BenchmarkError, Contender, add_arguments, lxclab_command, print_report, rounds_and_machine,
                      run_command, run_interleaved, workspace, write_bytecode)
from .served_image import served_seed

CRUN = "crun run (OCI bundle)"
UNSHARE = "unshare -fmuipn --mount-proc chroot"
CLI = "lxclab run --rm (CLI)"
LIBRARY = "lxclab.engine.run.run (library)"
UNCONFINED = "lxclab.engine.run.run, --privileged (no profile)"
VERSION = "lxclab --version (CLI)"
HELP = "lxclab --help (CLI)"
ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64"}


@dataclass(frozen=True)
class Setup:
    """What every contender runs: the pulled image's reference, its home, the bundle and crun's namespace holder."""

    ref: str
    home: Path
    bundle: Path
    crun_root: Path
    holder_pid: int


def contenders(setup: Setup) -> list[Contender]:
    """Seven rows: `true` in a container of the same image five ways (lxclab's profile on and off), the CLI's start-up two."""
    lxclab_env = {**os.environ, "LXCLAB_HOME": str(setup.home)}
    return [
        Contender(CRUN, lambda scratch: run_command(
            ["nsenter", "-t", str(setup.holder_pid), "-m", "crun", "--root", str(setup.crun_root), "run",
             "--bundle", str(setup.bundle), f"bench-{uuid.uuid4().hex[:12]}"])),
        Contender(UNSHARE, lambda scratch: run_command(
            ["unshare", "-fmuipn", "--mount-proc", "chroot", str(setup.bundle / "rootfs"), "true"])),
        Contender(CLI, lambda scratch: run_command([*lxclab_command(), "run", "--rm", setup.ref, "true"], lxclab_env)),
        Contender(LIBRARY, lambda scratch: _library_run(setup.ref)),
        Contender(UNCONFINED, lambda scratch: _library_run(setup.ref, Profile.build(privileged=True))),
        Contender(VERSION, lambda scratch: run_command([*lxclab_command(), "--version"], lxclab_env)),
        Contender(HELP, lambda scratch: run_command([*lxclab_command(), "--help"], lxclab_env)),
    ]


def _library_run(ref: str, profile: Profile | None = None) -> None:
    """One library run of `true` (default: the security profile on); BenchmarkError unless it exits 0."""
    result = engine.run(ref, ["true"], remove=True, profile=profile)
    if result.exit_code != 0:
        raise BenchmarkError(f"lxclab run {ref} true exited with {result.exit_code}: {result.output}")


@contextmanager
def prepared(workdir: Path) -> Iterator[Setup]:
    """Serve and pull the seed busybox, make its bundle and crun's namespace; stop everything on exit."""
    holder = None
    with served_seed(workdir, f"{BUSYBOX_REPOSITORY}:latest") as (classroom, layout):
        try:
            ref = f"{classroom.registry_host}/{BUSYBOX_REPOSITORY}:latest"
            os.environ["LXCLAB_HOME"] = str(workdir / "home")
            pull(ref)
            _library_run(ref)  # fills the layer cache, untimed
            bundle = make_bundle(layout.root, workdir / "bundle")
            holder = _crun_namespace_holder()
            yield Setup(ref, workdir / "home", bundle, workdir / "crun-state", holder.pid)
        finally:
            if holder is not None:
                holder.kill()
                holder.wait()
            gc.gc()


def make_bundle(layout: Path, bundle: Path) -> Path:
    """`umoci unpack` this machine's busybox into an OCI bundle whose process is `true`, without a terminal."""
    architecture = ARCHITECTURES.get(platform.machine(), "amd64")
    run_command(["umoci", "unpack", "--image", f"{layout}:{BUSYBOX_REPOSITORY}:latest-{architecture}", str(bundle)])
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    config["process"].update(args=["true"], terminal=False)
    config_path.write_text(json.dumps(config, indent=2))
    return bundle


def _crun_namespace_holder() -> subprocess.Popen:
    """A sleeping process in a mount namespace without the cgroup v2 mount, for crun to enter."""
    script = "umount /sys/fs/cgroup/unified 2>/dev/null; echo ready; exec sleep 3600"
    holder = subprocess.Popen(["unshare", "-m", "sh", "-c", script], stdout=subprocess.PIPE, text=True)
    if holder.stdout.readline().strip() != "ready":
        holder.kill()
        raise BenchmarkError("could not start the mount namespace crun runs in (unshare -m)")
    return holder


def main(argv: list[str] | None = None) -> int:
    """Run the container start benchmark and print its table (or JSON)."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_run", description=__doc__.splitlines()[0])
    add_arguments(parser, runs=20, size_mb=None, warmup=2)
    args = parser.parse_args(argv)
    write_bytecode()
    with workspace("lxclab-bench-run-") as workdir, prepared(workdir) as setup:
        results = run_interleaved(contenders(setup), args.runs, workdir / "runs", args.warmup)
        facts = [f"image: {setup.ref} (3 layers, busybox-static), layer cache warm, overlay mode",
                 rounds_and_machine(args)]
        print_report(results, CRUN, "start-to-exit latency of `true` in a container", facts, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
