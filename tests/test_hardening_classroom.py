"""The classroom's token server against a hostile room: names, timing, floods, file modes, token claims."""

from __future__ import annotations

import socket
import stat
import statistics
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest
from fixture_classroom import started_classroom
from fixture_images import push_image, random_image, unique_repository

from lxclab.classroom import jwt, keys
from lxclab.classroom import access
from lxclab.classroom.tokenserver import HangUpTolerantServer, make_server
from lxclab.engine import pull
from lxclab.errors import TokenError
from lxclab.store import Store

ESCAPES = ["alice/../bob", "alice/x/../../bob", "alice/./bob", "alice//bob", "alice/", "Alice/x", "alice/x:y",
           "alice/" + "a" * 250, "alice/%2e%2e/bob"]


def token_claims(classroom, scope: str, auth: tuple[str, str] | None = None) -> dict:
    response = httpx.get(classroom.token_url, params={"service": classroom.service, "scope": scope},
                         auth=auth, trust_env=False)
    assert response.status_code == 200, response.text
    return jwt.decode(response.json()["token"])[1]


@pytest.mark.parametrize("name", ESCAPES)
def test_a_name_outside_the_grammar_is_granted_nothing(name):
    for subject, role in (("alice", access.STUDENT), ("teacher", access.TEACHER), ("", None)):
        (entry,) = access.grant(access.parse_scopes([f"repository:{name}:pull,push"]), subject, role)
        assert entry["actions"] == [], (subject, name)
    (entry,) = access.grant(access.parse_scopes(["repository:alice/bob:pull,push"]), "alice", access.STUDENT)
    assert entry["actions"] == ["pull", "push"]


def test_the_real_token_server_grants_no_push_through_dotdot(classroom):
    classroom.add_user("alice", "wonderland")
    for name in ESCAPES[:3]:
        claims = token_claims(classroom, f"repository:{name}:pull,push", ("alice", "wonderland"))
        assert claims["access"] == [{"type": "repository", "name": name, "actions": []}]
    claims = token_claims(classroom, "repository:alice/app:pull,push", ("alice", "wonderland"))
    assert claims["access"][0]["actions"] == ["pull", "push"]


def login_time(classroom, name: str) -> float:
    started = time.perf_counter()
    response = httpx.get(classroom.token_url, params={"service": classroom.service}, auth=(name, "wrong"),
                         trust_env=False)
    assert response.status_code == 401
    return time.perf_counter() - started


def test_an_unknown_user_costs_as_much_as_a_wrong_password(classroom):
    classroom.add_user("carol", "right-password")
    pairs = [(login_time(classroom, "carol"), login_time(classroom, "nobody-here")) for _ in range(9)]  # interleaved
    known, unknown = (statistics.median(times) for times in zip(*pairs))
    assert known > 0.005, "scrypt should take milliseconds"
    assert 0.5 < unknown / known < 2.0, f"known {known * 1000:.1f} ms, unknown {unknown * 1000:.1f} ms"


@pytest.fixture(scope="module")
def slow_classroom(tmp_path_factory) -> Iterator:
    """A classroom whose token server allows 2 requests a second per address, 4 at once."""
    running = started_classroom(tmp_path_factory, "slow-classroom", token_rate=2.0, token_burst=4)
    try:
        yield running
    finally:
        running.down()


def test_a_flood_gets_429_with_retry_after_and_a_client_waits_for_it(slow_classroom, tmp_path):
    repository = unique_repository()
    push_image(slow_classroom.registry_host, slow_classroom.teacher, repository, "1", random_image((100,)))
    time.sleep(2.5)  # the bucket refills
    with httpx.Client(trust_env=False) as client:
        answers = [client.get(slow_classroom.token_url, params={"service": slow_classroom.service}) for _ in range(8)]
    statuses = [a.status_code for a in answers]
    assert statuses[:4] == [200] * 4 and 429 in statuses[4:], statuses
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.headers["Retry-After"] == "1" and refused.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert httpx.get(slow_classroom.token_url.replace("/token", "/healthz"), trust_env=False).status_code == 200
    image = pull(f"{slow_classroom.registry_host}/{repository}:1", store=Store(tmp_path / "s"))
    assert image.layer_paths


def test_workers_are_bounded_and_idle_connections_wait(classroom):
    server = make_server(classroom.state_dir, "127.0.0.1", 0, workers=2)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
    before = threading.active_count()
    idle = [socket.create_connection(server.server_address) for _ in range(20)]
    try:
        time.sleep(0.5)
        assert threading.active_count() - before <= 2
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(url, timeout=1.0, trust_env=False)
        for connection in idle:
            connection.close()
        assert httpx.get(url, timeout=5.0, trust_env=False).status_code == 200
    finally:
        server.shutdown()
        server.server_close()


def modes(state: Path) -> dict[str, str]:
    return {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in [state, *state.iterdir()] if not p.is_dir() or p == state}


def test_state_is_private_whatever_order_commands_ran_in(tmp_path):
    from lxclab.classroom import Classroom
    from lxclab.classroom.daemon import free_port
    state = tmp_path / "state"
    classroom = Classroom(state, registry_port=free_port(), token_port=free_port())
    classroom.add_user("dave", "secret")  # adduser before the first up
    assert set(modes(state).values()) == {"0o600", "0o700"} and modes(state)[state.name] == "0o700"
    classroom.up()
    try:
        for path in [state, *state.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)  # as an older lxclab, or a careless umask, left them
        classroom.down()
        classroom.up()
        found = modes(state)
        assert found.pop(state.name) == "0o700"
        assert {"users.json", "teacher.json", "token-signing.key", "registry.yml", "classroom.json",
                "registry.log", "tokenserver.pid"} <= set(found)
        assert set(found.values()) == {"0o600"}, found
    finally:
        classroom.down()


def signed(claims: dict) -> tuple[str, object]:
    signing_key = keys.generate("test")
    return jwt.encode(jwt.header(signing_key.certificate_der), claims, signing_key.private_key), \
        signing_key.certificate.public_key()


@pytest.mark.parametrize("change, error", [
    ({"exp": 1000 - jwt.LEEWAY - 1 - 60}, "expired"),
    ({"nbf": 2000}, "not valid for another"),
    ({"aud": "another-registry"}, "meant for 'another-registry'"),
    ({"iss": "mallory"}, "issued by 'mallory'"),
    ({"exp": "soon"}, "integer seconds"),
])
def test_verify_checks_expiry_audience_and_issuer(change, error):
    base = jwt.claims(issuer=jwt.CLASSROOM, subject="s", audience=jwt.CLASSROOM, access=[], issued_at=940, ttl=60)
    token, public_key = signed(base)
    assert jwt.verify(token, public_key, now=1000) == base
    assert jwt.verify(token, public_key, now=1000 + jwt.LEEWAY) == base
    token, public_key = signed({**base, **change})
    with pytest.raises(TokenError, match=error):
        jwt.verify(token, public_key, now=1000)
    assert jwt.verify_signature(token, public_key) == {**base, **change}


def test_a_real_token_verifies_with_the_classroom_defaults(classroom):
    response = httpx.get(classroom.token_url, params={"service": classroom.service, "scope": "repository:lab/a:pull"},
                         trust_env=False)
    certificate = keys.load(classroom.state_dir).certificate
    claims = jwt.verify(response.json()["token"], certificate.public_key())
    assert claims["aud"] == classroom.service and claims["iss"] == jwt.CLASSROOM
    with pytest.raises(TokenError, match="expired"):
        jwt.verify(response.json()["token"], certificate.public_key(), now=time.time() + 3600)


@pytest.mark.parametrize("error, reported", [(BrokenPipeError, False), (ConnectionResetError, False), (KeyError, True)])
def test_a_client_that_hangs_up_is_no_traceback_but_a_server_fault_is(capfd, error, reported):
    class Failing(BaseHTTPRequestHandler):
        def do_GET(self):
            raise error("raised by the handler")

    server = HangUpTolerantServer(("127.0.0.1", 0), Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{server.server_address[1]}/", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    stderr = capfd.readouterr().err
    assert ("raised by the handler" in stderr) is reported and ("Traceback" in stderr) is reported
