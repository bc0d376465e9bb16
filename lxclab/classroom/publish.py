"""Push the images of an OCI layout to a registry, in the order a registry accepts them.

A registry refuses a manifest whose blobs it does not hold, and an index whose child
manifests it does not hold. So for each named image (`lab/busybox:latest`): first its
config and layer blobs (a blob already pushed to another repository in this run is
mounted across instead of uploaded again), then each manifest by its digest, then the
index, and only then the tag.
"""

from __future__ import annotations

from ..errors import SeedError
from ..manifest import Descriptor, Index, parse_manifest
from ..registry import RegistryClient
from .ocilayout import OciLayout


def split_name(name: str) -> tuple[str, str]:
    """Split a layout ref name `lab/busybox:latest` into repository and tag."""
    repository, colon, tag = name.rpartition(":")
    if not colon or not repository or "/" in tag:
        raise SeedError(f"layout image name {name!r}: expected REPOSITORY:TAG, like lab/busybox:latest")
    return repository, tag


def push_layout(layout: OciLayout, client: RegistryClient, names: list[str] | None = None) -> dict[str, str]:
    """Push the named images of `layout` (default: all) and return each name's pushed digest."""
    refs = layout.refs()
    missing = sorted(set(names or ()) - set(refs))
    if missing:
        raise SeedError(f"OCI layout {layout.root} has no image named {', '.join(missing)}; rebuild it")
    pusher = LayoutPusher(layout, client)
    return {name: pusher.push_tag(*split_name(name), refs[name]) for name in sorted(names or refs)}


class LayoutPusher:
    """Pushes images from one layout through one client, never sending the same thing twice."""

    def __init__(self, layout: OciLayout, client: RegistryClient) -> None:
        self.layout, self.client = layout, client
        self._blob_homes: dict[str, str] = {}  # digest -> the first repository it was pushed to
        self._done: set[tuple[str, str]] = set()  # (repository, digest) already in the registry

    def push_tag(self, repository: str, tag: str, descriptor: Descriptor) -> str:
        """Push everything `descriptor` points to, then tag it; returns its digest."""
        raw = self._push_content(repository, descriptor)
        return self.client.put_manifest(repository, tag, raw, descriptor.media_type)

    def _push_content(self, repository: str, descriptor: Descriptor) -> bytes:
        """Push what a manifest or index refers to (children by digest); return its own bytes."""
        raw = self.layout.read_blob(descriptor.digest)
        document = parse_manifest(raw, descriptor.media_type)
        if isinstance(document, Index):
            for child in document.manifests:
                self._push_manifest(repository, child)
        else:
            for blob in (document.config, *document.layers):
                self._push_blob(repository, blob.digest)
        return raw

    def _push_manifest(self, repository: str, descriptor: Descriptor) -> None:
        if (repository, descriptor.digest) in self._done:
            return
        raw = self._push_content(repository, descriptor)
        self.client.put_manifest(repository, descriptor.digest, raw, descriptor.media_type)
        self._done.add((repository, descriptor.digest))

    def _push_blob(self, repository: str, digest: str) -> None:
        if (repository, digest) in self._done:
            return
        home = self._blob_homes.setdefault(digest, repository)
        if home == repository or not self.client.mount_blob(repository, digest, home):
            self.client.push_blob(repository, digest, self.layout.blob_path(digest))
        self._done.add((repository, digest))
