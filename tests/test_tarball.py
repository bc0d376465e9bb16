"""The deterministic tar-layer writer, checked by reading its output back and by GNU tar as an oracle."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import random
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from lxclab import tarball
from lxclab.errors import LayerError


def sample_entries() -> list[tarball.Entry]:
    """A small layer with every kind of entry, listed out of order on purpose."""
    return [
        tarball.hardlink("app/bin/greet", "app/bin/hello"),  # sorts before its target
        tarball.regular_file("app/bin/hello", b"#!/bin/sh\necho hello\n", 0o755),
        tarball.directory("tmp", 0o1777),
        tarball.symlink("bin/sh", "/bin/busybox"),
        tarball.directory("app"),
        tarball.directory("app/bin"),
        tarball.regular_file("app/bin/su", b"not really su\n", 0o4755),
        tarball.directory("shared", 0o2775, uid=1000, gid=100),
        tarball.whiteout("etc/motd"),
        tarball.opaque("app/docs"),
        tarball.directory("bin"),
        tarball.directory("etc"),
    ]


def members(layer: tarball.Layer) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(layer.blob), mode="r:gz") as archive:
        return archive.getmembers()


def test_entries_are_sorted_with_hardlinks_after_every_file() -> None:
    names = [m.name for m in members(tarball.build_layer(sample_entries()))]
    assert names[-1] == "app/bin/greet"
    assert names[:-1] == sorted(names[:-1])
    assert names.index("app/bin/hello") < names.index("app/bin/greet")


def test_same_entries_in_any_order_give_the_same_bytes() -> None:
    shuffled = sample_entries()
    random.Random(7).shuffle(shuffled)
    first, second = tarball.build_layer(sample_entries()), tarball.build_layer(shuffled)
    assert first.blob == second.blob
    assert first.diff_id == second.diff_id


def test_gzip_header_has_no_time_and_diff_id_names_the_tar() -> None:
    layer = tarball.build_layer(sample_entries())
    assert layer.blob[:3] == b"\x1f\x8b\x08"
    assert layer.blob[4:8] == b"\x00\x00\x00\x00"  # MTIME field
    assert layer.blob[3] == 0  # FLG: no file name, no comment
    tar = gzip.decompress(layer.blob)
    assert layer.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    assert layer.digest == "sha256:" + hashlib.sha256(layer.blob).hexdigest()
    assert layer.size == len(layer.blob)


def test_compression_level_changes_the_blob_not_the_diff_id() -> None:
    data = [tarball.regular_file("words", b"layer " * 10000)]
    fast, best = tarball.build_layer(data, level=1), tarball.build_layer(data, level=9)
    assert fast.diff_id == best.diff_id
    assert fast.blob != best.blob


def test_modes_owners_and_times_are_fixed_or_kept() -> None:
    by_name = {m.name: m for m in members(tarball.build_layer(sample_entries(), mtime=1234567890))}
    assert by_name["tmp"].mode == 0o1777 and by_name["tmp"].isdir()
    assert by_name["app/bin/su"].mode == 0o4755
    assert by_name["app/bin/hello"].mode == 0o755
    assert (by_name["shared"].mode, by_name["shared"].uid, by_name["shared"].gid) == (0o2775, 1000, 100)
    assert {m.mtime for m in by_name.values()} == {1234567890}
    assert {(m.uid, m.gid, m.uname, m.gname) for n, m in by_name.items() if n != "shared"} == {(0, 0, "", "")}


def test_links_whiteouts_and_opaque_markers() -> None:
    by_name = {m.name: m for m in members(tarball.build_layer(sample_entries()))}
    assert by_name["bin/sh"].issym() and by_name["bin/sh"].linkname == "/bin/busybox"
    assert by_name["app/bin/greet"].islnk() and by_name["app/bin/greet"].linkname == "app/bin/hello"
    assert by_name["etc/.wh.motd"].isfile() and by_name["etc/.wh.motd"].size == 0
    assert by_name["app/docs/.wh..wh..opq"].isfile()


def test_gnu_tar_extracts_modes_and_a_shared_inode(tmp_path: Path) -> None:
    layer_file = tmp_path / "layer.tar.gz"
    layer_file.write_bytes(tarball.build_layer(sample_entries()).blob)
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(["tar", "-xzpf", str(layer_file), "-C", str(root)], check=True)
    assert stat.S_IMODE(os.stat(root / "tmp").st_mode) == 0o1777
    assert stat.S_IMODE(os.stat(root / "app/bin/su").st_mode) == 0o4755
    assert os.stat(root / "app/bin/greet").st_ino == os.stat(root / "app/bin/hello").st_ino
    assert os.readlink(root / "bin/sh") == "/bin/busybox"


def test_file_contents_can_come_from_disk(tmp_path: Path) -> None:
    source = tmp_path / "big"
    source.write_bytes(b"x" * 100_000)
    from_disk = tarball.build_layer([tarball.regular_file("big", source)])
    in_memory = tarball.build_layer([tarball.regular_file("big", b"x" * 100_000)])
    assert from_disk.blob == in_memory.blob


def test_long_paths_are_written_whole_and_deterministically() -> None:
    deep = "/".join(["directory-with-a-long-name"] * 8) + "/file"
    first = tarball.build_layer([tarball.regular_file(deep, b"deep")])
    assert [m.name for m in members(first)] == [deep]
    assert tarball.build_layer([tarball.regular_file(deep, b"deep")]).blob == first.blob


@pytest.mark.parametrize("path", ["../etc/passwd", "a/../../b", "/", "."])
def test_paths_that_leave_the_root_are_refused(path: str) -> None:
    with pytest.raises(LayerError, match="inside the root"):
        tarball.regular_file(path, b"")


def test_absolute_paths_are_made_relative() -> None:
    assert tarball.regular_file("/etc/passwd", b"").path == "etc/passwd"


def test_a_path_given_twice_is_refused() -> None:
    with pytest.raises(LayerError, match="appears twice"):
        tarball.build_layer([tarball.directory("etc"), tarball.regular_file("etc", b"")])


def test_a_hardlink_needs_its_target_in_the_same_layer() -> None:
    with pytest.raises(LayerError, match="same layer"):
        tarball.build_layer([tarball.hardlink("bin/sh", "bin/busybox")])


def test_a_hardlink_to_a_lower_layers_file_is_written_when_the_caller_names_it() -> None:
    layer = tarball.build_layer([tarball.hardlink("usr/bin/b", "/usr/bin/a"), tarball.regular_file("z", b"z")],
                                lower_files=["/usr/bin/a", "etc/passwd"])
    link = members(layer)[-1]
    assert (link.name, link.type, link.linkname) == ("usr/bin/b", tarfile.LNKTYPE, "usr/bin/a")
    assert tarball.build_layer([tarball.hardlink("usr/bin/b", "usr/bin/a")], lower_files=["usr/bin/a"]).blob == \
        tarball.build_layer([tarball.hardlink("usr/bin/b", "usr/bin/a")], lower_files=("usr/bin/a",)).blob


@pytest.mark.parametrize("change", [
    tarball.whiteout("usr/bin/a"), tarball.whiteout("usr/bin"), tarball.opaque("usr/bin"), tarball.opaque("usr"),
    tarball.directory("usr/bin/a"), tarball.symlink("usr/bin", "/opt/bin"), tarball.regular_file("usr", b"f"),
], ids=lambda e: e.path)
def test_a_hardlink_to_a_lower_file_this_layer_deletes_hides_or_replaces_is_refused(change: tarball.Entry) -> None:
    with pytest.raises(LayerError, match="lower_files that this layer keeps"):
        tarball.build_layer([tarball.hardlink("b", "usr/bin/a"), change], lower_files=["usr/bin/a"])


def test_unknown_entry_kinds_are_refused() -> None:
    with pytest.raises(LayerError, match="unknown kind"):
        tarball.Entry("dev/null", "chardev")
