"""Bad input during a pull, against the real registry through a fault-injecting proxy.

Each fault gives either a clear named error with nothing half-written in the store, or a
pull that recovers by itself (a renewed token, a retry, a resumed download).
"""

from __future__ import annotations

import json
import threading

import pytest
from faultproxy import Fault, FaultProxy, proxy  # noqa: F401 (proxy is a fixture)
from fixture_images import push_image, random_image, unique_repository

from lxclab import manifest as m
from lxclab.engine import pull
from lxclab.registry.auth import basic_authorization
from lxclab.errors import AuthenticationError, DigestMismatch, ManifestError, RegistryError, UnsupportedMediaType
from lxclab.store import Store


@pytest.fixture
def store(tmp_path, lxclab_home):
    return Store(tmp_path / "store")


@pytest.fixture(scope="module")
def image(classroom):
    """A random image with a 600 kB layer, pushed once for this file's tests (which only read it)."""
    built, repository = random_image((20_000, 600_000)), unique_repository()
    push_image(classroom.registry_host, classroom.teacher, repository, "1", built)
    return repository, built


def stored_files(store: Store) -> dict[str, list[str]]:
    return {sub: sorted(p.name for p in (store.root / sub).iterdir()) for sub in ("blobs/sha256", "tmp", "images")}


def blob_path(digest_of: bytes) -> str:
    return f"/blobs/{m.sha256_digest(digest_of)}"


def flip_a_byte(data: bytes) -> bytes:
    return data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]


def test_a_config_whose_bytes_do_not_match_its_digest_leaves_the_store_unchanged(proxy, store, image):
    repository, built = image
    proxy.add(Fault("GET", blob_path(built.config), rewrite=flip_a_byte))
    before = stored_files(store)
    with pytest.raises(DigestMismatch, match=m.sha256_digest(built.config)):
        pull(f"{proxy.host}/{repository}:1", store=store)
    assert stored_files(store) == before


def test_a_corrupted_layer_is_refused_and_leaves_no_partial(proxy, store, image):
    repository, built = image
    proxy.add(Fault("GET", blob_path(built.layers[1]), rewrite=flip_a_byte))
    with pytest.raises(DigestMismatch, match="nothing was stored"):
        pull(f"{proxy.host}/{repository}:1", store=store)
    files = stored_files(store)
    assert m.sha256_digest(built.layers[1])[7:] not in files["blobs/sha256"]
    assert [name for name in files["tmp"] if name.endswith(".partial")] == [] and files["images"] == []


@pytest.mark.parametrize("by", ["tag", "digest"])
def test_a_changed_manifest_does_not_match_its_digest(proxy, store, image, by):
    repository, built = image
    identifier = "1" if by == "tag" else built.digest
    proxy.add(Fault("GET", f"/manifests/{identifier}$", rewrite=lambda raw: raw.replace(b'"size"', b'"size" ')))
    with pytest.raises(DigestMismatch, match="manifest"):
        pull(f"{proxy.host}/{repository}{':' if by == 'tag' else '@'}{identifier}", store=store)
    assert stored_files(store)["images"] == []


def served(body: bytes, media_type: str = m.OCI_MANIFEST) -> tuple[int, dict, bytes]:
    """A 200 answer for a manifest whose digest header matches its (bad) body."""
    return 200, {"Content-Type": media_type, "Docker-Content-Digest": m.sha256_digest(body)}, body


@pytest.mark.parametrize(
    "body, error, words",
    [
        (b'{"schemaVersion": 2, "config": ', ManifestError, "malformed manifest JSON"),
        (json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.example.thing+json"}).encode(),
         UnsupportedMediaType, "application/vnd.example.thing"),
    ],
)
def test_a_malformed_or_unknown_manifest_is_a_named_error(proxy, store, image, body, error, words):
    repository, _ = image
    proxy.add(Fault("GET", "/manifests/1$", reply=served(body)))
    with pytest.raises(error, match=words):
        pull(f"{proxy.host}/{repository}:1", store=store)
    assert stored_files(store)["images"] == []


def test_a_layer_of_unknown_media_type_is_refused_before_any_download(proxy, store, image):
    repository, built = image
    document = json.loads(built.manifest)
    document["layers"][0]["mediaType"] = "application/x-unknown-layer"
    proxy.add(Fault("GET", "/manifests/1$", reply=served(json.dumps(document).encode())))
    with pytest.raises(UnsupportedMediaType, match="application/x-unknown-layer"):
        pull(f"{proxy.host}/{repository}:1", store=store)
    assert proxy.requests("GET", blob_path(built.layers[0])) == []


def test_wrong_credentials_are_an_authentication_error(classroom, store, image):
    repository, _ = image
    with pytest.raises(AuthenticationError, match="refused user 'teacher'.*lxclab login"):
        pull(f"{classroom.registry_host}/{repository}:1", store=store, credentials=("teacher", "not-the-password"))


def test_a_token_expired_mid_pull_is_renewed_transparently(proxy, store, image):
    repository, built = image
    proxy.add(Fault("GET", blob_path(built.layers[1]), expire_token=True))
    pulled = pull(f"{proxy.host}/{repository}:1", store=store)
    assert pulled.digest == built.digest
    attempts = proxy.requests("GET", blob_path(built.layers[1]))
    assert [a.status for a in attempts] == [401, 200]
    assert attempts[0].authorization != attempts[1].authorization


def test_a_pull_longer_than_the_token_lifetime_gets_new_tokens(short_token_classroom, store):
    built, repository = random_image(), unique_repository()
    push_image(short_token_classroom.registry_host, short_token_classroom.teacher, repository, "1", built)
    with FaultProxy(short_token_classroom.registry_host) as slow:
        slow.add(Fault("GET", blob_path(built.config), delay=2.5))
        pulled = pull(f"{slow.host}/{repository}:1", store=store)
    assert pulled.digest == built.digest
    tokens = {e.authorization for e in slow.log if "/blobs/" in e.path or "/manifests/" in e.path}
    assert len(tokens) >= 2


def test_a_basic_challenge_is_answered_with_the_credentials_in_basic(proxy, classroom, store, image):
    repository, built = image
    proxy.add(Fault("GET", "^/v2/$", reply=(401, {"WWW-Authenticate": 'Basic realm="classroom"'}, b"")))
    pulled = pull(f"{proxy.host}/{repository}:1", store=store, credentials=classroom.teacher)
    assert pulled.digest == built.digest
    first = proxy.requests("GET", "/manifests/1$")[0]
    assert first.authorization == basic_authorization(classroom.teacher) and first.status == 401
    assert all(e.authorization.startswith("Bearer ") for e in proxy.requests("GET", "/blobs/"))


def test_429_waits_as_long_as_retry_after_says(proxy, store, image):
    repository, built = image
    proxy.add(Fault("GET", blob_path(built.layers[0]), reply=(429, {"Retry-After": "1"}, b"slow down")))
    assert pull(f"{proxy.host}/{repository}:1", store=store).digest == built.digest
    first, second = proxy.requests("GET", blob_path(built.layers[0]))
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1.0


def test_transient_500s_are_retried_until_the_blob_arrives(proxy, store, image):
    repository, built = image
    proxy.add(Fault("GET", blob_path(built.layers[0]), times=2, reply=(500, {}, b"oops")))
    assert pull(f"{proxy.host}/{repository}:1", store=store).digest == built.digest
    assert [e.status for e in proxy.requests("GET", blob_path(built.layers[0]))] == [500, 500, 200]


def test_endless_500s_fail_clearly_after_a_bounded_number_of_tries(proxy, store, image):
    repository, built = image
    proxy.add(Fault("GET", blob_path(built.layers[0]), times=100, reply=(500, {}, b"oops")))
    with pytest.raises(RegistryError, match=r"gave up after 4 tries.*500"):
        pull(f"{proxy.host}/{repository}:1", store=store)
    assert len(proxy.requests("GET", blob_path(built.layers[0]))) == 4
    assert stored_files(store)["images"] == []


def test_a_connection_cut_mid_blob_resumes_from_the_offset(proxy, store, image):
    repository, built = image
    proxy.add(Fault("GET", blob_path(built.layers[1]), cut_after=250_000))
    assert pull(f"{proxy.host}/{repository}:1", store=store).digest == built.digest
    first, second = proxy.requests("GET", blob_path(built.layers[1]))
    assert (first.range, second.range, second.status) == (None, "bytes=250000-", 206)


def test_a_failed_pull_leaves_a_partial_that_the_next_pull_resumes(proxy, store, image):
    repository, built = image
    layer = blob_path(built.layers[1])
    proxy.add(Fault("GET", layer, cut_after=300_000))
    proxy.add(Fault("GET", layer, times=3, reply=(503, {}, b"down")))
    with pytest.raises(RegistryError, match="gave up"):
        pull(f"{proxy.host}/{repository}:1", store=store)
    assert stored_files(store)["images"] == []
    assert pull(f"{proxy.host}/{repository}:1", store=store).digest == built.digest
    assert proxy.requests("GET", layer)[-1].range == "bytes=300000-"


def test_two_pulls_of_the_same_image_at_once_download_each_blob_once(proxy, store, classroom):
    built, repository = random_image((1_500_000, 1_000_000)), unique_repository()
    push_image(classroom.registry_host, classroom.teacher, repository, "1", built)
    results, errors = [], []

    def one_pull():
        try:
            results.append(pull(f"{proxy.host}/{repository}:1", store=Store(store.root)))
        except Exception as exc:  # noqa: BLE001 (shown by the assertion below)
            errors.append(exc)

    threads = [threading.Thread(target=one_pull) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == [] and [r.digest for r in results] == [built.digest] * 2
    assert [p.read_bytes() for p in results[0].layer_paths] == built.layers
    for blob in (built.config, *built.layers):
        assert len([e for e in proxy.requests("GET", blob_path(blob)) if e.status == 200]) == 1
