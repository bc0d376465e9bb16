"""Move a staged layer into the target, recording every change so that a failure can undo it.

The order follows the OCI rules: first the opaque markers empty their directories, then
the whiteouts delete their paths, judged against what the layers below left in the
target (their paths already resolved through the lower layers' symlinks by lower.py; a
whiteout under a file deletes nothing), and only then do the layer's own entries
arrive. A staged directory meeting a directory merges into it; anything else replaces
what was there. Nothing is deleted until the end: replaced and whited-out files are
renamed into a trash directory beside the staging area, so undoing is a rename back.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from . import names
from .metadata import DEFAULT_DIRECTORY, Metadata, apply_metadata, chmod_nofollow, privileged, read_metadata
from .stage import Stager, lstat_or_none


def join(rel: str, name: str) -> str:
    """A child's relative path ('' is the root)."""
    return f"{rel}/{name}" if rel else name


def is_real_dir(root: Path, rel: str) -> bool:
    """True if `rel` and every parent of it are directories under `root`, no symlink on the way."""
    for path in names.parents(rel) + ([rel] if rel else []):
        st = lstat_or_none(root / path)
        if st is None or not stat.S_ISDIR(st.st_mode):
            return False
    return True


def open_for_writing(path: Path, meta: Metadata) -> None:
    """Give the owner rwx on a directory about to change, when not root (its mode is restored later)."""
    if not privileged() and meta.mode & 0o700 != 0o700:
        chmod_nofollow(path, meta.mode | 0o700)


class Journal:
    """The changes made to a target so far: renames to undo and directory metadata to restore."""

    def __init__(self, target: Path, trash: Path):
        self.target = target
        self.trash = trash
        self.renames: list[tuple[Path, Path]] = []
        self.saved: dict[str, Metadata] = {}
        self.kept: set[str] = set()

    def remember(self, rel: str, meta: Metadata) -> None:
        """Record a directory's metadata as it was before this layer (taken by the caller)."""
        self.saved[rel] = meta
        self.kept.add(rel)

    def save_dir(self, rel: str) -> None:
        """Remember a target directory's metadata before touching it (and open it, if not root)."""
        if rel in self.saved:
            return
        meta = read_metadata(self.target / rel)
        self.remember(rel, meta)
        open_for_writing(self.target / rel, meta)

    def move_aside(self, rel: str) -> None:
        """Rename a target path into the trash (deleted for good only when the layer succeeds)."""
        if stat.S_ISDIR(os.lstat(self.target / rel).st_mode):
            self.save_dir(rel)
        aside = self.trash / str(len(self.renames))
        os.rename(self.target / rel, aside)
        self.renames.append((self.target / rel, aside))
        self.kept = {k for k in self.kept if not names.is_under(k, rel)}

    def move_in(self, source: Path, rel: str) -> None:
        """Rename a staged path into the target."""
        os.rename(source, self.target / rel)
        self.renames.append((source, self.target / rel))

    def rollback(self) -> None:
        """Undo every rename, newest first, then restore the saved directory metadata."""
        for original, moved in reversed(self.renames):
            os.rename(moved, original)
        self.renames.clear()
        for rel in sorted(self.saved, key=names.depth, reverse=True):
            if is_real_dir(self.target, rel):
                apply_metadata(self.target / rel, self.saved[rel])


def apply_deletions(stager: Stager, journal: Journal) -> None:
    """Empty the opaque directories, then delete the whited-out paths, as the layers below hold them."""
    for rel in stager.opaques:
        if is_real_dir(journal.target, rel):
            journal.save_dir(rel)
            for name in sorted(os.listdir(journal.target / rel)):
                if not (rel == "" and name.startswith(names.STAGING_PREFIX)):
                    journal.move_aside(join(rel, name))
    for rel in sorted(set(stager.whiteouts), key=names.depth):
        parent = rel.rpartition("/")[0]
        if is_real_dir(journal.target, parent) and lstat_or_none(journal.target / rel) is not None:
            journal.save_dir(parent)
            journal.move_aside(rel)


def move_entries(stager: Stager, journal: Journal) -> None:
    """Move every staged entry into the target: directories merge, anything else replaces."""
    pending = [""]
    while pending:
        rel = pending.pop()
        journal.save_dir(rel)
        for name in sorted(os.listdir(stager.root / rel)):
            child = join(rel, name)
            source_is_dir = stat.S_ISDIR(os.lstat(stager.root / child).st_mode)
            existing = lstat_or_none(journal.target / child)
            if source_is_dir and existing is not None and stat.S_ISDIR(existing.st_mode):
                pending.append(child)
                continue
            if existing is not None:
                journal.move_aside(child)
            journal.move_in(stager.root / child, child)


def directory_plan(stager: Stager, journal: Journal) -> list[tuple[str, Metadata, bool]]:
    """The metadata each touched directory ends with, deepest first (the root last).

    A directory the layer lists gets the layer's metadata; one that only existed below
    gets its own back; one the layer implies gets the metadata found for it below (overlay
    form) or the default. The flag says whether xattrs not in the layer must be cleared.
    """
    paths = set(stager.directories) | stager.implied | journal.kept | {""}
    plan = []
    for rel in sorted(paths, key=lambda p: (names.depth(p), p), reverse=True):
        if rel in stager.directories:
            plan.append((rel, stager.directories[rel], rel in journal.kept))
        elif rel in stager.implied_meta:
            plan.append((rel, stager.implied_meta[rel], False))
        elif rel in journal.kept:
            plan.append((rel, journal.saved[rel], False))
        else:
            plan.append((rel, DEFAULT_DIRECTORY, False))
    return plan
