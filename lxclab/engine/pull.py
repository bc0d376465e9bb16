"""`docker pull`, step by step: reference → manifest (via an index) → config → layers → store.

Each step uses the registry client, which verifies every digest; the image is recorded in
the store only after its config and every layer are stored, so a failed pull records
nothing and leaves no half-written blob.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..errors import ManifestError, PlatformNotFound, UnsupportedMediaType
from ..manifest import CONFIG_TYPES, LAYER_TYPES, ImageConfig, Index, Manifest, Platform
from ..reference import Reference, parse
from ..store import Store, StoredImage

if TYPE_CHECKING:  # the registry stack (httpx) and tqdm load only when a pull runs: `lxclab run` of a stored image needs neither
    from ..progress import Progress
    from ..registry import RegistryClient

PARALLEL_DOWNLOADS = 3  # layers fetched at once, as Docker does


def pull(
    ref: str | Reference,
    platform: Platform | None = None,
    store: Store | None = None,
    credentials: tuple[str, str] | None = None,
    insecure: bool = False,
    progress: Progress | None = None,
) -> StoredImage:
    """Pull an image into the store for `platform` (default: this machine) and record it under `ref`."""
    from ..registry import RegistryClient, credentials as saved_credentials

    reference = parse(ref) if isinstance(ref, str) else ref
    store = store or Store()
    credentials = credentials or saved_credentials.lookup(reference.registry)
    with RegistryClient(reference.registry, credentials, insecure) as client:
        manifest, index, chosen = resolve(client, reference, platform)
        config = fetch_config(client, reference.repository, manifest, store)
        image_platform = chosen or _config_platform(config)
        if platform and not platform.matches(image_platform):
            raise PlatformNotFound(f"{reference.familiar} is an image for {image_platform}, not for {platform}")
        fetch_layers(client, reference.repository, manifest, store, progress)
    return store.record_image(reference, manifest, image_platform, index)


def resolve(
    client: RegistryClient, reference: Reference, platform: Platform | None = None
) -> tuple[Manifest, Index | None, Platform | None]:
    """The image manifest `reference` names: through its index for `platform` if it names an index."""
    top = client.get_manifest(reference.repository, reference.identifier)
    if isinstance(top, Manifest):
        return top, None, None
    chosen = top.select(platform)
    manifest = client.get_manifest(reference.repository, chosen.digest)
    if not isinstance(manifest, Manifest):
        raise ManifestError(f"{reference.familiar}: the index entry for {chosen.platform} is another index")
    if len(manifest.raw) != chosen.size:
        raise ManifestError(f"{reference.familiar}: manifest {chosen.digest} is {len(manifest.raw)} bytes, index says {chosen.size}")
    return manifest, top, chosen.platform


def fetch_config(client: RegistryClient, repository: str, manifest: Manifest, store: Store) -> ImageConfig:
    """Download (or find) the image config: the image's history, DiffIDs and run settings."""
    if manifest.config.media_type not in CONFIG_TYPES:
        raise UnsupportedMediaType(f"config media type {manifest.config.media_type!r} is not an image config")
    path = client.fetch_blob(repository, manifest.config, store)
    config = ImageConfig.parse(path.read_bytes())
    if len(config.diff_ids) != len(manifest.layers):
        raise ManifestError(
            f"manifest {manifest.digest} lists {len(manifest.layers)} layers but its config has {len(config.diff_ids)} DiffIDs"
        )
    return config


def fetch_layers(
    client: RegistryClient, repository: str, manifest: Manifest, store: Store, progress: Progress | None = None
) -> None:
    """Download every layer not yet stored, a few at a time, each verified against its digest."""
    unknown = [layer.media_type for layer in manifest.layers if layer.media_type not in LAYER_TYPES]
    if unknown:
        raise UnsupportedMediaType(f"manifest {manifest.digest} has layers of unknown media type {unknown[0]!r}")
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(PARALLEL_DOWNLOADS) as pool:
        list(pool.map(lambda layer: client.fetch_blob(repository, layer, store, progress), manifest.layers))


def _config_platform(config: ImageConfig) -> Platform:
    """The platform an image config declares (os, architecture and the optional variant)."""
    variant = json.loads(config.raw).get("variant")
    return Platform(config.os or "linux", config.architecture or "amd64", variant)
