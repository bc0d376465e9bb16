"""apply_layer: what a rootfs needs is kept, whiteout rules hold in any tar order, bad layers change nothing."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from fixture_layers import (
    MTIME, build_tar, device, diff_id, differences, directory, fifo, file, gz, hardlink, opaque, snapshot, symlink,
    whiteout, write_blob, zst,
)
from lxclab import tarball
from lxclab.errors import DigestMismatch, LayerError
from lxclab.layers import LayerWarning, apply_layer, read_entries
from lxclab.layers.entries import HARDLINK, OPAQUE, WHITEOUT
from lxclab.manifest import OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD

BASE = [
    directory("etc"), file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"), file("etc/motd", b"hello\n"),
    directory("opt"), directory("opt/notes", 0o750, mtime=MTIME - 5), file("opt/notes/a", b"a"), file("opt/notes/b", b"b"),
    directory("tmp", 0o1777), directory("bin"), file("bin/busybox", b"\x7fELF" * 100, 0o755),
    symlink("bin/sh", "/bin/busybox"),
]


def apply(root: Path, members, **kwargs):
    return apply_layer(io.BytesIO(build_tar(members)), root, **kwargs)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    target = tmp_path / "rootfs"
    apply(target, BASE, name="base")
    return target


def test_a_rootfs_keeps_modes_owners_times_links_and_special_files(tmp_path: Path):
    target = tmp_path / "rootfs"
    report = apply(target, [
        directory("usr", mtime=MTIME - 100), directory("usr/bin"), file("usr/bin/su", b"su", 0o4755),
        file("usr/bin/wall", b"w", 0o2755, gid=5), directory("tmp", 0o1777, mtime=MTIME - 50),
        file("home/ann/notes", b"n", 0o600, uid=1000, gid=1000, mtime=MTIME - 7),
        symlink("usr/bin/vi", "/usr/bin/su"), symlink("usr/bin/rel", "../bin/su"),
        fifo("run/pipe", 0o620), device("dev/null", 1, 3), device("dev/loop0", 7, 0, char=False, mode=0o660),
        file("data", b"x", xattrs={"user.colour": "blue"}),
    ])
    st = lambda p: os.lstat(target / p)  # noqa: E731
    assert stat.S_IMODE(st("usr/bin/su").st_mode) == 0o4755
    assert stat.S_IMODE(st("usr/bin/wall").st_mode) == 0o2755 and st("usr/bin/wall").st_gid == 5
    assert stat.S_IMODE(st("tmp").st_mode) == 0o1777 and st("tmp").st_mtime == MTIME - 50
    assert st("usr").st_mtime == MTIME - 100, "a directory's mtime survives the files written into it"
    assert (st("home/ann/notes").st_uid, st("home/ann/notes").st_mtime) == (1000, MTIME - 7)
    assert os.readlink(target / "usr/bin/vi") == "/usr/bin/su" and os.readlink(target / "usr/bin/rel") == "../bin/su"
    assert stat.S_ISFIFO(st("run/pipe").st_mode) and stat.S_IMODE(st("run/pipe").st_mode) == 0o620
    assert stat.S_ISCHR(st("dev/null").st_mode) and os.major(st("dev/null").st_rdev) == 1
    assert stat.S_ISBLK(st("dev/loop0").st_mode) and os.major(st("dev/loop0").st_rdev) == 7
    assert os.getxattr(target / "data", "user.colour") == b"blue"
    assert stat.S_IMODE(st("home").st_mode) == 0o755 and st("home").st_mtime == 0, "implied directories: 0755, mtime 0"
    assert (report.files, report.symlinks, report.devices, report.fifos) == (4, 2, 2, 1)


def test_hardlink_before_its_target_and_to_a_symlink(tmp_path: Path):
    target = tmp_path / "rootfs"
    apply(target, [hardlink("bin/greet", "bin/hello"), file("bin/hello", b"hi", 0o755), symlink("bin/s", "hello"),
                   hardlink("bin/s2", "bin/s")])
    assert os.lstat(target / "bin/greet").st_ino == os.lstat(target / "bin/hello").st_ino
    assert os.lstat(target / "bin/s2").st_ino == os.lstat(target / "bin/s").st_ino
    assert os.readlink(target / "bin/s2") == "hello", "a hardlink to a symlink links the symlink itself"
    assert os.lstat(target / "bin/hello").st_nlink == 2


@pytest.mark.parametrize("marker_first", [True, False])
def test_opaque_applies_before_the_layers_own_entries_whatever_the_order(root: Path, marker_first: bool):
    new = [directory("opt/notes"), file("opt/notes/final", b"done")]
    members = [opaque("opt/notes")] + new if marker_first else new + [opaque("opt/notes")]
    report = apply(root, members)
    assert sorted(os.listdir(root / "opt/notes")) == ["final"]
    assert report.opaques == ["opt/notes"]


@pytest.mark.parametrize("marker_first", [True, False])
def test_whiteout_deletes_only_what_the_layers_below_hold(root: Path, marker_first: bool):
    members = [whiteout("etc/motd"), file("etc/motd", b"new\n")]
    apply(root, members if marker_first else members[::-1])
    assert (root / "etc/motd").read_bytes() == b"new\n"
    assert not any(name.startswith(".wh.") for name in os.listdir(root / "etc")), "markers never appear in the result"


def test_whiteout_of_a_directory_removes_its_tree_and_keeps_the_parents_metadata(root: Path):
    before = os.lstat(root / "opt")
    apply(root, [whiteout("opt/notes"), whiteout("etc/motd")])
    assert not (root / "opt/notes").exists() and not (root / "etc/motd").exists()
    after = os.lstat(root / "opt")
    assert (after.st_mtime_ns, after.st_mode) == (before.st_mtime_ns, before.st_mode)


def test_a_layer_that_only_implies_a_directory_keeps_its_metadata_from_below(root: Path):
    apply(root, [file("opt/notes/c", b"c")])
    st = os.lstat(root / "opt/notes")
    assert (stat.S_IMODE(st.st_mode), st.st_mtime) == (0o750, MTIME - 5)


def test_umoci_repack_of_rm_dir_then_symlink_is_valid_and_deletes_nothing_through_the_link(root: Path):
    apply(root, [symlink("opt/notes", "/etc"), whiteout("opt/notes/a"), whiteout("opt/notes/passwd")])
    assert os.readlink(root / "opt/notes") == "/etc"
    assert (root / "etc/passwd").exists(), "a whiteout under the new symlink must never follow it"


def test_later_duplicate_entries_replace_earlier_ones(tmp_path: Path):
    target = tmp_path / "rootfs"
    apply(target, [file("a", b"one"), file("a", b"two"), directory("d"), file("d/x"), file("d", b"now a file"),
                   symlink("s", "x"), directory("s")])
    assert (target / "a").read_bytes() == b"two"
    assert (target / "d").read_bytes() == b"now a file"
    assert (target / "s").is_dir() and not (target / "s").is_symlink()


@pytest.mark.parametrize("spelling", ["", ".", "/"])
def test_the_writers_opaque_root_is_the_top_level_marker_and_empties_the_root(root: Path, spelling: str):
    layer = tarball.build_layer([tarball.opaque(spelling), tarball.regular_file("etc/hostname", b"box\n")])
    with tarfile.open(fileobj=io.BytesIO(layer.blob), mode="r:gz") as archive:
        assert archive.getnames() == [".wh..wh..opq", "etc/hostname"]
    report = apply_layer(io.BytesIO(layer.blob), root)
    assert report.opaques == [""]
    assert sorted(os.listdir(root)) == ["etc"] and os.listdir(root / "etc") == ["hostname"]


@pytest.mark.parametrize("compress,media_type", [
    (lambda t: t, OCI_LAYER), (gz, OCI_LAYER_GZIP), (zst, OCI_LAYER_ZSTD), (zst, None), (gz, None),
])
def test_plain_gzip_and_zstd_layers_from_a_file_with_diff_id_checked(tmp_path: Path, compress, media_type):
    tar = build_tar(BASE)
    blob = write_blob(tmp_path, "blob", compress(tar))
    report = apply_layer(blob, tmp_path / "rootfs", media_type, expected_diff_id=diff_id(tar), name="l0")
    assert report.diff_id == diff_id(tar)
    assert (tmp_path / "rootfs/etc/passwd").read_bytes().startswith(b"root:")


def test_a_corrupt_zstd_layer_is_a_layer_error_that_changes_nothing(root: Path):
    before = snapshot(root)
    blob = zst(build_tar(BASE))
    corrupt = blob[:8] + bytes(b ^ 0x5A for b in blob[8:40]) + blob[40:]
    with pytest.raises(LayerError):
        apply_layer(io.BytesIO(corrupt), root, OCI_LAYER_ZSTD, name="l0")
    assert snapshot(root) == before


def test_media_type_that_disagrees_with_the_bytes_warns(tmp_path: Path):
    with pytest.warns(LayerWarning, match="says tar\\+gzip but the bytes are tar\\+zstd"):
        apply_layer(io.BytesIO(zst(build_tar(BASE))), tmp_path / "rootfs", OCI_LAYER_GZIP)
    assert (tmp_path / "rootfs/etc/motd").exists()


def test_diff_id_mismatch_leaves_the_target_unchanged(root: Path):
    before = snapshot(root)
    tar = build_tar([whiteout("etc/motd"), file("etc/new", b"x"), opaque("opt/notes")])
    with pytest.raises(DigestMismatch, match="DiffID expected sha256:0000"):
        apply_layer(io.BytesIO(gz(tar)), root, expected_diff_id="sha256:" + "0" * 64, name="bad")
    assert differences(before, snapshot(root)) == []


def test_truncated_layer_is_refused_and_changes_nothing(root: Path):
    before = snapshot(root)
    blob = gz(build_tar([whiteout("etc/motd"), file("etc/big", os.urandom(100_000))]))
    with pytest.raises(LayerError, match="not a readable tar stream"):
        apply_layer(io.BytesIO(blob[: len(blob) // 2]), root, name="cut")
    assert differences(before, snapshot(root)) == []


def test_a_failure_while_moving_in_rolls_everything_back(root: Path):
    subprocess.run(["chattr", "+i", root / "etc/passwd"], check=True)
    try:
        before = snapshot(root)
        with pytest.raises(LayerError):
            apply(root, [opaque("opt/notes"), whiteout("etc/motd"), file("aaa/new", b"x"), file("etc/passwd", b"evil")])
        assert differences(before, snapshot(root)) == []
    finally:
        subprocess.run(["chattr", "-i", root / "etc/passwd"], check=True)


def test_read_entries_lists_markers_as_what_they_delete():
    tar = build_tar([whiteout("etc/motd"), opaque("opt/notes"), file("opt/notes/f", b"abc"),
                     hardlink("opt/g", "/opt/notes/f")])
    entries = read_entries(io.BytesIO(tar), expected_diff_id=diff_id(tar))
    assert [(e.path, e.kind) for e in entries] == [
        ("etc/motd", WHITEOUT), ("opt/notes", OPAQUE), ("opt/notes/f", "file"), ("opt/g", HARDLINK)]
    assert entries[2].size == 3 and entries[3].target == "opt/notes/f"


MERGED_USR = [directory("usr"), directory("usr/lib"), file("usr/lib/libfoo.so", b"foo"), symlink("lib", "usr/lib"),
              symlink("lib64", "/usr/lib")]


def test_an_entry_under_a_lower_symlink_is_written_through_it_and_the_link_stays(tmp_path: Path):
    target = tmp_path / "rootfs"
    apply(target, MERGED_USR)
    apply(target, [directory("lib/x86_64-linux-gnu", 0o750), file("lib/x86_64-linux-gnu/libbar.so", b"bar"),
                   file("lib64/ld.so", b"ld"), hardlink("bin/foo", "lib/libfoo.so")])
    assert os.readlink(target / "lib") == "usr/lib" and os.readlink(target / "lib64") == "/usr/lib"
    assert (target / "usr/lib/x86_64-linux-gnu/libbar.so").read_bytes() == b"bar"
    assert stat.S_IMODE(os.lstat(target / "usr/lib/x86_64-linux-gnu").st_mode) == 0o750, "its metadata goes along"
    assert (target / "usr/lib/ld.so").read_bytes() == b"ld", "an absolute link resolves against the root"
    assert os.lstat(target / "bin/foo").st_ino == os.lstat(target / "usr/lib/libfoo.so").st_ino
    assert sorted(os.listdir(target)) == ["bin", "lib", "lib64", "usr"]


def test_markers_under_a_lower_symlink_act_where_it_leads_and_the_link_stays(tmp_path: Path):
    target = tmp_path / "rootfs"
    apply(target, MERGED_USR + [directory("usr/lib/x"), file("usr/lib/x/old", b"o"), file("usr/lib/libc.so", b"c")])
    report = apply(target, [whiteout("lib/libfoo.so"), opaque("lib64/x"), file("lib/x/new", b"n")])
    assert os.readlink(target / "lib") == "usr/lib" and os.readlink(target / "lib64") == "/usr/lib"
    assert sorted(os.listdir(target / "usr/lib")) == ["libc.so", "x"] and os.listdir(target / "usr/lib/x") == ["new"]
    assert (report.whiteouts, report.opaques) == (["usr/lib/libfoo.so"], ["usr/lib/x"]), "the report names the real paths"


def test_markers_never_follow_a_symlink_the_layer_itself_makes(tmp_path: Path):
    target = tmp_path / "rootfs"
    apply(target, MERGED_USR + [directory("etc"), file("etc/passwd", b"root")])
    apply(target, [whiteout("lib/libfoo.so"), whiteout("lib/etc"), symlink("lib", "/")])
    assert os.readlink(target / "lib") == "/" and os.listdir(target / "usr/lib") == ["libfoo.so"]
    assert (target / "etc/passwd").is_file()


def test_a_hardlink_to_a_link_to_a_lower_file_may_come_first(root: Path):
    apply(root, [hardlink("bin/second", "bin/first"), hardlink("bin/first", "etc/passwd")])
    inodes = {os.lstat(root / p).st_ino for p in ("bin/second", "bin/first", "etc/passwd")}
    assert len(inodes) == 1 and os.lstat(root / "etc/passwd").st_nlink == 3


@pytest.mark.parametrize("replacement", [directory("lib"), whiteout("lib")], ids=["directory", "whiteout"])
def test_a_layer_that_lists_the_directory_or_deletes_the_link_writes_into_a_real_directory(tmp_path: Path,
                                                                                           replacement):
    target = tmp_path / "rootfs"
    apply(target, MERGED_USR)
    apply(target, [file("lib/x/libbar.so", b"bar"), replacement])
    assert (target / "lib").is_dir() and not (target / "lib").is_symlink()
    assert os.listdir(target / "lib") == ["x"] and os.listdir(target / "usr/lib") == ["libfoo.so"]
