"""Layers the way real images use them, checked against umoci: a merged-/usr base, markers and hardlinks through it.

The images are multi-layer OCI images under tmp_path, built by umoci itself (`init`, `new`,
`unpack`, `repack`, `insert`, `raw add-layer`) and by lxclab's own builder. Layer 1 holds
`usr/lib/libfoo.so`, `usr/lib/x/old`, `usr/bin/a` and `lib -> usr/lib`; later layers hold
`lib/x86_64-linux-gnu/libbar.so` (written through the lower symlink), `usr/bin/b` (a hardlink
to layer 1's `usr/bin/a`), `lib/.wh.libfoo.so` and `lib/x/.wh..wh..opq` with `lib/x/new`
(markers through the symlink: they delete `usr/lib/libfoo.so` and empty `usr/lib/x`).
umoci's `insert` layers end without tar's padding and end-of-archive blocks, as Go writes
them. `umoci unpack` of the same image is the oracle: copy mode and the mounted overlay
stack must show the same tree (types, modes, owners, link targets, contents, xattrs; mtimes
aside, since umoci dates the directories it makes itself), copy mode the same hardlink groups.
"""

from __future__ import annotations

import gzip
import os
import random
import stat
import subprocess
from pathlib import Path

import pytest

from fixture_layers import (
    Member, build_image, build_tar, diff_id, differences, directory, file, gz, hardlink, image_of, layout_layers,
    opaque, snapshot, sources, symlink, whiteout, write_oci_layout,
)
from lxclab import tarball
from lxclab.errors import LayerError, UnsafeLayerEntry
from lxclab.layers import OPAQUE_XATTR, is_whiteout_node, read_entries
from lxclab.layers.entries import OPAQUE, WHITEOUT
from lxclab.manifest import chain_ids
from lxclab.unionfs import COPY, OVERLAY, LayerSource, layers_stack, unpack_layers
from lxclab.unionfs.cache import diff_dir, layer_home

TAG = "merged-usr"
HARDLINK_LAYER = [hardlink("usr/bin/b", "usr/bin/a")]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LXCLAB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def umoci(*args: str | Path) -> None:
    subprocess.run(["umoci", *map(str, args)], check=True, capture_output=True)


def umoci_image(where: Path) -> Path:
    """An OCI layout built by umoci: a merged-/usr layer 1 (unpack, change, repack), then layers through `lib`.

    `umoci insert` writes libbar.so, the whiteout of libfoo.so and the opaque lib/x (0.4.7's
    insert layers end right after the last file's data: no padding, no end-of-archive
    blocks); the hardlink to layer 1's usr/bin/a is a raw layer (insert cannot make one)."""
    layout, image = where / "layout", f"{where / 'layout'}:{TAG}"
    umoci("init", "--layout", layout)
    umoci("new", "--image", image)
    umoci("unpack", "--image", image, where / "bundle1")
    rootfs = where / "bundle1/rootfs"
    (rootfs / "usr/lib/x").mkdir(parents=True)
    (rootfs / "usr/bin").mkdir()
    (rootfs / "usr/lib/libfoo.so").write_bytes(b"foo\n")
    (rootfs / "usr/lib/x/old").write_bytes(b"old\n")
    (rootfs / "usr/bin/a").write_bytes(b"#!/bin/sh\necho a\n")
    os.chmod(rootfs / "usr/bin/a", 0o755)
    os.symlink("usr/lib", rootfs / "lib")
    umoci("repack", "--image", image, where / "bundle1")
    (where / "libbar.so").write_bytes(b"bar\n")
    umoci("insert", "--image", image, where / "libbar.so", "/lib/x86_64-linux-gnu/libbar.so")
    (where / "hardlink.tar").write_bytes(build_tar(HARDLINK_LAYER))
    umoci("raw", "add-layer", "--image", image, where / "hardlink.tar")
    umoci("insert", "--image", image, "--whiteout", "/lib/libfoo.so")
    (where / "x").mkdir()
    (where / "x/new").write_bytes(b"new\n")
    umoci("insert", "--image", image, "--opaque", where / "x", "/lib/x")
    return layout


def lxclab_image(where: Path) -> Path:
    """The same image built by lxclab.tarball: the hardlink to layer 1's file, the markers under `lib` too."""
    layers = [
        tarball.build_layer([
            tarball.directory("usr"), tarball.directory("usr/lib"), tarball.directory("usr/lib/x"),
            tarball.directory("usr/bin"), tarball.regular_file("usr/lib/libfoo.so", b"foo\n"),
            tarball.regular_file("usr/lib/x/old", b"old\n"), tarball.regular_file("usr/bin/a", b"a\n", 0o755),
            tarball.symlink("lib", "usr/lib"),
        ]),
        tarball.build_layer([
            tarball.directory("lib/x86_64-linux-gnu", 0o750),
            tarball.regular_file("lib/x86_64-linux-gnu/libbar.so", b"bar\n", 0o755),
        ]),
        tarball.build_layer([tarball.hardlink("usr/bin/b", "usr/bin/a")], lower_files=["usr/bin/a"]),
        tarball.build_layer([tarball.whiteout("lib/libfoo.so"), tarball.opaque("lib/x"),
                             tarball.regular_file("lib/x/new", b"new\n")]),
    ]
    image = image_of([gzip.decompress(layer.blob) for layer in layers], [layer.blob for layer in layers])
    return write_oci_layout(image, where / "layout", TAG)


BUILDERS = {"umoci": umoci_image, "lxclab": lxclab_image}
LINKING_LAYER = 2  # the index of the layer that links usr/bin/b to layer 1's usr/bin/a
MARKER_LAYERS = {"umoci": (3, 4), "lxclab": (3, 3)}  # the layers holding lib/.wh.libfoo.so and lib/x/.wh..wh..opq


@pytest.fixture(params=BUILDERS, ids=str)
def image(request, tmp_path: Path) -> tuple[str, Path, Path]:
    """(the builder's name, the OCI layout, the rootfs `umoci unpack` makes of it)."""
    layout = BUILDERS[request.param](tmp_path / "image")
    umoci("unpack", "--image", f"{layout}:{TAG}", tmp_path / "oracle")
    return request.param, layout, tmp_path / "oracle/rootfs"


def assert_merged_usr(root: Path) -> None:
    """The symlink stays, what went through it is in usr/lib (libfoo.so deleted, x emptied), b is a's content."""
    assert (root / "lib").is_symlink() and os.readlink(root / "lib") == "usr/lib"
    assert (root / "usr/lib/x86_64-linux-gnu/libbar.so").read_bytes() == b"bar\n"
    assert sorted(os.listdir(root / "usr/lib")) == ["x", "x86_64-linux-gnu"], "the whiteout deleted libfoo.so"
    assert os.listdir(root / "usr/lib/x") == ["new"], "the opaque marker hid old"
    assert (root / "usr/bin/b").read_bytes() == (root / "usr/bin/a").read_bytes()


def test_copy_mode_gives_umocis_tree_with_the_hardlink_to_the_lower_file(image, tmp_path: Path):
    _, layout, oracle = image
    unpack_layers(layout_layers(layout, TAG), tmp_path / "copy", COPY)
    assert_merged_usr(tmp_path / "copy")
    a, b = os.lstat(tmp_path / "copy/usr/bin/a"), os.lstat(tmp_path / "copy/usr/bin/b")
    assert (a.st_ino, a.st_nlink) == (b.st_ino, 2), "b is layer 1's a itself, not a copy"
    theirs, ours = snapshot(oracle, mtimes=False), snapshot(tmp_path / "copy", mtimes=False)
    assert differences(theirs, ours) == []
    assert frozenset({"usr/bin/a", "usr/bin/b"}) in ours["hardlinks"]


def test_overlay_mode_read_through_the_mount_gives_umocis_tree(image, tmp_path: Path):
    builder, layout, oracle = image
    layers = layout_layers(layout, TAG)
    with unpack_layers(layers, tmp_path / "merged", OVERLAY):
        assert_merged_usr(tmp_path / "merged")
        assert differences(snapshot(oracle, mtimes=False), snapshot(tmp_path / "merged", mtimes=False)) == []
    ids = chain_ids([layer.diff_id for layer in layers])
    first, linking = diff_dir(ids[0]), diff_dir(ids[LINKING_LAYER])
    assert not (linking / "lib").exists(), "the layer's own directory never hides the lower symlink"
    a, b = os.lstat(linking / "usr/bin/a"), os.lstat(linking / "usr/bin/b")
    assert stat.S_ISREG(a.st_mode) and (a.st_ino, a.st_nlink) == (b.st_ino, 2), "a copy of a, b linked to it"
    assert (linking / "usr/bin/a").read_bytes() == (first / "usr/bin/a").read_bytes()
    assert os.lstat(first / "usr/bin/a").st_nlink == 1, "the lower layer's file is never linked to"
    whiteout_layer, opaque_layer = (diff_dir(ids[n]) for n in MARKER_LAYERS[builder])
    assert is_whiteout_node(os.lstat(whiteout_layer / "usr/lib/libfoo.so")), "the whiteout lands where lib leads"
    assert os.getxattr(opaque_layer / "usr/lib/x", OPAQUE_XATTR, follow_symlinks=False) == b"y"
    assert not (whiteout_layer / "lib").exists() and not (opaque_layer / "lib").exists()


def test_overlay_form_keeps_hostile_links_inside_the_layer(tmp_path: Path):
    host = tmp_path / "host"
    host.mkdir()
    (host / "secret").write_bytes(b"do not touch")
    lower = [symlink("out", str(host)), symlink("up", "../../.."), file("etc/passwd", b"root\n")]
    written = sources(build_image([lower, [file("out/pwned", b"x"), file("up/etc/more", b"y")]]), tmp_path / "a")
    with unpack_layers(written, tmp_path / "merged", OVERLAY):
        assert (tmp_path / "merged" / str(host).lstrip("/") / "pwned").read_bytes() == b"x"
        assert (tmp_path / "merged/etc/more").read_bytes() == b"y" and os.readlink(tmp_path / "merged/up") == "../../.."
    linked = sources(build_image([lower, [hardlink("hl", "out/secret")]]), tmp_path / "b")
    with pytest.raises(UnsafeLayerEntry, match="'out/secret' is not a file.*nor a regular file of the layers below"):
        unpack_layers(linked, tmp_path / "merged2", OVERLAY)
    assert sorted(os.listdir(host)) == ["secret"] and os.stat(host / "secret").st_nlink == 1


MERGED_USR = [
    directory("usr"), directory("usr/lib"), directory("usr/lib/x"), file("usr/lib/libfoo.so", b"foo"),
    file("usr/lib/x/old", b"old"), symlink("usr/lib/cur", "x"), symlink("lib", "usr/lib"),
    symlink("lib64", "/usr/lib"), symlink("l2", "lib"), directory("etc"), file("etc/passwd", b"root\n"),
]
MARKERS = {  # a layer of markers (and files) over MERGED_USR; umoci applies each in tar order, lxclab all at once
    "relative": [whiteout("lib/libfoo.so")],
    "absolute": [whiteout("lib64/libfoo.so"), opaque("lib64/x")],
    "chain": [whiteout("l2/x/old")],
    "link_in_the_middle": [whiteout("lib/cur/old")],
    "the_link_itself": [whiteout("lib/cur")],
    "opaque_through_two_links": [opaque("lib/cur"), file("lib/cur/new", b"new")],
    "opaque_at_the_link": [opaque("lib"), file("lib/new", b"new")],
    "a_whited_out_link_is_not_followed": [whiteout("lib"), whiteout("lib/libfoo.so")],
}


@pytest.mark.parametrize("name", MARKERS)
def test_markers_through_lower_symlinks_agree_with_umoci_in_copy_and_overlay_mode_and_the_model(tmp_path: Path, name):
    image = build_image([MERGED_USR, MARKERS[name]])
    umoci("unpack", "--image", f"{write_oci_layout(image, tmp_path / 'layout', TAG)}:{TAG}", tmp_path / "oracle")
    theirs = snapshot(tmp_path / "oracle/rootfs", mtimes=False)
    layers = sources(image, tmp_path / "blobs")
    unpack_layers(layers, tmp_path / "copy", COPY)
    assert differences(theirs, snapshot(tmp_path / "copy", mtimes=False)) == []
    with unpack_layers(layers, tmp_path / "merged", OVERLAY):
        assert differences(theirs, snapshot(tmp_path / "merged", mtimes=False)) == []
    assert set(layers_stack(layers).tree) == {p if p != "." else "" for p in theirs["entries"]}


def linked_layer(rng: random.Random) -> list[Member]:
    """Random members over five short names, a third of them symlinks or markers.

    Nothing of the layer lies under a non-directory of its own, before or after it in the
    tar: umoci follows a link the layer makes for what comes after it and the lower one for
    what comes before, where lxclab never follows the layer's own link (test_layers.py)."""
    members, own = [], {}
    for _ in range(8):
        parts = [rng.choice("abclm") for _ in range(rng.randint(1, 3))]
        path, roll = "/".join(parts), rng.random()
        if path in own or any(own.get("/".join(parts[:i]), "dir") != "dir" for i in range(1, len(parts))):
            continue
        member = (whiteout(path) if roll < 0.25 else opaque(path) if roll < 0.4 else file(path, b"x") if roll < 0.65
                  else directory(path) if roll < 0.8 else symlink(path, rng.choice(["a", "/b", "../c", "a/b", "/"])))
        if not member.info.isdir() and any(p.startswith(path + "/") for p in own):
            continue
        members.append(member)
        own.update({"/".join(parts[:i]): "dir" for i in range(1, len(parts)) if "/".join(parts[:i]) not in own})
        own[path] = "dir" if member.info.isdir() or roll < 0.4 else "other"
    return members


def test_random_stacks_of_links_and_markers_agree_in_both_modes_the_model_and_umoci(tmp_path: Path):
    rng, compared, through_links = random.Random(3), 0, 0
    for number in range(40):
        image = build_image([linked_layer(rng) for _ in range(rng.randint(2, 3))])
        layers, where = sources(image, tmp_path / f"{number}/blobs"), tmp_path / str(number)
        try:
            copied = unpack_layers(layers, where / "copy", COPY)
        except UnsafeLayerEntry:  # a loop, or a path through this layer's own link: overlay mode refuses it too
            with pytest.raises(UnsafeLayerEntry):
                unpack_layers(layers, where / "merged", OVERLAY)
            continue
        ours = snapshot(where / "copy", mtimes=False)
        with unpack_layers(layers, where / "merged", OVERLAY):
            assert differences(ours, snapshot(where / "merged", mtimes=False)) == [], f"stack {number}"
        assert set(layers_stack(layers).tree) == {p if p != "." else "" for p in ours["entries"]}, f"stack {number}"
        raw = [[e.path for e in read_entries(layer.path) if e.kind in (WHITEOUT, OPAQUE)] for layer in layers]
        through_links += raw != [report.whiteouts + report.opaques for report in copied.reports]
        oracle = subprocess.run(["umoci", "unpack", "--image", f"{write_oci_layout(image, where / 'oci', TAG)}:{TAG}",
                                 where / "oracle"], capture_output=True)
        if oracle.returncode == 0:  # umoci refuses a path under a lower file, which lxclab replaces by a directory
            assert differences(snapshot(where / "oracle/rootfs", mtimes=False), ours) == [], f"stack {number}"
            compared += 1
    assert compared >= 20 and through_links >= 5, (compared, through_links)


def insert_layer(where: Path) -> bytes:
    """The uncompressed tar of the layer `umoci insert` writes for a directory of two 700-byte files at lib/x."""
    layout, image = where / "layout", f"{where / 'layout'}:{TAG}"
    umoci("init", "--layout", layout)
    umoci("new", "--image", image)
    (where / "x").mkdir()
    (where / "x/a").write_bytes(b"a" * 700)
    (where / "x/b").write_bytes(b"b" * 700)
    umoci("insert", "--image", image, where / "x", "/lib/x")
    return gzip.decompress(layout_layers(layout, TAG)[-1].path.read_bytes())


SECOND_FILE = 512 + 1536  # lib/x's header, then lib/x/a's header, data and padding: lib/x/b's header starts here


def test_a_umoci_insert_layer_ends_without_padding_and_applies(tmp_path: Path):
    tar = insert_layer(tmp_path)
    assert len(tar) == SECOND_FILE + 512 + 700, "the last file's data, then nothing: no padding, no end blocks"
    written = sources(build_image([MERGED_USR]), tmp_path / "blobs")
    (tmp_path / "insert").write_bytes(gz(tar))
    written.append(LayerSource(tmp_path / "insert", None, diff_id(tar), "insert"))
    unpack_layers(written, tmp_path / "copy", COPY)
    assert sorted(os.listdir(tmp_path / "copy/usr/lib/x")) == ["a", "b", "old"] and (tmp_path / "copy/lib").is_symlink()
    with unpack_layers(written, tmp_path / "merged", OVERLAY):
        assert (tmp_path / "merged/usr/lib/x/b").read_bytes() == b"b" * 700


@pytest.mark.parametrize("cut", [SECOND_FILE + 100, SECOND_FILE + 512 + 300, SECOND_FILE + 512 + 699],
                         ids=["in_a_header", "in_the_data", "one_byte_short"])
def test_an_insert_layer_cut_inside_a_member_is_refused_in_both_modes_leaving_nothing(tmp_path: Path, cut: int):
    tar = insert_layer(tmp_path)[:cut]
    base = sources(build_image([MERGED_USR]), tmp_path / "blobs")
    (tmp_path / "cut").write_bytes(gz(tar))
    layers = [*base, LayerSource(tmp_path / "cut", None, diff_id(tar), "cut")]
    unpack_layers(base, tmp_path / "expected", COPY)
    with pytest.raises(LayerError, match="layer cut is not a readable tar stream: .*corrupt or truncated"):
        unpack_layers(layers, tmp_path / "copy", COPY)
    assert differences(snapshot(tmp_path / "expected"), snapshot(tmp_path / "copy")) == []
    with pytest.raises(LayerError, match="layer cut is not a readable tar stream"):
        unpack_layers(layers, tmp_path / "merged", OVERLAY)
    cut_home = layer_home(chain_ids([layer.diff_id for layer in layers])[-1])
    assert not cut_home.exists() and sorted(os.listdir(cut_home.parent)) == [layer_home(base[0].diff_id).name]
    assert not os.path.ismount(tmp_path / "merged")
