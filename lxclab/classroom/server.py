"""The classroom: a real registry and lxclab's token server, started and stopped as a pair.

The registry is the CNCF distribution registry (Debian's `docker-registry`, 2.8) with token
authentication: it answers `GET /v2/` with 401 and a Bearer challenge naming the token
server (the realm), exactly as registry-1.docker.io points at auth.docker.io. Both servers
run in the background, so `lxclab registry up` returns and a workshop keeps its registry.

By default both bind to 127.0.0.1. To serve other machines, pass `host` = this machine's
address on the classroom network: the registry's challenge sends clients to the token
server at that same address, so the realm must be reachable from every student's machine.
Off loopback both servers speak HTTPS with a certificate from the classroom's own CA
(`tls.py`); plain HTTP is for loopback only.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import ssl
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .. import paths
from ..errors import ClassroomError
from ..reference import is_loopback
from . import keys, tls, tokenserver, users
from .daemon import Daemon, check_port_free

REGISTRY_BINARY = Path("/usr/bin/docker-registry")
SETTINGS_FILE = "classroom.json"
REGISTRY_CONFIG_FILE = "registry.yml"
# A server that is alive but silent this long is stuck. Not less: in a VM under TCG on a busy host the token
# server, alive, did not answer within 30 s (a dead one is reported at once, whatever this says).
START_TIMEOUT = 180.0
_UNSPECIFIED_HOSTS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class ClassroomStatus:
    """Which classroom servers run, their PIDs, and their URLs."""

    registry_running: bool
    token_running: bool
    pids: dict[str, int | None] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        """Whether both servers run: only then can anyone pull."""
        return self.registry_running and self.token_running


class Classroom:
    """An offline registry for a workshop: token-authenticated, like Docker Hub, on this machine."""

    service = tokenserver.SERVICE

    def __init__(
        self, state_dir: Path | None = None, host: str = "127.0.0.1",
        registry_port: int | None = None, token_port: int | None = None, token_ttl: int = tokenserver.DEFAULT_TTL,
        token_rate: float = tokenserver.DEFAULT_RATE, token_burst: int = tokenserver.DEFAULT_BURST,
        tls: bool | None = None,
    ):
        """A classroom kept in `state_dir`; ports: $LXCLAB_REGISTRY_PORT, $LXCLAB_TOKEN_PORT, else 5000, 5001."""
        host = host.strip("[]")
        if host in _UNSPECIFIED_HOSTS:
            raise ClassroomError(
                f"cannot serve the classroom on {host!r}: clients are sent to the token server at this "
                "address, so give the address students reach (like 192.168.1.10), or 127.0.0.1"
            )
        self.state_dir = Path(state_dir or paths.classroom_dir()).absolute()
        self.host = host
        self.registry_port = registry_port or _port_from_env("LXCLAB_REGISTRY_PORT", 5000)
        self.token_port = token_port or _port_from_env("LXCLAB_TOKEN_PORT", 5001)
        self.token_ttl = token_ttl
        self.token_rate, self.token_burst = token_rate, token_burst
        self.tls = not is_loopback(_url_host(host)) if tls is None else tls
        if not self.tls and not is_loopback(_url_host(host)):
            raise ClassroomError(f"cannot serve the classroom on {host} over plain HTTP: that is for loopback only; "
                                 "leave TLS on (the classroom makes its own CA)")
        self.registry_binary = Path(shutil.which("docker-registry") or REGISTRY_BINARY)

    @classmethod
    def recorded(cls, state_dir: Path | None = None) -> Classroom:
        """The classroom as the last `up` in `state_dir` configured it (defaults if never up)."""
        state_dir = Path(state_dir or paths.classroom_dir())
        try:
            settings = json.loads((state_dir / SETTINGS_FILE).read_text())
        except (OSError, ValueError):
            return cls(state_dir)
        return cls(state_dir, **settings)

    @property
    def registry_host(self) -> str:
        """The registry as image references name it, like `127.0.0.1:5000`."""
        return f"{_url_host(self.host)}:{self.registry_port}"

    @property
    def registry_url(self) -> str:
        """The registry's base URL, like `http://127.0.0.1:5000` (https off loopback)."""
        return f"{self.scheme}://{self.registry_host}"

    @property
    def token_url(self) -> str:
        """The token endpoint, the `realm` of the registry's challenge."""
        return f"{self.scheme}://{_url_host(self.host)}:{self.token_port}/token"

    @property
    def scheme(self) -> str:
        """`https` when the classroom serves TLS, else `http`."""
        return "https" if self.tls else "http"

    @property
    def ca_file(self) -> Path | None:
        """The classroom CA's certificate that learners trust (None without TLS)."""
        return tls.files(self.state_dir).ca_cert if self.tls else None

    @property
    def teacher(self) -> tuple[str, str]:
        """(username, password) of the account that may push anywhere; made on first use."""
        return users.ensure_teacher(self.state_dir)

    @property
    def teacher_file(self) -> Path:
        """The file (mode 0600) holding the teacher's credentials."""
        return users.teacher_file(self.state_dir)

    def up(self) -> None:
        """Start whichever server is not running and wait until both answer; harmless when up."""
        registry, token = self._registry_daemon(), self._token_daemon()
        stopped = [(daemon, port, flag) for daemon, port, flag in
                   ((token, self.token_port, "--token-port"), (registry, self.registry_port, "--port"))
                   if daemon.pid() is None]
        if registry.pid() is None and not self.registry_binary.exists():
            raise ClassroomError(
                f"cannot start the classroom registry: {self.registry_binary} is missing; "
                "install it with `apt-get install docker-registry` (or run ./kit setup)"
            )
        self._prepare_state()
        for daemon, port, flag in stopped:
            check_port_free(self.host, port, f"classroom {daemon.name}", flag)
        try:
            for daemon, _, _ in stopped:
                self._start(daemon)
            self._wait_ready(token, self._token_answers)
            self._wait_ready(registry, self._registry_answers)
        except ClassroomError:
            for daemon, _, _ in stopped:
                daemon.stop()
            raise

    def down(self) -> None:
        """Stop both servers by their recorded PIDs and remove the PID files; harmless when down."""
        self._registry_daemon().stop()
        self._token_daemon().stop()

    def status(self) -> ClassroomStatus:
        """Which servers run (a stale PID file counts as not running), with PIDs and URLs."""
        registry_pid, token_pid = self._registry_daemon().pid(), self._token_daemon().pid()
        return ClassroomStatus(
            registry_running=registry_pid is not None,
            token_running=token_pid is not None,
            pids={"registry": registry_pid, "token": token_pid},
            urls={"registry": self.registry_url, "token": self.token_url},
        )

    def add_user(self, name: str, password: str) -> None:
        """Add (or update) a student who may pull everything and push to `name/...` repositories."""
        users.ensure_teacher(self.state_dir)
        users.add_user(self.state_dir, name, password)

    def _prepare_state(self) -> None:
        """Create the state directory, signing key, teacher account and settings record, all private (0700/0600)."""
        users.make_private(self.state_dir)
        if self.tls:
            tls.ensure(self.state_dir, self.host)
        keys.load_or_create(self.state_dir, self.service)
        users.ensure_teacher(self.state_dir)
        settings = {"host": self.host, "registry_port": self.registry_port,
                    "token_port": self.token_port, "token_ttl": self.token_ttl,
                    "token_rate": self.token_rate, "token_burst": self.token_burst, "tls": self.tls}
        users.write_private(self.state_dir / SETTINGS_FILE, json.dumps(settings, indent=2) + "\n")
        users.make_private(self.state_dir)

    def _start(self, daemon: Daemon) -> None:
        """Start one of the two servers with the config and environment it needs."""
        if daemon.name == "registry":
            self._write_registry_config()
            daemon.start(_registry_env())
        else:
            daemon.start(self._token_env())

    def _registry_daemon(self) -> Daemon:
        """The registry server: `docker-registry serve <state_dir>/registry.yml`."""
        config = str(self.state_dir / REGISTRY_CONFIG_FILE)
        return Daemon("registry", (str(self.registry_binary), "serve", config), self.state_dir, config)

    def _token_daemon(self) -> Daemon:
        """The token server: `python -m lxclab.classroom` in this Python."""
        argv = (sys.executable, "-m", "lxclab.classroom", "--state-dir", str(self.state_dir),
                "--host", self.host, "--port", str(self.token_port), "--ttl", str(self.token_ttl),
                "--rate", str(self.token_rate), "--burst", str(self.token_burst), *self._token_tls_args())
        return Daemon("tokenserver", argv, self.state_dir, str(self.state_dir))

    def _token_tls_args(self) -> tuple[str, ...]:
        files = tls.files(self.state_dir)
        return ("--tls-cert", str(files.server_cert), "--tls-key", str(files.server_key)) if self.tls else ()

    def _token_env(self) -> dict[str, str]:
        """This process's environment, with lxclab importable in the token server's Python."""
        package_root = str(Path(__file__).resolve().parents[2])
        python_path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
        return {**os.environ, "PYTHONPATH": python_path, "PYTHONUNBUFFERED": "1"}

    def _write_registry_config(self) -> None:
        """Write the registry's YAML config: filesystem storage, deletes, token auth against us."""
        quote = json.dumps  # a JSON string is a valid YAML double-quoted scalar
        config = f"""\
# Written by lxclab on each start of the classroom registry; edits are overwritten.
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: {quote(str(self.state_dir / "data"))}
  delete:
    enabled: true
http:
  addr: {quote(f"{_url_host(self.host)}:{self.registry_port}")}
  secret: {quote(secrets.token_hex(16))}
{self._registry_tls_config()}auth:
  token:
    realm: {quote(self.token_url)}
    service: {quote(self.service)}
    issuer: {quote(tokenserver.ISSUER)}
    rootcertbundle: {quote(str(keys.certificate_path(self.state_dir)))}
"""
        users.write_private(self.state_dir / REGISTRY_CONFIG_FILE, config)

    def _registry_tls_config(self) -> str:
        """The registry config's `http.tls` block (empty without TLS)."""
        if not self.tls:
            return ""
        files = tls.files(self.state_dir)
        return f"  tls:\n    certificate: {json.dumps(str(files.server_cert))}\n    key: {json.dumps(str(files.server_key))}\n"

    def _wait_ready(self, daemon: Daemon, answers) -> None:
        """Wait until `answers()` is true; a server that dies or stays silent raises ClassroomError."""
        deadline = time.monotonic() + START_TIMEOUT
        while not answers():
            if daemon.pid() is None:
                ended = daemon.how_it_ended()
                daemon.pid_file.unlink(missing_ok=True)
                raise ClassroomError(
                    f"the classroom {daemon.name} stopped while starting ({ended or 'how is unknown'}); last lines of "
                    f"{daemon.log_file}:\n{daemon.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise ClassroomError(
                    f"the classroom {daemon.name} did not answer within {START_TIMEOUT:.0f} s; "
                    f"see {daemon.log_file}, then `lxclab registry down` and up again:\n{daemon.log_tail()}"
                )
            time.sleep(0.1)

    def _registry_answers(self) -> bool:
        """Whether `GET /v2/` answers 401 with a Bearer challenge, as a token-auth registry does."""
        response = _get(f"{self.registry_url}/v2/", self.ca_file)
        return response is not None and response.status_code == 401 and \
            response.headers.get("www-authenticate", "").startswith("Bearer ")

    def _token_answers(self) -> bool:
        """Whether the token server's health check answers 200."""
        response = _get(f"{self.scheme}://{_url_host(self.host)}:{self.token_port}/healthz", self.ca_file)
        return response is not None and response.status_code == 200


def _get(url: str, ca_file: Path | None = None) -> httpx.Response | None:
    """GET `url` directly (no proxy), trusting `ca_file` for https, or None when nothing answers yet."""
    try:
        verify = ssl.create_default_context(cafile=str(ca_file)) if ca_file else True
        return httpx.get(url, timeout=2.0, trust_env=False, verify=verify)
    except httpx.TransportError:
        return None


def _port_from_env(variable: str, default: int) -> int:
    """The port number in environment `variable`, else `default`."""
    value = os.environ.get(variable, "").strip()
    if not value:
        return default
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ClassroomError(f"${variable} is {value!r}, not a port number; set it to 1-65535 or unset it")
    return int(value)


def _url_host(host: str) -> str:
    """`host` as it is written in a URL (IPv6 addresses in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _registry_env() -> dict[str, str]:
    """This process's environment without REGISTRY_* variables, which would override the config."""
    return {name: value for name, value in os.environ.items() if not name.startswith("REGISTRY_")}
