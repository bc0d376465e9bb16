"""Checks for levels B1 (the token dance) and B2 (index → manifest → config, ChainIDs).

The oracles are lxclab's own parser and client, and the classroom registry itself: the
learner's token must be accepted, and every byte fetched must hash to the digest the
library verified.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from ..classroom import jwt
from ..errors import LxclabError
from ..exercises import check_against
from ..manifest import Platform, chain_ids as library_chain_ids, sha256_digest
from ..registry import RegistryClient, parse_challenge as library_parse_challenge
from .feedback import attempt, expect, passed

REPOSITORY = "lab/busybox"
HARD_CHALLENGES = [
    'Bearer realm="http://127.0.0.1:5001/token",service="lxclab-classroom"',
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
    'Bearer realm="http://127.0.0.1:5001/token",service="lxclab-classroom",scope="repository:lab/busybox:pull,push",'
    'error="insufficient_scope"',
    'Bearer realm="http://127.0.0.1:5001/token",service="lxclab-classroom",error=invalid_token',
    'Bearer realm="http://x/token",service="a \\"quoted\\" name",scope="repository:a:pull repository:b:pull"',
]


def _host(registry: str) -> str:
    url = httpx.URL(registry)
    return f"{url.host}:{url.port}" if url.port else url.host


def check_parse_challenge(parse_challenge: Callable) -> None:
    """Compare the learner's challenge parser with lxclab's on real and tricky challenges."""
    check_against(parse_challenge, lambda header: library_parse_challenge(header).params, [(h,) for h in HARD_CHALLENGES],
                  hint="Split only on the commas between pairs: a quoted value may hold commas (pull,push), "
                       "spaces and \\\" escapes; a bare value (error=invalid_token) runs to the next comma.")


def check_get_token(get_token: Callable, registry: str, repository: str = REPOSITORY) -> None:
    """The learner's token must be a JWT for this registry that grants pull on `repository`."""
    token = attempt(get_token, registry, repository, hint="Ask GET /v2/ first and read the realm from its challenge.")
    expect(isinstance(token, str), f"get_token returned a {type(token).__name__}, not a string",
           "Return the token itself: the `token` field of the token server's JSON answer.")
    try:
        claims = jwt.decode(token)[1]
    except LxclabError:
        claims = None
    expect(claims is not None, "get_token's answer is not a JWT (three base64url parts separated by dots)",
           "Return the `token` field of the token server's JSON answer, not the whole answer.")
    challenge = library_parse_challenge(httpx.get(f"{registry}/v2/", trust_env=False).headers["www-authenticate"])
    expect(claims.get("aud") == challenge.service, f"the token is for the service {claims.get('aud')!r}",
           f"Send the challenge's service={challenge.service!r} to the token server.")
    granted = {(a["type"], a["name"], action) for a in claims.get("access", []) for action in a["actions"]}
    expect(("repository", repository, "pull") in granted,
           f"the token grants {sorted(granted) or 'nothing'}, not pull on {repository}",
           f"Ask for scope=repository:{repository}:pull: the token server silently drops what it does not grant.")
    passed(f"get_token: a token for {challenge.service} that grants pull on {repository}")


def check_fetch(fetch: Callable, token: str, registry: str, repository: str = REPOSITORY) -> None:
    """The learner's fetch must bring back the exact manifest and blob bytes the library verified."""
    with RegistryClient(_host(registry)) as client:
        index = client.get_manifest(repository, "latest")
        manifest = client.get_manifest(repository, index.select(Platform.parse("linux/amd64")).digest)
    raw = attempt(fetch, registry, repository, "manifests", "latest", token,
                  hint="GET /v2/<repository>/manifests/<reference> with `Authorization: Bearer <token>`.")
    expect(isinstance(raw, bytes), f"fetch returned a {type(raw).__name__}", "Return the answer's bytes: `response.content`.")
    if sha256_digest(raw) != index.digest:
        document = json.loads(raw) if raw.startswith(b"{") else {}
        kind = "an old schema-1 manifest" if document.get("schemaVersion") == 1 else f"a {document.get('mediaType')!r}"
        expect(document.get("mediaType") == index.media_type, f"the registry sent {kind} instead of the index",
               "Send an Accept header listing the formats you understand: ACCEPT from lxclab.manifest.")
        expect(False, f"the manifest you fetched hashes to {sha256_digest(raw)}, not {index.digest}",
               "Return the bytes exactly as the registry sent them (no json round trip).")
    passed(f"fetch manifests/latest: the index of {repository}, {index.digest[:19]}…")
    config = attempt(fetch, registry, repository, "blobs", manifest.config.digest, token,
                     hint="Blobs live at /v2/<repository>/blobs/<digest>; follow redirects.")
    expect(isinstance(config, bytes) and sha256_digest(config) == manifest.config.digest,
           "the blob you fetched is not the config blob", "Fetch /v2/<repository>/blobs/<digest> and return its bytes.")
    passed(f"fetch blobs/{manifest.config.digest[:19]}…: the config, digest verified")


def check_choose_manifest(choose_manifest: Callable, registry: str, repository: str = REPOSITORY) -> None:
    """The learner's platform choice must agree with Index.select, and must look at the OS as well."""
    with RegistryClient(_host(registry)) as client:
        index = client.get_manifest(repository, "latest")
    document = json.loads(index.raw)
    windows_first = {"manifests": [
        {"digest": "sha256:" + "1" * 64, "platform": {"os": "windows", "architecture": "amd64"}}, *document["manifests"]]}
    cases = [(document, "amd64"), (document, "arm64"), (windows_first, "amd64")]
    check_against(choose_manifest, lambda doc, arch: index.select(Platform.parse(f"linux/{arch}")).digest, cases,
                  hint="Pick the descriptor whose platform has os 'linux' AND the architecture asked for; return its digest.")


def check_chain_ids(chain_ids: Callable, diff_ids: list[str]) -> None:
    """The learner's ChainIDs must agree with lxclab's for every prefix of the image's DiffIDs."""
    prefixes = [(list(diff_ids[:n]),) for n in range(1, len(diff_ids) + 1)]
    check_against(chain_ids, library_chain_ids, prefixes,
                  hint="ChainID(first) = its DiffID; ChainID(next) = 'sha256:' + sha256 hex of "
                       "'<previous ChainID> <DiffID>' (one space), so each names the whole stack below it.")


def check_walk(walk: Callable, registry: str, repository: str = REPOSITORY) -> None:
    """The learner's walk must end at the same manifest and config as lxclab's client, for two platforms."""
    with RegistryClient(_host(registry)) as client:
        index = client.get_manifest(repository, "latest")
        for architecture in ("amd64", "arm64"):
            manifest = client.get_manifest(repository, index.select(Platform.parse(f"linux/{architecture}")).digest)
            answer = attempt(walk, registry, repository, "latest", architecture)
            expect(isinstance(answer, tuple) and len(answer) == 2, "walk must return (manifest, config)",
                   "Return a pair of dicts: the parsed manifest and the parsed config.")
            expect(answer[0] == json.loads(manifest.raw), f"for {architecture}, walk's manifest is not linux/{architecture}'s",
                   "From the index, fetch the manifest whose digest choose_manifest gives for this architecture.")
            expect(answer[0].get("config", {}).get("digest") == manifest.config.digest
                   and answer[1].get("architecture") == architecture,
                   f"for {architecture}, walk's config is not the manifest's config blob",
                   "Fetch the blob manifest['config']['digest'] and parse it as JSON.")
            passed(f"walk latest for {architecture}: manifest {manifest.digest[:19]}…, "
                   f"config for {answer[1]['architecture']}, {len(answer[1]['rootfs']['diff_ids'])} layers")
