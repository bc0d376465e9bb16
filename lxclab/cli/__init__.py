"""The `lxclab` command: a small docker-like CLI over the library.

Each module in this package adds its subcommands through `register(subparsers)`; a
subcommand's function takes the parsed arguments and returns an exit status.
"""

from __future__ import annotations

import argparse
import os
import importlib
import pkgutil
import sys

from ..errors import LxclabError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand of every module in this package."""
    parser = argparse.ArgumentParser(prog="lxclab", description="Docker from scratch, in Python.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one lxclab command; errors print one clear line and give a non-zero status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except LxclabError as exc:
        print(f"lxclab: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lxclab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away, as in `lxclab inspect REF | head`: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
