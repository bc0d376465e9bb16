"""Benchmark `lxclab pull` against `skopeo copy` of the same image from the same registry.

    python -m bench.bench_pull [--runs 5] [--size-mb 100] [--json]

Starts a classroom registry of its own (free loopback ports, a temporary state
directory), pushes `lab/bench:latest` (~SIZE MB, several layers) and then times, each
from a cold destination:

- `skopeo copy --src-tls-verify=false docker://HOST/lab/bench:latest oci:DIR:x` (baseline);
- `lxclab pull -q HOST/lab/bench:latest` with a fresh `$LXCLAB_HOME` (Python start-up included);
- `lxclab.engine.pull.pull(ref, store=Store(DIR))`, the library call in this process.

Every contender does the whole protocol: token, manifest, config and layers, each digest
verified. The registry's blobs sit in the page cache for everyone after the warm-up round.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from lxclab.engine.pull import pull
from lxclab.store import Store

from .harness import (BenchmarkError, Contender, add_arguments, lxclab_command, print_report, run_command,
                      run_interleaved, workspace, write_bytecode)
from .served_image import ServedImage, served_bench_image

SKOPEO = "skopeo copy docker:// -> oci:"
CLI = "lxclab pull (CLI)"
LIBRARY = "lxclab.engine.pull.pull (library)"


def contenders(image: ServedImage) -> list[Contender]:
    """The three ways to pull the bench image, each into a new directory under its scratch dir."""
    return [
        Contender(SKOPEO, lambda scratch: skopeo_copy(image, scratch / "oci"), cleanup=lambda s: check_oci(s / "oci")),
        Contender(CLI, lambda scratch: cli_pull(image, scratch / "home"),
                  cleanup=lambda scratch: check_store(image, scratch / "home" / "store")),
        Contender(LIBRARY, lambda scratch: pull(image.ref, store=Store(scratch / "store")),
                  cleanup=lambda scratch: check_store(image, scratch / "store")),
    ]


def skopeo_copy(image: ServedImage, destination: Path) -> None:
    """Copy the image from the registry into a new OCI layout at `destination` with skopeo."""
    run_command(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                 f"docker://{image.ref}", f"oci:{destination}:x"])


def cli_pull(image: ServedImage, home: Path) -> None:
    """Run `lxclab pull -q REF` with `$LXCLAB_HOME` = `home` (a new, empty store)."""
    output = run_command([*lxclab_command(), "pull", "-q", image.ref], env={**os.environ, "LXCLAB_HOME": str(home)})
    if output.strip() != image.digest:
        raise BenchmarkError(f"lxclab pull printed {output.strip()!r}, expected the digest {image.digest}")


def check_oci(layout: Path) -> None:
    """Make sure skopeo really wrote an OCI layout (so a silent no-op cannot look fast)."""
    if not (layout / "index.json").is_file():
        raise BenchmarkError(f"skopeo copy left no index.json in {layout}")


def check_store(image: ServedImage, store_root: Path) -> None:
    """Make sure the image, with every layer, is recorded in the store at `store_root`."""
    stored = Store(store_root).image(image.ref)
    if stored.digest != image.digest or not all(Path(p).is_file() for p in stored.layer_paths):
        raise BenchmarkError(f"the store in {store_root} does not hold {image.ref} ({image.digest}) complete")


def main(argv: list[str] | None = None) -> int:
    """Run the pull benchmark and print its table (or JSON)."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_pull", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    write_bytecode()
    with workspace("lxclab-bench-pull-") as workdir, served_bench_image(workdir, args.size_mb) as image:
        results = run_interleaved(contenders(image), args.runs, workdir / "runs", args.warmup)
        facts = [f"registry: docker-registry + lxclab token server on {image.ref.split('/')[0]} (anonymous pull)",
                 f"{args.runs} timed runs each after {args.warmup} warm-up round(s), interleaved, cold destination"]
        print_report(results, SKOPEO, f"pull {image.describe()}", facts, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
