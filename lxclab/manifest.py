"""Manifests, indexes and image configs: the JSON documents that describe an image.

Pure data, no I/O. Parse the bytes a registry sent (`parse_manifest`), choose a platform
from an index (`Index.select`), read the config's history, DiffIDs and ChainIDs. The
config's history and ChainIDs are what replaced the 2016 registry's v1 "ancestry" call:
an image no longer lists parent image IDs; its config lists the layers, bottom first.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field

from . import validation
from .errors import (DigestMismatch, InvalidImageConfig, InvalidValue, ManifestError, PlatformNotFound,
                     UnsupportedMediaType)

# Media types, named once.
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
CONFIG_TYPES = (OCI_CONFIG, DOCKER_CONFIG)
LAYER_TYPES = (OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, DOCKER_LAYER_GZIP)
ACCEPT = ", ".join(INDEX_TYPES + MANIFEST_TYPES)
ATTESTATION_ANNOTATION = "vnd.docker.reference.type"

_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


def sha256_digest(data: bytes) -> str:
    """The OCI digest (`sha256:<hex>`) of some bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(document: dict) -> bytes:
    """JSON as lxclab writes it once, then hashes and sends those exact bytes: sorted keys, no spaces, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def verify_digest(data: bytes, expected: str, what: str) -> None:
    """Raise DigestMismatch unless `data` hashes to `expected`; `what` names the content."""
    actual = sha256_digest(data)
    if actual != expected:
        raise DigestMismatch(f"{what}: expected {expected}, got {actual}; the content was not used")


@dataclass(frozen=True)
class Platform:
    """An OS and CPU architecture (and optional variant), like linux/amd64 or linux/arm/v7."""

    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse `os/arch[/variant]`, as in `--platform linux/arm64`."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ManifestError(f"invalid platform {text!r}: expected os/arch or os/arch/variant")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    @classmethod
    def host(cls) -> Platform:
        """The platform of this machine."""
        machine = os.uname().machine
        return cls("linux", _ARCH_ALIASES.get(machine, machine))

    def matches(self, other: Platform) -> bool:
        """True if `other` can run on this platform (a missing variant matches any)."""
        same = (self.os, self.architecture) == (other.os, other.architecture)
        return same and (self.variant is None or other.variant in (None, self.variant))

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Descriptor:
    """A pointer to content: its media type, digest and size (and platform, in an index)."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict = field(default_factory=dict, hash=False, compare=False)

    @classmethod
    def from_json(cls, obj: dict) -> Descriptor:
        """Build a descriptor from its JSON object, checking the required fields."""
        try:
            plat = obj.get("platform")
            if not _DIGEST.fullmatch(obj["digest"]):
                raise ValueError(f"digest {obj['digest']!r} is not algorithm:hex")
            return cls(
                media_type=obj["mediaType"],
                digest=obj["digest"],
                size=int(obj["size"]),
                platform=Platform(plat["os"], plat["architecture"], plat.get("variant")) if plat else None,
                annotations=dict(obj.get("annotations") or {}),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"invalid descriptor {obj!r}: missing or bad field {exc}") from None

    def to_json(self) -> dict:
        """The descriptor as its JSON object."""
        obj = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            obj["platform"] = {"architecture": self.platform.architecture, "os": self.platform.os}
            if self.platform.variant:
                obj["platform"]["variant"] = self.platform.variant
        if self.annotations:
            obj["annotations"] = dict(self.annotations)
        return obj

    @property
    def is_attestation(self) -> bool:
        """True for BuildKit's attestation entries (unknown/unknown platform), which are not images."""
        return ATTESTATION_ANNOTATION in self.annotations or (
            self.platform is not None and self.platform.os == "unknown"
        )


@dataclass(frozen=True)
class Manifest:
    """An image manifest: one config descriptor and the layer descriptors, bottom layer first."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    raw: bytes = field(repr=False, compare=False, default=b"")

    @property
    def digest(self) -> str:
        """The manifest's digest: sha256 of its exact bytes."""
        return sha256_digest(self.raw)


@dataclass(frozen=True)
class Index:
    """An OCI index or Docker manifest list: one manifest per platform."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    raw: bytes = field(repr=False, compare=False, default=b"")

    @property
    def digest(self) -> str:
        """The index's digest: sha256 of its exact bytes."""
        return sha256_digest(self.raw)

    @property
    def platforms(self) -> list[Platform]:
        """The platforms this index offers, attestation entries left out."""
        return [d.platform for d in self.manifests if d.platform and not d.is_attestation]

    def select(self, wanted: Platform | None = None) -> Descriptor:
        """The manifest descriptor for `wanted` (default: this machine), skipping attestations."""
        wanted = wanted or Platform.host()
        for desc in self.manifests:
            if desc.platform and not desc.is_attestation and wanted.matches(desc.platform):
                return desc
        offered = ", ".join(str(p) for p in self.platforms) or "none"
        raise PlatformNotFound(f"no manifest for {wanted} in this index (it offers: {offered})")


def parse_manifest(raw: bytes, content_type: str | None = None) -> Manifest | Index:
    """Parse manifest or index bytes; the media type comes from the JSON, else the Content-Type."""
    obj = _load_json(raw, "manifest")
    media_type = obj.get("mediaType") or (content_type or "").split(";")[0].strip()
    if not media_type and "manifests" in obj:
        media_type = OCI_INDEX
    elif not media_type and "config" in obj:
        media_type = OCI_MANIFEST
    if media_type in INDEX_TYPES:
        return Index(media_type, tuple(_descriptors(obj, "manifests")), raw)
    if media_type in MANIFEST_TYPES:
        if "config" not in obj:
            raise ManifestError("invalid manifest: no 'config' descriptor")
        config = Descriptor.from_json(obj["config"])
        return Manifest(media_type, config, tuple(_descriptors(obj, "layers")), raw)
    raise UnsupportedMediaType(
        f"unsupported manifest media type {media_type!r}: lxclab reads OCI and Docker schema 2 "
        "manifests and indexes"
    )


def _descriptors(obj: dict, key: str) -> list[Descriptor]:
    items = obj.get(key)
    if not isinstance(items, list):
        raise ManifestError(f"invalid manifest: {key!r} must be a list")
    return [Descriptor.from_json(item) for item in items]


def _load_json(raw: bytes, what: str) -> dict:
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"malformed {what} JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ManifestError(f"malformed {what} JSON: expected an object, got {type(obj).__name__}")
    return obj


@dataclass(frozen=True)
class HistoryEntry:
    """One build step from the config's history; empty-layer steps changed only metadata."""

    created_by: str
    created: str | None = None
    empty_layer: bool = False
    comment: str | None = None


@dataclass(frozen=True)
class ImageConfig:
    """The image config: how to run the image (Env, Cmd, ...) and its ancestry (history, DiffIDs)."""

    architecture: str
    os: str
    env: tuple[str, ...]
    cmd: tuple[str, ...]
    entrypoint: tuple[str, ...]
    working_dir: str
    user: str
    diff_ids: tuple[str, ...]
    history: tuple[HistoryEntry, ...]
    raw: bytes = field(repr=False, compare=False, default=b"")

    @classmethod
    def parse(cls, raw: bytes) -> ImageConfig:
        """Parse config bytes, checking that the rootfs lists layer DiffIDs and that the run settings are safe."""
        obj = _load_json(raw, "image config")
        run = _run_settings(obj.get("config") or {})
        rootfs = obj.get("rootfs") or {}
        if rootfs.get("type") != "layers" or not isinstance(rootfs.get("diff_ids"), list):
            raise ManifestError("invalid image config: rootfs must be {'type': 'layers', 'diff_ids': [...]}")
        history = obj.get("history") or []
        if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
            raise ManifestError("invalid image config: history must be a list of objects")
        return cls(
            architecture=obj.get("architecture", ""),
            os=obj.get("os", ""),
            **run,
            diff_ids=tuple(rootfs["diff_ids"]),
            history=tuple(
                HistoryEntry(h.get("created_by", ""), h.get("created"), bool(h.get("empty_layer")), h.get("comment"))
                for h in history
            ),
            raw=raw,
        )

    @property
    def digest(self) -> str:
        """The config's digest, which is also the image ID."""
        return sha256_digest(self.raw)

    @property
    def chain_ids(self) -> list[str]:
        """The ChainID of each layer: the identity of the whole stack up to and including it."""
        return chain_ids(self.diff_ids)

    @property
    def command(self) -> list[str]:
        """What the container runs by default: Entrypoint followed by Cmd."""
        return list(self.entrypoint) + list(self.cmd)

    def layer_history(self) -> list[tuple[HistoryEntry, str | None]]:
        """Each history entry with the DiffID of the layer it made (None for empty layers)."""
        layers = iter(self.diff_ids)
        return [(h, None if h.empty_layer else next(layers, None)) for h in self.history]


def _run_settings(run: object) -> dict:
    """The checked Env, Cmd, Entrypoint, WorkingDir and User of a config's `config` object.

    They reach LXC config keys and the container's process: a control character, a
    relative or unclean WorkingDir or a malformed User is refused here, at pull time.
    """
    if not isinstance(run, dict):
        raise InvalidImageConfig(f"invalid image config: 'config' must be an object, not {run!r}")
    try:
        env = validation.argv(run.get("Env") or [], "Env")
        return {
            "env": tuple("=".join(validation.env_entry(entry)) for entry in env),
            "cmd": validation.argv(run.get("Cmd") or [], "Cmd"),
            "entrypoint": validation.argv(run.get("Entrypoint") or [], "Entrypoint"),
            "working_dir": validation.working_dir(run.get("WorkingDir") or ""),
            "user": validation.user(run.get("User") or ""),
        }
    except InvalidValue as exc:
        raise InvalidImageConfig(f"image config refused: {exc}; the image cannot be pulled or run") from None


def chain_ids(diff_ids: list[str] | tuple[str, ...]) -> list[str]:
    """ChainIDs from DiffIDs: ChainID(L0) = DiffID(L0), ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    result: list[str] = []
    for diff_id in diff_ids:
        if not result:
            result.append(diff_id)
        else:
            result.append(sha256_digest(f"{result[-1]} {diff_id}".encode()))
    return result
