"""Extract one layer's own entries into a fresh staging directory, refusing anything unsafe.

Staging never looks at the target: whiteouts and opaque markers are only recorded (they
are judged later, against the layers below), and every path is created component by
component under the staging root, so a symlink in the layer is never followed. Rules:
- a parent that this layer made a symlink, file or hardlink is never written through:
  such an entry is refused (a layer may replace a symlink by a directory, and then fill it);
- a later entry for the same path replaces the earlier one (two directories merge);
- a hardlink to a non-directory of the same layer, before or after it in the stream, is
  linked to that entry itself (a link to a symlink links the symlink); the others wait
  for lower.py, which links them to a regular file of the layers below;
- a 0/0 character device is refused: overlayfs reads it as a whiteout;
- device nodes need CAP_MKNOD: without it they are skipped with a warning.
Directory metadata is applied later, once their contents stop changing.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
from pathlib import Path

from . import names
from .entries import BLOCK, CHAR, DIRECTORY, FIFO, FILE, HARDLINK, SYMLINK, kind_of
from .metadata import Metadata, apply_metadata, from_tarinfo
from .report import ApplyReport
from .stream import CHUNK

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def lstat_or_none(path: Path) -> os.stat_result | None:
    """lstat, or None when nothing is there."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def describe(st: os.stat_result) -> str:
    """A short word for a file type: 'symlink', 'file', 'directory', ..."""
    mode = st.st_mode
    for test, word in ((stat.S_ISLNK, "symlink"), (stat.S_ISREG, "file"), (stat.S_ISDIR, "directory"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device")):
        if test(mode):
            return word
    return "special file"


def remove_tree(path: Path) -> None:
    """Remove a file or a whole directory tree, without recursion, opening read-only directories."""
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        os.unlink(path)
        return
    stack: list[tuple[str, bool]] = [(str(path), False)]
    while stack:
        current, emptied = stack.pop()
        if emptied:
            os.rmdir(current)
            continue
        if os.geteuid() != 0:
            os.chmod(current, 0o700)
        stack.append((current, True))
        with os.scandir(current) as listing:
            for entry in listing:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, False))
                else:
                    os.unlink(entry.path)


class Stager:
    """Writes a layer's entries under `root`, a fresh empty directory, and remembers its markers."""

    def __init__(self, root: Path, report: ApplyReport):
        self.root = root
        self.name = report.name
        self.report = report
        self.directories: dict[str, Metadata] = {}
        self.implied: set[str] = set()
        self.implied_meta: dict[str, Metadata] = {}
        self.deferred: dict[str, tuple[str, str]] = {}
        self.skipped: set[str] = set()
        self.can_mknod = True

    @property
    def whiteouts(self) -> list[str]:
        """Paths this layer deletes from the layers below."""
        return self.report.whiteouts

    @property
    def opaques(self) -> list[str]:
        """Directories this layer empties of what the layers below hold."""
        return self.report.opaques

    def add(self, info: tarfile.TarInfo, archive: tarfile.TarFile) -> None:
        """Stage one tar member (or record it, if it is a whiteout or opaque marker)."""
        path = names.clean_name(info.name, self.name)
        meaning, subject = names.classify(path, info.name, self.name)
        if meaning == names.AUFS_META:
            self.report.skipped.append(path)
        elif meaning == names.WHITEOUT:
            self.whiteouts.append(subject)
        elif meaning == names.OPAQUE:
            self.opaques.append(subject)
        elif path == "":
            self._root_entry(info)
        else:
            kind = kind_of(info, info.name, self.name)
            self._make_parents(path, info.name)
            self._clear(path, kind)
            _CREATORS[kind](self, path, info, archive)

    def link_staged(self) -> None:
        """Link the hardlinks that came before their targets in this layer; the rest stay deferred."""
        progress = True
        while self.deferred and progress:
            progress = False
            for path, (target, raw) in list(self.deferred.items()):
                if self._try_link(path, target, raw):
                    del self.deferred[path]
                    progress = True

    def hides_below(self, rel: str) -> bool:
        """True if this layer's own markers hide whatever the layers below hold at `rel`."""
        return names.hidden(rel, self.whiteouts, self.opaques)

    def make_implied(self, rels: list[str]) -> None:
        """Create the missing directories among `rels` (outermost first) as directories the layer implies."""
        for rel in rels:
            if lstat_or_none(self.root / rel) is None:
                os.mkdir(self.root / rel, 0o700)
                self.implied.add(rel)

    def staged_stat(self, path: str) -> os.stat_result | None:
        """lstat of a staged path if every parent is a real directory, else None (never follows links)."""
        for parent in names.parents(path):
            st = lstat_or_none(self.root / parent)
            if st is None or not stat.S_ISDIR(st.st_mode):
                return None
        return lstat_or_none(self.root / path) if path else os.lstat(self.root)

    def _root_entry(self, info: tarfile.TarInfo) -> None:
        if kind_of(info, info.name, self.name) != DIRECTORY:
            raise names.refuse(self.name, info.name, "the root of the filesystem can only be a directory")
        self.directories[""] = from_tarinfo(info)

    def _make_parents(self, path: str, raw: str) -> None:
        for parent in names.parents(path):
            st = lstat_or_none(self.root / parent)
            if parent in self.deferred:
                raise names.refuse(self.name, raw, f"its parent {parent!r} is a hardlink in this layer")
            if st is None:
                os.mkdir(self.root / parent, 0o700)
                self.implied.add(parent)
            elif not stat.S_ISDIR(st.st_mode):
                raise names.refuse(self.name, raw, f"its parent {parent!r} is a {describe(st)} in this layer, "
                                   "and lxclab never writes through a link or into a file")

    def _clear(self, path: str, kind: str) -> None:
        self.deferred.pop(path, None)
        st = lstat_or_none(self.root / path)
        if st is None or (stat.S_ISDIR(st.st_mode) and kind == DIRECTORY):
            return
        remove_tree(self.root / path)
        self._forget(path)

    def _forget(self, path: str) -> None:
        for records in (self.directories, self.deferred):
            for key in [k for k in records if names.is_under(k, path)]:
                del records[key]
        self.implied = {p for p in self.implied if not names.is_under(p, path)}
        self.skipped = {p for p in self.skipped if not names.is_under(p, path)}

    def _file(self, path: str, info: tarfile.TarInfo, archive: tarfile.TarFile) -> None:
        fd = os.open(self.root / path, _CREATE_FLAGS, 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(archive.extractfile(info), out, CHUNK)
        apply_metadata(self.root / path, from_tarinfo(info), self.report.warnings)
        self.report.files += 1
        self.report.bytes += info.size

    def _directory(self, path: str, info: tarfile.TarInfo, _archive: tarfile.TarFile) -> None:
        if lstat_or_none(self.root / path) is None:
            os.mkdir(self.root / path, 0o700)
        self.implied.discard(path)
        self.directories[path] = from_tarinfo(info)
        self.report.directories += 1

    def _symlink(self, path: str, info: tarfile.TarInfo, _archive: tarfile.TarFile) -> None:
        if not info.linkname:
            raise names.refuse(self.name, info.name, "a symlink needs a target, and this one is empty")
        os.symlink(info.linkname, self.root / path)
        apply_metadata(self.root / path, from_tarinfo(info), self.report.warnings)
        self.report.symlinks += 1

    def _hardlink(self, path: str, info: tarfile.TarInfo, _archive: tarfile.TarFile) -> None:
        target = names.clean_name(info.linkname, self.name)
        if target in ("", path):
            raise names.refuse(self.name, info.name, f"a hardlink cannot point at {target or 'the root'!r}")
        if not self._try_link(path, target, info.name):
            self.deferred[path] = (target, info.name)

    def _try_link(self, path: str, target: str, raw: str) -> bool:
        st = self.staged_stat(target)
        if st is None or target in self.deferred:
            return False
        if stat.S_ISDIR(st.st_mode):
            raise names.refuse(self.name, raw, f"the hardlink target {target!r} is a directory")
        os.link(self.root / target, self.root / path, follow_symlinks=False)
        self.report.hardlinks += 1
        return True

    def _node(self, path: str, info: tarfile.TarInfo, _archive: tarfile.TarFile) -> None:
        kind = stat.S_IFCHR if info.type == tarfile.CHRTYPE else stat.S_IFBLK
        if kind == stat.S_IFCHR and (info.devmajor, info.devminor) == (0, 0):
            raise names.refuse(self.name, info.name, "a 0/0 character device is overlayfs's whiteout; "
                               "OCI layers delete files with .wh. entries")
        try:
            if not self.can_mknod:
                raise PermissionError
            os.mknod(self.root / path, kind | 0o600, os.makedev(info.devmajor, info.devminor))
        except PermissionError:
            self.can_mknod = False
            self.skipped.add(path)
            self.report.skipped.append(path)
            message = "device nodes skipped: creating them (mknod) needs CAP_MKNOD, i.e. root"
            if message not in self.report.warnings:
                self.report.warnings.append(message)
            return
        apply_metadata(self.root / path, from_tarinfo(info), self.report.warnings)
        self.report.devices += 1

    def _fifo(self, path: str, info: tarfile.TarInfo, _archive: tarfile.TarFile) -> None:
        os.mkfifo(self.root / path, 0o600)
        apply_metadata(self.root / path, from_tarinfo(info), self.report.warnings)
        self.report.fifos += 1


_CREATORS = {
    FILE: Stager._file, DIRECTORY: Stager._directory, SYMLINK: Stager._symlink, HARDLINK: Stager._hardlink,
    CHAR: Stager._node, BLOCK: Stager._node, FIFO: Stager._fifo,
}
