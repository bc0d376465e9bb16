"""A content-addressed store: every blob lives under its own sha256, verified before it lands.

Layout under the root (default `$LXCLAB_HOME/store`):

    blobs/sha256/<hex>     verified blobs: manifests, indexes, configs, layers
    tmp/<hex>.partial      a download in progress, kept so that a later pull resumes it
    tmp/<hex>.lock         held (flock) by whoever is downloading that blob, removed after
    images/<hex>.json      image records: reference → manifest digest, platform, index digest

A blob appears in `blobs/` only by an atomic rename after its digest was checked, so a
reader never sees half a blob and a failed download leaves `blobs/` unchanged.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .errors import DigestMismatch, ImageNotFound, StoreError
from .manifest import ImageConfig, Index, Manifest, Platform, parse_manifest, verify_digest
from .reference import Reference, parse

_SHA256 = re.compile(r"sha256:([a-f0-9]{64})")


@dataclass(frozen=True)
class StoredImage:
    """A pulled image: its reference, manifest, config, platform and layer files (bottom first)."""

    reference: Reference
    manifest: Manifest
    config: ImageConfig
    index_digest: str | None
    platform: Platform
    layer_paths: list[Path]
    origin: Reference | None = None  # where it was pulled from, when it was tagged under another name

    @property
    def digest(self) -> str:
        """The manifest digest, what `lxclab pull` prints and a registry names the image by."""
        return self.manifest.digest

    @property
    def id(self) -> str:
        """The image ID: the digest of its config."""
        return self.manifest.config.digest

    @property
    def size(self) -> int:
        """The compressed size of the layers, as stored."""
        return sum(layer.size for layer in self.manifest.layers)


class Store:
    """A content-addressed blob store plus the records of pulled images."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else paths.store_dir()
        for sub in ("blobs/sha256", "tmp", "images"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def has(self, digest: str) -> bool:
        """True if the blob with this digest is stored (and therefore was verified)."""
        return self._blob_path(digest).is_file()

    def path(self, digest: str) -> Path:
        """The file holding a stored blob; StoreError if it is not stored."""
        path = self._blob_path(digest)
        if not path.is_file():
            raise StoreError(f"blob {digest} is not in the store at {self.root}: pull the image that uses it")
        return path

    def read(self, digest: str) -> bytes:
        """The bytes of a stored blob."""
        return self.path(digest).read_bytes()

    def write(self, data: bytes, digest: str) -> Path:
        """Verify `data` against `digest`, then store it by an atomic rename (a no-op if already stored)."""
        verify_digest(data, digest, f"blob {digest}")
        target = self._blob_path(digest)
        if not target.is_file():
            fd, temp = self.temporary_file(digest[7:19])
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                os.fsync(out.fileno())
            os.replace(temp, target)
        return target

    def adopt(self, source: Path, digest: str) -> Path:
        """Move the file `source` into the store as blob `digest` after hashing it; a mismatch removes it, stores nothing."""
        target = self._blob_path(digest)
        hasher = hashlib.sha256()
        with open(source, "rb") as data:
            while chunk := data.read(1 << 20):
                hasher.update(chunk)
        actual = "sha256:" + hasher.hexdigest()
        if actual != digest:
            os.unlink(source)
            raise DigestMismatch(f"blob {digest}: {source} has digest {actual}; nothing was stored")
        os.replace(source, target)
        return target

    def temporary_file(self, digest_hint: str = "new") -> tuple[int, Path]:
        """A new file in the store's tmp folder (same filesystem as the blobs), as (descriptor, path)."""
        fd, temp = tempfile.mkstemp(dir=self.root / "tmp", prefix=digest_hint, suffix=".new")
        return fd, Path(temp)

    def ingest(self, digest: str, size: int | None = None) -> Ingest:
        """A locked, resumable writer for one blob; use it as a context manager."""
        self._blob_path(digest)
        return Ingest(self, digest, size)

    def blob_path_for(self, digest: str) -> Path:
        """Where a blob with this digest lives once stored (whether or not it is there yet)."""
        return self._blob_path(digest)

    def _blob_path(self, digest: str) -> Path:
        match = _SHA256.fullmatch(digest)
        if not match:
            raise StoreError(f"cannot store {digest!r}: the store holds sha256 digests only (sha256:<64 hex>)")
        return self.root / "blobs" / "sha256" / match.group(1)

    # --- image records --------------------------------------------------------------------
    def record_image(
        self, reference: Reference, manifest: Manifest, platform: Platform, index: Index | None = None,
        origin: Reference | None = None,
    ) -> StoredImage:
        """Remember that `reference` names this manifest (and index); its config and layers must be stored."""
        self.write(manifest.raw, manifest.digest)
        if index is not None:
            self.write(index.raw, index.digest)
        record = {
            "reference": str(reference),
            "manifest": manifest.digest,
            "index": index.digest if index is not None else None,
            "platform": str(platform),
            "origin": str(origin) if origin else None,
        }
        image = self._load(record)
        self._write_record(record)
        return image

    def tag(self, source: str | Reference, target: str | Reference) -> StoredImage:
        """Give a stored image a second name, as `docker tag` does, remembering where it came from."""
        image = self.image(source)
        target_ref = parse(target) if isinstance(target, str) else target
        index = parse_manifest(self.read(image.index_digest)) if image.index_digest else None
        origin = image.origin or image.reference
        return self.record_image(target_ref, image.manifest, image.platform, index, origin)

    def untag(self, ref: str | Reference) -> None:
        """Forget the name `ref`; the blobs stay until garbage collection."""
        reference = parse(ref) if isinstance(ref, str) else ref
        record_file = self._record_path(str(reference))
        if not record_file.is_file():
            raise ImageNotFound(f"no image is named {reference.familiar} in the store at {self.root}")
        record_file.unlink()

    def images(self) -> list[StoredImage]:
        """Every recorded image, sorted by reference."""
        records = [json.loads(p.read_text()) for p in (self.root / "images").glob("*.json")]
        return [self._load(r) for r in sorted(records, key=lambda r: r["reference"])]

    def image(self, ref: str | Reference) -> StoredImage:
        """The stored image named `ref` (by tag, or by manifest or index digest)."""
        reference = parse(ref) if isinstance(ref, str) else ref
        record_file = self._record_path(str(reference))
        if record_file.is_file():
            return self._load(json.loads(record_file.read_text()))
        for image in self.images() if reference.digest else ():
            same_name = image.reference.name == reference.name
            if same_name and reference.digest in (image.digest, image.index_digest):
                return image
        raise ImageNotFound(f"image {reference.familiar} is not in the store at {self.root}: run `lxclab pull {reference.familiar}`")

    def _load(self, record: dict) -> StoredImage:
        manifest = parse_manifest(self.read(record["manifest"]))
        if not isinstance(manifest, Manifest):
            raise StoreError(f"record for {record['reference']} points at an index, not an image manifest")
        return StoredImage(
            reference=parse(record["reference"]),
            manifest=manifest,
            config=ImageConfig.parse(self.read(manifest.config.digest)),
            index_digest=record["index"],
            platform=Platform.parse(record["platform"]),
            layer_paths=[self.path(layer.digest) for layer in manifest.layers],
            origin=parse(record["origin"]) if record.get("origin") else None,
        )

    def _write_record(self, record: dict) -> None:
        target = self._record_path(record["reference"])
        fd, temp = tempfile.mkstemp(dir=self.root / "tmp", suffix=".json")
        with os.fdopen(fd, "w") as out:
            json.dump(record, out, indent=2)
        os.replace(temp, target)

    def _record_path(self, reference: str) -> Path:
        return self.root / "images" / (hashlib.sha256(reference.encode()).hexdigest() + ".json")


class Ingest:
    """One blob being written: holds the blob's lock, resumes its partial file, verifies, renames."""

    def __init__(self, store: Store, digest: str, size: int | None):
        self.store, self.digest, self.size = store, digest, size
        stem = store.root / "tmp" / digest[7:]
        self.partial, self._lock_path = stem.with_suffix(".partial"), stem.with_suffix(".lock")
        self._lock = self._file = self._hasher = None
        self.offset = 0  # bytes written so far: where a resumed download starts (counted, not asked of the file)

    def __enter__(self) -> Ingest:
        self._lock = self._acquire_lock()
        if not self.done:
            self._open_partial()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._file:
            self._file.close()
        if self.partial.is_file() and self.partial.stat().st_size == 0:
            self.partial.unlink()
        self._lock_path.unlink(missing_ok=True)
        self._lock.close()

    def _acquire_lock(self):
        """Hold an flock on the lock file; retry if its holder removed it while we waited."""
        while True:
            lock = open(self._lock_path, "a")
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if os.stat(self._lock_path).st_ino == os.fstat(lock.fileno()).st_ino:
                    return lock
            except FileNotFoundError:
                pass
            lock.close()

    @property
    def done(self) -> bool:
        """True once the blob is in the store (perhaps put there by another puller while we waited)."""
        return self.store.has(self.digest)

    def write(self, chunk: bytes) -> None:
        """Append a chunk, hashing it on the way."""
        self._file.write(chunk)
        self._hasher.update(chunk)
        self.offset += len(chunk)

    def restart(self) -> None:
        """Throw away what was written and start from byte 0 (the server ignored our Range)."""
        self._file.seek(0)
        self._file.truncate()
        self._hasher = hashlib.sha256()
        self.offset = 0

    def commit(self) -> Path:
        """Check the digest of everything written, then rename the file into the store."""
        actual = "sha256:" + self._hasher.hexdigest()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        if actual != self.digest:
            self.partial.unlink(missing_ok=True)
            raise DigestMismatch(f"blob {self.digest}: got content with digest {actual}; nothing was stored")
        target = self.store.blob_path_for(self.digest)
        os.replace(self.partial, target)
        return target

    def _open_partial(self) -> None:
        self._file = open(self.partial, "a+b")
        self._hasher = hashlib.sha256()
        if self.size is not None and self._file.tell() > self.size:
            self.restart()
        self._file.seek(0)
        while chunk := self._file.read(1 << 20):
            self._hasher.update(chunk)
            self.offset += len(chunk)
