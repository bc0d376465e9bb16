"""`docker push`, step by step: blobs first, then the manifest that names them, then any index.

A registry refuses a manifest whose blobs it lacks, and an index whose child manifests it
lacks, so the order is always bottom up. A blob the repository already has is skipped; one
that another repository on the same registry has is mounted instead of uploaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..manifest import Index, parse_manifest
from ..reference import Reference, parse
from ..store import Store

if TYPE_CHECKING:  # the registry stack (httpx) loads only when a push runs
    from ..registry import RegistryClient

BlobSource = Callable[[str], "Path | bytes"]


def push(
    ref: str | Reference,
    store: Store | None = None,
    credentials: tuple[str, str] | None = None,
    source: str | Reference | None = None,
    chunk_size: int | None = None,
) -> str:
    """Push the stored image `ref` (or the one stored as `source`) to `ref`'s registry; returns the manifest digest.

    Blobs are mounted from the repository the image was pulled from when it is on the same registry.
    """
    from ..registry import RegistryClient, credentials as saved_credentials

    target = parse(ref) if isinstance(ref, str) else ref
    origin = parse(source) if isinstance(source, str) else source
    store = store or Store()
    image = store.image(origin or target)
    home = image.origin or image.reference
    mount_from = home.repository if home.registry == target.registry and home.repository != target.repository else None
    credentials = credentials or saved_credentials.lookup(target.registry)
    with RegistryClient(target.registry, credentials) as client:
        digest = push_content(
            client, target.repository, target.tag or image.digest, image.manifest.raw,
            image.manifest.media_type, store.path, chunk_size=chunk_size, mount_from=mount_from,
        )
    if origin:
        store.tag(origin, target)
    return digest


def push_content(
    client: RegistryClient,
    repository: str,
    reference: str,
    raw: bytes,
    media_type: str,
    blob_source: BlobSource,
    chunk_size: int | None = None,
    mount_from: str | None = None,
) -> str:
    """Push a manifest or index and everything below it, bottom up; `blob_source` maps a digest to its bytes or file."""
    document = parse_manifest(raw, media_type)
    if isinstance(document, Index):
        for child in document.manifests:
            child_raw = _read(blob_source(child.digest))
            push_content(client, repository, child.digest, child_raw, child.media_type, blob_source, chunk_size, mount_from)
    else:
        for blob in (document.config, *document.layers):
            push_blob(client, repository, blob.digest, blob_source(blob.digest), chunk_size, mount_from)
    return client.put_manifest(repository, reference, raw, media_type)


def push_blob(
    client: RegistryClient,
    repository: str,
    digest: str,
    source: Path | bytes,
    chunk_size: int | None = None,
    mount_from: str | None = None,
) -> str:
    """Make sure `repository` has a blob: mounted from `mount_from` if possible, skipped if present, else uploaded."""
    if mount_from and mount_from != repository and client.mount_blob(repository, digest, mount_from):
        return "mounted"
    return "uploaded" if client.push_blob(repository, digest, source, chunk_size) else "exists"


def _read(source: Path | bytes) -> bytes:
    return source if isinstance(source, bytes) else Path(source).read_bytes()
