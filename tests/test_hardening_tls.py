"""A classroom served over TLS with its own CA, tested on 127.0.0.1 with TLS forced (`tls=True`).

Off loopback the classroom turns TLS on by itself; here the same servers run on loopback
with the flag, and a learner's machine is a private $LXCLAB_HOME that trusts (or not) the
classroom's CA through `certs.d/<host:port>/ca.crt`. skopeo, a real client, is the oracle.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fixture_classroom import started_classroom
from fixture_images import push_image, random_image, unique_repository

from lxclab.classroom import Classroom, keys, tls
from lxclab.engine import pull
from lxclab.errors import ClassroomError, RegistryError
from lxclab.registry import RegistryClient
from lxclab.store import Store


@pytest.fixture(scope="module")
def tls_classroom(tmp_path_factory) -> Iterator[Classroom]:
    """A classroom on 127.0.0.1 that serves HTTPS with a certificate from its own CA."""
    running = started_classroom(tmp_path_factory, "tls-classroom", tls=True)
    try:
        yield running
    finally:
        running.down()


def trust(lxclab_home, classroom: Classroom, ca_pem: bytes | None = None) -> None:
    """The learner's one step: the classroom's CA (fetched from /ca.crt) in certs.d/<registry>/ca.crt."""
    directory = lxclab_home / "certs.d" / classroom.registry_host
    directory.mkdir(parents=True, exist_ok=True)
    if ca_pem is None:
        ca_pem = httpx.get(classroom.token_url.replace("/token", "/ca.crt"), verify=False, trust_env=False).content
    (directory / "ca.crt").write_bytes(ca_pem)


def test_off_loopback_tls_is_the_default_and_plain_http_is_refused(tmp_path):
    lan = Classroom(tmp_path / "lan", host="192.0.2.10")
    assert lan.tls and lan.registry_url == "https://192.0.2.10:5000" and lan.token_url.startswith("https://")
    assert not Classroom(tmp_path / "local").tls
    with pytest.raises(ClassroomError, match="plain HTTP: that is for loopback only"):
        Classroom(tmp_path / "lan", host="192.0.2.10", tls=False)


def test_the_servers_speak_tls_with_a_certificate_from_the_classroom_ca(tls_classroom):
    files = tls.files(tls_classroom.state_dir)
    context = ssl.create_default_context(cafile=str(files.ca_cert))
    answer = httpx.get(f"{tls_classroom.registry_url}/v2/", verify=context, trust_env=False)
    assert answer.status_code == 401 and f'realm="https://127.0.0.1:{tls_classroom.token_port}/token"' in \
        answer.headers["www-authenticate"]
    assert httpx.get(tls_classroom.token_url.replace("/token", "/healthz"), verify=context).status_code == 200
    server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert oct(files.server_key.stat().st_mode & 0o777) == "0o600"
    assert oct((files.ca_cert.parent / tls.CA_KEY).stat().st_mode & 0o777) == "0o600"
    plain = httpx.get(f"http://{tls_classroom.registry_host}/v2/", trust_env=False, timeout=5)
    assert plain.status_code == 400 and "HTTPS server" in plain.text  # Go's answer to plain HTTP on a TLS port
    with pytest.raises(httpx.TransportError):  # the token server closes a connection that does not speak TLS
        httpx.get(tls_classroom.token_url.replace("https", "http"), trust_env=False, timeout=5)


def test_a_learner_without_the_ca_gets_a_clear_error(tls_classroom, lxclab_home):
    with pytest.raises(RegistryError, match=r"speaks HTTPS; trust its CA in \$LXCLAB_HOME/certs.d/127.0.0.1:\d+/ca.crt"):
        RegistryClient(tls_classroom.registry_host).ping()
    trust(lxclab_home, tls_classroom, keys.generate("not the classroom").certificate.public_bytes(Encoding.PEM))
    with pytest.raises(RegistryError, match="TLS certificate is not trusted"):
        RegistryClient(tls_classroom.registry_host).ping()


def test_push_and_pull_over_tls_with_real_tokens(tls_classroom, lxclab_home, tmp_path):
    trust(lxclab_home, tls_classroom)
    fingerprint = tls.fingerprint(lxclab_home / "certs.d" / tls_classroom.registry_host / "ca.crt")
    assert fingerprint == tls.fingerprint(tls_classroom.ca_file)
    image, repository = random_image(), unique_repository()
    digest = push_image(tls_classroom.registry_host, tls_classroom.teacher, repository, "1", image)
    pulled = pull(f"{tls_classroom.registry_host}/{repository}:1", store=Store(tmp_path / "s"))
    assert digest == image.digest == pulled.digest
    assert [p.read_bytes() for p in pulled.layer_paths] == image.layers


def test_skopeo_trusts_the_same_ca(tls_classroom, tmp_path):
    image, repository = random_image((100,)), unique_repository()
    ca_dir = tmp_path / "certs"
    ca_dir.mkdir()
    shutil.copy(tls_classroom.ca_file, ca_dir / "ca.crt")
    push_image_over_tls(tls_classroom, repository, image, tmp_path)
    result = subprocess.run(["skopeo", "inspect", "--raw", "--cert-dir", str(ca_dir),
                             f"docker://{tls_classroom.registry_host}/{repository}:1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(image.manifest)


def push_image_over_tls(classroom: Classroom, repository: str, image, tmp_path) -> None:
    home = tmp_path / "teacher-home"
    (home / "certs.d" / classroom.registry_host).mkdir(parents=True)
    shutil.copy(classroom.ca_file, home / "certs.d" / classroom.registry_host / "ca.crt")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LXCLAB_HOME", str(home))
        push_image(classroom.registry_host, classroom.teacher, repository, "1", image)


LAN_SCRIPT = """
import json, sys
from pathlib import Path
import httpx
sys.path.insert(0, sys.argv[3])
from fixture_images import push_image, random_image
from lxclab.classroom import Classroom
from lxclab.classroom.tls import fingerprint
from lxclab.engine import pull
from lxclab.store import Store

state, home = Path(sys.argv[1]), Path(sys.argv[2])
classroom = Classroom(state, host="192.0.2.10")  # a LAN address: TLS without being asked
classroom.up()
try:
    ca = httpx.get("https://192.0.2.10:5001/ca.crt", verify=False, trust_env=False).content
    (home / "certs.d" / classroom.registry_host).mkdir(parents=True)
    (home / "certs.d" / classroom.registry_host / "ca.crt").write_bytes(ca)
    image = random_image()
    pushed = push_image(classroom.registry_host, classroom.teacher, "lab/lan", "1", image)
    pulled = pull("192.0.2.10:5000/lab/lan:1", store=Store(home / "store"))
    print(json.dumps({"urls": [classroom.registry_url, classroom.token_url], "pushed": pushed,
                      "pulled": pulled.digest, "expected": image.digest,
                      "same_ca": fingerprint(home / "certs.d" / classroom.registry_host / "ca.crt")
                                 == fingerprint(classroom.ca_file)}))
finally:
    classroom.down()
"""


@pytest.fixture
def lan_netns() -> Iterator[str]:
    """A network namespace of the test's own: lo, and a veth pair inside it, `lan0` holding 192.0.2.10/24 (TEST-NET-1)."""
    name = f"lxclab-tls-{unique_repository('')[1:]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for command in (["link", "set", "lo", "up"], ["link", "add", "lan0", "type", "veth", "peer", "name", "lan1"],
                        ["addr", "add", "192.0.2.10/24", "dev", "lan0"], ["link", "set", "lan0", "up"],
                        ["link", "set", "lan1", "up"]):
            subprocess.run(["ip", "-n", name, *command], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def test_a_classroom_on_a_lan_address_serves_tls_by_itself(lan_netns, tmp_path):
    tests = str(Path(__file__).parent)
    result = subprocess.run(["ip", "netns", "exec", lan_netns, sys.executable, "-c", LAN_SCRIPT,
                             str(tmp_path / "state"), str(tmp_path / "home"), tests],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "LXCLAB_HOME": str(tmp_path / "home")})
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.splitlines()[-1])
    assert found["urls"] == ["https://192.0.2.10:5000", "https://192.0.2.10:5001/token"]
    assert found["pushed"] == found["pulled"] == found["expected"] and found["same_ca"]
    assert not list((tmp_path / "state").glob("*.pid")), "the classroom did not stop"
