"""The content store: verified atomic writes, resumable locked ingests, image records."""

from __future__ import annotations

import json
import threading
import time

import pytest

from lxclab import manifest as m
from lxclab.errors import DigestMismatch, ImageNotFound, StoreError
from lxclab.reference import parse
from lxclab.store import Store


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "store")


def blob_files(store: Store) -> list[str]:
    return sorted(p.name for p in (store.root / "blobs/sha256").iterdir())


def test_a_blob_is_written_under_its_digest_and_read_back(store):
    data = b"hello layer"
    digest = m.sha256_digest(data)
    path = store.write(data, digest)
    assert path == store.root / "blobs/sha256" / digest[7:]
    assert store.has(digest) and store.read(digest) == data and store.path(digest) == path
    assert store.write(data, digest) == path


def test_bytes_that_do_not_match_their_digest_leave_the_store_unchanged(store):
    with pytest.raises(DigestMismatch, match="expected sha256:0+"):
        store.write(b"evil", "sha256:" + "0" * 64)
    assert blob_files(store) == [] and list((store.root / "tmp").iterdir()) == []


def test_an_absent_blob_is_a_store_error_that_says_what_to_do(store):
    with pytest.raises(StoreError, match="not in the store.*pull"):
        store.path("sha256:" + "1" * 64)


@pytest.mark.parametrize("digest", ["sha256:../../etc/passwd", "sha512:" + "a" * 128, "sha256:" + "A" * 64, "abc"])
def test_digests_that_are_not_sha256_hex_never_become_paths(store, digest):
    with pytest.raises(StoreError, match="sha256 digests only"):
        store.has(digest)
    with pytest.raises(StoreError):
        store.ingest(digest)


def test_an_interrupted_ingest_resumes_at_its_offset(store):
    data = bytes(range(256)) * 1000
    digest = m.sha256_digest(data)
    with store.ingest(digest, len(data)) as ingest:
        ingest.write(data[:100_000])
    assert not store.has(digest)
    with store.ingest(digest, len(data)) as ingest:
        assert ingest.offset == 100_000
        ingest.write(data[100_000:])
        ingest.commit()
    assert store.read(digest) == data
    assert list((store.root / "tmp").iterdir()) == []


def test_a_partial_longer_than_the_blob_starts_over(store):
    data = b"short"
    digest = m.sha256_digest(data)
    (store.root / "tmp" / f"{digest[7:]}.partial").write_bytes(b"x" * 100)
    with store.ingest(digest, len(data)) as ingest:
        assert ingest.offset == 0
        ingest.write(data)
        ingest.commit()
    assert store.read(digest) == data


def test_restart_forgets_the_bytes_written(store):
    data = b"the real content"
    digest = m.sha256_digest(data)
    with store.ingest(digest) as ingest:
        ingest.write(b"garbage that the server sent before ignoring Range")
        ingest.restart()
        ingest.write(data)
        ingest.commit()
    assert store.read(digest) == data


def test_an_ingest_with_wrong_bytes_fails_and_leaves_no_partial(store):
    digest = m.sha256_digest(b"expected")
    with store.ingest(digest) as ingest:
        ingest.write(b"tampered")
        with pytest.raises(DigestMismatch, match="nothing was stored"):
            ingest.commit()
    assert blob_files(store) == []
    assert not (store.root / "tmp" / f"{digest[7:]}.partial").exists()


def test_a_second_ingest_of_the_same_blob_waits_and_finds_it_done(store):
    data = b"shared layer" * 1000
    digest = m.sha256_digest(data)
    events, second_started = [], threading.Event()

    def second():
        second_started.set()
        with store.ingest(digest) as ingest:
            events.append(("second enters", ingest.done))

    with store.ingest(digest) as ingest:
        ingest.write(data[:10])
        thread = threading.Thread(target=second)
        thread.start()
        second_started.wait()
        time.sleep(0.2)  # give the second ingest time to reach the lock
        ingest.write(data[10:])
        events.append(("first commits", None))
        ingest.commit()
    thread.join(timeout=30)
    assert events == [("first commits", None), ("second enters", True)]


def make_image(store: Store, layers: int = 2) -> m.Manifest:
    """Put a small image (config, layers, manifest) into the store and return its manifest."""
    layer_blobs = [f"layer {i}".encode() * 50 for i in range(layers)]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [m.sha256_digest(b) for b in layer_blobs]},
        "history": [{"created_by": f"step {i}"} for i in range(layers)],
    }
    config_raw = json.dumps(config).encode()
    store.write(config_raw, m.sha256_digest(config_raw))
    descriptors = []
    for blob in layer_blobs:
        store.write(blob, m.sha256_digest(blob))
        descriptors.append({"mediaType": m.OCI_LAYER, "digest": m.sha256_digest(blob), "size": len(blob)})
    config_desc = {"mediaType": m.OCI_CONFIG, "digest": m.sha256_digest(config_raw), "size": len(config_raw)}
    raw = json.dumps({"schemaVersion": 2, "mediaType": m.OCI_MANIFEST, "config": config_desc, "layers": descriptors})
    return m.parse_manifest(raw.encode())


def test_a_recorded_image_is_found_by_tag_and_by_digest(store):
    manifest = make_image(store)
    ref = parse("127.0.0.1:5000/lab/app:1.0")
    recorded = store.record_image(ref, manifest, m.Platform("linux", "amd64"))
    image = store.image("127.0.0.1:5000/lab/app:1.0")
    assert image == recorded
    assert image.digest == manifest.digest and image.config.cmd == ("sh",)
    assert [p.read_bytes() for p in image.layer_paths] == [f"layer {i}".encode() * 50 for i in range(2)]
    assert store.image(f"127.0.0.1:5000/lab/app@{manifest.digest}").reference == ref
    assert store.images() == [image]


def test_an_image_recorded_with_its_index_is_found_by_the_index_digest(store):
    manifest = make_image(store)
    entry = m.Descriptor(m.OCI_MANIFEST, manifest.digest, len(manifest.raw), m.Platform("linux", "amd64"))
    raw = json.dumps({"schemaVersion": 2, "mediaType": m.OCI_INDEX, "manifests": [entry.to_json()]}).encode()
    index = m.parse_manifest(raw)
    store.record_image(parse("lab/app:2"), manifest, m.Platform("linux", "amd64"), index)
    assert store.image(f"lab/app@{index.digest}").index_digest == index.digest
    assert store.read(index.digest) == raw


def test_tag_and_untag_name_the_same_image(store):
    manifest = make_image(store)
    store.record_image(parse("lab/app:1"), manifest, m.Platform("linux", "amd64"))
    store.tag("lab/app:1", "127.0.0.1:5000/other/app:copy")
    assert store.image("127.0.0.1:5000/other/app:copy").digest == manifest.digest
    store.untag("lab/app:1")
    assert [str(i.reference) for i in store.images()] == ["127.0.0.1:5000/other/app:copy"]
    with pytest.raises(ImageNotFound):
        store.untag("lab/app:1")


def test_an_image_that_was_never_pulled_says_to_pull_it(store):
    with pytest.raises(ImageNotFound, match=r"busybox:latest is not in the store.*lxclab pull busybox:latest"):
        store.image("busybox")


def test_recording_an_image_whose_layers_are_missing_fails(store):
    manifest = make_image(store)
    store.path(manifest.layers[0].digest).unlink()
    with pytest.raises(StoreError, match="not in the store"):
        store.record_image(parse("lab/app:1"), manifest, m.Platform("linux", "amd64"))
    assert store.images() == []
