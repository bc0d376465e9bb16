"""dirlisting: `ls -l`-style lines for every path of a real tree, links never followed, and their differences."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from lxclab.dirlisting import changes, describe, listing

SCRIPT = b"#!/bin/sh\n"


def short_sha(data: bytes) -> str:
    """The first 12 hex digits of a sha256, as listings show them."""
    return hashlib.sha256(data).hexdigest()[:12]


def make_tree(root: Path) -> None:
    """A small root filesystem with each kind of entry the lessons show."""
    (root / "bin").mkdir(parents=True)
    (root / "bin/busybox").write_bytes(SCRIPT)
    os.chmod(root / "bin/busybox", 0o755)
    os.link(root / "bin/busybox", root / "bin/hello")
    os.symlink("/bin/busybox", root / "bin/sh")
    (root / "tmp").mkdir()
    os.chmod(root / "tmp", 0o1777)
    (root / "notes").mkdir()
    os.setxattr(root / "notes", "trusted.overlay.opaque", b"y")
    os.mknod(root / "gone", stat.S_IFCHR | 0o000, os.makedev(0, 0))


def test_every_kind_of_entry_gets_its_line(tmp_path: Path):
    root = tmp_path / "root"
    make_tree(root)
    os.chmod(root, 0o755)
    file_line = f"-rwxr-xr-x 0:0 10 bytes sha256:{short_sha(SCRIPT)} (2 links)"
    assert listing(root) == {
        ".": "drwxr-xr-x 0:0",
        "bin": "drwxr-xr-x 0:0",
        "bin/busybox": file_line,
        "bin/hello": file_line,
        "bin/sh": "lrwxrwxrwx 0:0 -> /bin/busybox",
        "gone": "c--------- 0:0 device 0/0",
        "notes": "drwxr-xr-x 0:0 (opaque)",
        "tmp": "drwxrwxrwt 0:0",
    }


def test_a_symlink_to_a_directory_is_listed_but_never_followed(tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("not part of the tree\n")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(outside, root / "escape")
    assert set(listing(root)) == {".", "escape"}
    assert describe(root / "escape").endswith(f"-> {outside}")


def test_changes_name_added_removed_and_changed_paths_in_order(tmp_path: Path):
    root = tmp_path / "root"
    make_tree(root)
    before = listing(root)
    os.remove(root / "bin/hello")
    (root / "tmp/new").write_text("x")
    os.chmod(root / "tmp", 0o755)
    lines = changes(before, listing(root))
    assert [line.split()[:2] for line in lines] == [["~", "bin/busybox"], ["-", "bin/hello"], ["~", "tmp"], ["+", "tmp/new"]]
    assert lines[0].endswith("(2 links)  =>  -rwxr-xr-x 0:0 10 bytes sha256:" + short_sha(SCRIPT))
    assert lines[2] == "~ tmp  drwxrwxrwt 0:0  =>  drwxr-xr-x 0:0"
    assert changes(before, before) == []
