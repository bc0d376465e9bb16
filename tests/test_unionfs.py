"""The union filesystem: overlay mode and copy mode agree with each other, with the model and with umoci."""

from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from fixture_layers import (
    MTIME, BuiltImage, build_image, device, diff_id, differences, directory, fifo, file, hardlink, layout_layers,
    opaque, sha256, snapshot, sources, symlink, whiteout, write_oci_layout, zst,
)
from lxclab import paths
from lxclab.errors import LayerError, UnsafeLayerEntry
from lxclab.layers import diff_directory, is_whiteout_node, read_entries
from lxclab.layers.entries import DIRECTORY, FILE, OPAQUE, WHITEOUT
from lxclab.manifest import OCI_LAYER_ZSTD, Platform, chain_ids, parse_manifest
from lxclab.reference import parse
from lxclab.store import Store
from lxclab.unionfs import COPY, OVERLAY, LayerSource, image_layers, layers_stack, unpack_image, unpack_layers
from lxclab.unionfs.cache import ensure_layer, layer_home
from lxclab.unionfs.overlay import is_mountpoint

BASE = [
    directory("bin"), file("bin/busybox", b"\x7fELF busybox", 0o755), symlink("bin/sh", "/bin/busybox"),
    hardlink("bin/ash", "bin/busybox"),
    directory("etc", mtime=MTIME - 10), file("etc/passwd", b"root\n"), file("etc/motd", b"welcome\n"),
    file("etc/shadow", b"secret", 0o640, gid=42), directory("tmp", 0o1777),
    directory("usr"), directory("usr/bin"), file("usr/bin/su", b"su", 0o4755), directory("usr/lib"),
    file("usr/lib/libc.so", b"libc"), directory("lib"), file("lib/old.so", b"old"), symlink("lib64", "usr/lib"),
    directory("opt"), directory("opt/notes", 0o750, uid=1000, gid=1000, mtime=MTIME - 20),
    file("opt/notes/draft1", b"d1"), file("opt/notes/draft2", b"d2"),
    directory("var", xattrs={"user.note": "kept"}), directory("var/cache"), directory("var/cache/x"),
    file("var/cache/x/blob", b"x" * 1000), directory("home"), directory("home/ann", 0o700, uid=1000, gid=1000),
    file("home/ann/.profile", b"export A=1", uid=1000, gid=1000), directory("dev"), device("dev/null", 1, 3),
    directory("run"), fifo("run/initctl"), directory("ro", 0o555), file("ro/old", b"o"),
]
CHANGES = [
    directory("etc", mtime=MTIME + 10), file("etc/passwd", b"root\nann\n"), whiteout("etc/motd"),
    opaque("opt/notes"), file("opt/notes/final", b"final"), file("var/cache/new", b"n"), whiteout("var/cache/x"),
    symlink("lib", "usr/lib"), file("usr/bin/su2", b"su2", 0o4750), hardlink("usr/bin/sudo", "usr/bin/su2"),
    file("ro/new", b"n"), whiteout("ro/old"), directory("home/ann", 0o711, uid=1000, gid=1000),
]
CLEANUP = [
    directory("./", 0o755, mtime=MTIME + 20), whiteout("opt"), directory("opt"), directory("opt/app"),
    file("opt/app/run", b"#!/bin/sh\n", 0o755), file("tmp/.keep"), opaque("home/ann"), file("etc/passwd", b"bob\n"),
]
ODD = [  # what umoci does differently (it follows symlinks from lower layers): overlay and copy must still agree
    file("lib64/extra.so", b"e"), whiteout("lib/libc.so"), hardlink("usr/bin/early", "usr/bin/late"),
    file("usr/bin/late", b"late"), whiteout("nothing/here"), file("var/cache/deep/er/file", b"implied parents"),
]
ROOT_OPAQUE = [opaque(""), directory("etc"), file("etc/hostname", b"box\n"), file("only", b"x")]

STACKS = {
    "three_layers": [BASE, CHANGES, CLEANUP],
    "with_odd_cases": [BASE, CHANGES, CLEANUP, ODD],
    "opaque_root": [BASE, CHANGES, ROOT_OPAQUE],
}


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LXCLAB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def without_root_mtime(tree: dict) -> dict:
    entries = dict(tree["entries"])
    entries["."] = entries["."][:-1]
    return {"entries": entries, "hardlinks": tree["hardlinks"]}


@pytest.mark.parametrize("stack", STACKS, ids=str)
def test_overlay_and_copy_modes_give_identical_trees(tmp_path: Path, stack: str):
    layers = sources(build_image(STACKS[stack]), tmp_path / "blobs")
    copied = unpack_layers(layers, tmp_path / "copy", COPY)
    with unpack_layers(layers, tmp_path / "merged", OVERLAY) as mounted:
        assert is_mountpoint(tmp_path / "merged")
        assert differences(snapshot(tmp_path / "copy"), snapshot(tmp_path / "merged")) == []
        model = layers_stack(layers)
        assert set(model.tree) == {p if p != "." else "" for p in snapshot(tmp_path / "copy")["entries"]}
    assert not is_mountpoint(tmp_path / "merged") and not mounted.mount.upper.parent.exists()
    assert len(copied.reports) == len(layers)


def random_layer(rng: random.Random, size: int) -> list:
    """A layer of random entries over a few short names: files, dirs, links, fifos, whiteouts, opaque markers.

    It never writes through its own symlinks or files (that is refused, and tested elsewhere)."""
    members, own = [], {}
    for _ in range(rng.randint(1, size)):
        parts = [rng.choice("abcd") for _ in range(rng.randint(1, 3))]
        path = "/".join(parts)
        if any(own.get("/".join(parts[:i]), "dir") != "dir" for i in range(1, len(parts))):
            continue
        member, kind = random_member(rng, path, [p for p, k in own.items() if k != "dir" and p != path])
        if member is None:
            continue
        members.append(member)
        if kind:
            own.update({"/".join(parts[:i]): own.get("/".join(parts[:i]), "dir") for i in range(1, len(parts))})
            if not (own.get(path) == "dir" and kind == "dir"):
                own = {p: k for p, k in own.items() if not p.startswith(path + "/")}
            own[path] = kind
    return members


def random_member(rng: random.Random, path: str, linkable: list[str]):
    roll = rng.random()
    if roll < 0.3:
        return file(path, rng.randbytes(rng.randint(0, 20)), rng.choice([0o644, 0o4755]), mtime=MTIME + rng.randint(0, 99)), "file"
    if roll < 0.5:
        return directory(path, rng.choice([0o755, 0o700, 0o1777]), mtime=MTIME + rng.randint(0, 99)), "dir"
    if roll < 0.6:
        return symlink(path, rng.choice(["/a", "../b", "c/d"])), "symlink"
    if roll < 0.68:
        return (hardlink(path, rng.choice(linkable)), "hardlink") if linkable else (None, None)
    if roll < 0.85:
        return whiteout(path), None
    if roll < 0.95:
        return opaque(rng.choice([path, path.rpartition("/")[0]])), None
    return fifo(path), "fifo"


def test_random_stacks_agree_in_overlay_mode_copy_mode_and_the_model(tmp_path: Path):
    rng, refused = random.Random(20240101), []
    for number in range(25):
        layers = sources(build_image([random_layer(rng, 12) for _ in range(rng.randint(1, 4))]), tmp_path / f"{number}")
        try:
            unpack_layers(layers, tmp_path / f"{number}/copy", COPY)
        except UnsafeLayerEntry:  # a symlink loop below a path of a later layer: refused everywhere
            refused.append(number)
            with pytest.raises(UnsafeLayerEntry):
                unpack_layers(layers, tmp_path / f"{number}/merged", OVERLAY)
            with pytest.raises(UnsafeLayerEntry):
                layers_stack(layers)
            continue
        with unpack_layers(layers, tmp_path / f"{number}/merged", OVERLAY):
            copied = snapshot(tmp_path / f"{number}/copy")
            assert differences(copied, snapshot(tmp_path / f"{number}/merged")) == [], f"stack {number}"
        assert set(layers_stack(layers).tree) == {p if p != "." else "" for p in copied["entries"]}, f"stack {number}"
    assert len(refused) <= 5, f"most random stacks must apply: refused {refused}"


def test_the_layer_cache_holds_overlay_markers_and_is_shared(tmp_path: Path):
    image = build_image([BASE, CHANGES, CLEANUP])
    layers = sources(image, tmp_path / "blobs")
    with unpack_layers(layers, tmp_path / "one", OVERLAY) as first:
        with unpack_layers(layers, tmp_path / "two", OVERLAY) as second:
            assert len(first.reports) == 3 and second.reports == []
            assert first.mount.lower == second.mount.lower
    ids = chain_ids([diff_id(t) for t in image.tars])
    changes, cleanup = layer_home(ids[1]) / "diff", layer_home(ids[2]) / "diff"
    assert is_whiteout_node(os.lstat(changes / "etc/motd")) and is_whiteout_node(os.lstat(changes / "var/cache/x"))
    assert os.getxattr(changes / "opt/notes", "trusted.overlay.opaque") == b"y"
    assert os.getxattr(cleanup / "opt", "trusted.overlay.opaque") == b"y", "whiteout + recreate = opaque dir"
    assert not os.path.lexists(changes / "nothing"), "a whiteout of nothing leaves no marker"
    assert sorted(os.listdir(paths.layers_dir())) == ["sha256"]


def _extract_in_another_process(args):
    home, blob, chain_id, digest = args
    os.environ["LXCLAB_HOME"] = home
    return str(ensure_layer(Path(blob), chain_id, None, digest, [])[0])


def test_two_processes_extracting_the_same_layer_both_get_one_complete_copy(tmp_path: Path, home: Path):
    image = build_image([BASE])
    (layer,) = sources(image, tmp_path / "blobs")
    job = (str(home), str(layer.path), layer.diff_id, layer.diff_id)
    with ProcessPoolExecutor(2) as pool:
        results = list(pool.map(_extract_in_another_process, [job, job]))
    assert results[0] == results[1] and (Path(results[0]) / "etc/passwd").is_file()
    assert [p.name for p in paths.layers_dir().iterdir()] == ["sha256"], "no staging directory left behind"


def test_writes_copy_up_deletes_leave_whiteouts_and_the_upper_dir_becomes_a_layer(tmp_path: Path):
    layers = sources(build_image([BASE, CHANGES]), tmp_path / "blobs")
    with unpack_layers(layers, tmp_path / "merged", OVERLAY) as unpacked:
        merged, upper = tmp_path / "merged", unpacked.mount.upper
        (merged / "etc/passwd").write_bytes(b"root\nann\ncarol\n")
        os.unlink(merged / "bin/busybox")
        shutil.rmtree(merged / "var/cache")
        (merged / "var/cache").mkdir()
        (merged / "var/cache/fresh").write_bytes(b"f")
        assert (upper / "etc/passwd").read_bytes() == b"root\nann\ncarol\n", "copy-up lands in the upper dir"
        assert is_whiteout_node(os.lstat(upper / "bin/busybox")), "a deleted lower file is a 0/0 char device"
        assert os.getxattr(upper / "var/cache", "trusted.overlay.opaque") == b"y"
        layer = diff_directory(upper)
        expected = snapshot(merged, mtimes=False)
    entries = {(e.path, e.kind) for e in read_entries(io.BytesIO(layer.blob), expected_diff_id=layer.diff_id)}
    assert {("bin/busybox", WHITEOUT), ("var/cache", OPAQUE), ("etc/passwd", FILE), ("var/cache", DIRECTORY)} <= entries
    (tmp_path / "blobs/diff").write_bytes(layer.blob)
    unpack_layers(layers + [LayerSource(tmp_path / "blobs/diff", None, layer.diff_id, "diff")], tmp_path / "copy")
    # the diff layer restores the merged view; only var's xattr is lost (lxclab.tarball writes no xattrs)
    assert [d.split(":")[0] for d in differences(expected, snapshot(tmp_path / "copy", mtimes=False))] == ["var"]


def test_umoci_unpack_of_the_same_image_gives_the_same_tree(tmp_path: Path):
    image = build_image([BASE, CHANGES, CLEANUP])
    layout = write_oci_layout(image, tmp_path / "layout", "test")
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:test", str(tmp_path / "bundle")],
                   check=True, capture_output=True)
    unpack_layers(sources(image, tmp_path / "blobs"), tmp_path / "copy", COPY)
    theirs, ours = snapshot(tmp_path / "bundle/rootfs"), snapshot(tmp_path / "copy")
    assert differences(without_root_mtime(theirs), without_root_mtime(ours)) == []


def test_umoci_overlay_and_copy_agree_on_the_seed_image(tmp_path: Path, seed_layout: Path):
    ref = "lab/busybox:latest-amd64"
    subprocess.run(["umoci", "unpack", "--image", f"{seed_layout}:{ref}", str(tmp_path / "bundle")],
                   check=True, capture_output=True)
    layers = layout_layers(seed_layout, ref)
    unpack_layers(layers, tmp_path / "copy", COPY)
    theirs, ours = snapshot(tmp_path / "bundle/rootfs"), snapshot(tmp_path / "copy")
    assert differences(without_root_mtime(theirs), without_root_mtime(ours)) == []
    assert not (tmp_path / "copy/etc/motd").exists() and os.listdir(tmp_path / "copy/opt/lab/notes") == ["final.txt"]
    with unpack_layers(layers, tmp_path / "merged", OVERLAY):
        assert differences(ours, snapshot(tmp_path / "merged")) == []


def test_unpack_image_from_the_store_with_zstd_layers(tmp_path: Path):
    image = build_image([BASE, CHANGES], compress=zst, media_type=OCI_LAYER_ZSTD)
    stored = _store(image, "lab/zstd:1")
    assert [layer.media_type for layer in image_layers(stored)] == [OCI_LAYER_ZSTD] * 2
    with unpack_image(stored, tmp_path / "merged", OVERLAY):
        unpack_image(stored, tmp_path / "copy", COPY)
        assert differences(snapshot(tmp_path / "copy"), snapshot(tmp_path / "merged")) == []


def _store(image: BuiltImage, ref: str):
    store = Store()
    for blob in [image.config, *image.blobs]:
        store.write(blob, sha256(blob))
    return store.record_image(parse(ref), parse_manifest(image.manifest), Platform("linux", "amd64"))


def test_cli_unpack_and_unmount(tmp_path: Path):
    _store(build_image([BASE, CHANGES]), "lab/cli:1")
    lxclab = [sys.executable, "-m", "lxclab"]
    run = subprocess.run(lxclab + ["unpack", "lab/cli:1", str(tmp_path / "root")], capture_output=True, text=True)
    try:
        assert run.returncode == 0, run.stderr
        assert "mounted 2 layers" in run.stdout and (tmp_path / "root/etc/passwd").read_bytes() == b"root\nann\n"
    finally:
        run = subprocess.run(lxclab + ["unmount", str(tmp_path / "root")], capture_output=True, text=True)
    assert run.returncode == 0 and not is_mountpoint(tmp_path / "root")
    again = subprocess.run(lxclab + ["unmount", str(tmp_path / "root")], capture_output=True, text=True)
    assert again.returncode == 1 and "no overlay mounted by lxclab" in again.stderr
    copy = subprocess.run(lxclab + ["unpack", "--mode", "copy", "lab/cli:1", str(tmp_path / "c")], capture_output=True)
    assert copy.returncode == 0 and (tmp_path / "c/usr/bin/sudo").is_file()


def test_copy_into_a_non_empty_directory_is_refused(tmp_path: Path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy/file").write_bytes(b"x")
    with pytest.raises(LayerError, match="not empty"):
        unpack_layers(sources(build_image([BASE]), tmp_path / "blobs"), tmp_path / "busy", COPY)


NOBODY_SCRIPT = """
import sys, warnings
from pathlib import Path
from lxclab.unionfs import LayerSource, unpack_layers
warnings.simplefilter("always")
layers = [LayerSource(Path(p), None, d, f"layer{n}") for n, (p, d) in enumerate(zip(sys.argv[2::2], sys.argv[3::2]))]
unpack_layers(layers, Path(sys.argv[1]), "copy")
"""


def test_copy_mode_as_nobody_works_and_skips_device_nodes_with_a_warning(tmp_path: Path, nobody_python):
    image = build_image([BASE, CHANGES, CLEANUP])
    shared = Path(tempfile.mkdtemp(prefix="lxclab-nobody-", dir="/tmp"))
    try:
        os.chmod(shared, 0o755)
        layers = sources(image, shared / "blobs")
        (shared / "rootfs").mkdir()
        os.chown(shared / "rootfs", 65534, 65534)
        argv = [str(shared / "rootfs")] + [str(x) for layer in layers for x in (layer.path, layer.diff_id)]
        run = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", nobody_python.python,
                              "-c", NOBODY_SCRIPT, *argv], capture_output=True, text=True,
                             env=nobody_python.env(HOME=str(shared)))
        assert run.returncode == 0, run.stderr
        assert run.stderr.count("device nodes skipped") == 1 and "CAP_MKNOD" in run.stderr
        unpack_layers(layers, tmp_path / "as-root", COPY)
        ours, reference = snapshot(shared / "rootfs"), snapshot(tmp_path / "as-root")
        assert not os.path.lexists(shared / "rootfs/dev/null") and os.lstat(shared / "rootfs/etc/passwd").st_uid == 65534
        del reference["entries"]["dev/null"]
        strip_owner = lambda tree: {p: e[:2] + e[4:] for p, e in tree["entries"].items()}  # noqa: E731
        assert strip_owner(ours) == strip_owner(reference)
        assert ours["hardlinks"] == reference["hardlinks"]
    finally:
        shutil.rmtree(shared)
