"""`lxclab commit`: a container's changes as a new image in the store, ready for `lxclab push`.

    lxclab commit [-m MESSAGE] CONTAINER NEWREF
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the commit subcommand."""
    command = subparsers.add_parser("commit", help="store a container's changes as a new image (one layer on top)")
    command.add_argument("-m", "--message", help="a comment for the new history entry")
    command.add_argument("container", metavar="CONTAINER", help="a container's name, ID or unique ID prefix")
    command.add_argument("ref", metavar="NEWREF", help="the new image's name, like 127.0.0.1:5000/lab/busybox:mine")
    command.set_defaults(func=run_commit)


def run_commit(args: argparse.Namespace) -> int:
    """Commit the container as NEWREF; print the new manifest digest and the new layer's."""
    from ..engine.commit import commit

    done = commit(args.container, args.ref, message=args.message)
    print(f"layer {done.layer.digest} ({done.layer.size} bytes, DiffID {done.layer.diff_id})")
    print(done.image.digest)
    return 0
