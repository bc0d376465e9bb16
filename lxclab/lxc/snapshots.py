"""Snapshots of a stopped Container: full copies of its config and rootfs under <lxcpath>/<name>/snaps."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AlreadyRunning, ContainerError, LxcError, SnapshotNotFound
from .runfile import copy_lxclab_files


@dataclass(frozen=True)
class Snapshot:
    """Snapshot is one saved copy of a container: its name (snap0, snap1, ...), comment, when it was taken, where."""

    name: str
    comment: str
    timestamp: str
    path: Path


def _read_comment(comment_path: str) -> str:
    """The text of a snapshot's comment file ('' when it has none)."""
    try:
        return Path(comment_path).read_text() if comment_path else ""
    except FileNotFoundError:
        return ""


class SnapshotsMixin:
    """The snapshot half of Container (needs the Container's _lxc, name, lxcpath and guards)."""

    def create_snapshot(self, comment: str = "") -> Snapshot:
        """CreateSnapshot copies the stopped container's config and rootfs, with an optional comment, as a Snapshot."""
        self._must_be_stopped("snapshot it")
        if self.name not in str(self.rootfs):
            raise ContainerError(f"LXC can only snapshot a container whose rootfs path contains its name: "
                                 f"{self.rootfs} lacks {self.name!r}; create it on rootfs_path({self.name!r})")
        with tempfile.NamedTemporaryFile("w", suffix=".comment") as comment_file:
            comment_file.write(comment)
            comment_file.flush()
            name = self._lxc.snapshot(comment_file.name) if comment else self._lxc.snapshot()
        if not name:
            raise LxcError(f"LXC could not snapshot container {self.name!r}: {self._log_tail()}")
        snapshot = self._snapshot(name)
        copy_lxclab_files(self.lxcpath / self.name, snapshot.path)
        return snapshot

    def snapshots(self) -> list[Snapshot]:
        """Snapshots lists the container's snapshots, oldest first."""
        self._must_be_defined()
        found = [Snapshot(name, _read_comment(comment_path), timestamp, Path(where) / name)
                 for name, comment_path, timestamp, where in self._lxc.snapshot_list()]
        return sorted(found, key=lambda snapshot: int(snapshot.name.removeprefix("snap") or 0))

    def restore_snapshot(self, snapshot: Snapshot | str, new_name: str) -> Any:
        """RestoreSnapshot makes a new stopped container `new_name` from `snapshot` (or its name) and returns it."""
        snapshot = self._snapshot(snapshot)
        self._must_be_free(new_name, f"restore snapshot {snapshot.name!r} of {self.name!r}")
        if not self._lxc.snapshot_restore(snapshot.name, new_name):
            raise LxcError(f"LXC could not restore snapshot {snapshot.name!r} of {self.name!r} as {new_name!r}: "
                           f"{self._log_tail()}")
        return self._adopt_copy(new_name, self.lxcpath, snapshot.path)

    def destroy_snapshot(self, snapshot: Snapshot | str) -> None:
        """DestroySnapshot deletes `snapshot` (or the snapshot of that name) of the container."""
        snapshot = self._snapshot(snapshot)
        if not self._lxc.snapshot_destroy(snapshot.name):
            raise LxcError(f"LXC could not delete snapshot {snapshot.name!r} of {self.name!r}: {self._log_tail()}")

    def _snapshot(self, wanted: Snapshot | str) -> Snapshot:
        """The snapshot called `wanted` (a name or a Snapshot), or SnapshotNotFound listing those that exist."""
        name = wanted.name if isinstance(wanted, Snapshot) else wanted
        snapshots = self.snapshots()
        for snapshot in snapshots:
            if snapshot.name == name:
                return snapshot
        known = ", ".join(s.name for s in snapshots) or "none"
        raise SnapshotNotFound(f"container {self.name!r} has no snapshot {name!r} (it has: {known})")

    def _destroy_snapshots(self) -> None:
        """Delete every snapshot (liblxc refuses to destroy a container that has some)."""
        for snapshot in self.snapshots():
            self.destroy_snapshot(snapshot)

    def _must_be_stopped(self, action: str) -> None:
        """Raise AlreadyRunning unless the container is defined and stopped."""
        self._must_be_defined()
        if self.running:
            raise AlreadyRunning(f"cannot {action}: container {self.name!r} is {self.state.value}; stop it first")
