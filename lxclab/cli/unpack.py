"""`lxclab unpack [--mode overlay|copy] REF DIR` and `lxclab unmount DIR`: an image's root filesystem on disk."""

from __future__ import annotations

import argparse
from pathlib import Path

OVERLAY, COPY = "overlay", "copy"  # lxclab.unionfs's mode names; the library is imported when a command runs


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the unpack and unmount subcommands."""
    unpack = subparsers.add_parser("unpack", help="build a pulled image's root filesystem in DIR")
    unpack.add_argument("--mode", choices=(OVERLAY, COPY), default=OVERLAY,
                        help="overlay: mount the layer stack (root only); copy: flatten into DIR (anyone)")
    unpack.add_argument("ref", metavar="REF", help="a pulled image, like lab/busybox:latest")
    unpack.add_argument("dir", metavar="DIR", type=Path, help="an empty or new directory")
    unpack.set_defaults(func=run_unpack)
    unmount_parser = subparsers.add_parser("unmount", help="unmount an image unpacked in overlay mode")
    unmount_parser.add_argument("dir", metavar="DIR", type=Path)
    unmount_parser.set_defaults(func=run_unmount)


def run_unpack(args: argparse.Namespace) -> int:
    """Unpack REF into DIR and say what was done."""
    from ..store import Store
    from ..unionfs import unpack_image

    image = Store().image(args.ref)
    unpacked = unpack_image(image, args.dir, args.mode)
    for report in unpacked.reports:
        print(f"layer {report}")
    if unpacked.mount is not None:
        print(f"mounted {len(unpacked.mount.lower)} layers at {args.dir} (writes go to {unpacked.mount.upper}); "
              f"run `lxclab unmount {args.dir}` when done")
    else:
        print(f"unpacked {len(unpacked.reports)} layers into {args.dir}")
    return 0


def run_unmount(args: argparse.Namespace) -> int:
    """Unmount DIR and delete its upper and work directories."""
    from ..unionfs import unmount

    unmount(args.dir)
    print(f"unmounted {args.dir}")
    return 0
