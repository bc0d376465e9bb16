"""The classroom registry against real servers: Debian's docker-registry and lxclab's token server."""

from __future__ import annotations

import httpx

from lxclab.classroom import Classroom, jwt


def token_for(classroom: Classroom, *scopes: str, auth: tuple[str, str] | None = None) -> httpx.Response:
    """Ask the classroom's token server for `scopes`, anonymously or with Basic credentials."""
    params = [("service", classroom.service)] + [("scope", scope) for scope in scopes]
    return httpx.get(classroom.token_url, params=params, auth=auth, trust_env=False)


def test_registry_challenges_with_the_token_server_as_realm(classroom):
    response = httpx.get(f"{classroom.registry_url}/v2/", trust_env=False)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'realm="{classroom.token_url}"' in challenge
    assert f'service="{classroom.service}"' in challenge


def test_anonymous_pull_token_is_accepted_by_the_registry(classroom):
    response = token_for(classroom, "repository:lab/missing:pull")
    assert response.status_code == 200
    token = response.json()["token"]
    answer = httpx.get(f"{classroom.registry_url}/v2/lab/missing/tags/list",
                       headers={"Authorization": f"Bearer {token}"}, trust_env=False)
    assert answer.status_code == 404
    assert answer.json()["errors"][0]["code"] == "NAME_UNKNOWN"
