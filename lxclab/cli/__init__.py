"""The `lxclab` command: a small docker-like CLI over the library.

Each module in this package adds its subcommands through `register(subparsers)`; a
subcommand's function takes the parsed arguments and returns an exit status. A command
imports only its own module (COMMANDS says which), and that module imports the library
when the command runs, so that `lxclab run` of a stored image loads no HTTP client and
`lxclab --version` loads nothing at all.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import sys
from typing import NoReturn

from .. import __version__
from ..errors import LxclabError

COMMANDS = {  # each subcommand → the module of this package that registers it (tests/test_cli_imports.py checks it)
    "commit": "commit", "doctor": "doctor",
    "images": "images", "inspect": "images", "login": "images", "logout": "images", "pull": "images",
    "push": "images", "tag": "images",
    "registry": "registry",
    "exec": "run", "gc": "run", "logs": "run", "ps": "run", "rm": "run", "run": "run", "start": "run",
    "stop": "run",
    "seed": "seed",
    "unmount": "unpack", "unpack": "unpack",
}


def build_parser(modules: list[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser with the subcommands of `modules` of this package (default: every one)."""
    parser = argparse.ArgumentParser(prog="lxclab", description="Docker from scratch, in Python.")
    parser.add_argument("--version", action="version", version=f"lxclab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in sorted(set(COMMANDS.values()) if modules is None else modules):
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def modules_for(argv: list[str]) -> list[str] | None:
    """The modules a command line needs: its command's, none for a bare --version, or None (every one, for --help)."""
    words = [word for word in argv if not word.startswith("-")]
    if words:
        return [COMMANDS[words[0]]] if words[0] in COMMANDS else None
    return None if {"-h", "--help"} & set(argv) or not argv else []


def main(argv: list[str] | None = None) -> int:
    """Run one lxclab command; errors print one clear line and give a non-zero status.

    Called without `argv`, as the `lxclab` program is, it then ends the process at once (`leave`).
    """
    status = dispatch(sys.argv[1:] if argv is None else argv)
    if argv is None:
        leave(status)
    return status


def leave(status: int) -> NoReturn:
    """End the process with `status`: flush, run the atexit handlers, but skip tearing down every module.

    Python's own shutdown frees each of the 200 to 300 modules a command loaded, one object at
    a time: 15 to 40 ms after the work is done. Nothing of lxclab's needs it (files are closed
    by `with`); a command that left a thread running exits the ordinary way, which waits for it.
    """
    threading = sys.modules.get("threading")  # not loaded: no thread was started
    if threading is not None and any(not t.daemon and t is not threading.main_thread() for t in threading.enumerate()):
        sys.exit(status)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass  # the reader went away, as main allows; its last bytes have nowhere to go
    sys.stderr.flush()
    atexit._run_exitfuncs()
    os._exit(status)


def dispatch(argv: list[str]) -> int:
    """Parse `argv` and run its command; its exit status (1 for an LxclabError, printed on one line)."""
    args = build_parser(modules_for(argv)).parse_args(argv)
    try:
        status = args.func(args) or 0
        sys.stdout.flush()  # here, not at exit, so that a reader gone early is caught below
        return status
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
