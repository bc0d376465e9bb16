"""Image references, normalised the way Docker does (containers/image docker/reference cases)."""

from __future__ import annotations

import pytest

from lxclab.errors import InvalidReference
from lxclab.reference import Reference, parse, registry_base_url

SHA = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "text, registry, repository, tag, digest",
    [
        ("busybox", "docker.io", "library/busybox", "latest", None),
        ("library/busybox", "docker.io", "library/busybox", "latest", None),
        ("docker.io/busybox:1.36", "docker.io", "library/busybox", "1.36", None),
        ("index.docker.io/library/busybox", "docker.io", "library/busybox", "latest", None),
        ("registry-1.docker.io/user/app", "docker.io", "user/app", "latest", None),
        ("user/app:v1.0-rc_1", "docker.io", "user/app", "v1.0-rc_1", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/lab/app:1.0", "localhost:5000", "lab/app", "1.0", None),
        (f"127.0.0.1:5000/lab/busybox@{SHA}", "127.0.0.1:5000", "lab/busybox", None, SHA),
        (f"127.0.0.1:5000/lab/busybox:1.0@{SHA}", "127.0.0.1:5000", "lab/busybox", "1.0", SHA),
        ("quay.io/coreos/etcd", "quay.io", "coreos/etcd", "latest", None),
        ("example.com:443/a/b/c:tag", "example.com:443", "a/b/c", "tag", None),
        ("[::1]:5000/app", "[::1]:5000", "app", "latest", None),
        (f"busybox@{SHA}", "docker.io", "library/busybox", None, SHA),
        ("a_b__c-d--e/f.g", "docker.io", "a_b__c-d--e/f.g", "latest", None),
        ("localhost:5000", "docker.io", "library/localhost", "5000", None),
    ],
)
def test_references_are_normalised_like_docker(text, registry, repository, tag, digest):
    assert parse(text) == Reference(registry, repository, tag, digest)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " busybox",
        "busybox ",
        "Busybox",
        "busybox:",
        "busybox:tag with space",
        "busybox:-tag",
        "busybox:caf\u00e9",
        "busybox:" + "t" * 129,
        "a//b",
        "/busybox",
        "busybox/",
        "-busybox",
        "busybox@sha256:abc",
        "busybox@sha256:" + "AB" * 32,
        "busybox@md5",
        "exa_mple.com:5000/app",
        "a.b_c/g",
        "x/" + "a" * 255,
    ],
)
def test_invalid_references_are_refused_with_the_reason(text):
    with pytest.raises(InvalidReference, match="invalid"):
        parse(text)


@pytest.mark.parametrize(
    "registry, loopback, url",
    [
        ("localhost", True, "http://localhost"),
        ("localhost:5000", True, "http://localhost:5000"),
        ("127.0.0.1:5000", True, "http://127.0.0.1:5000"),
        ("127.1.2.3", True, "http://127.1.2.3"),
        ("[::1]:5000", True, "http://[::1]:5000"),
        ("localhost.example.com", False, "https://localhost.example.com"),
        ("127.example.com", False, "https://127.example.com"),
        ("quay.io", False, "https://quay.io"),
        ("docker.io", False, "https://registry-1.docker.io"),
    ],
)
def test_only_loopback_registries_are_spoken_to_over_plain_http(registry, loopback, url):
    ref = Reference(registry, "lab/app", "1")
    assert ref.is_loopback is loopback
    assert ref.base_url() == url


def test_an_insecure_registry_uses_plain_http():
    assert parse("registry.lan/app").base_url(insecure=True) == "http://registry.lan"


@pytest.mark.parametrize(
    "registry, url",
    [("docker.io", "https://registry-1.docker.io"), ("index.docker.io", "https://registry-1.docker.io"),
     ("127.0.0.1:5000", "http://127.0.0.1:5000"), ("ghcr.io", "https://ghcr.io")],
)
def test_a_registry_name_alone_gives_its_api_url(registry, url):
    assert registry_base_url(registry) == url


def test_identifier_prefers_the_digest_over_the_tag():
    assert parse(f"lab/app:1@{SHA}").identifier == SHA
    assert parse("lab/app:1").identifier == "1"


def test_str_and_familiar_forms():
    ref = parse("busybox")
    assert str(ref) == "docker.io/library/busybox:latest"
    assert ref.familiar == "busybox:latest"
    assert parse("user/app:2").familiar == "user/app:2"
    assert parse("localhost:5000/lab/app:1").familiar == "localhost:5000/lab/app:1"
    assert parse(str(parse(f"quay.io/a/b:1@{SHA}"))) == parse(f"quay.io/a/b:1@{SHA}")


def test_with_tag_and_with_digest_make_new_references():
    ref = parse(f"lab/app:1@{SHA}")
    assert ref.with_tag("2") == Reference("docker.io", "lab/app", "2", None)
    assert parse("lab/app:1").with_digest(SHA).digest == SHA
    with pytest.raises(InvalidReference):
        ref.with_tag("bad tag")
    with pytest.raises(InvalidReference):
        ref.with_digest("sha256:short")
