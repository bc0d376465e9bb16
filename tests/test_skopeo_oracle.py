"""skopeo, a real registry client, as the oracle: it reads what lxclab pushed, lxclab reads what it pushed.

Both go through the token-protected classroom registry: skopeo does its own token dance
(anonymously to read, with the teacher's credentials to write).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from fixture_images import RandomImage, push_image, random_image, random_index, unique_repository

from lxclab import manifest as m
from lxclab.engine import pull, push
from lxclab.reference import parse
from lxclab.store import Store


def skopeo(*args: str) -> str:
    """Run skopeo and return its standard output; a failure shows skopeo's own message."""
    done = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"skopeo {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def write_oci_layout(image: RandomImage, root: Path, tag: str) -> Path:
    """Write `image` as an OCI image layout directory that skopeo can copy from (`oci:DIR:TAG`)."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for blob in (image.config, *image.layers, image.manifest):
        (blobs / m.sha256_digest(blob)[7:]).write_bytes(blob)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    entry = {"mediaType": image.media_type, "digest": image.digest, "size": len(image.manifest),
             "annotations": {"org.opencontainers.image.ref.name": tag}}
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    return root


def test_skopeo_reads_exactly_what_lxclab_pushed(classroom):
    image, repository = random_image(), unique_repository()
    push_image(classroom.registry_host, classroom.teacher, repository, "1", image)
    source = f"docker://{classroom.registry_host}/{repository}:1"
    assert skopeo("inspect", "--tls-verify=false", "--raw", source).encode() == image.manifest
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", source))
    assert inspected["Digest"] == image.digest
    assert inspected["Layers"] == [m.sha256_digest(layer) for layer in image.layers]
    assert inspected["Env"] == ["PATH=/bin"]


def test_skopeo_copies_a_chunked_lxclab_push_blob_for_blob(classroom, pushed_image, tmp_path, lxclab_home):
    store = Store(tmp_path / "store")
    pulled = pull(pushed_image.ref, store=store)
    target = f"{classroom.registry_host}/{unique_repository()}:chunked"
    store.record_image(parse(target), pulled.manifest, pulled.platform)  # no origin: upload, do not mount
    push(target, store=store, credentials=classroom.teacher, chunk_size=7_000)
    skopeo("copy", "--src-tls-verify=false", f"docker://{target}", f"oci:{tmp_path / 'copy'}:chunked")
    index = json.loads((tmp_path / "copy" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == pushed_image.image.digest
    for blob in (pushed_image.image.config, *pushed_image.image.layers):
        assert (tmp_path / "copy" / "blobs" / "sha256" / m.sha256_digest(blob)[7:]).read_bytes() == blob


def test_skopeo_chooses_the_same_platform_from_an_lxclab_index(classroom):
    amd64, arm64 = random_image(architecture="amd64"), random_image(architecture="arm64")
    repository = unique_repository()
    index = random_index(amd64, arm64)
    push_image(classroom.registry_host, classroom.teacher, repository, "multi", index)
    source = f"docker://{classroom.registry_host}/{repository}:multi"
    for arch, image in (("amd64", amd64), ("arm64", arm64)):
        inspected = json.loads(skopeo("inspect", "--tls-verify=false", "--override-arch", arch, source))
        assert (inspected["Digest"], inspected["Architecture"]) == (index.digest, arch)
        assert inspected["Layers"] == [m.sha256_digest(layer) for layer in image.layers]


@pytest.mark.parametrize("form", ["oci", "v2s2"])
def test_lxclab_pulls_what_skopeo_pushed(classroom, tmp_path, lxclab_home, form):
    image, repository = random_image(), unique_repository()
    layout = write_oci_layout(image, tmp_path / "layout", "1")
    target = f"{classroom.registry_host}/{repository}:{form}"
    user, password = classroom.teacher
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", f"{user}:{password}", "--format", form,
           f"oci:{layout}:1", f"docker://{target}")
    pulled = pull(target, store=Store(tmp_path / "store"))
    assert pulled.digest == json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{target}"))["Digest"]
    assert pulled.manifest.media_type == (m.OCI_MANIFEST if form == "oci" else m.DOCKER_MANIFEST)
    assert [p.read_bytes() for p in pulled.layer_paths] == image.layers
    assert list(pulled.config.diff_ids) == json.loads(image.config)["rootfs"]["diff_ids"]
