"""The benchmark image, `lab/bench:latest`, served by a classroom registry of the benchmark's own.

The classroom runs on two free loopback ports with its state in the benchmark's
workspace, so a benchmark never touches a workshop's registry; it is stopped by the PIDs
it recorded (`Classroom.down`) whatever happens. The image is the seed builder's bench
image: the busybox base layer plus five layers of seeded random files (nine tenths
incompressible), built into an OCI layout that umoci and skopeo can read as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lxclab.classroom import Classroom
from lxclab.classroom.daemon import free_port
from lxclab.classroom.ocilayout import OciLayout
from lxclab.classroom.publish import push_layout
from lxclab.classroom.seed import BENCH_LAYERS, BENCH_REPOSITORY, build_seed_layout
from lxclab.manifest import parse_manifest
from lxclab.registry import RegistryClient

BENCH_NAME = f"{BENCH_REPOSITORY}:latest"


@dataclass(frozen=True)
class ServedImage:
    """The bench image as pushed: its reference on the registry, its OCI layout, digest and sizes."""

    ref: str
    digest: str
    layout: Path
    layout_name: str
    layers: int
    compressed_bytes: int
    random_bytes: int

    def describe(self) -> str:
        """One line naming the image and its size, for a benchmark's title."""
        return (f"{self.layout_name}: {self.layers} layers, {self.compressed_bytes / 1e6:.1f} MB compressed, "
                f"{self.random_bytes / 1e6:.1f} MB of files in the random layers")


def random_bytes(size_mb: int) -> int:
    """How many bytes of files the seed builder puts in the random layers of a `size_mb` bench image."""
    return BENCH_LAYERS * max(1, size_mb * (1 << 20) // BENCH_LAYERS)


@contextmanager
def served_seed(workdir: Path, name: str, bench_size_mb: int = 0) -> Iterator[tuple[Classroom, OciLayout]]:
    """Start a classroom under `workdir`, build the seed layout and push image `name`; stop the classroom on exit."""
    classroom = Classroom(Path(workdir) / "classroom", registry_port=free_port(), token_port=free_port())
    classroom.up()
    try:
        layout = OciLayout(Path(workdir) / "layout")
        build_seed_layout(layout.root, bench_size_mb=bench_size_mb)
        with RegistryClient(classroom.registry_host, classroom.teacher) as client:
            push_layout(layout, client, [name])
        yield classroom, layout
    finally:
        classroom.down()


@contextmanager
def served_bench_image(workdir: Path, size_mb: int) -> Iterator[ServedImage]:
    """Serve the bench image of `size_mb` MB from a classroom under `workdir`, for as long as the block runs."""
    with served_seed(workdir, BENCH_NAME, size_mb) as (classroom, layout):
        yield _describe(layout, f"{classroom.registry_host}/{BENCH_NAME}", size_mb)


def _describe(layout: OciLayout, ref: str, size_mb: int) -> ServedImage:
    descriptor = layout.refs()[BENCH_NAME]
    manifest = parse_manifest(layout.read_blob(descriptor.digest), descriptor.media_type)
    return ServedImage(
        ref=ref,
        digest=descriptor.digest,
        layout=layout.root,
        layout_name=BENCH_NAME,
        layers=len(manifest.layers),
        compressed_bytes=sum(layer.size for layer in manifest.layers),
        random_bytes=random_bytes(size_mb),
    )
