"""Build layer tars member by member (hostile ones included) and snapshot directory trees to compare them."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

import zstandard

from lxclab.classroom.ocilayout import OciLayout
from lxclab.manifest import ImageConfig, parse_manifest
from lxclab.unionfs import LayerSource

MTIME = 1_700_000_000


@dataclass
class Member:
    """One tar member: its header and its data."""

    info: tarfile.TarInfo
    data: bytes = b""


def _info(name: str, kind: bytes, mode: int, uid: int = 0, gid: int = 0, mtime: int = MTIME) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, mtime
    return info


def file(name: str, data: bytes = b"", mode: int = 0o644, uid: int = 0, gid: int = 0, mtime: int = MTIME,
         xattrs: dict[str, str] | None = None) -> Member:
    """A regular file member."""
    info = _info(name, tarfile.REGTYPE, mode, uid, gid, mtime)
    info.size = len(data)
    info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in (xattrs or {}).items()}
    return Member(info, data)


def directory(name: str, mode: int = 0o755, uid: int = 0, gid: int = 0, mtime: int = MTIME,
              xattrs: dict[str, str] | None = None) -> Member:
    """A directory member."""
    info = _info(name, tarfile.DIRTYPE, mode, uid, gid, mtime)
    info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in (xattrs or {}).items()}
    return Member(info)


def symlink(name: str, target: str, uid: int = 0, gid: int = 0, mtime: int = MTIME) -> Member:
    """A symlink member."""
    info = _info(name, tarfile.SYMTYPE, 0o777, uid, gid, mtime)
    info.linkname = target
    return Member(info)


def hardlink(name: str, target: str, mode: int = 0o644) -> Member:
    """A hardlink member naming `target`."""
    info = _info(name, tarfile.LNKTYPE, mode)
    info.linkname = target
    return Member(info)


def device(name: str, major: int, minor: int, char: bool = True, mode: int = 0o666) -> Member:
    """A character (or block) device member."""
    info = _info(name, tarfile.CHRTYPE if char else tarfile.BLKTYPE, mode)
    info.devmajor, info.devminor = major, minor
    return Member(info)


def fifo(name: str, mode: int = 0o644) -> Member:
    """A named pipe member."""
    return Member(_info(name, tarfile.FIFOTYPE, mode))


def raw(name: str, kind: bytes) -> Member:
    """A member of any tar type, even one no extractor knows."""
    return Member(_info(name, kind, 0o644))


def whiteout(path: str) -> Member:
    """The OCI whiteout deleting `path`."""
    parent, _, base = path.rpartition("/")
    return file(f"{parent}/.wh.{base}" if parent else f".wh.{base}")


def opaque(path: str) -> Member:
    """The OCI opaque marker of directory `path`."""
    return file(f"{path}/.wh..wh..opq" if path else ".wh..wh..opq")


def build_tar(members: list[Member]) -> bytes:
    """The tar holding `members` in the given order (PAX format)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for member in members:
            archive.addfile(member.info, io.BytesIO(member.data) if member.data else None)
    return buffer.getvalue()


def gz(data: bytes) -> bytes:
    """Gzip, reproducibly."""
    return gzip.compress(data, mtime=0)


def zst(data: bytes) -> bytes:
    """Zstandard."""
    return zstandard.ZstdCompressor().compress(data)


def diff_id(tar: bytes) -> str:
    """The DiffID of an uncompressed tar."""
    return "sha256:" + hashlib.sha256(tar).hexdigest()


def write_blob(directory_path: Path, name: str, data: bytes) -> Path:
    """Write a layer blob to a file and return its path."""
    path = directory_path / name
    path.write_bytes(data)
    return path


def _xattrs(path: Path) -> tuple:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return ()
    return tuple(sorted((n, os.getxattr(path, n, follow_symlinks=False)) for n in names
                        if not n.startswith("trusted.overlay.")))


def describe_entry(path: Path, st: os.stat_result, mtimes: bool = True) -> tuple:
    """Everything a tree comparison looks at for one path."""
    mode = st.st_mode
    content = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(mode) else None
    link = os.readlink(path) if stat.S_ISLNK(mode) else None
    rdev = st.st_rdev if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else None
    return (stat.S_IFMT(mode), stat.S_IMODE(mode), st.st_uid, st.st_gid, content, link, rdev, _xattrs(path),
            st.st_mtime_ns if mtimes else None)


def snapshot(root: Path, exclude: tuple[str, ...] = (), mtimes: bool = True) -> dict:
    """Every path under `root` (and `root` itself as '.') with its type, mode, owner, content, link, xattrs, mtime,
    plus the hardlink groups; links are never followed."""
    entries, inodes = {}, {}
    pending = [Path(root)]
    while pending:
        current = pending.pop()
        rel = os.path.relpath(current, root)
        if any(rel == e or rel.startswith(e + "/") for e in exclude):
            continue
        st = os.lstat(current)
        entries[rel] = describe_entry(current, st, mtimes)
        if stat.S_ISDIR(st.st_mode):
            pending.extend(current / name for name in os.listdir(current))
        elif st.st_nlink > 1:
            inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
    groups = frozenset(frozenset(paths) for paths in inodes.values() if len(paths) > 1)
    return {"entries": entries, "hardlinks": groups}


def differences(a: dict, b: dict) -> list[str]:
    """A readable list of what differs between two snapshots (empty when they are identical)."""
    found = [f"only in first: {p}" for p in sorted(set(a["entries"]) - set(b["entries"]))]
    found += [f"only in second: {p}" for p in sorted(set(b["entries"]) - set(a["entries"]))]
    found += [f"{p}: {a['entries'][p]} != {b['entries'][p]}" for p in sorted(set(a["entries"]) & set(b["entries"]))
              if a["entries"][p] != b["entries"][p]]
    if a["hardlinks"] != b["hardlinks"]:
        found.append(f"hardlink groups differ: {sorted(map(sorted, a['hardlinks']))} != "
                     f"{sorted(map(sorted, b['hardlinks']))}")
    return found


# --- whole images ------------------------------------------------------------------------
@dataclass
class BuiltImage:
    """An image made in a test: uncompressed layer tars, their blobs, config and manifest bytes."""

    tars: list[bytes]
    blobs: list[bytes]
    config: bytes
    manifest: bytes


def build_image(layers: list[list[Member]], created_by: list[str] | None = None, compress=gz,
                media_type: str = "application/vnd.oci.image.layer.v1.tar+gzip") -> BuiltImage:
    """An OCI image (config, manifest, layer blobs) from each layer's members, bottom first."""
    tars = [build_tar(members) for members in layers]
    return image_of(tars, [compress(tar) for tar in tars], created_by, media_type)


def image_of(tars: list[bytes], blobs: list[bytes], created_by: list[str] | None = None,
             media_type: str = "application/vnd.oci.image.layer.v1.tar+gzip") -> BuiltImage:
    """An OCI image (config, manifest) around layer tars and their blobs, bottom first."""
    history = [{"created_by": line} for line in (created_by or [f"layer {n}" for n in range(len(tars))])]
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id(t) for t in tars]}, "history": history,
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config),
                   "size": len(config)},
        "layers": [{"mediaType": media_type, "digest": sha256(b), "size": len(b)} for b in blobs],
    }).encode()
    return BuiltImage(tars, blobs, config, manifest)


def sha256(data: bytes) -> str:
    """The OCI digest of some bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_oci_layout(image: BuiltImage, layout: Path, tag: str) -> Path:
    """Write `image` as an OCI image layout (what umoci and skopeo read), tagged `tag`."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for data in [image.config, image.manifest, *image.blobs]:
        (blobs / sha256(data)[7:]).write_bytes(data)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256(image.manifest),
        "size": len(image.manifest), "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    (layout / "index.json").write_text(json.dumps(index))
    return layout


def sources(image: BuiltImage, where: Path, media_type: str | None = None) -> list[LayerSource]:
    """The layers of `image` written as blob files under `where`, as lxclab.unionfs takes them."""
    where.mkdir(parents=True, exist_ok=True)
    result = []
    for n, (blob, tar) in enumerate(zip(image.blobs, image.tars)):
        (where / f"layer{n}").write_bytes(blob)
        result.append(LayerSource(where / f"layer{n}", media_type, diff_id(tar), f"layer{n}"))
    return result


def layout_layers(layout_dir: Path, ref: str) -> list[LayerSource]:
    """The layers of the image `ref` in an OCI layout, bottom first, as lxclab.unionfs takes them."""
    layout = OciLayout(layout_dir)
    manifest = parse_manifest(layout.read_blob(layout.refs()[ref].digest))
    config = ImageConfig.parse(layout.read_blob(manifest.config.digest))
    return [LayerSource(layout.blob_path(d.digest), d.media_type, diff, d.digest[:19])
            for d, diff in zip(manifest.layers, config.diff_ids)]
