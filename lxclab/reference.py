"""Image references parsed the way Docker parses them.

`busybox` means `docker.io/library/busybox:latest`; `localhost:5000/lab/app:1.0@sha256:…`
names a registry with a port, a repository, a tag and a digest. A reference is pure data:
no network, no files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidReference

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DEFAULT_TAG = "latest"

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
_SHA256 = re.compile(r"sha256:[a-f0-9]{64}")
_HOST = re.compile(r"(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?")
_LOOPBACK_HOST = re.compile(r"(?:localhost|127(?:\.[0-9]{1,3}){3}|\[::1\])(?::[0-9]+)?")


@dataclass(frozen=True)
class Reference:
    """A parsed image reference: registry, repository, and a tag and/or a digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The full name without tag or digest, like `docker.io/library/busybox`."""
        return f"{self.registry}/{self.repository}"

    @property
    def identifier(self) -> str:
        """What to ask the registry's manifest endpoint for: the digest if known, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def api_host(self) -> str:
        """The host serving the registry API (Docker Hub's API lives on another host)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def is_loopback(self) -> bool:
        """True for a registry on this machine, which Docker talks to over plain HTTP."""
        return is_loopback(self.registry)

    def base_url(self, insecure: bool = False) -> str:
        """The registry's base URL: plain HTTP for loopback or insecure registries, else HTTPS."""
        return registry_base_url(self.registry, insecure)

    def with_tag(self, tag: str) -> Reference:
        """The same repository with another tag and no digest."""
        if not _TAG.fullmatch(tag):
            raise InvalidReference(f"invalid tag {tag!r}: use letters, digits, '_', '.', '-' (max 128)")
        return Reference(self.registry, self.repository, tag, None)

    def with_digest(self, digest: str) -> Reference:
        """The same repository pinned to a digest (the tag is kept for display)."""
        _check_digest(digest, str(self))
        return Reference(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def familiar(self) -> str:
        """The short form people type: `busybox:latest` rather than `docker.io/library/busybox:latest`."""
        text = str(self)
        for prefix in (f"{DOCKER_HUB}/library/", f"{DOCKER_HUB}/"):
            if text.startswith(prefix):
                return text[len(prefix):]
        return text


def is_loopback(registry: str) -> bool:
    """True if `registry` (host[:port]) is this machine: localhost, 127.x.y.z or [::1]."""
    return bool(_LOOPBACK_HOST.fullmatch(registry))


def registry_base_url(registry: str, insecure: bool = False) -> str:
    """The base URL of a registry's API: plain HTTP for loopback or insecure ones, else HTTPS."""
    host = DOCKER_HUB_API if registry in (DOCKER_HUB, "index.docker.io") else registry
    scheme = "http" if insecure or is_loopback(registry) else "https"
    return f"{scheme}://{host}"


def parse(text: str) -> Reference:
    """Parse an image reference Docker's way; the tag defaults to `latest` when no digest is given."""
    if not text or text != text.strip():
        raise InvalidReference(f"invalid reference {text!r}: empty or surrounded by spaces")
    rest, digest = _split_digest(text)
    registry, path = _split_registry(rest, text)
    path, tag = _split_tag(path, text)
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    _check_repository(path, text)
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(registry, path, tag, digest)


def _split_digest(text: str) -> tuple[str, str | None]:
    if "@" not in text:
        return text, None
    rest, digest = text.split("@", 1)
    _check_digest(digest, text)
    return rest, digest


def _split_registry(text: str, original: str) -> tuple[str, str]:
    first, sep, remainder = text.partition("/")
    is_host = sep and ("." in first or ":" in first or first == "localhost" or first.startswith("["))
    if not is_host:
        return DOCKER_HUB, text
    if not _HOST.fullmatch(first):
        raise InvalidReference(f"invalid registry host {first!r} in {original!r}")
    if first in ("index.docker.io", "registry-1.docker.io"):
        first = DOCKER_HUB
    return first, remainder


def _split_tag(path: str, original: str) -> tuple[str, str | None]:
    head, slash, last = path.rpartition("/")
    if ":" not in last:
        return path, None
    name, tag = last.split(":", 1)
    if not _TAG.fullmatch(tag):
        raise InvalidReference(f"invalid tag {tag!r} in {original!r}: use letters, digits, '_', '.', '-'")
    return head + slash + name, tag


def is_repository_name(name: str) -> bool:
    """True if `name` is a repository name by the distribution grammar (`lab/busybox`; never `a/../b`)."""
    return 0 < len(name) <= 255 and all(_COMPONENT.fullmatch(component) for component in name.split("/"))


def _check_repository(path: str, original: str) -> None:
    if not path or len(path) > 255:
        raise InvalidReference(f"invalid repository in {original!r}: empty or longer than 255 characters")
    if not is_repository_name(path):
        raise InvalidReference(
            f"invalid repository name {path!r} in {original!r}: "
            "components must be lowercase letters and digits, separated by '.', '_', '__' or '-'"
        )


def _check_digest(digest: str, original: str) -> None:
    if not _DIGEST.fullmatch(digest):
        raise InvalidReference(f"invalid digest {digest!r} in {original!r}: expected algorithm:hex")
    if digest.startswith("sha256:") and not _SHA256.fullmatch(digest):
        raise InvalidReference(f"invalid sha256 digest {digest!r} in {original!r}: expected 64 lowercase hex digits")
