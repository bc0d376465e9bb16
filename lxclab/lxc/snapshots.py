"""Snapshots of a stopped Container: full copies of its config and rootfs under <lxcpath>/<name>/snaps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AlreadyDefined, AlreadyRunning, ContainerError, LxcError, SnapshotNotFound
from .runfile import copy_run_file


@dataclass(frozen=True)
class Snapshot:
    """Snapshot is one saved copy of a container: its name (snap0, snap1, ...), when it was taken, where it lives."""

    name: str
    timestamp: str
    path: Path


class SnapshotsMixin:
    """The snapshot half of Container (needs the Container's _lxc, name, lxcpath and guards)."""

    def create_snapshot(self) -> str:
        """CreateSnapshot copies the stopped container's config and rootfs and returns the snapshot's name."""
        self._must_be_stopped("snapshot it")
        if self.name not in str(self.rootfs):
            raise ContainerError(f"LXC can only snapshot a container whose rootfs path contains its name: "
                                 f"{self.rootfs} lacks {self.name!r}; create it on rootfs_path({self.name!r})")
        name = self._lxc.snapshot()
        if not name:
            raise LxcError(f"LXC could not snapshot container {self.name!r}: {self._log_tail()}")
        copy_run_file(self.lxcpath / self.name, self._snapshot(name).path)
        return name

    def snapshots(self) -> list[Snapshot]:
        """Snapshots lists the container's snapshots, oldest first."""
        self._must_be_defined()
        listed = self._lxc.snapshot_list()
        found = [Snapshot(name, timestamp, Path(where) / name) for name, _comment, timestamp, where in listed]
        return sorted(found, key=lambda snapshot: int(snapshot.name.removeprefix("snap") or 0))

    def restore_snapshot(self, name: str, new_name: str) -> Any:
        """RestoreSnapshot makes a new stopped container `new_name` from snapshot `name` and returns it."""
        snapshot = self._snapshot(name)
        restored = type(self)(new_name, self.lxcpath)
        if restored.defined:
            raise AlreadyDefined(f"cannot restore snapshot {name!r} of {self.name!r} as {new_name!r}: "
                                 "that container exists; choose another name")
        if not self._lxc.snapshot_restore(name, new_name):
            raise LxcError(f"LXC could not restore snapshot {name!r} of {self.name!r} as {new_name!r}: "
                           f"{self._log_tail()}")
        restored = type(self)(new_name, self.lxcpath)  # reopen: the new config exists only now
        restored._set_config("lxc.uts.name", self.hostname)  # LXC's clone renames the host after the container
        restored._set_config("lxc.log.file", str(self.lxcpath / new_name / "lxc.log"))
        restored._save_config()
        copy_run_file(snapshot.path, self.lxcpath / new_name)
        return restored

    def _snapshot(self, name: str) -> Snapshot:
        """The snapshot called `name`, or SnapshotNotFound listing those that exist."""
        snapshots = self.snapshots()
        for snapshot in snapshots:
            if snapshot.name == name:
                return snapshot
        known = ", ".join(s.name for s in snapshots) or "none"
        raise SnapshotNotFound(f"container {self.name!r} has no snapshot {name!r} (it has: {known})")

    def _destroy_snapshots(self) -> None:
        """Delete every snapshot (liblxc refuses to destroy a container that has some)."""
        for snapshot in self.snapshots():
            if not self._lxc.snapshot_destroy(snapshot.name):
                raise LxcError(f"LXC could not delete snapshot {snapshot.name!r} of {self.name!r}: {self._log_tail()}")

    def _must_be_stopped(self, action: str) -> None:
        """Raise AlreadyRunning unless the container is defined and stopped."""
        self._must_be_defined()
        if self.running:
            raise AlreadyRunning(f"cannot {action}: container {self.name!r} is {self.state.value}; stop it first")
