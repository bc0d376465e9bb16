"""A real JupyterLab server on loopback, for browser tests: free port, a token, its own folders, no network.

The server runs as root here, which JupyterLab only allows with --allow-root. It serves a
folder of copies (so that autosave never touches the committed notebooks), and it is told
never to look outside the machine: the extension manager is read-only (no PyPI search) and
the news/update announcements plugin is disabled.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from fixture_classroom import free_port
from fixture_lessons import LessonClassroom
from polling import SLOWDOWN

START_TIMEOUT = 90.0 * SLOWDOWN  # under TCG JupyterLab printed nothing in its first 90 s
QUIET_LAB = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}
# Start the notebook's kernel without asking (JupyterLab otherwise may show a "Select Kernel" dialog).
SETTINGS = {"@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"autoStartDefaultKernel": True}}


@dataclass(frozen=True)
class JupyterLab:
    """A running JupyterLab: where it listens, its token, the folder it serves and its log."""

    url: str
    token: str
    root: Path
    log: Path

    def open_url(self, relative: str, workspace: str) -> str:
        """The URL that opens `relative` (a path under root) alone in a fresh workspace, logged in by the token."""
        return f"{self.url}/lab/workspaces/{workspace}/tree/{relative}?reset&token={self.token}"

    def api(self, path: str, **params: str | int) -> Any:
        """The decoded JSON answer of the server's REST API at /api/`path`; an HTTP error status raises."""
        answer = httpx.get(f"{self.url}/api/{path}", params={"token": self.token, **params}, timeout=10,
                           trust_env=False)
        answer.raise_for_status()
        return answer.json()

    def kernel_states(self) -> list[str]:
        """The execution state of each kernel the server runs, as its REST API reports them."""
        return [kernel["execution_state"] for kernel in self.api("kernels")]


def private_jupyter_dirs(base: Path) -> dict[str, str]:
    """Environment variables giving the server its own config, runtime, settings and workspaces folders."""
    folders = {name: base / name for name in ("config", "runtime", "settings", "workspaces")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    (folders["config"] / "labconfig").mkdir()
    (folders["config"] / "labconfig/page_config.json").write_text(json.dumps(QUIET_LAB))
    for name, values in SETTINGS.items():
        (folders["settings"] / name).parent.mkdir(parents=True, exist_ok=True)
        (folders["settings"] / name).write_text(json.dumps(values))
    return {"JUPYTER_CONFIG_DIR": str(folders["config"]), "JUPYTER_RUNTIME_DIR": str(folders["runtime"]),
            "JUPYTERLAB_SETTINGS_DIR": str(folders["settings"]),
            "JUPYTERLAB_WORKSPACES_DIR": str(folders["workspaces"])}


def wait_until_serving(server: subprocess.Popen, url: str, token: str, log: Path) -> None:
    """Return once the server answers /api/status; fail with its log if it exits or takes too long."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/api/status", params={"token": token}, timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"JupyterLab did not answer within {START_TIMEOUT} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory: pytest.TempPathFactory, lesson_classroom: LessonClassroom) -> Iterator[JupyterLab]:
    """JupyterLab on 127.0.0.1 (free port, a token), its kernels pointed at the module's lesson classroom."""
    base = tmp_path_factory.mktemp("jupyterlab")
    root, port, token = base / "served", free_port(), secrets.token_hex(16)
    root.mkdir()
    env = lesson_classroom.env | private_jupyter_dirs(base / "jupyter")
    log = base / "server.log"
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
               f"--port={port}", "--port-retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", "--LabApp.extension_manager=readonly"]
    with log.open("wb") as output:
        server = subprocess.Popen(command, env=env, cwd=root, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(server, f"http://127.0.0.1:{port}", token, log)
        yield JupyterLab(f"http://127.0.0.1:{port}", token, root, log)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
