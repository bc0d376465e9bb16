"""Layers that try to exhaust memory or disk: compression bombs and giant tar extension headers.

Each bomb is built here as a gzip of zeros, streamed to a file (a few hundred KiB on disk,
hundreds of MiB inflated). Applying it must fail with LayerTooLarge naming the layer,
leave the root exactly as it was (no staging directory either), and allocate little
memory while doing so (tracemalloc measures the Python heap's peak).
"""

from __future__ import annotations

import gzip
import io
import tarfile
import tracemalloc
from pathlib import Path

import pytest
from fixture_layers import build_tar, diff_id, differences, file, gz, snapshot

from lxclab.errors import LayerError, LayerTooLarge
from lxclab.layers import apply_layer, read_entries
from lxclab.layers.stream import MAX_HEADER_BYTES

MiB = 1024 * 1024
BASE = [file("etc/motd", b"hello\n")]


def write_bomb(path: Path, header: tarfile.TarInfo, inflated: int) -> Path:
    """A gzip file: one tar header, then `inflated` zero bytes (its data), streamed so memory stays small."""
    with gzip.GzipFile(path, "wb", compresslevel=6, mtime=0) as out:
        out.write(header.tobuf(tarfile.GNU_FORMAT))
        zeros = bytes(MiB)
        for _ in range(inflated // MiB):
            out.write(zeros)
    return path


def zero_file(size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo("zeros.bin")
    info.size, info.mode = size, 0o644
    return info


def extended_header(kind: bytes, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo("././@LongLink" if kind in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK) else "pax")
    info.type, info.size = kind, size
    return info


@pytest.fixture
def root(tmp_path) -> Path:
    target = tmp_path / "root"
    (tmp_path / "base.tar.gz").write_bytes(gz(build_tar(BASE)))
    apply_layer(tmp_path / "base.tar.gz", target, name="base")
    return target


def refused_cheaply(root: Path, blob: Path, pattern: str, **options) -> None:
    """Apply `blob`: LayerTooLarge matching `pattern`, the root unchanged, a small heap peak."""
    before = snapshot(root)
    tracemalloc.start()
    try:
        with pytest.raises(LayerTooLarge, match=pattern):
            apply_layer(blob, root, name="bomb", **options)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert differences(before, snapshot(root)) == []
    assert peak < 24 * MiB, f"extraction allocated {peak} bytes"


def test_a_compression_bomb_stops_at_the_bound(root, tmp_path):
    blob = write_bomb(tmp_path / "bomb.tar.gz", zero_file(256 * MiB), 256 * MiB)
    assert blob.stat().st_size < MiB
    refused_cheaply(root, blob, rf"layer bomb: its uncompressed stream is larger than {16 * MiB} bytes.*"
                                r"LXCLAB_MAX_LAYER_BYTES", max_bytes=16 * MiB)


def test_the_bound_comes_from_the_environment(root, tmp_path, monkeypatch):
    blob = write_bomb(tmp_path / "bomb.tar.gz", zero_file(64 * MiB), 64 * MiB)
    monkeypatch.setenv("LXCLAB_MAX_LAYER_BYTES", str(8 * MiB))
    refused_cheaply(root, blob, rf"larger than {8 * MiB} bytes")
    with pytest.raises(LayerTooLarge, match="layer bomb"):
        read_entries(blob, name="bomb")
    monkeypatch.setenv("LXCLAB_MAX_LAYER_BYTES", "lots")
    with pytest.raises(LayerError, match="LXCLAB_MAX_LAYER_BYTES='lots' is not a positive number"):
        apply_layer(blob, root, name="bomb")


def test_a_layer_of_exactly_the_bound_applies(root, tmp_path):
    tar = build_tar([file("data.bin", bytes(3 * MiB))])
    (tmp_path / "exact.tar.gz").write_bytes(gz(tar))
    report = apply_layer(tmp_path / "exact.tar.gz", root, expected_diff_id=diff_id(tar), name="exact", max_bytes=len(tar))
    assert report.diff_id == diff_id(tar) and (root / "data.bin").stat().st_size == 3 * MiB
    with pytest.raises(LayerTooLarge, match="layer again"):
        apply_layer(tmp_path / "exact.tar.gz", root, name="again", max_bytes=len(tar) - 1)


@pytest.mark.parametrize("kind", [tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE,
                                  tarfile.XGLTYPE])
def test_a_giant_extension_header_is_refused_unread(root, tmp_path, kind):
    blob = write_bomb(tmp_path / "header.tar.gz", extended_header(kind, 512 * MiB), 64 * MiB)  # read whole, 64 MiB would show
    refused_cheaply(root, blob, rf"layer bomb: a '{kind.decode()}' tar header of {512 * MiB} bytes, "
                                rf"above the limit of {MAX_HEADER_BYTES}")


def test_long_names_and_pax_records_below_the_limit_still_work(root, tmp_path):
    deep = "/".join(["d" * 200] * 10) + "/f"
    member = file(deep, b"x", xattrs={"user.note": "n" * 4000})
    for form in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        tar_path = tmp_path / f"long-{form}.tar"
        with tarfile.open(tar_path, "w", format=form) as tar:
            tar.addfile(member.info, io.BytesIO(member.data))
        entries = read_entries(tar_path, name="long")
        assert entries[-1].path == deep
