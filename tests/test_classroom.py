"""The classroom registry against real servers: Debian's docker-registry and lxclab's token server.

The registry itself is the oracle: a token it accepts is a token made right.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import stat
import subprocess
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from cli_process import lxclab
from cryptography import x509
from fixture_classroom import free_port
from polling import eventually

from lxclab.classroom import Classroom, access, jwt, keys
from lxclab.classroom.daemon import Daemon
from lxclab.errors import ClassroomError, TokenError


def token_for(classroom: Classroom, *scopes: str, auth: tuple[str, str] | None = None,
              client: httpx.Client | None = None) -> httpx.Response:
    """Ask the classroom's token server for `scopes`, anonymously or with Basic credentials."""
    params = [("service", classroom.service)] + [("scope", scope) for scope in scopes]
    if client is None:
        return httpx.get(classroom.token_url, params=params, auth=auth, trust_env=False, timeout=30)
    return client.get(classroom.token_url, params=params, auth=auth)


def pull_token(classroom: Classroom, repository: str, actions: str = "pull", **kw) -> str:
    """A token for `repository:<repository>:<actions>`, asserting the server gave one."""
    response = token_for(classroom, f"repository:{repository}:{actions}", **kw)
    assert response.status_code == 200, response.text
    return response.json()["token"]


def bearer(token: str) -> dict[str, str]:
    """The Authorization header carrying `token`."""
    return {"Authorization": f"Bearer {token}"}


def upload_blob(classroom: Classroom, repository: str, data: bytes, token: str) -> httpx.Response:
    """Push `data` as a blob the monolithic way (POST, then PUT ?digest=); the last answer."""
    uploads = f"{classroom.registry_url}/v2/{repository}/blobs/uploads/"
    start = httpx.post(uploads, headers=bearer(token), trust_env=False)
    if start.status_code != 202:
        return start
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    location = httpx.URL(urljoin(classroom.registry_url, start.headers["location"]))
    # the Location's own query (_state=...) must stay: httpx's params= would replace it
    target = location.copy_merge_params({"digest": digest})
    return httpx.put(target, content=data, headers=bearer(token), trust_env=False)


def unique(prefix: str) -> str:
    """A repository or user name no other test uses."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


# --- pure parts: scopes, grants, JWT encoding --------------------------------------------

@pytest.mark.parametrize("values, expected", [
    (["repository:lab/a:pull"], [("repository", "lab/a", ("pull",))]),
    (["repository:lab/a:pull,push repository:lab/b:pull"],
     [("repository", "lab/a", ("pull", "push")), ("repository", "lab/b", ("pull",))]),
    (["repository:lab/a:pull", "registry:catalog:*"],
     [("repository", "lab/a", ("pull",)), ("registry", "catalog", ("*",))]),
    (["repository:host:5000/lab/a:pull"], [("repository", "host:5000/lab/a", ("pull",))]),
    (["nonsense", "repository::pull", ""], []),
])
def test_scopes_are_parsed_from_several_parameters_and_spaces(values, expected):
    assert [(s.type, s.name, s.actions) for s in access.parse_scopes(values)] == expected


@pytest.mark.parametrize("scope, subject, role, granted", [
    ("repository:lab/a:pull,push", "", None, ["pull"]),
    ("repository:lab/a:push", "", None, []),
    ("registry:catalog:*", "", None, []),
    ("repository:lab/a:pull,push,delete", "teacher", access.TEACHER, ["pull", "push", "delete"]),
    ("registry:catalog:*", "teacher", access.TEACHER, ["*"]),
    ("repository:alice/app:pull,push", "alice", access.STUDENT, ["pull", "push"]),
    ("repository:bob/app:pull,push", "alice", access.STUDENT, ["pull"]),
    ("repository:alice-x/app:push", "alice", access.STUDENT, []),
    ("registry:catalog:*", "alice", access.STUDENT, []),
])
def test_grant_drops_the_actions_a_user_may_not_have(scope, subject, role, granted):
    (entry,) = access.grant(access.parse_scopes([scope]), subject, role)
    assert entry["actions"] == granted


def test_jwt_round_trip_and_tampering_is_detected():
    signing_key = keys.generate("test")
    claims = jwt.claims(issuer="i", subject="s", audience="a", access=[], issued_at=1000, ttl=60)
    token = jwt.encode(jwt.header(signing_key.certificate_der), claims, signing_key.private_key)
    assert jwt.decode(token)[1] == claims
    assert jwt.verify_signature(token, signing_key.certificate.public_key()) == claims
    head, _, signature = token.split(".")
    forged = jwt.b64url_encode(json.dumps({**claims, "sub": "teacher"}).encode())
    with pytest.raises(TokenError, match="signature"):
        jwt.verify_signature(f"{head}.{forged}.{signature}", signing_key.certificate.public_key())
    with pytest.raises(TokenError, match="three"):
        jwt.decode("not-a-token")


# --- the real servers ---------------------------------------------------------------------

def test_registry_challenges_with_the_token_server_as_realm(classroom):
    response = httpx.get(f"{classroom.registry_url}/v2/", trust_env=False)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'realm="{classroom.token_url}"' in challenge
    assert f'service="{classroom.service}"' in challenge


def test_anonymous_pull_token_is_accepted_by_the_registry(classroom):
    token = pull_token(classroom, "lab/missing")
    answer = httpx.get(f"{classroom.registry_url}/v2/lab/missing/tags/list", headers=bearer(token), trust_env=False)
    assert answer.status_code == 404
    assert answer.json()["errors"][0]["code"] == "NAME_UNKNOWN"


def test_token_response_header_and_claims_are_docker_hubs(classroom):
    body = token_for(classroom, "repository:lab/a:pull").json()
    assert set(body) == {"token", "access_token", "expires_in", "issued_at"}
    assert body["token"] == body["access_token"] and body["expires_in"] == 300
    assert body["issued_at"].endswith("Z")
    header, claims = jwt.decode(body["token"])
    assert header["alg"] == "ES256" and header["typ"] == "JWT"
    certificate = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0], validate=True))
    assert certificate == x509.load_pem_x509_certificate(keys.certificate_path(classroom.state_dir).read_bytes())
    assert jwt.verify(body["token"], certificate.public_key()) == claims
    assert claims["iss"] == "lxclab-classroom" and claims["sub"] == "" and claims["aud"] == classroom.service
    assert all(isinstance(claims[name], int) for name in ("exp", "nbf", "iat"))
    assert claims["exp"] - claims["iat"] == 300 and claims["jti"]
    assert claims["access"] == [{"type": "repository", "name": "lab/a", "actions": ["pull"]}]


def test_anonymous_push_is_narrowed_to_pull_and_upload_refused(classroom):
    token = pull_token(classroom, "lab/anon", "pull,push")
    assert jwt.decode(token)[1]["access"][0]["actions"] == ["pull"]
    refused = upload_blob(classroom, "lab/anon", b"nope", token)
    assert refused.status_code == 401
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]


def test_teacher_uploads_a_blob_and_reads_it_back(classroom):
    repository, data = unique("lab/teacher-"), os.urandom(4096)
    token = pull_token(classroom, repository, "pull,push", auth=classroom.teacher)
    assert jwt.decode(token)[1]["sub"] == classroom.teacher[0]
    stored = upload_blob(classroom, repository, data, token)
    assert stored.status_code == 201, stored.text
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert stored.headers["docker-content-digest"] == digest
    blob = httpx.get(f"{classroom.registry_url}/v2/{repository}/blobs/{digest}", headers=bearer(token),
                     follow_redirects=True, trust_env=False)
    assert blob.status_code == 200 and blob.content == data


def test_wrong_password_is_refused_with_a_json_error(classroom):
    response = token_for(classroom, "repository:lab/a:pull", auth=(classroom.teacher[0], "wrong"))
    assert response.status_code == 401
    body = response.json()
    assert body["errors"][0]["code"] == "UNAUTHORIZED"
    assert "incorrect username or password" in body["details"]


def test_scopes_in_several_parameters_and_one_spaced_value(classroom):
    several = token_for(classroom, "repository:lab/a:pull", "repository:lab/b:pull").json()["token"]
    spaced = token_for(classroom, "repository:lab/a:pull repository:lab/b:pull").json()["token"]
    for token in (several, spaced):
        assert [entry["name"] for entry in jwt.decode(token)[1]["access"]] == ["lab/a", "lab/b"]


def test_token_lifetime_is_the_classrooms_ttl(short_token_classroom):
    body = token_for(short_token_classroom, "repository:lab/a:pull").json()
    claims = jwt.decode(body["token"])[1]
    assert body["expires_in"] == 2 and claims["exp"] - claims["iat"] == 2


def test_registry_refuses_an_expired_or_foreign_token(classroom):
    now, scope = int(time.time()), [{"type": "repository", "name": "lab/a", "actions": ["pull"]}]
    ours, stranger = keys.load(classroom.state_dir), keys.generate("stranger")
    cases = [(ours, now - 3600), (stranger, now)]  # the registry allows a minute of clock skew
    for signing_key, issued_at in cases:
        claims = jwt.claims(issuer="lxclab-classroom", subject="", audience=classroom.service,
                            access=scope, issued_at=issued_at, ttl=60)
        token = jwt.encode(jwt.header(signing_key.certificate_der), claims, signing_key.private_key)
        answer = httpx.get(f"{classroom.registry_url}/v2/lab/a/tags/list", headers=bearer(token), trust_env=False)
        assert answer.status_code == 401
        assert 'error="invalid_token"' in answer.headers["www-authenticate"]


def test_student_pushes_only_under_their_own_namespace(classroom):
    student, password = unique("student"), "s3cret-pass"
    classroom.add_user(student, password)
    own, other = f"{student}/app", unique("lab/not-theirs-")
    own_token = pull_token(classroom, own, "pull,push", auth=(student, password))
    other_token = pull_token(classroom, other, "pull,push", auth=(student, password))
    assert jwt.decode(own_token)[1]["access"][0]["actions"] == ["pull", "push"]
    assert jwt.decode(other_token)[1]["access"][0]["actions"] == ["pull"]
    assert upload_blob(classroom, own, b"mine", own_token).status_code == 201
    assert upload_blob(classroom, other, b"theirs", other_token).status_code == 401


def test_passwords_are_stored_hashed_and_private(classroom):
    student = unique("hashed")
    classroom.add_user(student, "clear-text-pass")
    users_file = classroom.state_dir / "users.json"
    assert "clear-text-pass" not in users_file.read_text()
    for private in (users_file, classroom.teacher_file, classroom.state_dir / keys.KEY_FILE):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    with pytest.raises(ClassroomError, match="teacher"):
        classroom.add_user(classroom.teacher[0], "take-over")


def test_a_hundred_concurrent_token_requests_are_all_answered(classroom):
    student, password = unique("crowd"), "crowd-pass"
    classroom.add_user(student, password)
    barrier, statuses = threading.Barrier(100), []
    # one client, a pool of 100 connections: 100 requests really are in flight at once. They come from a
    # loopback address of their own: the rate limiter's bucket for 127.0.0.1 is shared with the session's
    # other tests, which may have spent some of its burst of 100 a moment ago (a 429 here once).
    transport = httpx.HTTPTransport(limits=httpx.Limits(max_connections=100), local_address="127.0.0.100")
    client = httpx.Client(transport=transport, timeout=60, trust_env=False)

    def request(index: int) -> None:
        barrier.wait()
        auth = (student, password) if index % 2 else None
        response = token_for(classroom, f"repository:{student}/app{index}:pull,push", auth=auth, client=client)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=request, args=(i,)) for i in range(100)]
    with client:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert statuses == [200] * 100


# --- starting and stopping ------------------------------------------------------------------

def new_classroom(tmp_path: Path, **options) -> Classroom:
    """A classroom of this test alone, on free ports (not started)."""
    return Classroom(tmp_path / "classroom", registry_port=free_port(), token_port=free_port(), **options)


def test_up_twice_is_harmless_and_status_sees_a_killed_registry(tmp_path):
    classroom = new_classroom(tmp_path)
    try:
        classroom.up()
        first = classroom.status()
        classroom.up()
        assert classroom.status() == first and first.running
        os.kill(first.pids["registry"], signal.SIGKILL)
        time.sleep(0.2)
        after = classroom.status()
        assert not after.registry_running and after.token_running and after.pids["registry"] is None
        classroom.up()
        restarted = classroom.status()
        assert restarted.running and restarted.pids["token"] == first.pids["token"]
    finally:
        classroom.down()
    assert not classroom.status().registry_running and not classroom.status().token_running
    assert not list(classroom.state_dir.glob("*.pid"))
    classroom.down()


def test_busy_port_names_the_port_what_holds_it_and_the_flag(tmp_path):
    classroom = new_classroom(tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", classroom.registry_port))
        squatter.listen()
        holder = rf"python[\d.]* \(PID {os.getpid()}\)"  # this test's own process holds the port
        with pytest.raises(ClassroomError, match=f"port {classroom.registry_port} .* in use by {holder}; .*--port"):
            classroom.up()
    status = classroom.status()
    assert not status.registry_running and not status.token_running


def test_missing_registry_binary_says_how_to_install_it(tmp_path):
    classroom = new_classroom(tmp_path)
    classroom.registry_binary = tmp_path / "no-such-docker-registry"
    with pytest.raises(ClassroomError, match="apt-get install docker-registry"):
        classroom.up()
    assert not classroom.status().token_running


def test_a_registry_that_dies_at_start_shows_its_log(tmp_path):
    classroom = new_classroom(tmp_path)
    broken = tmp_path / "broken-registry"
    broken.write_text("#!/bin/sh\necho 'panic: rootcertbundle is empty' >&2\nexit 2\n")
    broken.chmod(0o755)
    classroom.registry_binary = broken
    with pytest.raises(ClassroomError, match="(?s)stopped while starting.*rootcertbundle is empty"):
        classroom.up()
    assert not classroom.status().token_running


def test_ports_come_from_the_environment_unless_given(monkeypatch, tmp_path):
    monkeypatch.setenv("LXCLAB_REGISTRY_PORT", "6123")
    monkeypatch.setenv("LXCLAB_TOKEN_PORT", "6124")
    from_env = Classroom(tmp_path)
    assert from_env.registry_host == "127.0.0.1:6123" and from_env.token_url == "http://127.0.0.1:6124/token"
    assert Classroom(tmp_path, registry_port=7000).registry_url == "http://127.0.0.1:7000"
    monkeypatch.setenv("LXCLAB_REGISTRY_PORT", "five thousand")
    with pytest.raises(ClassroomError, match="LXCLAB_REGISTRY_PORT"):
        Classroom(tmp_path)


def test_unspecified_host_is_refused():
    with pytest.raises(ClassroomError, match="address students reach"):
        Classroom(host="0.0.0.0")


def test_cli_up_status_adduser_down(tmp_path):
    state, port, token_port = str(tmp_path / "cli"), free_port(), free_port()
    try:
        up = lxclab("registry", "up", "--state-dir", state, "--port", str(port), "--token-port", str(token_port))
        assert up.returncode == 0, up.stderr
        assert f"127.0.0.1:{port}" in up.stdout and "teacher.json" in up.stdout
        assert lxclab("registry", "status", "--state-dir", state).returncode == 0
        added = lxclab("registry", "adduser", "carol", "--state-dir", state)
        assert added.returncode == 0 and "password: " in added.stdout
        busy = lxclab("registry", "up", "--state-dir", str(tmp_path / "other"), "--port", str(port),
                      "--token-port", str(free_port()))
        assert busy.returncode == 1 and f"port {port}" in busy.stderr and "Traceback" not in busy.stderr
    finally:
        down = lxclab("registry", "down", "--state-dir", state)
    assert down.returncode == 0
    stopped = lxclab("registry", "status", "--state-dir", state)
    assert stopped.returncode == 1 and "not running" in stopped.stdout


def test_free_ports_lie_below_the_ephemeral_range_and_are_free():
    import socket

    from lxclab.classroom.daemon import EPHEMERAL_RANGE, free_port

    low = int(EPHEMERAL_RANGE.read_text().split()[0])
    ports = {free_port() for _ in range(20)}
    assert all(10000 <= port < low for port in ports) and len(ports) > 1
    for port in ports:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))


def test_a_daemon_this_process_started_runs_until_it_ends_whatever_its_cmdline_says_yet(tmp_path):
    # Popen returns once exec has closed the child's close-on-exec pipe, before the kernel has
    # written the new command line: under load /proc/PID/cmdline can still be empty then.
    daemon = Daemon("sleeper", ("sleep", "60"), tmp_path, marker="not-in-its-command-line")
    pid = daemon.start()
    try:
        assert daemon.pid() == pid
    finally:
        os.kill(pid, signal.SIGKILL)
    assert eventually(lambda: daemon.pid() is None)
    assert daemon.how_it_ended() == "killed by signal 9"


def test_a_pid_file_left_by_another_process_counts_only_for_a_process_with_the_marker(tmp_path):
    other = subprocess.Popen(["sh", "-c", "sleep 60", str(tmp_path)])  # not started through Daemon: judged by cmdline
    try:
        cmdline = Path(f"/proc/{other.pid}/cmdline")
        # until exec, the child's cmdline is its parent's (python's): wait for sh's own
        assert eventually(lambda: str(tmp_path).encode() in cmdline.read_bytes().split(b"\0"))
        (tmp_path / "sleeper.pid").write_text(f"{other.pid}\n")
        assert Daemon("sleeper", ("sleep",), tmp_path, marker=str(tmp_path)).pid() == other.pid
        assert Daemon("sleeper", ("sleep",), tmp_path, marker="another-marker").pid() is None
    finally:
        other.kill()
        other.wait()
    assert Daemon("sleeper", ("sleep",), tmp_path, marker=str(tmp_path)).pid() is None
