"""Hostile layers: each is refused with an error naming layer and entry, or contained inside the root.

Cases come from the attacks umoci's tar_extract tests and containerd's archive tests
guard against, rewritten here with tarfile. Every case runs against a root filesystem
that already holds a base layer, beside a "host" directory that stands for the rest of
the machine; absolute paths and symlinks aim at that host directory. After the layer,
nothing outside the root may have changed, and a refused layer must leave the root
exactly as it was (a benign file and a whiteout come first in every hostile layer, so a
half-applied layer would show).
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fixture_images import unique_repository
from fixture_layers import (
    Member, build_image, build_tar, device, differences, directory, file, hardlink, opaque, raw, sha256, snapshot,
    symlink, whiteout,
)
from lxclab.engine.pull import pull
from lxclab.engine.push import push_content
from lxclab.errors import UnsafeLayerEntry
from lxclab.layers import LayerWarning, apply_layer
from lxclab.manifest import OCI_MANIFEST
from lxclab.registry import RegistryClient
from lxclab.store import Store
from lxclab.unionfs import COPY, unpack_image

LAYER = "hostile"
BASE = [directory("etc"), file("etc/passwd", b"root:x:0:0\n"), file("etc/motd", b"hi\n"), directory("usr"),
        file("usr/tool", b"t", 0o755)]
PREFIX = [file("benign.txt", b"harmless"), whiteout("etc/motd")]


@dataclass
class Case:
    """A hostile layer (built knowing where the host dir is), what lies below it, and what must happen."""

    name: str
    layer: Callable[[Path], list[Member]]
    refused: str | None = None
    lower: Callable[[Path], list[Member]] = field(default=lambda host: [])
    check: Callable[[Path, Path], None] = field(default=lambda root, host: None)


def refused(name: str, pattern: str, layer, lower=lambda host: []) -> Case:
    return Case(name, layer, refused=pattern, lower=lower)


def contained(name: str, layer, check, lower=lambda host: []) -> Case:
    return Case(name, layer, lower=lower, check=check)


def _is_symlink(path: Path, target: str) -> bool:
    return path.is_symlink() and os.readlink(path) == target


CASES = [
    # names that climb out
    refused("dotdot_prefix", r"'\.\./host/pwned'.*'\.\.'", lambda h: [file("../host/pwned", b"x")]),
    refused("dotdot_deep", r"\.\.", lambda h: [file("etc/../../host/pwned", b"x")]),
    refused("dotdot_that_stays_inside", r"\.\.", lambda h: [file("etc/../etc/pwned", b"x")]),
    refused("absolute_dotdot", r"\.\.", lambda h: [file("/../host/pwned", b"x")]),
    refused("dotdot_in_a_dir_name", r"\.\.", lambda h: [directory("a/../../host")]),
    # writing through a symlink this layer made
    refused("symlink_absolute_out_then_write", r"'out/pwned'.*parent 'out' is a symlink",
            lambda h: [symlink("out", str(h)), file("out/pwned", b"x")]),
    refused("symlink_relative_out_then_write", r"parent 'out' is a symlink",
            lambda h: [symlink("out", "../host"), file("out/pwned", b"x")]),
    refused("symlink_chain_then_write", r"parent 'a' is a symlink",
            lambda h: [symlink("b", str(h)), symlink("a", "b"), file("a/pwned", b"x")]),
    refused("symlink_replacing_a_directory_then_write", r"parent 'etc' is a symlink",
            lambda h: [symlink("etc", str(h)), file("etc/passwd", b"pwned")]),
    refused("directory_then_symlink_then_write", r"parent 'd' is a symlink",
            lambda h: [directory("d"), file("d/x"), symlink("d", str(h)), file("d/y", b"x")]),
    refused("file_as_a_parent", r"parent 'f' is a file", lambda h: [file("f", b"x"), file("f/g", b"y")]),
    refused("hardlink_as_a_parent", r"parent 'hl' is a hardlink",
            lambda h: [hardlink("hl", "t"), file("hl/x", b"x"), file("t", b"t")]),
    refused("root_replaced_by_a_symlink", r"root of the filesystem can only be a directory",
            lambda h: [symlink("./", str(h))]),
    # hardlinks
    refused("hardlink_dotdot", r"'\.\./host/secret'.*'\.\.'", lambda h: [hardlink("hl", "../host/secret")]),
    refused("hardlink_to_host_absolute", r"not a file.*of this layer", lambda h: [hardlink("hl", f"{h}/secret")]),
    refused("hardlink_through_a_symlink", r"'d/secret' passes through 'd', a symlink of this layer",
            lambda h: [symlink("d", str(h)), hardlink("hl", "d/secret")]),
    refused("hardlink_dotdot_to_a_host_file", r"'\.\./\.\./host-file'.*'\.\.'", lambda h: [hardlink("hl", "../../host-file")]),
    refused("hardlink_through_a_lower_symlink_to_the_host", r"'out/secret' is not a file.*nor a regular file",
            lambda h: [hardlink("hl", "out/secret")], lower=lambda h: [symlink("out", str(h))]),
    refused("hardlink_to_a_lower_directory", r"'usr' is a directory", lambda h: [hardlink("hl", "usr")]),
    refused("hardlink_to_a_lower_symlink", r"'ln' is not a file.*nor a regular file",
            lambda h: [hardlink("hl", "ln")], lower=lambda h: [symlink("ln", f"{h}/secret")]),
    refused("hardlink_to_a_file_this_layer_whites_out", r"'usr/tool' is not a file",
            lambda h: [whiteout("usr/tool"), hardlink("hl", "usr/tool")]),
    refused("hardlink_to_a_directory", r"is a directory", lambda h: [directory("d"), hardlink("hl", "d")]),
    refused("hardlink_to_itself", r"cannot point at 'hl'", lambda h: [hardlink("hl", "hl")]),
    refused("hardlink_target_never_comes", r"'missing' is not a file", lambda h: [hardlink("hl", "missing")]),
    # whiteout names
    refused("whiteout_of_nothing", r"'\.wh\.'.*names no file", lambda h: [file(".wh.")]),
    refused("whiteout_of_dot", r"names no file", lambda h: [file("etc/.wh..")]),
    refused("whiteout_of_dotdot", r"names no file", lambda h: [file(".wh...")]),
    refused("whiteout_of_dotdot_in_a_subdir", r"names no file", lambda h: [file("etc/.wh...")]),
    refused("whiteout_as_a_directory_component", r"only be the last component", lambda h: [file(".wh.etc/passwd")]),
    refused("whiteout_with_a_relative_path", r"\.\.", lambda h: [file("dne/../.wh.etc")]),
    # odd members
    # writing through a lower layer's symlink: resolved inside the root, never to the host
    refused("lower_symlink_loop", r"more than 40 symlinks", lambda h: [file("a/pwned", b"x")],
            lower=lambda h: [symlink("a", "b"), symlink("b", "a")]),
    refused("lower_symlink_to_a_file_then_write", r"passes through 'etc/passwd', a file below",
            lambda h: [file("pw/pwned", b"x")], lower=lambda h: [symlink("pw", "/etc/passwd")]),
    refused("lower_symlink_then_a_symlink_of_this_layer", r"'lib/sub'.*lands on 'usr/sub', which this layer also writes",
            lambda h: [symlink("usr/sub", str(h)), file("lib/sub/pwned", b"x")],
            lower=lambda h: [symlink("lib", "usr")]),
    refused("lower_symlink_into_the_staging_area", r"staging area",
            lambda h: [file("st/pwned", b"x")], lower=lambda h: [symlink("st", "/.lxclab-staging-x")]),
    refused("whiteout_through_a_lower_symlink_loop", r"'a/\.wh\.x'.*more than 40 symlinks", lambda h: [whiteout("a/x")],
            lower=lambda h: [symlink("a", "b"), symlink("b", "a")]),
    refused("opaque_through_a_lower_symlink_into_the_staging_area", r"staging area", lambda h: [opaque("st")],
            lower=lambda h: [symlink("st", "/.lxclab-staging-x")]),
    refused("overlay_whiteout_device", r"0/0 character device", lambda h: [device("etc/passwd", 0, 0)]),
    refused("component_longer_than_255_bytes", r"longer than 255 bytes", lambda h: [file("a" * 256, b"x")]),
    refused("path_longer_than_4095_bytes", r"longer than 4095 bytes", lambda h: [file("/".join(["d" * 200] * 21))]),
    refused("unknown_tar_type", r"tar type b'Z'", lambda h: [raw("weird", b"Z")]),
    refused("symlink_with_empty_target", r"target, and this one is empty", lambda h: [symlink("s", "")]),
    refused("staging_area_name", r"reserved", lambda h: [file(".lxclab-staging-abc/f", b"x")]),
    # contained: absolute names land inside; a lower layer's symlink is followed only inside the root
    contained("absolute_name_of_a_host_path", lambda h: [file(f"{h}/pwned", b"x")],
              lambda root, h: (root / str(h).lstrip("/") / "pwned").is_file()),
    contained("absolute_name", lambda h: [file("/etc/pwned", b"x")], lambda root, h: (root / "etc/pwned").is_file()),
    contained("write_through_a_lower_symlink_lands_inside", lambda h: [file("out/pwned", b"x")],
              lambda root, h: (root / str(h).lstrip("/") / "pwned").is_file() and _is_symlink(root / "out", str(h)),
              lower=lambda h: [symlink("out", str(h))]),
    contained("write_through_a_lower_relative_symlink", lambda h: [file("up/host/pwned", b"x")],
              lambda root, h: (root / "host/pwned").is_file() and _is_symlink(root / "up", "../../.."),
              lower=lambda h: [symlink("up", "../../..")]),
    contained("write_through_a_lower_symlink_to_the_hosts_etc", lambda h: [file("conf/lxclab-pwned", b"x")],
              lambda root, h: (root / "etc/lxclab-pwned").is_file() and not Path("/etc/lxclab-pwned").exists()
              and _is_symlink(root / "conf", "/etc"), lower=lambda h: [symlink("conf", "/etc")]),
    contained("hardlink_to_a_lower_layer", lambda h: [hardlink("hl", "etc/passwd")],
              lambda root, h: os.lstat(root / "hl").st_ino == os.lstat(root / "etc/passwd").st_ino),
    contained("whiteout_through_a_lower_symlink", lambda h: [whiteout("link/secret")],
              lambda root, h: _is_symlink(root / "link", str(h)), lower=lambda h: [symlink("link", str(h))]),
    contained("opaque_through_a_lower_symlink", lambda h: [opaque("link")],
              lambda root, h: _is_symlink(root / "link", str(h)), lower=lambda h: [symlink("link", str(h))]),
    contained("whiteout_through_a_lower_symlink_to_the_hosts_etc", lambda h: [whiteout("conf/passwd")],
              lambda root, h: not (root / "etc/passwd").exists() and Path("/etc/passwd").is_file()
              and _is_symlink(root / "conf", "/etc"), lower=lambda h: [symlink("conf", "/etc")]),
    contained("whiteout_through_a_lower_dotdot_symlink", lambda h: [whiteout("up/usr/tool")],
              lambda root, h: not (root / "usr/tool").exists() and _is_symlink(root / "up", "../.."),
              lower=lambda h: [symlink("up", "../..")]),
    contained("opaque_through_a_lower_dotdot_symlink", lambda h: [opaque("up/etc")],
              lambda root, h: os.listdir(root / "etc") == [] and _is_symlink(root / "up", "../../.."),
              lower=lambda h: [symlink("up", "../../..")]),
    contained("whiteout_of_a_symlink_removes_the_link_only", lambda h: [whiteout("link")],
              lambda root, h: not os.path.lexists(root / "link"), lower=lambda h: [symlink("link", str(h))]),
    contained("symlink_replacing_a_directory", lambda h: [symlink("etc", str(h))],
              lambda root, h: _is_symlink(root / "etc", str(h))),
    contained("directory_replacing_a_symlink", lambda h: [directory("etc2"), file("etc2/passwd", b"inside")],
              lambda root, h: (root / "etc2/passwd").read_bytes() == b"inside" and not (root / "etc2").is_symlink(),
              lower=lambda h: [symlink("etc2", str(h))]),
    contained("hardlink_to_a_symlink_then_chmod", lambda h: [symlink("s", f"{h}/secret"), hardlink("h", "s", 0o777)],
              lambda root, h: os.lstat(root / "h").st_ino == os.lstat(root / "s").st_ino),
    contained("symlink_to_a_host_file_is_stored_not_read", lambda h: [symlink("shadow", "/etc/shadow")],
              lambda root, h: _is_symlink(root / "shadow", "/etc/shadow")),
    contained("duplicate_entries_last_wins", lambda h: [file("dup", b"1"), file("dup", b"2"), directory("dd"),
                                                          file("dd", b"f")],
              lambda root, h: (root / "dup").read_bytes() == b"2" and (root / "dd").is_file()),
    contained("device_node_made_inside", lambda h: [device("dev/null", 1, 3)],
              lambda root, h: stat.S_ISCHR(os.lstat(root / "dev/null").st_mode)),
]


def make_host(tmp_path: Path) -> Path:
    """The machine around the root: a directory with a secret, a subdirectory and a symlink."""
    host = tmp_path / "host"
    (host / "sub").mkdir(parents=True)
    (host / "secret").write_bytes(b"do not touch")
    os.chmod(host / "secret", 0o600)
    (host / "sub/file").write_bytes(b"nested")
    (host / "passwd").write_bytes(b"host passwd")
    os.symlink("secret", host / "link-to-secret")
    return host


def test_the_table_is_long_enough():
    assert sum(1 for c in CASES if c.refused) >= 25 and len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_layer(tmp_path: Path, case: Case):
    host, root = make_host(tmp_path), tmp_path / "rootfs"
    apply_layer(io.BytesIO(build_tar(BASE + case.lower(host))), root, name="base")
    around, before = snapshot(tmp_path, exclude=("rootfs",)), snapshot(root)
    layer = io.BytesIO(build_tar(PREFIX + case.layer(host)))
    if case.refused:
        with pytest.raises(UnsafeLayerEntry, match=case.refused) as refusal:
            apply_layer(layer, root, name=LAYER)
        assert f"layer {LAYER}: entry " in str(refusal.value)
        assert differences(before, snapshot(root)) == [], "a refused layer must leave the root as it was"
    else:
        apply_layer(layer, root, name=LAYER)
        assert case.check(root, host)
        assert (root / "benign.txt").is_file() and not (root / "etc/motd").exists()
    assert differences(around, snapshot(tmp_path, exclude=("rootfs",))) == [], "something outside the root changed"


def test_forged_overlay_xattrs_are_ignored_with_a_warning(tmp_path: Path):
    root = tmp_path / "rootfs"
    tar = build_tar([directory("d", xattrs={"trusted.overlay.opaque": "y", "user.ok": "1"}), file("d/f", b"x")])
    with pytest.warns(LayerWarning, match="ignored xattr trusted.overlay.opaque"):
        apply_layer(io.BytesIO(tar), root, name=LAYER)
    assert os.listxattr(root / "d") == ["user.ok"]


@pytest.fixture(scope="module")
def hostile_repository(classroom, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """Every case pushed to the classroom registry as a two-layer image, tagged with the case's name."""
    host = make_host(tmp_path_factory.mktemp("pushed"))
    repository = f"{classroom.registry_host}/{unique_repository('lab/hostile')}"
    with RegistryClient(classroom.registry_host, classroom.teacher) as client:
        for case in CASES:
            image = build_image([BASE + case.lower(host), PREFIX + case.layer(host)])
            blobs = {sha256(blob): blob for blob in [image.config, *image.blobs]}
            push_content(client, repository.partition("/")[2], case.name, image.manifest, OCI_MANIFEST, blobs.get)
    return repository, host


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_layer_pulled_from_the_registry(hostile_repository, tmp_path: Path, case: Case,
                                                monkeypatch: pytest.MonkeyPatch):
    repository, host = hostile_repository
    monkeypatch.setenv("LXCLAB_HOME", str(tmp_path / "home"))
    image = pull(f"{repository}:{case.name}", store=Store(tmp_path / "store"))
    around = snapshot(host.parent)
    if case.refused:
        with pytest.raises(UnsafeLayerEntry, match=case.refused):
            unpack_image(image, tmp_path / "rootfs", COPY)
        apply_layer(io.BytesIO(build_tar(BASE + case.lower(host))), tmp_path / "expected", name="base")
        assert differences(snapshot(tmp_path / "expected"), snapshot(tmp_path / "rootfs")) == []
    else:
        unpack_image(image, tmp_path / "rootfs", COPY)
        assert case.check(tmp_path / "rootfs", host)
    assert differences(around, snapshot(host.parent)) == [], "something outside the root changed"
