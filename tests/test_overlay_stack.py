"""The overlay stack diagram, drawn from a real overlay mount read back from /proc/self/mountinfo."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

import pytest

from fixture_layers import build_image, directory, file, opaque, symlink, whiteout
from lxclab.errors import MountError
from lxclab.unionfs import OVERLAY, LayerSource, unpack_layers
from lxclab.unionfs.mountinfo import mounted_overlay, overlay_options
from lxclab.widgets.figures import svg as figure_svg
from lxclab.widgets.overlay_stack import LOWER, MERGED, UPPER, WORK, Tier, overlay_figure, overlay_picture, overlay_tiers
from test_unionfs import sources

BASE = [directory("bin"), file("bin/busybox", b"\x7fELF", 0o755), symlink("bin/sh", "/bin/busybox"),
        directory("etc"), file("etc/motd", b"hi\n"), file("etc/passwd", b"root\n"), directory("notes"),
        file("notes/draft", b"d")]
APP = [directory("app"), file("app/run", b"#!/bin/sh\n", 0o755)]
CLEANUP = [directory("etc"), whiteout("etc/motd"), directory("notes"), opaque("notes"), file("notes/final", b"f")]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LXCLAB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def mounted(tmp_path: Path):
    """Three layers mounted with overlayfs at tmp_path/merged; a file written and one deleted through it."""
    with unpack_layers(sources(build_image([BASE, APP, CLEANUP]), tmp_path / "blobs"), tmp_path / "merged",
                       OVERLAY) as unpacked:
        (tmp_path / "merged/app/log").write_text("written through the merged view\n")
        os.unlink(tmp_path / "merged/etc/passwd")
        yield unpacked.mount


def test_the_kernel_lists_the_directories_lxclab_mounted(mounted):
    kernel = mounted_overlay(mounted.target)
    assert (kernel.lower, kernel.upper, kernel.work) == (mounted.lower, mounted.upper, mounted.work)
    assert len(kernel.lower) == 3 and "upperdir" in overlay_options(mounted.target)


def test_a_path_that_is_not_an_overlay_is_refused(tmp_path: Path):
    with pytest.raises(MountError, match="nothing is mounted at"):
        mounted_overlay(tmp_path)
    with pytest.raises(MountError, match="is a proc mount, not an overlay"):
        mounted_overlay(Path("/proc"))


def test_the_tiers_say_what_each_directory_of_the_real_mount_holds(mounted, tmp_path: Path):
    tiers = overlay_tiers(mounted_overlay(mounted.target), lambda path: path.replace(str(tmp_path), "<tmp>"))
    assert [(t.role, t.title) for t in tiers] == [
        (MERGED, "merged view"), (UPPER, "upperdir"), (WORK, "workdir"),
        (LOWER, "lowerdir 1: layer 3"), (LOWER, "lowerdir 2: layer 2"), (LOWER, "lowerdir 3: layer 1")]
    merged, upper, _, top, app, base = tiers
    assert merged.path == "<tmp>/merged" and upper.path.startswith("<tmp>/home/mounts/")
    assert (merged.files, merged.dirs) == (5, 4)  # bin/busybox bin/sh notes/final app/run app/log; etc is empty
    assert upper.names == ("etc/passwd (whiteout)", "app/log") and (upper.files, upper.dirs) == (2, 2)
    assert top.names == ("etc/motd (whiteout)", "notes/ (opaque)", "notes/final")
    assert app.names == ("app/run",) and (app.files, app.dirs) == (1, 1)
    assert base.names == ("bin/busybox", "etc/motd", "etc/passwd", "notes/draft", "bin/sh")  # a symlink comes last
    assert (base.files, base.dirs) == (5, 3)
    assert tiers[2] == Tier(WORK, "workdir", str(PurePosixPath(upper.path).with_name("work")), 0, 0, ())


def test_the_figure_draws_every_tier_top_down_and_its_svg_is_the_same_every_time(mounted):
    tiers = overlay_tiers(mounted)
    figure = overlay_figure(tiers, "an overlay")
    texts = [text.get_text() for text in figure.axes[0].texts]
    titles = [t for t in texts if t in {tier.title for tier in tiers}]
    assert titles == [tier.title for tier in tiers] and texts[0] == "an overlay"
    assert "2 files, 2 dirs: etc/passwd (whiteout), app/log" in texts and "not listed: the kernel's own scratch files, never part of the tree" in texts
    svg = figure_svg(figure)
    assert svg == figure_svg(overlay_figure(overlay_tiers(mounted), "an overlay"))
    assert "<dc:date>" not in svg and "Matplotlib v" not in svg and svg.lstrip().startswith("<svg")
    assert re.search(r"<text [^>]*>lowerdir 3: layer 1</text>", svg)  # text stays text: searchable, small
    picture = overlay_picture(mounted)
    assert re.search(r"<text [^>]*>lowerdir 3: layer 1</text>", picture._repr_svg_())
    assert repr(picture).startswith("overlay stack: merged") and "layer 1" in repr(picture)


def test_an_empty_tier_says_so_and_counts_read_well():
    figure = overlay_figure([Tier(UPPER, "upperdir", "/u", 0, 0, ()), Tier(LOWER, "layer 1", "/l", 1, 1, ("a",)),
                             Tier(LOWER, "layer 2", "/m", 6, 1, tuple("abcde") + ("... 2 more",))])
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert "empty" in texts and "1 file, 1 dir: a" in texts and "6 files, 1 dir: a, b, c, d, e, ... 2 more" in texts
