"""`lxclab run`, `exec`, `ps`, `logs`, `start`, `stop`, `rm`, `gc`: containers from the command line, as in Docker.

    lxclab run [--rm] [-d] [-i] [-t] [--pull missing|always|never] [--name N] [--memory SIZE] [--cpus N] [--pids N]
               [--hostname H] [-e KEY=VALUE] [--net none|bridge] [--rootless] [--userns] [--mode overlay|copy]
               [--runtime namespaces|lxc] [--privileged] [--cap-add CAP] [--cap-drop CAP] [--security-opt OPT]
               REF [CMD...]
    lxclab exec [-i] [-t] ID CMD...      lxclab ps [-a]      lxclab logs ID
    lxclab start ID            lxclab stop ID
    lxclab rm [-f] ID...       lxclab gc

The engine is imported inside each command, so that `lxclab --help` stays quick.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from ..errors import CommandNotFound, ImageNotFound

COMMAND_NOT_FOUND = 127  # what a shell (and Docker) exits with when the command does not exist
MODES = ("overlay", "copy")  # lxclab.unionfs.OVERLAY, COPY
RUNTIMES = ("namespaces", "lxc")  # lxclab.engine.containers.NAMESPACES, LXC
PULL_POLICIES = ("missing", "always", "never")  # as `docker run --pull`


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the run, exec, ps, logs, rm and gc subcommands."""
    _register_run(subparsers)
    command = subparsers.add_parser("exec", help="run a command inside a running container")
    _add_terminal_options(command)
    command.add_argument("container", metavar="ID", help="a container's name, ID or unique ID prefix")
    command.add_argument("command", metavar="CMD", nargs=argparse.REMAINDER, help="the command and its arguments")
    command.set_defaults(func=run_exec)
    command = subparsers.add_parser("ps", help="list containers (running ones; -a for all)")
    command.add_argument("-a", "--all", action="store_true", help="list stopped and dead containers too")
    command.set_defaults(func=run_ps)
    command = subparsers.add_parser("logs", help="print what a container wrote to stdout and stderr")
    command.add_argument("container", metavar="ID")
    command.set_defaults(func=run_logs)
    command = subparsers.add_parser("start", help="start an exited container again, in the background")
    command.add_argument("container", metavar="ID")
    command.set_defaults(func=run_start)
    command = subparsers.add_parser("stop", help="stop a running container (SIGKILL to its PID 1)")
    command.add_argument("container", metavar="ID")
    command.set_defaults(func=run_stop)
    command = subparsers.add_parser("rm", help="remove containers and everything they hold")
    command.add_argument("-f", "--force", action="store_true", help="kill a running container first")
    command.add_argument("containers", metavar="ID", nargs="+")
    command.set_defaults(func=run_rm)
    command = subparsers.add_parser("gc", help="remove what crashed or killed runs left: processes, cgroups, "
                                               "network namespaces, veths, directories, records")
    command.set_defaults(func=run_gc)


def _register_run(subparsers: argparse._SubParsersAction) -> None:
    command = subparsers.add_parser("run", help="run a command in a new container of an image (pulled if missing)")
    command.add_argument("--rm", dest="remove", action="store_true", help="remove the container when it exits")
    command.add_argument("-d", "--detach", action="store_true", help="run in the background and print its ID")
    _add_terminal_options(command)
    command.add_argument("--pull", choices=PULL_POLICIES, default=PULL_POLICIES[0],
                         help="pull the image first: when it is not in the store (default), always, or never")
    command.add_argument("--name", help="a name to use instead of its ID")
    command.add_argument("--memory", metavar="SIZE", help="memory limit, like 64m or 1g (OOM kill beyond it)")
    command.add_argument("--cpus", metavar="N", help="CPU quota in CPUs, like 0.5")
    command.add_argument("--pids", metavar="N", help="the most processes it may have at once")
    command.add_argument("--hostname", metavar="H", help="its host name (default: the short container ID)")
    command.add_argument("-e", "--env", metavar="KEY=VALUE", action="append", default=[],
                         help="set an environment variable (repeatable), over the image's Env")
    command.add_argument("--net", choices=("none", "bridge"), default="none",
                         help="none: only lo (default); bridge: a veth on this home's bridge")
    command.add_argument("--rootless", action="store_true", default=None,
                         help="run in a user namespace, as non-root users do (implies --mode copy)")
    command.add_argument("--userns", action="store_true",
                         help="root inside is a host id of lxclab-remap's /etc/subuid range, not host root (root only)")
    command.add_argument("--mode", choices=MODES,
                         help="overlay: shared layers plus an upper dir (root, default); copy: a private copy")
    command.add_argument("--runtime", choices=RUNTIMES, default=RUNTIMES[0],
                         help="namespaces: lxclab's own (default); lxc: liblxc starts it (root, --net none)")
    command.add_argument("--privileged", action="store_true",
                         help="opt out of the security profile: every capability, no seccomp, no masked paths")
    command.add_argument("--cap-add", metavar="CAP", action="append", default=[],
                         help="keep a capability beyond Docker's default 14 (like SYS_TIME; ALL: every one)")
    command.add_argument("--cap-drop", metavar="CAP", action="append", default=[],
                         help="drop a capability of the default 14 (like NET_RAW; ALL: every one)")
    command.add_argument("--security-opt", metavar="OPT", action="append", default=[],
                         help="seccomp=unconfined (no filter) or no-new-privileges=false")
    command.add_argument("ref", metavar="REF", help="an image, like 127.0.0.1:5000/lab/busybox")
    command.add_argument("command", metavar="CMD", nargs=argparse.REMAINDER,
                         help="the command and its arguments (default: the image's Cmd)")
    command.set_defaults(func=run_run)


def _add_terminal_options(command: argparse.ArgumentParser) -> None:
    """-i and -t, as Docker has them: the container never gets this terminal itself, only pipes or a pty of its own."""
    command.add_argument("-i", "--interactive", action="store_true",
                         help="copy this process's stdin to the container (else it reads /dev/null)")
    command.add_argument("-t", "--tty", action="store_true",
                         help="give the container a pseudo-terminal of its own, relayed to this one")


def _streams(args: argparse.Namespace, log_path=None):
    """The container's stdio for a foreground command: pipes or a pty, this process's own stdin copied with -i."""
    from ..engine.streams import Streams

    return Streams(log_path, 0 if args.interactive else None, sys.stdout.buffer, sys.stderr.buffer, tty=args.tty)


def run_run(args: argparse.Namespace) -> int:
    """Run a container in the foreground (exit with its status) or detached (print its ID)."""
    from ..engine import run
    from ..limits import Limits
    from ..security import Profile

    limits = Limits.parse(memory=args.memory, cpus=args.cpus, pids=args.pids)
    profile = Profile.build(args.privileged, args.cap_add, args.cap_drop, args.security_opt)
    pull_image(args.ref, args.pull)
    options = dict(name=args.name, limits=limits, hostname=args.hostname, net=args.net, rootless=args.rootless,
                   mode=args.mode, remove=args.remove, runtime=args.runtime, env=args.env, profile=profile,
                   userns=args.userns)
    if args.detach:
        print(run.start(args.ref, args.command, **options).id)
        return 0
    signal.signal(signal.SIGTERM, _terminate)
    try:
        result = run.run(args.ref, args.command, stdin=0 if args.interactive else None, stdout=sys.stdout.buffer,
                         stderr=sys.stderr.buffer, tty=args.tty, **options)
    except CommandNotFound as exc:
        print(f"lxclab: error: {exc}", file=sys.stderr)
        return COMMAND_NOT_FOUND
    if result.oom_killed:
        print(f"lxclab: container {result.name} was killed by the OOM killer (memory limit {args.memory})",
              file=sys.stderr)
    return result.exit_code


def pull_image(ref: str, policy: str) -> None:
    """Pull `ref` with progress bars on stderr as `docker run` does: always, never, or when the store lacks it."""
    from ..store import Store

    if policy == "never":
        return
    if policy == "missing":
        try:
            Store().image(ref)
            return
        except ImageNotFound:
            print(f"lxclab: image {ref} is not in the store: pulling it", file=sys.stderr, flush=True)
    from ..engine import pull
    from ..progress import TerminalProgress

    image = pull(ref, progress=TerminalProgress())
    print(f"lxclab: pulled {ref} ({image.digest})", file=sys.stderr, flush=True)


def _terminate(signum: int, frame: object) -> None:
    """On SIGTERM, unwind like Ctrl-C so that the container is killed and its resources released."""
    raise KeyboardInterrupt


def run_exec(args: argparse.Namespace) -> int:
    """Run a command in a running container, its output copied here (input with -i, a pty with -t); exit with its status."""
    from ..engine import run

    try:
        with _streams(args) as streams:
            return run.exec_attached(args.container, args.command, streams).exit_code
    except CommandNotFound as exc:
        print(f"lxclab: error: {exc}", file=sys.stderr)
        return COMMAND_NOT_FOUND


def run_ps(args: argparse.Namespace) -> int:
    """Print a table of containers: ID, image, command, created, status, runtime, name."""
    from ..engine import containers

    now = time.time()
    rows = [("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "RUNTIME", "NAME")]
    for container in containers.containers():
        if args.all or container.status == containers.RUNNING:
            command = " ".join(container.config.argv)
            rows.append((container.short_id, container.config.image, _clip(command, 24),
                         containers.ago(now - container.config.created) + " ago", container.describe(now),
                         container.config.runtime, container.name))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def _clip(text: str, width: int) -> str:
    """`text`, cut to `width` characters with an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"


def run_logs(args: argparse.Namespace) -> int:
    """Write a container's log to stdout; say so on stderr when it never captured any."""
    from ..engine import containers

    container = containers.find(args.container)
    if not container.log_path.exists():
        print(f"lxclab: container {container.name} has no captured output yet: it has not started "
              f"(lxclab start {container.name})", file=sys.stderr)
        return 0
    sys.stdout.buffer.write(container.logs())
    sys.stdout.flush()
    return 0


def run_start(args: argparse.Namespace) -> int:
    """Start an exited container again in the background; print its ID."""
    from ..engine import run

    print(run.restart(args.container).id)
    return 0


def run_stop(args: argparse.Namespace) -> int:
    """Stop a running container; print its ID."""
    from ..engine import gc

    print(gc.stop(args.container))
    return 0


def run_rm(args: argparse.Namespace) -> int:
    """Remove each container named, printing its ID; stop at the first that cannot be removed."""
    from ..engine import gc

    for name in args.containers:
        print(gc.rm(name, force=args.force))
    return 0


def run_gc(args: argparse.Namespace) -> int:
    """Remove what crashed runs left and say what it was."""
    from ..engine import gc

    removed = gc.gc()
    for line in removed:
        print(f"removed {line}")
    if not removed:
        print("nothing to remove")
    return 0
