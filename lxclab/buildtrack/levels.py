"""The glue between levels: keep a learner's passing functions, and hand them to the next level.

`save_level("B1", get_token, fetch)` writes the functions' source to
`$LXCLAB_HOME/buildtrack/B1.py`; `load_level("B1")` imports that file in a later notebook, or,
when there is none (a learner who is behind, or who asks for it with `reference=True`), the
level's reference solution from `checkpoints`: a named checkpoint, so nobody stays stuck.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
from collections.abc import Callable
from pathlib import Path

from .. import paths
from . import checkpoints

# What each level defines, and the levels its functions call.
FUNCTIONS = {
    "B1": ("parse_challenge", "get_token", "fetch"),
    "B2": ("choose_manifest", "chain_ids", "walk"),
    "B3": ("apply_layer", "unpack"),
    "B4": ("overlay_options", "mount_overlay"),
    "B5": ("chroot_run", "run_isolated"),
    "B6": ("limit_files", "write_limits"),
    "B7": ("capability_mask", "drop_capabilities"),
    "B8": ("run_contained", "mydocker_run"),
}
NEEDS = {"B2": ("B1",), "B3": ("B2",), "B8": ("B3", "B5", "B6", "B7")}
PRELUDE = "from lxclab.buildtrack.prelude import *  # noqa: F403 - the names every level's exercises use\n"


def needed(level: str) -> list[str]:
    """Every level whose functions `level` calls, directly or through another level, lowest first."""
    found: list[str] = []
    for need in NEEDS.get(level, ()):
        found += [n for n in [*needed(need), need] if n not in found]
    return sorted(found)


def levels_dir() -> Path:
    """Where the learner's saved levels live: $LXCLAB_HOME/buildtrack."""
    return paths.home() / "buildtrack"


def _known(level: str) -> tuple[str, ...]:
    if level not in FUNCTIONS:
        raise ValueError(f"unknown level {level!r}: the levels are {', '.join(FUNCTIONS)}")
    return FUNCTIONS[level]


def save_level(level: str, *functions: Callable) -> Path:
    """Write the source of the learner's `functions` for `level` to a file later levels load; return its path."""
    wanted = _known(level)
    names = [f.__name__ for f in functions]
    if sorted(names) != sorted(wanted):
        raise ValueError(f"level {level} saves {', '.join(wanted)}; got {', '.join(names) or 'nothing'}")
    lines = [PRELUDE]
    lines += [f"globals().update(load_level({need!r}, quiet=True))\n" for need in needed(level)]
    lines += ["\n\n" + inspect.getsource(f) for f in functions]
    target = levels_dir() / f"{level}.py"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    partial.write_text("".join(lines))
    partial.rename(target)  # atomic: a level loading this file meanwhile sees the old one or the new one
    return target


def load_level(level: str, reference: bool = False, quiet: bool = False) -> dict[str, Callable]:
    """The functions of `level`: the learner's saved ones if there are any, else the reference checkpoint."""
    wanted = _known(level)
    saved = levels_dir() / f"{level}.py"
    if saved.is_file() and not reference:
        module = _import(saved, f"buildtrack_{level}")
        origin = f"your own, from {saved.name}"
    else:
        module, origin = checkpoints, "the reference checkpoint"
    if not quiet:
        print(f"{level}: {', '.join(wanted)} ({origin})")
    return {name: getattr(module, name) for name in wanted}


def _import(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
