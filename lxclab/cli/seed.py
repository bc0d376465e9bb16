"""`lxclab seed`: build the classroom's seed images and push them to the classroom registry."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..errors import SeedError
from .registry import recorded


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `lxclab seed` to the CLI."""
    parser = subparsers.add_parser(
        "seed", help="build the seed images (lab/busybox, amd64 + arm64) and push them to the classroom registry",
        description="Build the seed images deterministically into an OCI layout, then push every image in it.",
    )
    parser.add_argument("--registry", metavar="HOST:PORT",
                        help="registry to push to (default: the running classroom registry)")
    parser.add_argument("--layout", type=Path, metavar="DIR",
                        help="OCI layout to build into (default $LXCLAB_HOME/seed-layout)")
    parser.add_argument("--bench-size", type=int, default=0, metavar="MB",
                        help="also build lab/bench with about MB megabytes of random layers (default: not built)")
    parser.add_argument("--no-push", action="store_true", help="only build the layout")
    parser.add_argument("--state-dir", type=Path,
                        help="the classroom's state (default $LXCLAB_CLASSROOM_DIR or ~/.lxclab/classroom)")
    parser.set_defaults(func=run_seed)


def run_seed(args: argparse.Namespace) -> int:
    """Build the layout, print each image's digest, and push them unless told not to."""
    from ..classroom.ocilayout import OciLayout
    from ..classroom.publish import push_layout
    from ..classroom.seed import build_seed_layout, default_layout_dir
    from ..registry import RegistryClient

    if args.bench_size < 0:
        raise SeedError(f"--bench-size {args.bench_size}: give a size in megabytes, 0 or more")
    target = None if args.no_push else push_target(args.registry, args.state_dir)
    layout = OciLayout(args.layout or default_layout_dir())
    started = time.monotonic()
    refs = build_seed_layout(layout.root, bench_size_mb=args.bench_size)
    print(f"built {len(refs)} images into {layout.root} in {time.monotonic() - started:.1f} s")
    if target is None:
        for name, descriptor in sorted(refs.items()):
            print(f"{name:28} {descriptor.digest}")
        return 0
    registry, credentials = target
    with RegistryClient(registry, credentials) as client:
        for name, digest in push_layout(layout, client).items():
            print(f"{registry}/{name:28} {digest}")
    return 0


def push_target(registry: str | None, state_dir: Path | None) -> tuple[str, tuple[str, str] | None]:
    """The registry to push to and its credentials: the classroom's (its teacher), or a named one's saved login."""
    from ..registry import lookup

    classroom = recorded(state_dir)
    if registry is None:
        if not classroom.status().running:
            raise SeedError(
                f"no classroom registry is running (state in {classroom.state_dir}); start it with "
                "`lxclab registry up`, name one with --registry HOST:PORT, or build only with --no-push"
            )
        return classroom.registry_host, classroom.teacher
    if registry == classroom.registry_host and classroom.teacher_file.is_file():
        return registry, classroom.teacher
    return registry, lookup(registry)
