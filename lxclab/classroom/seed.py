"""The classroom's seed images, built deterministically into an OCI image layout.

`lab/busybox` (tags `latest` and `1.0`) is an index of two images, linux/amd64 and
linux/arm64, each made from the `busybox-static` Debian package of its architecture in
three layers that teach how layers stack:

1. base: busybox, applet symlinks, /etc/passwd and /etc/group, /tmp with mode 1777, empty
   /proc /sys /dev, a file `/etc/motd` and a directory `/opt/lab/notes` with two drafts;
2. app: `/opt/lab/bin/hello` and a hardlink `/opt/lab/bin/greet` to it (the hardlink sorts
   before its target, so the tar writer must defer it);
3. cleanup: the whiteout `etc/.wh.motd` deletes /etc/motd, and the opaque marker
   `opt/lab/notes/.wh..wh..opq` hides both drafts, leaving only `final.txt`.

ENV, WORKDIR and CMD steps appear in the history as empty layers. Each platform is also
named on its own (`lab/busybox:latest-amd64`), because umoci cannot choose a platform from
an index. `lab/bench` (only when asked for) adds ~100 MB of pseudo-random layers for
benchmarks. Every input is pinned (the package bytes, fixed times, fixed random seeds), so
every build writes the same bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .. import paths
from ..manifest import OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, Descriptor, Platform, canonical_json
from ..tarball import DEFAULT_MTIME, Entry, Layer, build_layer, directory, hardlink, opaque, regular_file, symlink
from ..tarball import whiteout
from .debian import PinnedDeb, deb_version, fetch_debs, read_member
from .ocilayout import OciLayout

PACKAGE = "busybox-static"
# Debian 12's package files, on every host: the lessons' recorded digests come from their bytes
# (Debian 13's busybox-static 1.37 keeps the binary elsewhere and would change every digest).
PACKAGE_FILES = {
    "amd64": PinnedDeb("busybox-static_1.35.0-4+deb12u1+b1_amd64.deb",
                       "3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744"),
    "arm64": PinnedDeb("busybox-static_1.35.0-4+deb12u1+b1_arm64.deb",
                       "732c9135564fc71337e0e05fb4da4d11e6c28c1834bce3e405e575afef2a52f5"),
}
BUSYBOX_REPOSITORY = "lab/busybox"
BUSYBOX_TAGS = ("latest", "1.0")
ARCHITECTURES = ("amd64", "arm64")
BENCH_REPOSITORY = "lab/bench"
BENCH_LAYERS = 5
ENV = ("PATH=/opt/lab/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LAB=lxclab")
WORKDIR = "/opt/lab"
CMD = ("sh",)
APPLETS = """
bin/ash bin/cat bin/chmod bin/chown bin/cp bin/date bin/df bin/dmesg bin/echo bin/false bin/grep
bin/gunzip bin/gzip bin/hostname bin/kill bin/ln bin/ls bin/mkdir bin/more bin/mount bin/mv
bin/ping bin/ps bin/pwd bin/readlink bin/rm bin/rmdir bin/sed bin/sh bin/sleep bin/stat bin/tar
bin/touch bin/true bin/umount bin/uname bin/vi bin/zcat sbin/ifconfig sbin/ip sbin/route
usr/bin/[ usr/bin/awk usr/bin/cut usr/bin/diff usr/bin/du usr/bin/env usr/bin/find usr/bin/free
usr/bin/head usr/bin/hexdump usr/bin/id usr/bin/less usr/bin/nc usr/bin/nproc usr/bin/nsenter
usr/bin/printf usr/bin/seq usr/bin/sha256sum usr/bin/sort usr/bin/tail usr/bin/tee usr/bin/test
usr/bin/top usr/bin/tr usr/bin/uniq usr/bin/unshare usr/bin/uptime usr/bin/wc usr/bin/wget
usr/bin/which usr/bin/whoami usr/bin/xargs usr/sbin/chroot usr/sbin/httpd
""".split()


@dataclass(frozen=True)
class Step:
    """One build step: its history line and the layer it made (None: it changed only the config)."""

    created_by: str
    entries: tuple[Entry, ...] | None = None


@dataclass(frozen=True)
class Busybox:
    """The busybox binary of one architecture and the package version it came from."""

    arch: str
    version: str
    binary: bytes = field(repr=False)


def default_layout_dir() -> Path:
    """Where `lxclab seed` builds its OCI layout unless told otherwise."""
    return paths.home() / "seed-layout"


def default_cache_dir() -> Path:
    """Where downloaded Debian packages are kept, so a second seed needs no network."""
    return paths.home() / "cache"


def build_seed_layout(
    layout_dir: Path | None = None, cache_dir: Path | None = None, bench_size_mb: int = 0
) -> dict[str, Descriptor]:
    """Build every seed image into an OCI layout and return its ref names (`lab/busybox:latest`, ...)."""
    layout = OciLayout(layout_dir or default_layout_dir())
    busyboxes = fetch_busybox(cache_dir or default_cache_dir())
    refs = build_busybox(layout, busyboxes)
    if bench_size_mb > 0:
        refs |= build_bench(layout, busyboxes["amd64"], bench_size_mb)
    layout.write_refs(refs)
    return refs


def fetch_busybox(cache: Path) -> dict[str, Busybox]:
    """The busybox binary of every architecture, taken out of its `busybox-static` package."""
    debs = fetch_packages(cache)
    return {arch: Busybox(arch, deb_version(deb), read_member(deb, "bin/busybox")) for arch, deb in debs.items()}


def fetch_packages(cache: Path) -> dict[str, Path]:
    """The pinned `busybox-static` package file of every architecture, in `cache` (downloaded when missing)."""
    return fetch_debs(cache, PACKAGE, {arch: PACKAGE_FILES[arch] for arch in ARCHITECTURES})


def build_busybox(layout: OciLayout, busyboxes: dict[str, Busybox]) -> dict[str, Descriptor]:
    """Build `lab/busybox`: one image per architecture and the index over them, with their ref names."""
    run_config = _busybox_run_config()
    images = [build_image(layout, busybox_steps(busyboxes[arch]), arch, run_config) for arch in ARCHITECTURES]
    index = build_index(layout, images)
    refs = {f"{BUSYBOX_REPOSITORY}:{tag}": index for tag in BUSYBOX_TAGS}
    for image in images:
        refs[f"{BUSYBOX_REPOSITORY}:latest-{image.platform.architecture}"] = image
    return refs


def busybox_steps(busybox: Busybox) -> list[Step]:
    """The build steps of `lab/busybox` for one architecture."""
    return [
        base_step(busybox),
        Step("ENV " + " ".join(ENV)),
        Step("COPY app/ /opt/lab/", app_entries()),
        Step(f"WORKDIR {WORKDIR}"),
        Step("RUN rm /etc/motd && rm -rf /opt/lab/notes/* && echo done > /opt/lab/notes/final.txt", cleanup_entries()),
        Step('CMD ["' + '", "'.join(CMD) + '"]'),
    ]


def base_step(busybox: Busybox) -> Step:
    """Layer 1's build step: the package's busybox with its applet links and a minimal root."""
    source = f"{PACKAGE}_{busybox.version}_{busybox.arch}.deb:/bin/busybox"
    return Step(f"ADD {source} /bin/busybox # and applet links, /etc, /tmp", base_entries(busybox.binary))


def base_entries(busybox: bytes) -> tuple[Entry, ...]:
    """Layer 1: busybox and its applet links, a minimal /etc, and the usual top-level directories."""
    dirs = [directory(d) for d in ("bin", "dev", "etc", "home", "opt", "opt/lab", "opt/lab/notes", "sbin", "usr")]
    dirs += [directory(d) for d in ("usr/bin", "usr/sbin", "var")]
    dirs += [directory("proc", 0o555), directory("sys", 0o555), directory("root", 0o700), directory("tmp", 0o1777)]
    files = [
        regular_file("bin/busybox", busybox, 0o755),
        regular_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"),
        regular_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n"),
        regular_file("etc/motd", b"Welcome to lab/busybox. A later layer deletes this file with a whiteout.\n"),
        regular_file("opt/lab/notes/draft-1.txt", b"First draft: a later layer hides this directory's contents.\n"),
        regular_file("opt/lab/notes/draft-2.txt", b"Second draft: gone too, behind an opaque marker.\n"),
    ]
    links = [symlink(applet, "/bin/busybox") for applet in APPLETS]
    return tuple(dirs + files + links)


def app_entries() -> tuple[Entry, ...]:
    """Layer 2: the lab's application, with `greet` as a hardlink to `hello`."""
    script = b'#!/bin/sh\necho "Hello from $LAB: layer 2 put me here, as $0"\n'
    return (
        directory("opt"),
        directory("opt/lab"),
        directory("opt/lab/bin"),
        regular_file("opt/lab/bin/hello", script, 0o755),
        hardlink("opt/lab/bin/greet", "opt/lab/bin/hello"),
        regular_file("opt/lab/README.txt", b"lab/busybox: three layers, a whiteout, an opaque dir, a hardlink.\n"),
    )


def cleanup_entries() -> tuple[Entry, ...]:
    """Layer 3: a whiteout deleting /etc/motd and an opaque /opt/lab/notes with one new file."""
    return (
        directory("etc"),
        whiteout("etc/motd"),
        directory("opt"),
        directory("opt/lab"),
        directory("opt/lab/notes"),
        opaque("opt/lab/notes"),
        regular_file("opt/lab/notes/final.txt", b"done\n"),
    )


def build_image(layout: OciLayout, steps: list[Step], arch: str, run_config: dict) -> Descriptor:
    """Write one image's layers, config and manifest into `layout`; return the manifest's descriptor."""
    layers = [build_layer(list(step.entries)) for step in steps if step.entries is not None]
    layer_descriptors = [_store_layer(layout, layer) for layer in layers]
    config = image_config(arch, steps, [layer.diff_id for layer in layers], run_config)
    config_descriptor = Descriptor(OCI_CONFIG, layout.write_blob(config), len(config))
    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_descriptor.to_json(),
        "layers": [d.to_json() for d in layer_descriptors],
    })
    return Descriptor(OCI_MANIFEST, layout.write_blob(manifest), len(manifest), Platform("linux", arch))


def image_config(arch: str, steps: list[Step], diff_ids: list[str], run_config: dict) -> bytes:
    """The image config: how to run it, its DiffIDs, and one history entry per step, at fixed times."""
    history = []
    for number, step in enumerate(steps):
        entry = {"created": _timestamp(number), "created_by": step.created_by}
        if step.entries is None:
            entry["empty_layer"] = True
        history.append(entry)
    return canonical_json({
        "architecture": arch,
        "os": "linux",
        "created": _timestamp(len(steps) - 1),
        "config": run_config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    })


def build_index(layout: OciLayout, images: list[Descriptor]) -> Descriptor:
    """Write an OCI index over per-platform manifests into `layout`; return its descriptor."""
    index = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [d.to_json() for d in images]})
    return Descriptor(OCI_INDEX, layout.write_blob(index), len(index))


def build_bench(layout: OciLayout, busybox: Busybox, size_mb: int) -> dict[str, Descriptor]:
    """Build `lab/bench`: the busybox base layer plus ~`size_mb` MB of pseudo-random layers."""
    steps = [base_step(busybox)]
    steps += [Step(f"ADD bench/layer-{n}/ /bench/layer-{n}/", bench_entries(n, size_mb)) for n in range(BENCH_LAYERS)]
    image = build_image(layout, steps, busybox.arch, {"Cmd": list(CMD), "Env": [ENV[0]], "WorkingDir": "/bench"})
    return {f"{BENCH_REPOSITORY}:latest": image}


def bench_entries(layer_number: int, size_mb: int, part_size: int = 4 << 20) -> tuple[Entry, ...]:
    """One bench layer: files of seeded random bytes (nine tenths incompressible) adding up to its share."""
    remaining = max(1, size_mb * (1 << 20) // BENCH_LAYERS)
    entries: list[Entry] = [directory("bench"), directory(f"bench/layer-{layer_number}")]
    part = 0
    while remaining > 0:
        size = min(part_size, remaining)
        rng = random.Random(layer_number * 1000 + part)
        noise = rng.randbytes(size - size // 10)
        data = noise + (b"lxclab bench padding\n" * (size // 200 + 1))[: size // 10]
        entries.append(regular_file(f"bench/layer-{layer_number}/part-{part:03d}.bin", data))
        remaining -= size
        part += 1
    return tuple(entries)


def _busybox_run_config() -> dict:
    return {"Cmd": list(CMD), "Env": list(ENV), "WorkingDir": WORKDIR}


def _store_layer(layout: OciLayout, layer: Layer) -> Descriptor:
    layout.write_blob(layer.blob)
    return Descriptor(OCI_LAYER_GZIP, layer.digest, layer.size)


def _timestamp(step_number: int) -> str:
    moment = datetime.fromtimestamp(DEFAULT_MTIME + 60 * step_number, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
