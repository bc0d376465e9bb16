"""Apply one layer to a root filesystem: stage it, verify it, then move it in (or undo everything).

The three steps keep the promise that a refused or corrupt layer leaves the target
exactly as it was: (1) the layer's own entries are extracted into a staging directory
inside the target (same filesystem, so moving in is a rename), refusing unsafe entries;
(2) the DiffID is checked once the whole stream has been read; (3) only then are the
whiteouts applied and the entries renamed into place, each change journalled so that
an error undoes them all.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import BinaryIO

from ..errors import LayerError, LxclabError
from . import names
from .merge import Journal, apply_deletions, directory_plan, is_real_dir, move_entries, open_for_writing
from .metadata import DEFAULT_DIRECTORY, Metadata, apply_metadata, clear_foreign_xattrs, read_metadata
from .lower import RootView, settle
from .overlayform import LowerView, to_overlay_form
from .report import ApplyReport
from .stage import Stager, remove_tree
from .stream import open_layer, tar_stream, verify_diff_id


def apply_layer(source: Path | BinaryIO, root: Path, media_type: str | None = None,
                expected_diff_id: str | None = None, name: str = "layer",
                overlay_lower: list[Path] | None = None, max_bytes: int | None = None) -> ApplyReport:
    """Apply a layer (tar, tar+gzip or tar+zstd) to `root` with the OCI whiteout rules.

    Nothing is ever written outside `root`. A refused entry raises UnsafeLayerEntry, a
    wrong DiffID DigestMismatch, and either way `root` is left as it was. With
    `overlay_lower` (the directories of the layers below, top first, already in overlay
    form) whiteouts are written as overlayfs markers instead of deleting; that needs root.
    More than `max_bytes` uncompressed (default: `stream.max_layer_bytes()`) raises LayerTooLarge.
    """
    root = _prepare_root(Path(root))
    report = ApplyReport(name)
    original_root = read_metadata(root)
    open_for_writing(root, original_root)
    container = Path(tempfile.mkdtemp(prefix=names.STAGING_PREFIX, dir=root))
    try:
        stager = Stager(_mkdir(container / "tree"), report)
        below = RootView(root) if overlay_lower is None else LowerView(overlay_lower)
        _stage(source, media_type, expected_diff_id, stager, max_bytes)
        _guarded(settle, name, "(links)", stager, below, overlay_lower is not None)
        if overlay_lower is not None:
            to_overlay_form(stager, below)
        journal = Journal(root, _mkdir(container / "trash"))
        journal.remember("", original_root)
        _commit(stager, journal, container, deletions=overlay_lower is None)
    except BaseException:
        if container.exists():
            remove_tree(container)
        apply_metadata(root, original_root)
        raise
    report.emit_warnings()
    return report


def _prepare_root(root: Path) -> Path:
    if not root.is_symlink() and not root.exists():
        root.mkdir(parents=True, mode=0o755)
        apply_metadata(root, DEFAULT_DIRECTORY)
    if root.is_symlink() or not root.is_dir():
        raise LayerError(f"cannot apply a layer to {root}: it is not a directory (a symlink is not accepted)")
    return root


def _mkdir(path: Path) -> Path:
    path.mkdir(mode=0o700)
    return path


def _stage(source: Path | BinaryIO, media_type: str | None, expected_diff_id: str | None, stager: Stager,
           max_bytes: int | None) -> None:
    name = stager.name
    with open_layer(source, media_type, name, stager.report.warnings, max_bytes) as reader:
        with tar_stream(reader, name) as archive:
            for info in archive:
                _guarded(stager.add, name, info.name, info, archive)
        stager.report.diff_id = verify_diff_id(reader, expected_diff_id, name)


def _guarded(action, layer: str, entry: str, *args) -> None:
    try:
        action(*args)
    except LxclabError:
        raise
    except OSError as exc:
        raise LayerError(
            f"layer {layer}: entry {entry!r} could not be written: {exc.strerror or exc}; "
            "nothing of this layer was applied"
        ) from exc


def _commit(stager: Stager, journal: Journal, container: Path, deletions: bool) -> None:
    try:
        if deletions:
            apply_deletions(stager, journal)
        move_entries(stager, journal)
        plan = directory_plan(stager, journal)
        for rel, meta, clear in plan[:-1]:
            if is_real_dir(journal.target, rel):
                _settle(journal.target / rel, meta, clear, stager.report.warnings)
    except OSError as exc:
        journal.rollback()
        raise LayerError(f"layer {stager.name}: could not move its files into {journal.target}: {exc}; "
                         "the target was put back as it was") from exc
    except BaseException:
        journal.rollback()
        raise
    remove_tree(container)
    _, root_meta, clear = plan[-1]
    _settle(journal.target, root_meta, clear, stager.report.warnings)


def _settle(path: Path, meta: Metadata, clear_xattrs: bool, warnings: list[str]) -> None:
    if clear_xattrs:
        clear_foreign_xattrs(path, meta.xattrs)
    apply_metadata(path, meta, warnings)
