"""An OCI image layout directory: `oci-layout`, `index.json` and `blobs/sha256/<hex>`.

This is the format skopeo (`oci:DIR:NAME`) and umoci (`--image DIR:NAME`) read and
write. Every blob is stored under its own digest and lands there by an atomic rename, so
a reader never sees half a blob. `index.json` names images with the annotation
`org.opencontainers.image.ref.name`; several images share one layout when their names
hold the repository too (`lab/busybox:latest`).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..errors import SeedError
from ..manifest import OCI_INDEX, Descriptor, canonical_json, sha256_digest

REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'


class OciLayout:
    """A directory in the OCI image layout format, created on first write."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def blob_path(self, digest: str) -> Path:
        """Where the blob named `digest` lives in this layout."""
        algorithm, _, hex_digest = digest.partition(":")
        if algorithm != "sha256" or len(hex_digest) != 64:
            raise SeedError(f"blob digest {digest!r}: expected sha256:<64 hex digits>")
        return self.root / "blobs" / "sha256" / hex_digest

    def write_blob(self, data: bytes) -> str:
        """Store `data` under its digest (atomically; a blob already there is kept) and return the digest."""
        digest = sha256_digest(data)
        path = self.blob_path(digest)
        if not path.exists():
            _write_atomically(path, data)
        return digest

    def read_blob(self, digest: str) -> bytes:
        """The bytes of a blob, checked against its digest."""
        path = self.blob_path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SeedError(f"OCI layout {self.root}: blob {digest} is missing; rebuild the layout") from None
        if sha256_digest(data) != digest:
            raise SeedError(f"OCI layout {self.root}: blob {digest} is corrupt; delete it and rebuild the layout")
        return data

    def write_refs(self, refs: dict[str, Descriptor]) -> None:
        """Write `index.json` naming each descriptor by its ref name (sorted, so the bytes are stable)."""
        _write_atomically(self.root / "oci-layout", LAYOUT_FILE)
        manifests = [_named(desc, name).to_json() for name, desc in sorted(refs.items())]
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        _write_atomically(self.root / "index.json", canonical_json(index))

    def refs(self) -> dict[str, Descriptor]:
        """The named descriptors in `index.json`, by ref name."""
        try:
            index = json.loads((self.root / "index.json").read_bytes())
        except (FileNotFoundError, json.JSONDecodeError) as exc:
            raise SeedError(f"OCI layout {self.root}: cannot read index.json ({exc}); rebuild the layout") from None
        descriptors = [Descriptor.from_json(item) for item in index.get("manifests", [])]
        return {d.annotations[REF_NAME]: d for d in descriptors if REF_NAME in d.annotations}


def _named(desc: Descriptor, name: str) -> Descriptor:
    return Descriptor(desc.media_type, desc.digest, desc.size, desc.platform, {**desc.annotations, REF_NAME: name})


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
