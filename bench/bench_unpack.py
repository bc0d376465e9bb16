"""Benchmark `lxclab unpack` against `umoci unpack` and plain `tar -xzf` of the same layers.

    python -m bench.bench_unpack [--runs 5] [--size-mb 100] [--json]

Serves `lab/bench:latest` from a classroom registry of its own, pulls it once into a
store, and then times, each into a new directory:

- `umoci unpack --image LAYOUT:lab/bench:latest BUNDLE` (baseline; it also writes the
  bundle's config.json and an mtree manifest of the rootfs);
- `tar -xzf LAYER -C DIR` for each layer in order: the speed floor (no whiteouts, no checks);
- `lxclab unpack --mode copy` (CLI) and `unpack_image(..., COPY)` (library): safe
  extraction with whiteouts and DiffIDs verified;
- `lxclab unpack --mode overlay` (CLI) with an empty layer cache: extraction in overlay
  form plus the mount;
- overlay mode split in two: extracting every layer into an empty layer cache, and
  mounting the stack when the layers are already cached (what every later run pays).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lxclab.engine.pull import pull
from lxclab.manifest import chain_ids
from lxclab.store import Store, StoredImage
from lxclab.unionfs import COPY, image_layers, mount_overlay, unmount, unpack_image
from lxclab.unionfs.cache import ensure_layer

from .harness import (BenchmarkError, Contender, add_arguments, lxclab_command, print_report, run_command,
                      run_interleaved, workspace, write_bytecode)
from .served_image import ServedImage, served_bench_image

UMOCI = "umoci unpack"
TAR = "tar -xzf each layer (floor)"
COPY_CLI = "lxclab unpack --mode copy (CLI)"
COPY_LIBRARY = "unpack_image copy (library)"
OVERLAY_CLI = "lxclab unpack --mode overlay (CLI, cold)"
OVERLAY_EXTRACT = "overlay: extract layers (library, cold)"
OVERLAY_MOUNT = "overlay: mount only (library, cached)"


class UnpackBench:
    """The pulled bench image, a shared store holding it, and a layer cache extracted once for mounting."""

    def __init__(self, served: ServedImage, workdir: Path) -> None:
        self.served = served
        self.store_root = workdir / "store"
        self.image: StoredImage = pull(served.ref, store=Store(self.store_root))
        self.warm_home = workdir / "warm-home"
        with lxclab_home(self.warm_home):
            self.warm_lower = extract_layers(self.image)

    def contenders(self) -> list[Contender]:
        """Every way of unpacking the image, each writing only under its own scratch directory."""
        check = self.check_rootfs
        return [
            Contender(UMOCI, self.umoci, cleanup=lambda s: check(s / "bundle" / "rootfs")),
            Contender(TAR, self.tar, cleanup=lambda s: check(s / "rootfs")),
            Contender(COPY_CLI, lambda s: self.cli(s, "copy"), self.fresh_home, lambda s: check(s / "rootfs")),
            Contender(COPY_LIBRARY, lambda s: unpack_image(self.image, s / "rootfs", COPY),
                      cleanup=lambda s: check(s / "rootfs")),
            Contender(OVERLAY_CLI, lambda s: self.cli(s, "overlay"), self.fresh_home, self.check_and_unmount),
            Contender(OVERLAY_EXTRACT, self.extract_cold),
            Contender(OVERLAY_MOUNT, self.mount_cached, cleanup=self.check_and_unmount_warm),
        ]

    def umoci(self, scratch: Path) -> None:
        """`umoci unpack` the bench image from its OCI layout into a new bundle."""
        layout = self.served.layout
        run_command(["umoci", "unpack", "--image", f"{layout}:{self.served.layout_name}", str(scratch / "bundle")])

    def tar(self, scratch: Path) -> None:
        """GNU tar, one `tar -xzf` per layer blob, bottom first, into one directory."""
        rootfs = scratch / "rootfs"
        rootfs.mkdir()
        for path in self.image.layer_paths:
            run_command(["tar", "-xzf", str(path), "-C", str(rootfs)])

    def fresh_home(self, scratch: Path) -> None:
        """A new `$LXCLAB_HOME` in `scratch` whose store is the shared one (a symlink): empty layer cache."""
        (scratch / "home").mkdir()
        (scratch / "home" / "store").symlink_to(self.store_root)

    def cli(self, scratch: Path, mode: str) -> None:
        """`lxclab unpack --mode MODE REF DIR` with `scratch`'s home."""
        env = {**os.environ, "LXCLAB_HOME": str(scratch / "home")}
        run_command([*lxclab_command(), "unpack", "--mode", mode, self.served.ref, str(scratch / "rootfs")], env)

    def extract_cold(self, scratch: Path) -> None:
        """Extract every layer in overlay form into an empty layer cache under `scratch`."""
        with lxclab_home(scratch / "home"):
            extract_layers(self.image)

    def mount_cached(self, scratch: Path) -> None:
        """Mount the already extracted stack at `scratch`/rootfs."""
        with lxclab_home(self.warm_home):
            mount_overlay(self.warm_lower, scratch / "rootfs")

    def check_and_unmount(self, scratch: Path) -> None:
        """Check the mounted tree, then unmount it (with `scratch`'s home, where its state is)."""
        with lxclab_home(scratch / "home"):
            try:
                self.check_rootfs(scratch / "rootfs")
            finally:
                unmount(scratch / "rootfs")

    def check_and_unmount_warm(self, scratch: Path) -> None:
        """Check the tree mounted over the warm cache, then unmount it."""
        with lxclab_home(self.warm_home):
            try:
                self.check_rootfs(scratch / "rootfs")
            finally:
                unmount(scratch / "rootfs")

    def check_rootfs(self, rootfs: Path) -> None:
        """Make sure a contender really unpacked the image: busybox there, every random byte there."""
        if not (rootfs / "bin" / "busybox").is_file():
            raise BenchmarkError(f"{rootfs} has no bin/busybox: the unpack did not happen")
        found = sum(entry.stat().st_size for entry in (rootfs / "bench").rglob("*") if entry.is_file())
        if found != self.served.random_bytes:
            raise BenchmarkError(f"{rootfs}/bench holds {found} bytes of files, expected {self.served.random_bytes}")


def extract_layers(image: StoredImage) -> list[Path]:
    """Extract each layer of `image` into the layer cache in overlay form; their directories, top first."""
    layers = image_layers(image)
    lower: list[Path] = []
    for layer, chain_id in zip(layers, chain_ids([layer.diff_id for layer in layers])):
        directory, _ = ensure_layer(layer.path, chain_id, layer.media_type, layer.diff_id, lower, layer.name)
        lower.insert(0, directory)
    return lower


@contextmanager
def lxclab_home(home: Path) -> Iterator[Path]:
    """Set `$LXCLAB_HOME` in this process for the duration (library calls read it on each use)."""
    previous = os.environ.get("LXCLAB_HOME")
    os.environ["LXCLAB_HOME"] = str(home)
    try:
        yield home
    finally:
        if previous is None:
            del os.environ["LXCLAB_HOME"]
        else:
            os.environ["LXCLAB_HOME"] = previous


def main(argv: list[str] | None = None) -> int:
    """Run the unpack benchmark and print its table (or JSON)."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_unpack", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    write_bytecode()
    if os.geteuid() != 0:
        raise SystemExit("bench_unpack needs root: overlay mode mounts, and umoci and tar keep owners only as root")
    with workspace("lxclab-bench-unpack-") as workdir, served_bench_image(workdir, args.size_mb) as served:
        bench = UnpackBench(served, workdir)
        results = run_interleaved(bench.contenders(), args.runs, workdir / "runs", args.warmup)
        facts = [f"{len(bench.image.layer_paths)} layer blobs read from the page cache; writes to {workdir.parent}",
                 f"{args.runs} timed runs each after {args.warmup} warm-up round(s), interleaved, new directory each"]
        print_report(results, UMOCI, f"unpack {served.describe()}", facts, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
