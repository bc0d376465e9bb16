"""`docker commit`: what a container changed, as one new layer on top of its image, stored as a new image.

1. The layer: the container's overlay upper dir holds every file it created or changed,
   and a whiteout for every path it deleted; lxclab.layers.write_diff streams it, one file
   at a time, into a tar layer in the store's tmp folder (overlay whiteouts become OCI `.wh.`
   entries) with one fixed mtime, so the same changes always give the same bytes, and a
   layer of any size needs no more memory than a small one.
2. The config: the image's own config, with the layer's DiffID appended to
   `rootfs.diff_ids`, a history entry appended (the container's command as `created_by`),
   and `created` set. How the image runs (Env, Cmd, WorkingDir) stays as it was.
3. The manifest: the image's layer descriptors plus the new layer's, and the new config's.
4. Blobs into the store (each verified), then the image recorded under the new name, with
   the image it came from as its origin, so that `push` mounts the base layers from that
   repository instead of uploading them again.

Both runtimes write to an upper dir in overlay mode. Copy mode has none (the container's
root is a whole private tree, changes and all), so commit refuses it rather than guess.
A running container is refused too (Docker pauses it instead): while it runs it could swap
a file for a symlink to a host file between the walk and the read, and the host file would
go into the layer, and on push into the registry. Stop it first. Even so, every file is
read from a directory descriptor opened with O_NOFOLLOW and checked with fstat.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import AlreadyRunning, ContainerError
from ..layers import write_diff
from ..manifest import (DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_LAYER_GZIP, Descriptor, Manifest, canonical_json,
                        parse_manifest, sha256_digest)
from ..procfs import is_alive
from ..reference import parse
from ..store import Store, StoredImage
from ..tarball import DEFAULT_MTIME
from ..unionfs import OVERLAY
from .containers import RUNNING, ContainerRecord, find
from .create import find_image


@dataclass(frozen=True)
class CommittedLayer:
    """The layer a commit stored: its digest and size (compressed), its DiffID, and the blob's file."""

    digest: str
    size: int
    diff_id: str
    path: Path

    @property
    def blob(self) -> bytes:
        """The compressed bytes, read from the store."""
        return self.path.read_bytes()


@dataclass(frozen=True)
class Commit:
    """A committed image: the stored image and the layer made from the container's changes."""

    image: StoredImage
    layer: CommittedLayer


def timestamp(seconds: float | None = None) -> str:
    """An RFC 3339 UTC time as image configs write it, like 2024-01-01T00:00:00Z (default: now)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if seconds is None else seconds))


def next_config(config: bytes, diff_id: str, created_by: str, created: str, comment: str | None = None) -> bytes:
    """The config of an image one layer taller: `diff_id` and a history entry appended, `created` updated."""
    document = json.loads(config)
    document["rootfs"]["diff_ids"] = [*document["rootfs"]["diff_ids"], diff_id]
    entry = {"created": created, "created_by": created_by}
    if comment:
        entry["comment"] = comment
    document["history"] = [*document.get("history", []), entry]
    document["created"] = created
    return canonical_json(document)


def next_manifest(base: Manifest, config: Descriptor, layer: Descriptor) -> bytes:
    """The manifest of the image one layer taller: the base's layers, then `layer`; `config` as its config."""
    return canonical_json({
        "schemaVersion": 2,
        "mediaType": base.media_type,
        "config": config.to_json(),
        "layers": [descriptor.to_json() for descriptor in (*base.layers, layer)],
    })


def commit(name_or_id: str, ref: str, message: str | None = None, created: str | None = None,
           mtime: int = DEFAULT_MTIME) -> Commit:
    """Store a container's changes as a new image named `ref` (`docker commit`); the same changes give the same bytes.

    `created` is the config's time (default: now; give a fixed one for reproducible
    digests); `mtime` is every layer entry's. Needs root to read the overlay whiteouts.
    """
    container = find(name_or_id)
    upper = _upper_dir(container)
    base = find_image(container.config.image)
    store = Store()
    layer = store_diff(store, upper, mtime)
    config = next_config(base.config.raw, layer.diff_id, shlex.join(container.config.argv), created or timestamp(),
                         message)
    config_descriptor = Descriptor(base.manifest.config.media_type, sha256_digest(config), len(config))
    store.write(config, config_descriptor.digest)
    layer_type = DOCKER_LAYER_GZIP if base.manifest.media_type == DOCKER_MANIFEST else OCI_LAYER_GZIP
    raw = next_manifest(base.manifest, config_descriptor, Descriptor(layer_type, layer.digest, layer.size))
    manifest = parse_manifest(raw)
    image = store.record_image(parse(ref), manifest, base.platform, origin=base.origin or base.reference)
    return Commit(image, layer)


def store_diff(store: Store, upper: Path, mtime: int = DEFAULT_MTIME) -> CommittedLayer:
    """Stream the layer of `upper`'s changes into a file in the store's tmp folder, then into the store."""
    fd, temp = store.temporary_file("commit-")
    try:
        with os.fdopen(fd, "wb") as out:
            written = write_diff(upper, out, mtime)
            out.flush()
            os.fsync(out.fileno())
        path = store.adopt(temp, written.digest)
    finally:
        temp.unlink(missing_ok=True)
    return CommittedLayer(written.digest, written.size, written.diff_id, path)


def _upper_dir(container: ContainerRecord) -> Path:
    """The container's overlay upper dir; ContainerError in copy mode, with --userns, while it runs, or once gone."""
    if container.status == RUNNING or is_alive(container.state.pid):
        raise AlreadyRunning(f"container {container.name} is running: stop it first (lxclab stop {container.name}); "
                             "a running container could swap a file for a symlink to a host file while its "
                             "changes are read")
    if container.config.mode != OVERLAY:
        raise ContainerError(f"container {container.name} runs in {container.config.mode} mode: its root is a whole "
                             "private copy with no upper dir to tell its changes apart; commit needs overlay mode "
                             "(run it without --mode copy, as root)")
    if container.config.userns:
        raise ContainerError(f"container {container.name} runs with --userns: its upper dir holds host ids of its "
                             "range (like 100000), which a layer must not carry; commit a container run without "
                             "--userns")
    if not container.upper.is_dir():
        raise ContainerError(f"container {container.name} has no upper dir ({container.upper}): it never started; "
                             "start it first")
    return container.upper

