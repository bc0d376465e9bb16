"""`lxclab registry up|down|status|adduser`: the offline classroom registry for a workshop."""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..classroom import Classroom


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `lxclab registry` and its four actions to the CLI."""
    parser = subparsers.add_parser(
        "registry", help="run the classroom registry (a real registry + token server, offline)",
        description="Run a token-authenticated registry for a workshop, like Docker Hub but on this machine.",
    )
    actions = parser.add_subparsers(dest="registry_action", metavar="ACTION")
    actions.required = True

    up = actions.add_parser("up", help="start the registry and its token server (harmless if running)")
    up.add_argument("--host", default="127.0.0.1",
                    help="address to serve on (default 127.0.0.1); for other machines give this machine's "
                         "classroom address: clients must reach the token server there too")
    up.add_argument("--port", type=int, help="registry port (default $LXCLAB_REGISTRY_PORT or 5000)")
    up.add_argument("--token-port", type=int, help="token server port (default $LXCLAB_TOKEN_PORT or 5001)")
    up.add_argument("--token-ttl", type=int, default=300, help="token lifetime in seconds (default 300)")
    up.set_defaults(func=run_up)

    down = actions.add_parser("down", help="stop both servers")
    down.set_defaults(func=run_down)
    status = actions.add_parser("status", help="show what runs; exit 0 when both servers run, else 1")
    status.set_defaults(func=run_status)

    adduser = actions.add_parser("adduser", help="add a student who may push to NAME/... repositories")
    adduser.add_argument("name", metavar="NAME")
    adduser.add_argument("--password", help="the student's password (default: generate and print one)")
    adduser.set_defaults(func=run_adduser)

    for action in (up, down, status, adduser):
        action.add_argument("--state-dir", type=Path, help="where the classroom keeps its state "
                                                           "(default $LXCLAB_CLASSROOM_DIR or ~/.lxclab/classroom)")


def run_up(args: argparse.Namespace) -> int:
    """Start the classroom and say where it is and where the teacher's password is."""
    from ..classroom import Classroom

    classroom = Classroom(args.state_dir, host=args.host, registry_port=args.port,
                          token_port=args.token_port, token_ttl=args.token_ttl)
    classroom.up()
    print(f"registry:     {classroom.registry_host}  (images: {classroom.registry_host}/NAME:TAG)")
    print(f"token server: {classroom.token_url}")
    print(f"teacher credentials (may push anywhere): {classroom.teacher_file}")
    if classroom.ca_file:
        from ..classroom.tls import fingerprint

        print(f"TLS CA for learners: {classroom.ca_file}\n  SHA-256 fingerprint {fingerprint(classroom.ca_file)}\n"
              f"  learners copy it to ~/.lxclab/certs.d/{classroom.registry_host}/ca.crt")
    print("anonymous users may pull; stop with `lxclab registry down`")
    return 0


def run_down(args: argparse.Namespace) -> int:
    """Stop both classroom servers."""
    recorded(args.state_dir).down()
    print("classroom registry stopped")
    return 0


def run_status(args: argparse.Namespace) -> int:
    """Print each server's state, PID and URL; 0 when both run."""
    status = recorded(args.state_dir).status()
    for name, running in (("registry", status.registry_running), ("token", status.token_running)):
        state = f"running (pid {status.pids[name]})" if running else "not running"
        print(f"{name + ':':10} {state:24} {status.urls[name]}")
    return 0 if status.running else 1


def run_adduser(args: argparse.Namespace) -> int:
    """Add or update a student account; print the password when it was generated."""
    password = args.password or secrets.token_urlsafe(9)
    recorded(args.state_dir).add_user(args.name, password)
    print(f"user {args.name} may pull everything and push to {args.name}/...")
    if not args.password:
        print(f"password: {password}")
    return 0


def recorded(state_dir: Path | None) -> Classroom:
    """The classroom as its last `up` left it (the servers' library is imported only now, to start fast)."""
    from ..classroom import Classroom

    return Classroom.recorded(state_dir)
