"""The seed images: deterministic OCI layouts, checked by skopeo and umoci as independent oracles."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from lxclab.classroom import Classroom, seed
from lxclab.classroom.debian import PinnedDeb, deb_version, fetch_debs
from lxclab.classroom.ocilayout import OciLayout
from lxclab.classroom.publish import push_layout, split_name
from lxclab.cli import main
from lxclab.errors import SeedError
from lxclab.registry import RegistryClient
from lxclab.manifest import ImageConfig, Index, Manifest, parse_manifest

AARCH64_MACHINE = 183  # ELF e_machine of ARM 64-bit


@pytest.fixture(scope="module")
def layouts(seed_layout: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The seed layout built twice, into two fresh directories (packages from the shared cache)."""
    second = tmp_path_factory.mktemp("seed-again")
    seed.build_seed_layout(second)
    return seed_layout, second


@pytest.fixture(scope="module")
def layout(layouts: tuple[Path, Path]) -> Path:
    return layouts[0]


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def platform_images(layout: Path) -> dict[str, tuple[Manifest, ImageConfig]]:
    oci = OciLayout(layout)
    index = parse_manifest(oci.read_blob(oci.refs()["lab/busybox:latest"].digest))
    assert isinstance(index, Index)
    images = {}
    for descriptor in index.manifests:
        manifest = parse_manifest(oci.read_blob(descriptor.digest))
        images[descriptor.platform.architecture] = (manifest, ImageConfig.parse(oci.read_blob(manifest.config.digest)))
    return images


def umoci_unpack(layout: Path, name: str, bundle: Path) -> Path:
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:{name}", str(bundle)], check=True, capture_output=True)
    return bundle / "rootfs"


def test_two_builds_are_byte_identical(layouts: tuple[Path, Path]) -> None:
    first, second = (tree(root) for root in layouts)
    assert sorted(first) == sorted(second)
    assert first == second
    assert {"oci-layout", "index.json"} <= set(first)


def test_layout_names_every_tag_and_each_platform(layout: Path) -> None:
    refs = OciLayout(layout).refs()
    assert set(refs) == {f"lab/busybox:{tag}" for tag in ("latest", "1.0", "latest-amd64", "latest-arm64")}
    assert refs["lab/busybox:latest"].digest == refs["lab/busybox:1.0"].digest
    index = parse_manifest(OciLayout(layout).read_blob(refs["lab/busybox:latest"].digest))
    assert [str(p) for p in index.platforms] == ["linux/amd64", "linux/arm64"]
    assert {d.digest for d in index.manifests} == {refs["lab/busybox:latest-amd64"].digest,
                                                   refs["lab/busybox:latest-arm64"].digest}


def test_configs_carry_run_settings_and_history_with_empty_layers(layout: Path) -> None:
    for arch, (manifest, config) in platform_images(layout).items():
        assert (config.architecture, config.os) == (arch, "linux")
        assert config.env[0].startswith("PATH=") and "LAB=lxclab" in config.env
        assert config.cmd == ("sh",) and config.working_dir == "/opt/lab"
        assert len(config.diff_ids) == len(manifest.layers) == 3
        assert [h.empty_layer for h in config.history] == [False, True, False, True, False, True]
        assert all(h.created.startswith("2024-01-01T") for h in config.history)
        assert [diff_id for _, diff_id in config.layer_history() if diff_id] == list(config.diff_ids)


def test_configs_are_compact_json_with_sorted_keys(layout: Path) -> None:
    manifest, config = platform_images(layout)["amd64"]
    for raw in (manifest.raw, config.raw):
        assert raw == json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()


def test_only_the_base_layer_differs_between_platforms(layout: Path) -> None:
    images = platform_images(layout)
    amd64, arm64 = (images[arch][0].layers for arch in ("amd64", "arm64"))
    assert amd64[0].digest != arm64[0].digest
    assert [d.digest for d in amd64[1:]] == [d.digest for d in arm64[1:]]


def test_skopeo_reads_the_index(layout: Path) -> None:
    raw = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{layout}:lab/busybox:latest"],
                         check=True, capture_output=True).stdout
    assert {m["platform"]["architecture"] for m in json.loads(raw)["manifests"]} == {"amd64", "arm64"}
    inspected = json.loads(subprocess.run(["skopeo", "inspect", f"oci:{layout}:lab/busybox:1.0"],
                                          check=True, capture_output=True).stdout)
    assert len(inspected["Layers"]) == 3 and "LAB=lxclab" in inspected["Env"]


def test_umoci_unpacks_whiteouts_opaque_dirs_hardlinks_and_modes(layout: Path, tmp_path: Path) -> None:
    rootfs = umoci_unpack(layout, "lab/busybox:latest-amd64", tmp_path / "bundle")
    assert not (rootfs / "etc/motd").exists() and (rootfs / "etc/passwd").is_file()
    assert sorted(os.listdir(rootfs / "opt/lab/notes")) == ["final.txt"]
    assert os.stat(rootfs / "opt/lab/bin/greet").st_ino == os.stat(rootfs / "opt/lab/bin/hello").st_ino
    assert stat.S_IMODE(os.stat(rootfs / "tmp").st_mode) == 0o1777
    assert all(not list((rootfs / d).iterdir()) for d in ("proc", "sys", "dev"))
    assert os.readlink(rootfs / "bin/sh") == "/bin/busybox"


def test_amd64_busybox_runs_the_lab_script(layout: Path, tmp_path: Path) -> None:
    rootfs = umoci_unpack(layout, "lab/busybox:latest-amd64", tmp_path / "bundle")
    command = [shutil.which("chroot"), str(rootfs), "/bin/sh", "-c", "cd /opt/lab && greet && ls /etc"]
    done = subprocess.run(command, env={"PATH": "/opt/lab/bin:/bin", "LAB": "lxclab"},
                          check=True, capture_output=True, text=True)
    greeting = "Hello from lxclab: layer 2 put me here, as /opt/lab/bin/greet"
    assert done.stdout.splitlines() == [greeting, "group", "passwd"]


def test_arm64_busybox_is_an_aarch64_executable(layout: Path, tmp_path: Path) -> None:
    rootfs = umoci_unpack(layout, "lab/busybox:latest-arm64", tmp_path / "bundle")
    header = (rootfs / "bin/busybox").read_bytes()[:20]
    assert header[:4] == b"\x7fELF"
    assert int.from_bytes(header[18:20], "little") == AARCH64_MACHINE


def test_every_applet_link_names_a_real_busybox_applet(layout: Path, tmp_path: Path) -> None:
    rootfs = umoci_unpack(layout, "lab/busybox:latest-amd64", tmp_path / "bundle")
    listed = subprocess.run([str(rootfs / "bin/busybox"), "--list-full"], check=True, capture_output=True, text=True)
    assert set(seed.APPLETS) <= set(listed.stdout.split())


def test_bench_image_is_big_incompressible_and_deterministic(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    refs = seed.build_seed_layout(first, bench_size_mb=5)
    assert seed.build_seed_layout(second, bench_size_mb=5)["lab/bench:latest"] == refs["lab/bench:latest"]
    manifest = parse_manifest(OciLayout(first).read_blob(refs["lab/bench:latest"].digest))
    data_layers = manifest.layers[1:]
    assert len(data_layers) == seed.BENCH_LAYERS
    assert sum(d.size for d in data_layers) > 0.85 * 5 * (1 << 20)
    assert tree(first) == tree(second)


def test_a_package_that_cannot_be_fetched_is_a_clear_error(tmp_path: Path) -> None:
    # An architecture no archive carries: apt fetches only the small Release files, then finds nothing.
    # apt's own words differ between releases (bookworm's "E: Unable to locate package", trixie's apt 3):
    # only lxclab's part of the message is checked, and that apt said something.
    pin = PinnedDeb("busybox-static_1.35.0-4+deb12u1+b1_lxclabarch.deb", "0" * 64)
    with pytest.raises(SeedError, match=r"cannot fetch busybox-static for lxclabarch: .*\S.*; check the network and "
                                        r"the apt sources, or copy busybox-static_1\.35\.0-4\+deb12u1\+b1_lxclabarch"
                                        r"\.deb \(sha256 0{64}\) into "):
        fetch_debs(tmp_path / "cache", seed.PACKAGE, {"lxclabarch": pin})
    assert not list((tmp_path / "cache").glob("*.deb"))


def test_fetching_a_foreign_package_leaves_the_system_apt_state_alone(tmp_path: Path) -> None:
    watched = [Path("/var/lib/dpkg/status"), Path("/var/lib/apt/lists"), Path("/var/cache/apt")]
    before = {p: (p.stat().st_mtime_ns, sorted(os.listdir(p)) if p.is_dir() else None) for p in watched}
    pins = {"arm64": seed.PACKAGE_FILES["arm64"]}
    debs = fetch_debs(tmp_path / "cache", seed.PACKAGE, pins)
    assert debs["arm64"].name == "busybox-static_1.35.0-4+deb12u1+b1_arm64.deb"
    shared = fetch_debs(seed.default_cache_dir(), seed.PACKAGE, pins)["arm64"]
    assert debs["arm64"].read_bytes() == shared.read_bytes()
    assert {p: (p.stat().st_mtime_ns, sorted(os.listdir(p)) if p.is_dir() else None) for p in watched} == before
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.endswith(".deb")] == [debs["arm64"].name]


def test_a_cached_file_without_the_pinned_bytes_is_replaced(tmp_path: Path) -> None:
    pin = seed.PACKAGE_FILES["amd64"]
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / pin.file_name).write_bytes(b"not the package")
    deb = fetch_debs(tmp_path / "cache", seed.PACKAGE, {"amd64": pin})["amd64"]
    assert pin.matches(deb) and deb_version(deb) == "1:1.35.0-4+deb12u1+b1"


def test_the_seed_uses_debian_12s_busybox_on_every_release() -> None:
    busyboxes = seed.fetch_busybox(seed.default_cache_dir())
    assert {arch: b.version for arch, b in busyboxes.items()} == {"amd64": "1:1.35.0-4+deb12u1+b1",
                                                                  "arm64": "1:1.35.0-4+deb12u1+b1"}


def skopeo(*args: str) -> bytes:
    return subprocess.run(["skopeo", *args], check=True, capture_output=True).stdout


def test_the_pushed_index_is_the_layout_index_byte_for_byte(seeded_classroom: Classroom, seed_layout: Path) -> None:
    layout = OciLayout(seed_layout)
    source = f"docker://{seeded_classroom.registry_host}/lab/busybox:latest"
    raw = skopeo("inspect", "--tls-verify=false", "--raw", source)
    assert raw == layout.read_blob(layout.refs()["lab/busybox:latest"].digest)
    assert {m["platform"]["architecture"] for m in json.loads(raw)["manifests"]} == {"amd64", "arm64"}


def test_skopeo_copies_each_platform_out_of_the_registry(seeded_classroom: Classroom, seed_layout: Path,
                                                         tmp_path: Path) -> None:
    refs = OciLayout(seed_layout).refs()
    for arch in ("amd64", "arm64"):
        skopeo("copy", "--src-tls-verify=false", "--override-arch", arch,
               f"docker://{seeded_classroom.registry_host}/lab/busybox:1.0", f"oci:{tmp_path / 'copy'}:{arch}")
        copied = OciLayout(tmp_path / "copy").refs()[arch]
        assert copied.digest == refs[f"lab/busybox:latest-{arch}"].digest


def test_pushing_again_changes_nothing(seeded_classroom: Classroom, seed_layout: Path) -> None:
    layout = OciLayout(seed_layout)
    with RegistryClient(seeded_classroom.registry_host, seeded_classroom.teacher) as client:
        pushed = push_layout(layout, client)
        assert pushed == {name: d.digest for name, d in layout.refs().items()}
        assert {"1.0", "latest", "latest-amd64", "latest-arm64"} <= set(client.list_tags("lab/busybox"))


def test_cli_seeds_the_recorded_classroom(seeded_classroom: Classroom, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["seed", "--layout", str(tmp_path / "layout"), "--state-dir", str(seeded_classroom.state_dir)])
    out = capsys.readouterr().out
    assert status == 0
    digest = OciLayout(tmp_path / "layout").refs()["lab/busybox:latest"].digest
    assert f"{seeded_classroom.registry_host}/lab/busybox:latest" in out and digest in out


def test_cli_without_a_running_classroom_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["seed", "--layout", str(tmp_path / "layout"), "--state-dir", str(tmp_path / "no-classroom")])
    assert status == 1
    assert "lxclab registry up" in capsys.readouterr().err
    assert not (tmp_path / "layout").exists()


def test_cli_builds_without_pushing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["seed", "--no-push", "--layout", str(tmp_path / "layout")]) == 0
    assert "lab/busybox:latest-arm64" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["latest", "lab/busybox", ":latest", "lab:busybox/latest"])
def test_layout_names_need_a_repository_and_a_tag(name: str) -> None:
    with pytest.raises(SeedError, match="REPOSITORY:TAG"):
        split_name(name)
