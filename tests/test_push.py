"""Pushing to the real classroom registry: monolithic and chunked uploads, mounts, order, logins."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
import stat
from urllib.parse import urlsplit

import pytest
from faultproxy import Fault, FaultProxy, proxy  # noqa: F401 (proxy is a fixture)
from fixture_images import random_image, random_index, unique_repository

from lxclab import manifest as m
from lxclab.engine import pull, push
from lxclab.engine.push import push_content
from lxclab.errors import AuthenticationError, DigestMismatch, RegistryError
from lxclab.paths import credentials_file
from lxclab.registry import RegistryClient, credentials
from lxclab.store import Store


@pytest.fixture
def teacher_client(proxy, classroom):
    with RegistryClient(proxy.host, classroom.teacher) as client:
        yield client


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def claims(authorization: str) -> dict:
    """The claims of the JWT in an `Authorization: Bearer` header."""
    payload = authorization.split()[1].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def upload_source(blob: bytes, tmp_path, as_file: bool) -> bytes | Path:
    """The blob itself, or a file holding it: push_blob takes both."""
    if not as_file:
        return blob
    path = tmp_path / "blob"
    path.write_bytes(blob)
    return path


def fetched(client: RegistryClient, repository: str, blob: bytes, store: Store) -> bytes:
    descriptor = m.Descriptor(m.OCI_LAYER_GZIP, m.sha256_digest(blob), len(blob))
    return client.fetch_blob(repository, descriptor, store).read_bytes()


@pytest.mark.parametrize("as_file", [False, True])
def test_a_monolithic_upload_is_one_post_and_one_put(teacher_client, proxy, tmp_path, as_file):
    blob, repository = os.urandom(300_000), unique_repository()
    source = upload_source(blob, tmp_path, as_file)
    assert teacher_client.push_blob(repository, m.sha256_digest(blob), source) is True
    uploads = [e for e in proxy.log if "/blobs/uploads/" in e.path]
    assert [(e.method, e.status) for e in uploads] == [("POST", 202), ("PUT", 201)]
    assert uploads[1].path == path_of(uploads[0].location) + f"&digest={m.sha256_digest(blob).replace(':', '%3A')}"
    assert fetched(teacher_client, repository, blob, Store(tmp_path / "store")) == blob


@pytest.mark.parametrize("as_file", [False, True])
def test_a_chunked_upload_follows_the_latest_location(teacher_client, proxy, tmp_path, as_file):
    blob, repository = os.urandom(350_000), unique_repository()
    source = upload_source(blob, tmp_path, as_file)
    teacher_client.push_blob(repository, m.sha256_digest(blob), source, chunk_size=100_000)
    uploads = [e for e in proxy.log if "/blobs/uploads/" in e.path]
    assert [e.method for e in uploads] == ["POST", "PATCH", "PATCH", "PATCH", "PATCH", "PUT"]
    for previous, current in zip(uploads, uploads[1:]):
        assert current.path.startswith(path_of(previous.location))
    assert len({path_of(e.location) for e in uploads[:-1]}) == 5
    assert fetched(teacher_client, repository, blob, Store(tmp_path / "store")) == blob


def test_a_blob_the_repository_has_is_not_uploaded_again(teacher_client, proxy):
    blob, repository = os.urandom(1000), unique_repository()
    assert teacher_client.push_blob(repository, m.sha256_digest(blob), blob) is True
    proxy.log.clear()
    assert teacher_client.push_blob(repository, m.sha256_digest(blob), blob) is False
    assert [(e.method, e.status) for e in proxy.log] == [("HEAD", 200)]


def test_bytes_that_do_not_match_the_digest_are_refused_before_sending(teacher_client, proxy):
    with pytest.raises(DigestMismatch, match="to push"):
        teacher_client.push_blob(unique_repository(), m.sha256_digest(b"other"), b"these bytes")
    assert [e for e in proxy.log if e.method != "GET"] == []


def test_a_file_that_does_not_match_the_digest_is_refused_by_the_registry(teacher_client, tmp_path):
    source = tmp_path / "blob"
    source.write_bytes(b"these bytes")
    with pytest.raises(RegistryError, match="DIGEST_INVALID"):
        teacher_client.push_blob(unique_repository(), m.sha256_digest(b"other"), source)


def test_a_mount_links_a_blob_with_one_token_for_both_repositories(teacher_client, proxy):
    blob, source_repository, target = os.urandom(5000), unique_repository(), unique_repository()
    teacher_client.push_blob(source_repository, m.sha256_digest(blob), blob)
    assert teacher_client.mount_blob(target, m.sha256_digest(blob), source_repository) is True
    (mount,) = proxy.requests("POST", "mount=")
    assert mount.status == 201
    access = {entry["name"]: set(entry["actions"]) for entry in claims(mount.authorization)["access"]}
    assert access == {target: {"pull", "push"}, source_repository: {"pull"}}
    assert teacher_client.blob_exists(target, m.sha256_digest(blob))


def test_a_mount_of_a_blob_the_source_lacks_says_no(teacher_client, proxy):
    repository = unique_repository()
    assert teacher_client.mount_blob(repository, m.sha256_digest(b"nowhere"), unique_repository()) is False
    assert [(e.method, e.status) for e in proxy.log if "/uploads/" in e.path] == [("POST", 202)]


def test_an_index_is_pushed_after_its_children_and_they_after_their_blobs(teacher_client, proxy):
    children = [random_image(architecture="amd64"), random_image(architecture="arm64")]
    index, repository = random_index(*children), unique_repository()
    digest = push_content(teacher_client, repository, "multi", index.manifest, index.media_type, index.blob)
    assert digest == index.digest
    written = [urlsplit(e.path).query.split("digest=")[-1].replace("%3A", ":") if "/uploads/" in e.path
               else e.path.rsplit("/", 1)[-1] for e in proxy.log if e.method == "PUT"]
    expected = []
    for child in children:
        expected += [m.sha256_digest(child.config), *map(m.sha256_digest, child.layers), child.digest]
    assert written == expected + ["multi"]
    assert isinstance(teacher_client.get_manifest(repository, "multi"), m.Index)


def test_a_manifest_before_its_blobs_or_an_index_before_its_children_is_refused(teacher_client):
    image, repository = random_image(), unique_repository()
    with pytest.raises(RegistryError, match="MANIFEST_BLOB_UNKNOWN|BLOB_UNKNOWN"):
        teacher_client.put_manifest(repository, "early", image.manifest, image.media_type)
    index = random_index(image)
    with pytest.raises(RegistryError, match="MANIFEST_UNKNOWN|MANIFEST_BLOB_UNKNOWN"):
        teacher_client.put_manifest(repository, "early-index", index.manifest, index.media_type)


def test_anonymous_push_is_refused_with_a_hint_to_log_in(classroom):
    repository = unique_repository()
    with RegistryClient(classroom.registry_host) as anonymous:
        with pytest.raises(AuthenticationError, match=f"lxclab login {classroom.registry_host}") as refused:
            anonymous.push_blob(repository, m.sha256_digest(b"x"), b"x")
    assert f"insufficient_scope for repository:{repository}:" in str(refused.value)


def test_a_file_body_is_sent_again_after_its_token_expired(teacher_client, proxy, tmp_path):
    blob, repository = os.urandom(200_000), unique_repository()
    source = tmp_path / "blob"
    source.write_bytes(blob)
    proxy.add(Fault("PUT", "/blobs/uploads/", expire_token=True))
    teacher_client.push_blob(repository, m.sha256_digest(blob), source)
    assert [e.status for e in proxy.requests("PUT", "/blobs/uploads/")] == [401, 201]
    assert fetched(teacher_client, repository, blob, Store(tmp_path / "store")) == blob


def test_a_500_during_a_chunked_upload_restarts_the_upload(teacher_client, proxy, tmp_path):
    blob, repository = os.urandom(250_000), unique_repository()
    proxy.add(Fault("PATCH", "/blobs/uploads/", reply=(500, {}, b"disk hiccup")))
    teacher_client.push_blob(repository, m.sha256_digest(blob), blob, chunk_size=100_000)
    assert [e.method for e in proxy.log if "/uploads/" in e.path] == ["POST", "PATCH", "POST", "PATCH", "PATCH", "PATCH", "PUT"]
    assert fetched(teacher_client, repository, blob, Store(tmp_path / "store")) == blob


def test_a_pulled_image_pushed_under_another_name_mounts_its_blobs(classroom, pushed_image, tmp_path, lxclab_home):
    store = Store(tmp_path / "store")
    with FaultProxy(classroom.registry_host) as watching:
        source = f"{watching.host}/{pushed_image.repository}:1"
        tagged, named = (f"{watching.host}/{unique_repository()}:copy" for _ in range(2))
        pull(source, store=store)
        store.tag(source, tagged)
        assert push(tagged, store=store, credentials=classroom.teacher) == pushed_image.image.digest
        assert push(named, store=store, credentials=classroom.teacher, source=source) == pushed_image.image.digest
    assert [e.status for e in watching.requests("POST", "mount=")] == [201] * 6
    assert watching.requests("PUT", "/blobs/uploads/") == []
    assert store.image(named).digest == pushed_image.image.digest
    direct = named.replace(watching.host, classroom.registry_host)
    again = pull(direct, store=Store(tmp_path / "fresh"))
    assert [p.read_bytes() for p in again.layer_paths] == pushed_image.image.layers


def test_saved_logins_are_private_and_the_environment_overrides_them(lxclab_home, monkeypatch):
    assert credentials.lookup("127.0.0.1:5000") is None
    credentials.save("127.0.0.1:5000", "ada", "s3cret")
    assert credentials.lookup("127.0.0.1:5000") == ("ada", "s3cret")
    assert stat.S_IMODE(credentials_file().stat().st_mode) == 0o600
    monkeypatch.setenv("LXCLAB_USERNAME", "grace")
    monkeypatch.setenv("LXCLAB_PASSWORD", "hopper")
    with pytest.raises(RegistryError, match="LXCLAB_REGISTRY is not"):
        credentials.lookup("127.0.0.1:5000")
    monkeypatch.setenv("LXCLAB_REGISTRY", "127.0.0.1:5000")
    assert credentials.lookup("127.0.0.1:5000") == ("grace", "hopper")
    assert credentials.lookup("127.0.0.1:5999") is None  # bound to one registry: never sent to another
    monkeypatch.delenv("LXCLAB_USERNAME")
    assert credentials.forget("127.0.0.1:5000") is True and credentials.forget("127.0.0.1:5000") is False
    assert credentials.lookup("127.0.0.1:5000") is None


def test_push_uses_the_saved_login(classroom, pushed_image, tmp_path, lxclab_home):
    store = Store(tmp_path / "store")
    pull(pushed_image.ref, store=store)
    target = f"{classroom.registry_host}/{unique_repository()}:saved"
    store.tag(pushed_image.ref, target)
    with pytest.raises(AuthenticationError):
        push(target, store=store)
    credentials.save(classroom.registry_host, *classroom.teacher)
    assert push(target, store=store) == pushed_image.image.digest
