"""`lxclab pull` against the real classroom registry: anonymous, verified, platform-aware."""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import threading
import time

import pytest
from fixture_images import push_image, random_image, random_index, unique_repository

from lxclab import manifest as m
from lxclab.engine import pull
from lxclab.errors import NotFound, PlatformNotFound
from lxclab.progress import RecordingProgress
from lxclab.registry import RegistryClient
from lxclab.registry.client import TrustOnDemand
from lxclab.store import Store


@pytest.fixture
def store(tmp_path, lxclab_home):
    return Store(tmp_path / "store")


def test_an_anonymous_pull_stores_every_verified_blob_and_records_the_image(pushed_image, store):
    image = pull(pushed_image.ref, store=store)
    assert image.digest == pushed_image.image.digest
    assert image.config.raw == pushed_image.image.config
    assert [p.read_bytes() for p in image.layer_paths] == pushed_image.image.layers
    for path in image.layer_paths:
        assert "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() == "sha256:" + path.name
    assert store.image(pushed_image.ref) == image
    assert image.platform == m.Platform("linux", "amd64")
    assert [h.created_by for h, _ in image.config.layer_history()][-1] == "CMD sh"


def test_pull_by_digest_finds_the_same_image(pushed_image, store):
    ref = f"{pushed_image.registry}/{pushed_image.repository}@{pushed_image.image.digest}"
    image = pull(ref, store=store)
    assert image.digest == pushed_image.image.digest and image.reference.tag is None
    assert store.image(ref).digest == pushed_image.image.digest


def test_an_index_resolves_to_this_machine_or_to_the_platform_asked_for(classroom, store):
    amd64, arm64 = random_image(architecture="amd64"), random_image(architecture="arm64")
    repository = unique_repository()
    index = random_index(amd64, arm64)
    push_image(classroom.registry_host, classroom.teacher, repository, "multi", index)
    ref = f"{classroom.registry_host}/{repository}:multi"
    default = pull(ref, store=store)
    assert default.digest == {"amd64": amd64, "arm64": arm64}[m.Platform.host().architecture].digest
    assert default.index_digest == index.digest
    chosen = pull(ref, platform=m.Platform.parse("linux/arm64"), store=store)
    assert chosen.digest == arm64.digest and chosen.platform == m.Platform("linux", "arm64")
    assert [p.read_bytes() for p in chosen.layer_paths] == arm64.layers
    with pytest.raises(PlatformNotFound, match="linux/s390x.*offers: linux/amd64, linux/arm64"):
        pull(ref, platform=m.Platform.parse("linux/s390x"), store=store)


def test_a_single_platform_image_pulled_for_another_platform_is_refused(pushed_image, store):
    with pytest.raises(PlatformNotFound, match="image for linux/amd64, not for linux/arm64"):
        pull(pushed_image.ref, platform=m.Platform.parse("linux/arm64"), store=store)
    assert store.images() == []


def test_a_docker_schema2_image_pulls_too(classroom, store):
    image, repository = random_image(docker=True), unique_repository()
    push_image(classroom.registry_host, classroom.teacher, repository, "v2", image)
    pulled = pull(f"{classroom.registry_host}/{repository}:v2", store=store)
    assert pulled.manifest.media_type == m.DOCKER_MANIFEST and pulled.digest == image.digest


def test_a_missing_tag_is_a_clear_not_found_and_records_nothing(pushed_image, store):
    ref = f"{pushed_image.registry}/{pushed_image.repository}:no-such-tag"
    with pytest.raises(NotFound, match=rf"{pushed_image.repository}:no-such-tag on {pushed_image.registry}.*MANIFEST_UNKNOWN"):
        pull(ref, store=store)
    assert store.images() == []


def test_a_missing_repository_is_not_found(classroom, store):
    with pytest.raises(NotFound, match="NAME_UNKNOWN|MANIFEST_UNKNOWN"):
        pull(f"{classroom.registry_host}/{unique_repository()}:1", store=store)


def test_progress_reports_each_layer_from_start_to_its_size(pushed_image, store):
    progress = RecordingProgress()
    pull(pushed_image.ref, store=store, progress=progress)
    sizes = {m.sha256_digest(layer): len(layer) for layer in pushed_image.image.layers}
    for digest, size in sizes.items():
        events = [e for e in progress.events if e[1] == digest]
        assert events[0] == ("start", digest, size) and events[-1] == ("finish", digest)
        assert events[-2] == ("update", digest, size)


def test_a_second_pull_downloads_no_blob_again(pushed_image, store):
    pull(pushed_image.ref, store=store)
    progress = RecordingProgress()
    again = pull(pushed_image.ref, store=store, progress=progress)
    assert progress.events == [] and again.digest == pushed_image.image.digest


def test_the_client_lists_tags_and_tells_whether_a_blob_exists(pushed_image):
    with RegistryClient(pushed_image.registry) as client:
        assert client.list_tags(pushed_image.repository) == ["1"]
        assert client.blob_exists(pushed_image.repository, m.sha256_digest(pushed_image.image.config))
        assert not client.blob_exists(pushed_image.repository, m.sha256_digest(b"never pushed"))
        config = json.loads(client.get_manifest(pushed_image.repository, "1").raw)["config"]
    assert config["digest"] == m.sha256_digest(pushed_image.image.config)


def test_a_token_is_cached_per_scope(classroom):
    first, second = random_image(), random_image()
    repositories = unique_repository(), unique_repository()
    for repository, image in zip(repositories, (first, second)):
        push_image(classroom.registry_host, classroom.teacher, repository, "1", image)
    with RegistryClient(classroom.registry_host) as client:
        client.get_manifest(repositories[0], "1")
        client.get_manifest(repositories[0], first.digest)
        assert client.auth.token_requests == 1
        client.get_manifest(repositories[1], "1")
        assert client.auth.token_requests == 2
        client.get_manifest(repositories[0], "1")
        assert client.auth.token_requests == 2


def test_plain_http_loads_no_ca_and_https_goes_to_a_pool_that_verifies():
    transport = TrustOnDemand(None)
    plain = transport._pool("http")._pool._ssl_context  # the context of httpcore's pool
    assert (plain.verify_mode, plain.check_hostname, plain.cert_store_stats()["x509_ca"]) == (ssl.CERT_REQUIRED, True, 0)
    assert transport._tls is None  # no CA bundle loaded for a plain-HTTP pull
    verified = transport._pool("https")._pool._ssl_context
    assert verified.verify_mode == ssl.CERT_REQUIRED and verified.cert_store_stats()["x509_ca"] > 0
    assert transport._pool("https") is transport._pool("https")
    transport.close()


def test_layers_download_concurrently(pushed_image, store, monkeypatch):
    from lxclab.registry import client as registry_client

    active, most = [0], [0]
    lock = threading.Lock()
    download = registry_client.RegistryClient._download

    def counting(self, *args):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        try:
            time.sleep(0.2)  # long enough for the other layers' threads to start
            return download(self, *args)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(registry_client.RegistryClient, "_download", counting)
    image = pull(pushed_image.ref, store=store)
    assert len(image.manifest.layers) > 1 and most[0] > 1


def test_a_blob_larger_than_any_answer_limit_exists_and_is_not_pushed_again(classroom):
    blob, repository = os.urandom(5 * 1024 * 1024), unique_repository()  # above the 4 MiB limit on API answers
    with RegistryClient(classroom.registry_host, classroom.teacher) as client:
        assert client.push_blob(repository, m.sha256_digest(blob), blob) is True
        assert client.blob_exists(repository, m.sha256_digest(blob))  # a HEAD whose Content-Length is 5 MiB
        assert client.push_blob(repository, m.sha256_digest(blob), blob) is False
