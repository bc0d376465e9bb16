"""Benchmark a start + execute `true` + stop cycle of an LXC container: lxclab against LXC's own tools.

    python -m bench.bench_lxc [--runs 10] [--warmup 1] [--json]

Builds the seed image `lab/busybox` into an OCI layout in the workspace (deterministic,
from busybox-static; no registry needed) and unpacks this machine's image once, in copy
mode, into a template rootfs. Before each run, untimed, the template is copied to a new
container's own rootfs (<lxcpath>/<name>/rootfs) and the container is defined by
`Container.from_image` (the image's Env and WorkingDir). Then each contender times one
cycle on that same config and rootfs, interleaved:

- LXC's tools (baseline): `lxc-start -n N -P LXCPATH -d -- INIT`, `lxc-attach -n N -P
  LXCPATH -- true`, `lxc-stop -n N -P LXCPATH`; three processes, liblxc in each;
- lxclab's Container: `start(INIT)` (on v1 LXC's `lxc-start -d`, spawned; on v2 a forked
  starter), `execute(["true"])` (attach_wait with output captured in memfds), `stop()` (its
  monitor held by a pidfd, then the cgroups of the run removed);
- python-lxc as it is: start from a forked child, `attach_wait(attach_run_command, ["true"])`,
  `stop()` and `wait("STOPPED")`: the floor under lxclab's wrapper.

INIT traps SIGTERM and SIGPWR: plain `lxc-stop` asks init to halt with SIGPWR and waits for
it (liblxc's stop(), as lxclab and python-lxc call it, kills init with SIGKILL at once).
The untimed cleanup destroys the container, checks every run left it STOPPED, and at the end
no container and no LXC cgroup of the benchmark remains.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path

from lxclab.classroom.ocilayout import OciLayout
from lxclab.classroom.seed import BUSYBOX_REPOSITORY, build_seed_layout
from lxclab.lxc import Container, State, lxc_cgroups, rootfs_path
from lxclab.lxc._binding import pylxc
from lxclab.manifest import ImageConfig, parse_manifest
from lxclab.security import Profile
from lxclab.unionfs import COPY, LayerSource, unpack_layers

from .harness import (BenchmarkError, Contender, add_arguments, print_report, rounds_and_machine, run_command,
                      run_interleaved, workspace)

TOOLS = "lxc-start -d / lxc-attach / lxc-stop"
LXCLAB = "lxclab Container (library)"
UNCONFINED = "lxclab Container, privileged profile"
PYLXC = "python-lxc raw calls"
LOCK_DIR = Path("/run/lxc/lock")  # liblxc's lock files, one directory per lxcpath (as root)
INIT = ("/bin/sh", "-c", "trap 'exit 0' TERM PWR; while :; do sleep 1 & wait; done")


@dataclass(frozen=True)
class Image:
    """The unpacked seed image every run copies: its template rootfs and its config."""

    rootfs: Path
    config: ImageConfig


def unpack_seed_image(workdir: Path) -> Image:
    """Build lab/busybox into an OCI layout under `workdir` and unpack this machine's image (copy mode)."""
    layout = OciLayout(workdir / "layout")
    refs = build_seed_layout(layout.root)
    index = parse_manifest(layout.read_blob(refs[f"{BUSYBOX_REPOSITORY}:latest"].digest))
    manifest = parse_manifest(layout.read_blob(index.select().digest))
    config = ImageConfig.parse(layout.read_blob(manifest.config.digest))
    layers = [LayerSource(layout.blob_path(d.digest), d.media_type, diff_id, d.digest[:19])
              for d, diff_id in zip(manifest.layers, config.diff_ids)]
    unpacked = unpack_layers(layers, workdir / "template", COPY)
    return Image(unpacked.target, config)


def container_name(scratch: Path) -> str:
    """A name no other process uses (LXC's cgroup names are global): this process and the scratch dir."""
    return f"benchlxc-{os.getpid()}-{scratch.name}"[:63]


def define(image: Image, scratch: Path, profile: Profile | None = None) -> Container:
    """Copy the template rootfs into a new container's own directory and define the container (untimed)."""
    lxcpath = scratch / "lxc"
    name = container_name(scratch)
    rootfs = rootfs_path(name, lxcpath)
    shutil.copytree(image.rootfs, rootfs, symlinks=True)
    return Container.from_image(name, rootfs, image.config, lxcpath=lxcpath, profile=profile)


def destroy(scratch: Path) -> None:
    """Check the run left its container STOPPED, then destroy it (rootfs, config, leftover cgroups)."""
    container = Container(container_name(scratch), scratch / "lxc")
    if not container.defined:
        return
    if container.running:
        container.stop()
        container.destroy()
        raise BenchmarkError(f"container {container.name} was still running after its cycle")
    container.destroy()


def tools_cycle(scratch: Path) -> None:
    """One cycle with LXC's command-line tools, each a new process."""
    where = ["-n", container_name(scratch), "-P", str(scratch / "lxc")]
    run_command(["lxc-start", *where, "-d", "--", *INIT])
    run_command(["lxc-attach", *where, "--", "true"])
    run_command(["lxc-stop", *where])


def lxclab_cycle(scratch: Path) -> None:
    """One cycle through lxclab's Container."""
    container = Container(container_name(scratch), scratch / "lxc")
    container.start(INIT)
    result = container.execute(["true"])
    container.stop()
    if not result.ok:
        raise BenchmarkError(f"`true` exited with {result.exit_code} in {container.name}: {result.stderr}")


def pylxc_cycle(scratch: Path) -> None:
    """One cycle with python-lxc's own calls: start from a forked child, attach_wait, stop, wait."""
    lxc = pylxc()
    container = lxc.Container(container_name(scratch), str(scratch / "lxc"))
    child = os.fork()
    if child == 0:  # liblxc's start moves its caller into the monitor's cgroup: let a child take that
        started = False
        try:
            started = container.start(cmd=INIT)
        finally:
            os._exit(0 if started else 1)  # noqa: B012 - nothing may escape the child
    _pid, started = os.waitpid(child, 0)
    if started != 0:
        raise BenchmarkError(f"python-lxc could not start {container.name}")
    status = container.attach_wait(lxc.attach_run_command, ["true"])
    if not (container.stop() and container.wait(State.STOPPED.value, 10)) or status != 0:
        raise BenchmarkError(f"python-lxc cycle of {container.name} failed: wait status {status}")


def contenders(image: Image) -> list[Contender]:
    """The four ways to start, execute `true` in and stop the same container (lxclab's with the profile on and off)."""
    prepare = lambda scratch: define(image, scratch)  # noqa: E731
    unconfined = lambda scratch: define(image, scratch, Profile.build(privileged=True))  # noqa: E731
    return [Contender(TOOLS, tools_cycle, prepare, destroy),
            Contender(LXCLAB, lxclab_cycle, prepare, destroy),
            Contender(UNCONFINED, lxclab_cycle, unconfined, destroy),
            Contender(PYLXC, pylxc_cycle, prepare, destroy)]


def check_nothing_left() -> None:
    """None of this benchmark's containers still runs: no LXC cgroup (payload, monitor) of theirs remains."""
    prefix = f"benchlxc-{os.getpid()}-"
    cgroups = [path for path in lxc_cgroups() if prefix in path.name]
    if cgroups:
        raise BenchmarkError(f"the benchmark left LXC cgroups behind: {cgroups}")


def remove_lock_dirs(workdir: Path) -> None:
    """Remove the empty lock directories liblxc made for every lxcpath under `workdir` (/run/lxc/lock/...)."""
    lock_root = LOCK_DIR / str(workdir).lstrip("/")
    for parent, dirs, _files in os.walk(lock_root, topdown=False):
        for directory in dirs:
            with contextlib.suppress(OSError):  # not empty: a lock someone still holds stays
                os.rmdir(os.path.join(parent, directory))
    with contextlib.suppress(OSError):
        os.rmdir(lock_root)


def main(argv: list[str] | None = None) -> int:
    """Run the LXC cycle benchmark and print its table (or JSON)."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_lxc", description=__doc__.splitlines()[0])
    add_arguments(parser, runs=10, size_mb=None)
    args = parser.parse_args(argv)
    with workspace("lxclab-bench-lxc-") as workdir:
        try:
            image = unpack_seed_image(workdir)
            results = run_interleaved(contenders(image), args.runs, workdir / "runs", args.warmup)
        finally:
            remove_lock_dirs(workdir)
        check_nothing_left()
        lxc_version = run_command(["lxc-start", "--version"]).strip()
        facts = [f"image: {BUSYBOX_REPOSITORY} for {platform.machine()} (3 layers, busybox-static), "
                 f"a fresh copy of its rootfs per run (copy not timed); LXC {lxc_version}",
                 rounds_and_machine(args)]
        print_report(results, TOOLS, "start + execute `true` + stop of an LXC container", facts, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
