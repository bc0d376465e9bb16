"""Small random images built in memory, pushed to the classroom with lxclab's own push code."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lxclab import manifest as m
from lxclab.engine.push import push_content
from lxclab.registry import RegistryClient


@dataclass
class RandomImage:
    """An image whose layers are gzip tars of random bytes: its config, layers and manifest bytes."""

    config: bytes
    layers: list[bytes]
    manifest: bytes
    media_type: str = m.OCI_MANIFEST
    extra: dict[str, bytes] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """The manifest digest."""
        return m.sha256_digest(self.manifest)

    def blob(self, digest: str) -> bytes:
        """Any blob of this image (config, layer, or an extra document such as a child manifest) by digest."""
        blobs = {m.sha256_digest(b): b for b in (self.config, *self.layers, *self.extra.values())}
        return blobs[digest]


def random_layer(size: int) -> tuple[bytes, str]:
    """A gzip tar holding one file of `size` random bytes, and the tar's DiffID."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(f"data-{uuid.uuid4().hex[:8]}")
        info.size = size
        tar.addfile(info, io.BytesIO(os.urandom(size)))
    return gzip.compress(buffer.getvalue(), compresslevel=1, mtime=0), m.sha256_digest(buffer.getvalue())


def random_image(layer_sizes: tuple[int, ...] = (20_000, 30_000), architecture: str = "amd64", docker: bool = False) -> RandomImage:
    """Build a random image; Docker media types when `docker`, else OCI."""
    layers = [random_layer(size) for size in layer_sizes]
    config = json.dumps({
        "architecture": architecture,
        "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in layers]},
        "history": [{"created_by": f"ADD layer {i}"} for i in range(len(layers))] + [{"created_by": "CMD sh", "empty_layer": True}],
    }).encode()
    types = (m.DOCKER_MANIFEST, m.DOCKER_CONFIG, m.DOCKER_LAYER_GZIP) if docker else (m.OCI_MANIFEST, m.OCI_CONFIG, m.OCI_LAYER_GZIP)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": types[0],
        "config": {"mediaType": types[1], "digest": m.sha256_digest(config), "size": len(config)},
        "layers": [{"mediaType": types[2], "digest": m.sha256_digest(blob), "size": len(blob)} for blob, _ in layers],
    }).encode()
    return RandomImage(config, [blob for blob, _ in layers], manifest, types[0])


def random_index(*images: RandomImage) -> RandomImage:
    """An OCI index over `images` (one per architecture); the children travel as extra blobs."""
    entries = []
    for image in images:
        architecture = json.loads(image.config)["architecture"]
        entries.append({"mediaType": image.media_type, "digest": image.digest, "size": len(image.manifest),
                        "platform": {"architecture": architecture, "os": "linux"}})
    raw = json.dumps({"schemaVersion": 2, "mediaType": m.OCI_INDEX, "manifests": entries}).encode()
    extra = {image.digest: image.manifest for image in images}
    for image in images:
        extra |= {m.sha256_digest(b): b for b in (image.config, *image.layers)}
    return RandomImage(b"", [], raw, m.OCI_INDEX, extra)


def unique_repository(prefix: str = "lab/test") -> str:
    """A repository name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def push_image(registry: str, credentials: tuple[str, str], repository: str, tag: str, image: RandomImage) -> str:
    """Push a random image (or index) with lxclab's push; returns the digest the registry stored."""
    with RegistryClient(registry, credentials) as client:
        return push_content(client, repository, tag, image.manifest, image.media_type, image.blob)


@dataclass
class PushedImage:
    """A random image pushed to the classroom: where it is and what it is."""

    registry: str
    repository: str
    tag: str
    image: RandomImage

    @property
    def ref(self) -> str:
        """Its reference, like `127.0.0.1:5000/lab/test-1234:1`."""
        return f"{self.registry}/{self.repository}:{self.tag}"


@pytest.fixture
def pushed_image(classroom) -> PushedImage:
    """A fresh random two-layer image in its own repository on the classroom registry."""
    image, repository = random_image(), unique_repository()
    push_image(classroom.registry_host, classroom.teacher, repository, "1", image)
    return PushedImage(classroom.registry_host, repository, "1", image)


@pytest.fixture
def lxclab_home(tmp_path, monkeypatch) -> Iterator[Path]:
    """A private $LXCLAB_HOME (store, saved logins) with no login in the environment."""
    home = tmp_path / "lxclab-home"
    monkeypatch.setenv("LXCLAB_HOME", str(home))
    monkeypatch.delenv("LXCLAB_USERNAME", raising=False)
    monkeypatch.delenv("LXCLAB_PASSWORD", raising=False)
    monkeypatch.delenv("LXCLAB_REGISTRY", raising=False)
    monkeypatch.delenv("LXCLAB_TOKEN_REALMS", raising=False)
    yield home
