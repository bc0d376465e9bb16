"""`lxclab pull | images | inspect | tag | push | login | logout`: images between a registry and the store."""

from __future__ import annotations

import argparse
import json
import sys

from typing import TYPE_CHECKING

from ..errors import AuthenticationError, ManifestError
from ..paths import credentials_file

if TYPE_CHECKING:
    from ..manifest import Platform
    from ..store import StoredImage

# Each command imports the library it needs when it runs, so that `lxclab --help` starts fast.


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the image subcommands to the CLI."""
    _register_registry_commands(subparsers)
    _register_store_commands(subparsers)


def _register_registry_commands(subparsers: argparse._SubParsersAction) -> None:
    """pull, push, login, logout: the commands that talk to a registry."""
    command = subparsers.add_parser("pull", help="download an image into the store; prints its manifest digest")
    command.add_argument("--platform", metavar="OS/ARCH", type=platform_argument, help="e.g. linux/arm64 (default: this machine)")
    command.add_argument("--insecure", action="store_true", help="use plain HTTP for a registry that is not on this machine")
    command.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    command.add_argument("ref", metavar="REF", help="an image reference, like 127.0.0.1:5000/lab/busybox:latest")
    command.set_defaults(func=run_pull)

    command = subparsers.add_parser("push", help="upload a stored image to its registry; prints its manifest digest")
    command.add_argument("--chunk-size", type=int, metavar="BYTES", help="upload blobs in PATCH chunks of this size")
    command.add_argument("ref", metavar="REF")
    command.set_defaults(func=run_push)

    command = subparsers.add_parser("login", help="check and save credentials for a registry")
    command.add_argument("-u", "--username")
    command.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    command.add_argument("registry", metavar="REGISTRY", help="like 127.0.0.1:5000 or docker.io")
    command.set_defaults(func=run_login)

    command = subparsers.add_parser("logout", help="forget the saved credentials for a registry")
    command.add_argument("registry", metavar="REGISTRY")
    command.set_defaults(func=run_logout)


def _register_store_commands(subparsers: argparse._SubParsersAction) -> None:
    """images, inspect, tag: the commands that only read or name what the store holds."""
    command = subparsers.add_parser("images", help="list the images in the store")
    command.set_defaults(func=run_images)

    command = subparsers.add_parser("inspect", help="show a pulled image: manifest, config, history, DiffIDs, ChainIDs")
    command.add_argument("--json", action="store_true", help="print the manifest and config JSON as stored")
    command.add_argument("ref", metavar="REF")
    command.set_defaults(func=run_inspect)

    command = subparsers.add_parser("tag", help="give a pulled image another name (to push it there)")
    command.add_argument("source", metavar="SOURCE")
    command.add_argument("target", metavar="TARGET")
    command.set_defaults(func=run_tag)


def platform_argument(text: str) -> Platform:
    """Parse `--platform os/arch[/variant]` for argparse."""
    from ..manifest import Platform

    try:
        return Platform.parse(text)
    except ManifestError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run_pull(args: argparse.Namespace) -> int:
    """Pull REF with progress bars on stderr; print the manifest digest on stdout."""
    from ..engine import pull
    from ..progress import TerminalProgress

    progress = None if args.quiet else TerminalProgress()
    image = pull(args.ref, platform=args.platform, insecure=args.insecure, progress=progress)
    print(image.digest)
    return 0


def run_images(args: argparse.Namespace) -> int:
    """Print one line per stored image."""
    from ..store import Store

    rows = [("REPOSITORY", "TAG", "DIGEST", "PLATFORM", "SIZE")]
    for image in Store().images():
        ref = image.reference
        rows.append((ref.name, ref.tag or "<none>", image.digest[7:19], str(image.platform), human_size(image.size)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    """Print what a pulled image is made of, bottom layer first."""
    from ..store import Store

    image = Store().image(args.ref)
    if args.json:
        document = {"manifest": json.loads(image.manifest.raw), "config": json.loads(image.config.raw)}
        print(json.dumps(document, indent=2))
        return 0
    print("\n".join(describe(image)))
    return 0


def describe(image: StoredImage) -> list[str]:
    """The lines of `lxclab inspect`: identity, run settings, layers, history with DiffIDs, ChainIDs."""
    config = image.config
    lines = [
        f"Reference   {image.reference}",
        f"Digest      {image.digest}",
        f"Index       {image.index_digest or '-'}",
        f"Platform    {image.platform}",
        f"Image ID    {image.id}",
        f"Command     {json.dumps(config.command)}",
        f"Env         {json.dumps(list(config.env))}",
        f"WorkingDir  {config.working_dir}",
        "",
        f"Manifest ({image.manifest.media_type})",
        f"  config   {image.manifest.config.digest}  {human_size(image.manifest.config.size)}",
    ]
    lines += [f"  layer {n}  {layer.digest}  {human_size(layer.size)}" for n, layer in enumerate(image.manifest.layers)]
    lines += ["", "History (bottom first; empty layers changed only the config)"]
    for step, (entry, diff_id) in enumerate(config.layer_history()):
        lines.append(f"  {step:>2}  {diff_id or '(empty layer)':71}  {entry.created_by}")
    lines += ["", "ChainIDs (the identity of each layer stack)"]
    lines += [f"  {n:>2}  {chain_id}" for n, chain_id in enumerate(config.chain_ids)]
    return lines


def run_tag(args: argparse.Namespace) -> int:
    """Record TARGET as another name of SOURCE."""
    from ..store import Store

    image = Store().tag(args.source, args.target)
    print(f"{image.reference.familiar} -> {image.digest}")
    return 0


def run_push(args: argparse.Namespace) -> int:
    """Push REF from the store; print the manifest digest."""
    from ..engine import push

    print(push(args.ref, chunk_size=args.chunk_size))
    return 0


def run_login(args: argparse.Namespace) -> int:
    """Ask for what is missing, check it against the registry's token server, then save it."""
    import getpass

    from ..registry import RegistryClient, credentials

    username = args.username or input("Username: ")
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("Password: ")
    if not username or not password:
        raise AuthenticationError(f"login to {args.registry}: give a username and a password")
    with RegistryClient(args.registry, (username, password)) as client:
        client.ping()
    credentials.save(args.registry, username, password)
    print(f"Login succeeded: {username} at {args.registry} (saved in {credentials_file()})")
    return 0


def run_logout(args: argparse.Namespace) -> int:
    """Remove the saved login for REGISTRY."""
    from ..registry import credentials

    removed = credentials.forget(args.registry)
    print(f"{'Removed' if removed else 'No'} saved login for {args.registry}")
    return 0


def human_size(size: int) -> str:
    """A byte count the way `docker images` shows it (kB, MB: powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"
