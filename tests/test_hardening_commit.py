"""Commit reads a container's upper directory without trusting it, and streams the layer to disk.

The upper directory belongs to the container: between the walk that lists it and the write
that reads each file, a path may be swapped for a symlink to a host file. The diff must
then fail, naming the path, store nothing, and never put the host file's bytes into the
layer. A layer of a big file is written one file at a time: the Python heap stays small.
"""

from __future__ import annotations

import io
import os
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from lxclab import tarball
from lxclab.engine.commit import store_diff
from lxclab.errors import DigestMismatch, UnsafeLayerEntry
from lxclab.layers.diff import diff_entries, write_diff
from lxclab.store import Store

MiB = 1024 * 1024
HOST_SECRET = b"host secret: never in a layer\n"


@pytest.fixture
def upper(tmp_path: Path) -> Path:
    """An upper directory as a container leaves it: a changed file in a directory, and a host file beside it."""
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc/motd").write_bytes(b"changed in the container\n")
    (tmp_path / "host-secret").write_bytes(HOST_SECRET)
    return upper


def members(blob: bytes) -> dict[str, bytes]:
    """Each regular file of a gzip tar layer with its bytes."""
    with tarfile.open(fileobj=io.BytesIO(blob)) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive if m.isfile()}


def test_a_file_swapped_for_a_symlink_after_the_walk_is_never_read(upper, tmp_path):
    entries = diff_entries(upper)
    (upper / "etc/motd").unlink()
    (upper / "etc/motd").symlink_to(tmp_path / "host-secret")
    out = io.BytesIO()
    with pytest.raises(UnsafeLayerEntry, match="etc/motd"):
        tarball.write_layer(entries, out)
    assert HOST_SECRET not in out.getvalue()


def test_a_directory_swapped_for_a_symlink_after_the_walk_is_never_entered(upper, tmp_path):
    entries = diff_entries(upper)
    (tmp_path / "host-etc").mkdir()
    (tmp_path / "host-etc/motd").write_bytes(HOST_SECRET)
    (upper / "etc").rename(tmp_path / "old-etc")
    (upper / "etc").symlink_to(tmp_path / "host-etc")
    with pytest.raises(UnsafeLayerEntry, match="following a symlink"):
        tarball.write_layer(entries, io.BytesIO())


def test_a_file_replaced_by_another_after_the_walk_is_refused(upper):
    entries = diff_entries(upper)
    (upper / "etc/motd").rename(upper / "motd.kept")  # still alive: the new file cannot reuse its inode
    (upper / "etc/motd").write_bytes(b"changed in the container\n")  # same size, another inode
    with pytest.raises(UnsafeLayerEntry, match="changed while its layer was written"):
        tarball.write_layer(entries, io.BytesIO())


def test_a_symlink_in_the_upper_dir_is_stored_as_a_link_not_followed(upper, tmp_path):
    (upper / "etc/shadow").symlink_to(tmp_path / "host-secret")
    (upper / "etc/host").symlink_to(tmp_path)  # a link to a host directory: not walked into
    layer = tarball.build_layer(diff_entries(upper))
    with tarfile.open(fileobj=io.BytesIO(layer.blob)) as archive:
        links = {m.name: m.linkname for m in archive if m.issym()}
    assert links == {"etc/shadow": str(tmp_path / "host-secret"), "etc/host": str(tmp_path)}
    assert HOST_SECRET not in b"".join(members(layer.blob).values())


def test_a_failed_commit_leaves_nothing_in_the_store(upper, tmp_path, monkeypatch):
    store = Store(tmp_path / "store")
    real_write_layer = tarball.write_layer

    def swap_then_write(entries, out, mtime):
        (upper / "etc/motd").unlink()
        (upper / "etc/motd").symlink_to(tmp_path / "host-secret")
        return real_write_layer(entries, out, mtime)

    monkeypatch.setattr(tarball, "write_layer", swap_then_write)
    with pytest.raises(UnsafeLayerEntry):
        store_diff(store, upper)
    assert list((store.root / "blobs/sha256").iterdir()) == [] and list((store.root / "tmp").iterdir()) == []


def test_the_streamed_layer_is_byte_for_byte_the_in_memory_one_and_lands_in_the_store(upper, tmp_path):
    (upper / "etc/big.bin").write_bytes(os.urandom(MiB) * 3)
    (upper / "etc/link").hardlink_to(upper / "etc/big.bin")
    in_memory = tarball.build_layer(diff_entries(upper))
    stored = store_diff(Store(tmp_path / "store"), upper)
    assert (stored.digest, stored.diff_id, stored.size) == (in_memory.digest, in_memory.diff_id, in_memory.size)
    assert stored.path.read_bytes() == in_memory.blob


def test_writing_a_big_layer_keeps_the_heap_small(upper, tmp_path):
    with open(upper / "etc/big.bin", "wb") as big:
        for _ in range(64):
            big.write(os.urandom(MiB))
    with open(tmp_path / "layer.tar.gz", "wb") as out:
        tracemalloc.start()
        try:
            write_diff(upper, out)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 8 * MiB, f"writing a 64 MiB layer took {peak / MiB:.1f} MiB of heap"


def test_the_store_adopts_a_file_only_when_its_digest_matches(tmp_path):
    store = Store(tmp_path / "store")
    fd, temp = store.temporary_file()
    os.write(fd, b"not what the digest says")
    os.close(fd)
    with pytest.raises(DigestMismatch, match="nothing was stored"):
        store.adopt(temp, "sha256:" + "0" * 64)
    assert not temp.exists() and not store.has("sha256:" + "0" * 64)
