"""Layers the way real images use them, checked against umoci: a merged-/usr base and hardlinks to a lower layer.

The images are multi-layer OCI images under tmp_path, built by umoci itself (`init`, `new`,
`unpack`, `repack`, `raw add-layer`) and by lxclab's own builder. Layer 1 holds
`usr/lib/libfoo.so`, `usr/bin/a` and `lib -> usr/lib`; a later layer holds
`lib/x86_64-linux-gnu/libbar.so` (written through the lower symlink) and `usr/bin/b`, a
hardlink to layer 1's `usr/bin/a`. `umoci unpack` of the same image is the oracle:
copy mode and the mounted overlay stack must show the same tree (types, modes, owners,
link targets, contents, xattrs; mtimes aside, since umoci dates the directories it makes
itself), copy mode the same hardlink groups.
"""

from __future__ import annotations

import gzip
import os
import stat
import subprocess
from pathlib import Path

import pytest

from fixture_layers import (
    build_image, build_tar, differences, file, gz, hardlink, image_of, layout_layers, snapshot, sources, symlink,
    write_oci_layout,
)
from lxclab import tarball
from lxclab.errors import UnsafeLayerEntry
from lxclab.manifest import chain_ids
from lxclab.unionfs import COPY, OVERLAY, unpack_layers
from lxclab.unionfs.cache import diff_dir

TAG = "merged-usr"
LAYER_2 = [file("lib/x86_64-linux-gnu/libbar.so", b"bar\n", 0o755), hardlink("usr/bin/b", "usr/bin/a")]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LXCLAB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def umoci(*args: str | Path) -> None:
    subprocess.run(["umoci", *map(str, args)], check=True, capture_output=True)


def umoci_image(where: Path) -> Path:
    """An OCI layout built by umoci: a merged-/usr layer 1 (unpack, change, repack), then LAYER_2 added raw.

    (umoci 0.4.7's `insert` would name a path under lib/ too, but its layer lacks tar's
    padding and end blocks, which Python's tarfile refuses as truncated.)"""
    layout, image = where / "layout", f"{where / 'layout'}:{TAG}"
    umoci("init", "--layout", layout)
    umoci("new", "--image", image)
    umoci("unpack", "--image", image, where / "bundle1")
    rootfs = where / "bundle1/rootfs"
    (rootfs / "usr/lib").mkdir(parents=True)
    (rootfs / "usr/bin").mkdir()
    (rootfs / "usr/lib/libfoo.so").write_bytes(b"foo\n")
    (rootfs / "usr/bin/a").write_bytes(b"#!/bin/sh\necho a\n")
    os.chmod(rootfs / "usr/bin/a", 0o755)
    os.symlink("usr/lib", rootfs / "lib")
    umoci("repack", "--image", image, where / "bundle1")
    (where / "layer2.tar").write_bytes(build_tar(LAYER_2))
    umoci("raw", "add-layer", "--image", image, where / "layer2.tar")
    return layout


def lxclab_image(where: Path) -> Path:
    """The same image built by lxclab.tarball (layers 1 and 2), with the hardlink to layer 1 in a third layer."""
    layers = [
        tarball.build_layer([
            tarball.directory("usr"), tarball.directory("usr/lib"), tarball.directory("usr/bin"),
            tarball.regular_file("usr/lib/libfoo.so", b"foo\n"), tarball.regular_file("usr/bin/a", b"a\n", 0o755),
            tarball.symlink("lib", "usr/lib"),
        ]),
        tarball.build_layer([
            tarball.directory("lib/x86_64-linux-gnu", 0o750),
            tarball.regular_file("lib/x86_64-linux-gnu/libbar.so", b"bar\n", 0o755),
        ]),
    ]
    tars = [gzip.decompress(layer.blob) for layer in layers] + [build_tar(LAYER_2[1:])]
    blobs = [layer.blob for layer in layers] + [gz(tars[-1])]
    return write_oci_layout(image_of(tars, blobs), where / "layout", TAG)


BUILDERS = {"umoci": umoci_image, "lxclab": lxclab_image}
LINKING_LAYER = {"umoci": 1, "lxclab": 2}  # the index of the layer that links usr/bin/b to layer 1's usr/bin/a


@pytest.fixture(params=BUILDERS, ids=str)
def image(request, tmp_path: Path) -> tuple[str, Path, Path]:
    """(the builder's name, the OCI layout, the rootfs `umoci unpack` makes of it)."""
    layout = BUILDERS[request.param](tmp_path / "image")
    umoci("unpack", "--image", f"{layout}:{TAG}", tmp_path / "oracle")
    return request.param, layout, tmp_path / "oracle/rootfs"


def assert_merged_usr(root: Path) -> None:
    """The symlink stays, the files written through it are in usr/lib, b is a's content."""
    assert (root / "lib").is_symlink() and os.readlink(root / "lib") == "usr/lib"
    assert (root / "usr/lib/x86_64-linux-gnu/libbar.so").read_bytes() == b"bar\n"
    assert (root / "usr/lib/libfoo.so").read_bytes() == b"foo\n"
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
    first, linking = diff_dir(ids[0]), diff_dir(ids[LINKING_LAYER[builder]])
    assert not (linking / "lib").exists(), "the layer's own directory never hides the lower symlink"
    a, b = os.lstat(linking / "usr/bin/a"), os.lstat(linking / "usr/bin/b")
    assert stat.S_ISREG(a.st_mode) and (a.st_ino, a.st_nlink) == (b.st_ino, 2), "a copy of a, b linked to it"
    assert (linking / "usr/bin/a").read_bytes() == (first / "usr/bin/a").read_bytes()
    assert os.lstat(first / "usr/bin/a").st_nlink == 1, "the lower layer's file is never linked to"


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
