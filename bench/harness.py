"""A small benchmark runner: contenders run interleaved, each from a fresh scratch directory.

Every round runs each contender once, in turn (A B C, then B C A, ...), so a slow minute
on a busy machine hurts every contender alike. A contender's `prepare` and `cleanup` are not
timed; only its `run` is. The result is the median and the minimum of the timed runs and
a plain-text table (or JSON) with each median's ratio to a named baseline, usually the
peer tool. Ratios are the point: absolute times depend on the machine.

Scratch directories live under one workspace directory; on the way out anything still
mounted under it is detached and the whole tree is removed, whatever failed.
"""

from __future__ import annotations

import argparse
import platform
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lxclab import _linux, procfs
from lxclab.errors import KernelError, LxclabError
from lxclab.layers.stage import remove_tree


class BenchmarkError(LxclabError):
    """A benchmark could not run: a contender's command failed or the set-up did."""


@dataclass(frozen=True)
class Contender:
    """One way of doing the benchmarked job: `run(scratch)` is timed, `prepare` and `cleanup` are not."""

    name: str
    run: Callable[[Path], object]
    prepare: Callable[[Path], object] | None = None
    cleanup: Callable[[Path], object] | None = None


@dataclass
class Result:
    """The timed runs of one contender, in seconds."""

    name: str
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """The median run time: what the ratios compare."""
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        """The fastest run: the time with the least noise in it."""
        return min(self.seconds)


def add_arguments(parser: argparse.ArgumentParser, runs: int = 5, size_mb: int | None = 100, warmup: int = 1) -> None:
    """Add the options every benchmark script takes: --runs, --warmup, --json, and --size-mb unless it is None."""
    parser.add_argument("--runs", type=_positive, default=runs, help=f"timed runs of each contender (default {runs})")
    parser.add_argument("--warmup", type=_not_negative, default=warmup,
                        help=f"untimed rounds first, to fill caches alike for everyone (default {warmup})")
    if size_mb is not None:
        parser.add_argument("--size-mb", type=_positive, default=size_mb,
                            help=f"size of the benchmark image's random layers in MB (default {size_mb})")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")


def rounds_and_machine(args: argparse.Namespace) -> str:
    """The facts line every table ends with: how many runs, and the machine they ran on."""
    return (f"{args.runs} timed runs each after {args.warmup} warm-up round(s), interleaved; "
            f"kernel {platform.release()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")


def run_interleaved(contenders: Sequence[Contender], runs: int, workdir: Path, warmup: int = 0) -> list[Result]:
    """Run every contender `warmup + runs` times, one after the other each round; keep the timed runs.

    Each round starts one contender further along (A B C, B C A, C A B, ...), so no
    contender always follows the same one (and, say, the disk writeback it left behind).
    """
    results = [Result(contender.name) for contender in contenders]
    pairs = list(zip(contenders, results))
    for round_number in range(warmup + runs):
        shift = round_number % len(pairs)
        for contender, result in pairs[shift:] + pairs[:shift]:
            scratch = Path(workdir) / f"{_slug(contender.name)}-{round_number}"
            elapsed = time_once(contender, scratch)
            if round_number >= warmup:
                result.seconds.append(elapsed)
    return results


def time_once(contender: Contender, scratch: Path) -> float:
    """Prepare, time one run, clean up, and remove `scratch` (a new directory), even when the run fails."""
    scratch.mkdir(parents=True)
    try:
        if contender.prepare is not None:
            contender.prepare(scratch)
        started = time.perf_counter()
        contender.run(scratch)
        return time.perf_counter() - started
    finally:
        try:
            if contender.cleanup is not None:
                contender.cleanup(scratch)
        finally:
            release(scratch)


def format_table(results: Sequence[Result], baseline: str, title: str, facts: Sequence[str] = ()) -> str:
    """The results as a plain-text table: median, minimum and the median's ratio to `baseline`'s."""
    reference = _baseline(results, baseline).median
    width = max(len(result.name) for result in results) + len(" (baseline)")
    lines = [title, *facts, ""]
    lines.append(f"{'contender':<{width}}  {'median s':>9}  {'min s':>9}  {'ratio':>8}")
    for result in results:
        name = f"{result.name} (baseline)" if result.name == baseline else result.name
        ratio = _ratio_text(result.median / reference)
        lines.append(f"{name:<{width}}  {result.median:>9.4f}  {result.best:>9.4f}  {ratio:>8}")
    lines.append("")
    lines.append(f"ratio = median / median of {baseline!r}; below 1.00x is faster than the baseline")
    return "\n".join(lines)


def to_json(results: Sequence[Result], baseline: str, title: str, facts: Sequence[str] = ()) -> str:
    """The results as JSON: every run's seconds, median, minimum and ratio to `baseline`."""
    reference = _baseline(results, baseline).median
    document = {
        "title": title,
        "facts": list(facts),
        "baseline": baseline,
        "results": [
            {"name": r.name, "seconds": r.seconds, "median": r.median, "min": r.best, "ratio": r.median / reference}
            for r in results
        ],
    }
    return json.dumps(document, indent=2)


def print_report(results: Sequence[Result], baseline: str, title: str, facts: Sequence[str], as_json: bool) -> None:
    """Print the table (or JSON, when asked) on standard output."""
    print(to_json(results, baseline, title, facts) if as_json else format_table(results, baseline, title, facts))


@contextmanager
def workspace(prefix: str = "lxclab-bench-") -> Iterator[Path]:
    """A temporary directory for a whole benchmark; on exit nothing under it stays mounted or on disk."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield root
    finally:
        release(root)


def release(directory: Path) -> None:
    """Detach every mount under `directory` (deepest first), then remove the directory tree."""
    for mount_point in mounts_under(directory):
        try:
            _linux.umount(mount_point, _linux.MNT_DETACH)
        except KernelError as exc:
            print(f"bench: could not detach {mount_point}: {exc}", file=sys.stderr)
    if os.path.lexists(directory):
        remove_tree(Path(directory))


def mounts_under(directory: Path) -> list[str]:
    """Mount points at or below `directory`, deepest first (read from /proc/self/mountinfo)."""
    root = os.path.realpath(directory)
    inside = [p for p in procfs.mount_points() if p == root or p.startswith(root + "/")]
    return sorted(set(inside), key=lambda p: p.count("/"), reverse=True)


def run_command(argv: Sequence[str], env: dict[str, str] | None = None) -> str:
    """Run a command to completion and return its standard output; BenchmarkError with its stderr if it fails."""
    try:
        done = subprocess.run(list(argv), env=env, capture_output=True, text=True)
    except OSError as exc:
        raise BenchmarkError(f"cannot run {argv[0]}: {exc}; is it installed (./kit setup)?") from exc
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise BenchmarkError(f"{' '.join(argv)} failed with exit status {done.returncode}:\n{tail}")
    return done.stdout


def write_bytecode() -> None:
    """Compile lxclab's modules to __pycache__, as pip does at install, so no CLI row recompiles them every run.

    A shell with PYTHONDONTWRITEBYTECODE set (as some CI and sandboxes are) never writes the
    bytecode of an editable install, and every `lxclab` process then compiles each module it
    imports from source: tens of milliseconds that an installed lxclab does not pay.
    """
    import compileall

    import lxclab

    compileall.compile_dir(Path(lxclab.__file__).parent, quiet=1)


def lxclab_command() -> list[str]:
    """How to run the `lxclab` CLI of this Python: its console script, else `python -m lxclab`."""
    script = Path(sys.executable).parent / "lxclab"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lxclab"]


def _baseline(results: Sequence[Result], baseline: str) -> Result:
    for result in results:
        if result.name == baseline:
            return result
    raise BenchmarkError(f"no contender named {baseline!r} to compare against; have {[r.name for r in results]}")


def _ratio_text(ratio: float) -> str:
    """A ratio like `1.23x`, with more digits when it is tiny (a mount next to an unpack)."""
    return f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.4f}x"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "contender"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: give a whole number, 1 or more")
    return value


def _not_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: give a whole number, 0 or more")
    return value
