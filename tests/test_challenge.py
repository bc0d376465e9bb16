"""The WWW-Authenticate parser, case by case (quoted commas, several scopes, several schemes)."""

from __future__ import annotations

import pytest

from lxclab.registry.challenge import Challenge, parse_challenge, parse_challenges

DOCKER_HUB = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"'


@pytest.mark.parametrize(
    "header, scheme, params",
    [
        (DOCKER_HUB, "bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io"}),
        (
            'Bearer realm="http://127.0.0.1:5001/token",service="lxclab",scope="repository:lab/app:pull,push"',
            "bearer",
            {"realm": "http://127.0.0.1:5001/token", "service": "lxclab", "scope": "repository:lab/app:pull,push"},
        ),
        ('Basic realm="Registry Realm"', "basic", {"realm": "Registry Realm"}),
        ("bearer REALM=https://x/token , Service=svc", "bearer", {"realm": "https://x/token", "service": "svc"}),
        ('Bearer realm = "a" ,  service= "b"', "bearer", {"realm": "a", "service": "b"}),
        (r'Bearer realm="say \"hi\", then \\go"', "bearer", {"realm": r'say "hi", then \go'}),
        ('Bearer realm="",service=""', "bearer", {"realm": "", "service": ""}),
        ("Bearer", "bearer", {}),
        (
            'Bearer realm="r",error="invalid_token",error_description="The access token expired"',
            "bearer",
            {"realm": "r", "error": "invalid_token", "error_description": "The access token expired"},
        ),
    ],
)
def test_one_challenge_is_parsed_with_its_parameters(header, scheme, params):
    assert parse_challenges(header) == [Challenge(scheme, params)]


def test_a_mount_challenge_carries_several_scopes_separated_by_spaces():
    header = (
        'Bearer realm="http://127.0.0.1:5001/token",service="lxclab",'
        'scope="repository:lab/copy:pull,push repository:lab/busybox:pull"'
    )
    challenge = parse_challenge(header)
    assert challenge.scopes == ("repository:lab/copy:pull,push", "repository:lab/busybox:pull")


def test_two_challenges_in_one_value_are_both_found():
    header = 'Basic realm="basic-realm", Bearer realm="https://t/token",service="s",scope="a:b:pull"'
    found = parse_challenges(header)
    assert [c.scheme for c in found] == ["basic", "bearer"]
    assert found[1].params == {"realm": "https://t/token", "service": "s", "scope": "a:b:pull"}


def test_bearer_is_preferred_over_basic_across_several_headers():
    chosen = parse_challenge(['Basic realm="x"', 'Bearer realm="https://t/token"'])
    assert chosen.scheme == "bearer" and chosen.realm == "https://t/token"


def test_basic_is_answered_when_it_is_the_only_scheme():
    chosen = parse_challenge(['Basic realm="x"'])
    assert chosen.scheme == "basic" and chosen.scopes == () and chosen.service is None


@pytest.mark.parametrize("header", ["", "   ", ",,", '"quoted"'])
def test_an_empty_or_garbled_header_gives_no_challenge(header):
    assert parse_challenge(header) is None


def test_the_error_code_of_an_expired_token_is_read():
    header = 'Bearer realm="r",service="s",error="invalid_token"'
    assert parse_challenge(header).error == "invalid_token"


def test_a_messages_scopes_have_their_actions_sorted_whatever_order_the_registry_sent():
    header = 'Bearer realm="r",error="insufficient_scope",scope="repository:lab/notes:push,pull repository:127.0.0.1:5000/x:pull"'
    assert parse_challenge([header]).sorted_scopes == "repository:lab/notes:pull,push repository:127.0.0.1:5000/x:pull"
