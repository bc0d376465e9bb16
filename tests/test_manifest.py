"""Manifests, indexes and configs: parsing, platform choice, digests, history, ChainIDs."""

from __future__ import annotations

import hashlib
import json

import pytest

from lxclab import manifest as m
from lxclab.errors import DigestMismatch, ManifestError, PlatformNotFound, UnsupportedMediaType


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


CONFIG = {"mediaType": m.OCI_CONFIG, "digest": digest_of("config"), "size": 10}
LAYERS = [{"mediaType": m.OCI_LAYER_GZIP, "digest": digest_of(f"layer{i}"), "size": 100 + i} for i in range(3)]


def oci_manifest(**extra) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": m.OCI_MANIFEST, "config": CONFIG, "layers": LAYERS, **extra}).encode()


def entry(arch, os="linux", variant=None, annotations=None):
    plat = {"architecture": arch, "os": os, **({"variant": variant} if variant else {})}
    obj = {"mediaType": m.OCI_MANIFEST, "digest": digest_of(f"{os}/{arch}/{variant}"), "size": 500, "platform": plat}
    return obj | ({"annotations": annotations} if annotations else {})


def index(*entries) -> m.Index:
    raw = json.dumps({"schemaVersion": 2, "mediaType": m.OCI_INDEX, "manifests": list(entries)}).encode()
    return m.parse_manifest(raw)


def test_an_oci_manifest_keeps_its_layers_bottom_first_and_its_exact_bytes():
    raw = oci_manifest()
    parsed = m.parse_manifest(raw)
    assert isinstance(parsed, m.Manifest)
    assert parsed.config == m.Descriptor(m.OCI_CONFIG, CONFIG["digest"], 10)
    assert [d.digest for d in parsed.layers] == [layer["digest"] for layer in LAYERS]
    assert parsed.digest == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_the_media_type_comes_from_content_type_when_the_json_has_none():
    raw = json.dumps({"schemaVersion": 2, "config": CONFIG | {"mediaType": m.DOCKER_CONFIG}, "layers": []}).encode()
    parsed = m.parse_manifest(raw, f"{m.DOCKER_MANIFEST}; charset=utf-8")
    assert parsed.media_type == m.DOCKER_MANIFEST and parsed.layers == ()


def test_an_index_without_media_type_is_recognised_by_its_manifests_list():
    raw = json.dumps({"schemaVersion": 2, "manifests": [entry("amd64")]}).encode()
    assert isinstance(m.parse_manifest(raw), m.Index)


@pytest.mark.parametrize(
    "raw, error, words",
    [
        (b"{not json", ManifestError, "malformed manifest JSON"),
        (b"\xff\xfe", ManifestError, "malformed manifest JSON"),
        (b"[1, 2]", ManifestError, "expected an object"),
        (json.dumps({"mediaType": "application/x-nope"}).encode(), UnsupportedMediaType, "application/x-nope"),
        (json.dumps({"schemaVersion": 1, "fsLayers": []}).encode(), UnsupportedMediaType, "unsupported"),
        (json.dumps({"mediaType": m.OCI_MANIFEST, "layers": []}).encode(), ManifestError, "no 'config'"),
        (oci_manifest(layers="nope"), ManifestError, "'layers' must be a list"),
        (oci_manifest(layers=["sha256:abc"]), ManifestError, "invalid descriptor"),
        (oci_manifest(layers=[{"mediaType": m.OCI_LAYER, "digest": "sha256:ab"}]), ManifestError, "size"),
        (oci_manifest(config=CONFIG | {"digest": "../../etc/passwd"}), ManifestError, "not algorithm:hex"),
        (oci_manifest(config=CONFIG | {"size": "big"}), ManifestError, "invalid descriptor"),
    ],
)
def test_bad_manifests_raise_a_named_error(raw, error, words):
    with pytest.raises(error, match=words):
        m.parse_manifest(raw)


def test_index_selects_the_requested_platform_and_skips_attestations():
    attestation = entry("unknown", os="unknown", annotations={m.ATTESTATION_ANNOTATION: "attestation-manifest"})
    idx = index(attestation, entry("arm", variant="v6"), entry("arm", variant="v7"), entry("arm64", variant="v8"), entry("amd64"))
    assert idx.select(m.Platform("linux", "amd64")).digest == digest_of("linux/amd64/None")
    assert idx.select(m.Platform("linux", "arm", "v7")).digest == digest_of("linux/arm/v7")
    assert idx.select(m.Platform.parse("linux/arm64")).digest == digest_of("linux/arm64/v8")
    assert m.Platform("unknown", "unknown") not in idx.platforms
    assert len(idx.platforms) == 4


def test_index_with_an_attestation_for_the_wanted_platform_is_not_chosen():
    fake = entry("amd64", annotations={m.ATTESTATION_ANNOTATION: "attestation-manifest"})
    with pytest.raises(PlatformNotFound, match="linux/amd64"):
        index(fake).select(m.Platform("linux", "amd64"))


def test_a_missing_platform_says_which_platforms_exist():
    with pytest.raises(PlatformNotFound, match=r"linux/s390x.*offers: linux/amd64, linux/arm/v7"):
        index(entry("amd64"), entry("arm", variant="v7")).select(m.Platform.parse("linux/s390x"))


def test_default_platform_is_this_machine():
    host = m.Platform.host()
    assert host.os == "linux" and host.architecture in ("amd64", "arm64", "arm", "386", "ppc64le", "s390x")
    assert index(entry(host.architecture)).select().platform.architecture == host.architecture


@pytest.mark.parametrize("text", ["linux", "linux/", "/amd64", "a/b/c/d"])
def test_bad_platform_strings_are_refused(text):
    with pytest.raises(ManifestError, match="invalid platform"):
        m.Platform.parse(text)


def test_descriptor_json_round_trips():
    obj = entry("arm", variant="v7", annotations={"org.opencontainers.image.ref.name": "1"})
    assert m.Descriptor.from_json(obj).to_json() == obj


def test_verify_digest_names_the_content_and_both_digests():
    m.verify_digest(b"abc", m.sha256_digest(b"abc"), "blob")
    with pytest.raises(DigestMismatch, match=r"layer x: expected sha256:0+, got sha256:ba7816bf"):
        m.verify_digest(b"abc", "sha256:" + "0" * 64, "layer x")


CONFIG_JSON = {
    "architecture": "amd64",
    "os": "linux",
    "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "Entrypoint": ["/bin/busybox"], "WorkingDir": "/root"},
    "rootfs": {"type": "layers", "diff_ids": [digest_of("a"), digest_of("b"), digest_of("c")]},
    "history": [
        {"created_by": "ADD a /"},
        {"created_by": "ENV PATH=/bin", "empty_layer": True},
        {"created_by": "ADD b /"},
        {"created_by": "CMD sh", "empty_layer": True},
        {"created_by": "ADD c /", "comment": "last"},
    ],
}


def test_config_gives_run_settings_and_history_with_empty_layers():
    config = m.ImageConfig.parse(json.dumps(CONFIG_JSON).encode())
    assert config.command == ["/bin/busybox", "sh"] and config.env == ("PATH=/bin",) and config.working_dir == "/root"
    pairs = [(h.created_by, diff) for h, diff in config.layer_history()]
    assert pairs == [
        ("ADD a /", digest_of("a")),
        ("ENV PATH=/bin", None),
        ("ADD b /", digest_of("b")),
        ("CMD sh", None),
        ("ADD c /", digest_of("c")),
    ]


def test_chain_ids_follow_the_oci_formula():
    diff_ids = [digest_of("a"), digest_of("b"), digest_of("c")]
    second = "sha256:" + hashlib.sha256(f"{diff_ids[0]} {diff_ids[1]}".encode()).hexdigest()
    third = "sha256:" + hashlib.sha256(f"{second} {diff_ids[2]}".encode()).hexdigest()
    assert m.chain_ids(diff_ids) == [diff_ids[0], second, third]
    assert m.ImageConfig.parse(json.dumps(CONFIG_JSON).encode()).chain_ids == [diff_ids[0], second, third]
    assert m.chain_ids([]) == []


@pytest.mark.parametrize(
    "change",
    [{"rootfs": {"type": "layers"}}, {"rootfs": {"type": "tar", "diff_ids": []}}, {"history": ["ADD a /"]}],
)
def test_bad_configs_are_refused(change):
    with pytest.raises(ManifestError, match="invalid image config"):
        m.ImageConfig.parse(json.dumps(CONFIG_JSON | change).encode())
