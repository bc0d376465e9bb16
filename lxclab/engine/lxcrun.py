"""The LXC runtime: a recorded container started by liblxc instead of lxclab's own namespaces code.

The record, the log, `ps`, `exec`, `rm` and `gc` are the same for both runtimes; only the
launch differs. The LXC container is named after the record's ID (`lxclab-<short id>`:
LXC names its cgroups after it, and those are global to the host) and lives in
`$LXCLAB_HOME/lxc`. LXC's destroy deletes the container's rootfs directory, so that
directory is always the container's own:

- overlay mode: the image's layers from the shared cache, with the record's own upper and
  work directories, mounted by overlayfs *on the host* at the LXC container's rootfs path
  (liblxc must see it to pivot into it); the mount is recorded first, and unmounted when
  the container exits, before any destroy. Writes land in the record's upper dir, as with
  the namespaces runtime, so `commit` reads both alike.
- copy mode: a private copy of the layers, at the same path.

Init is started in the foreground from a starter process (lxclab.lxc.foreground), with the
container's log as its stdout and stderr, so that its exit status comes back as the
namespaces runtime's does. LXC removes the container's cgroups as it stops, so an OOM
kill is not reported apart from its status (137).
"""

from __future__ import annotations

from pathlib import Path

from .. import _linux
from ..chroot import DEFAULT_PATH, ExitStatus
from ..lxc import Container as LxcContainer
from ..lxc import Init, default_lxcpath, rootfs_path
from ..lxc.hierarchies import recorded_cgroups, remove_leftovers
from ..procfs import identity
from ..store import StoredImage
from ..unionfs import COPY
from .containers import ContainerRecord
from .rootfs import copy_layers, overlay_dirs


def lxc_container(container: ContainerRecord) -> LxcContainer:
    """The LXC container behind a record of the LXC runtime (it need not be defined)."""
    return LxcContainer(container.config.lxc_name, default_lxcpath())


def launch(container: ContainerRecord, image: StoredImage, stdio: tuple[int, int, int]) -> Init:
    """Make the container's root, define its LXC container (once), and start its init on `stdio`."""
    config = container.config
    box = lxc_container(container)
    container.record(lxc=[{"name": box.name, "lxcpath": str(box.lxcpath)}], dirs=[str(box.lxcpath / box.name)])
    rootfs = rootfs_path(box.name, box.lxcpath)
    _make_root(container, image, rootfs)
    if not box.defined:
        env = {"PATH": DEFAULT_PATH, **config.env}
        box = LxcContainer.create(box.name, rootfs, cmd=config.argv, env=env, working_dir=config.cwd,
                                  hostname=config.hostname, limits=config.limits, lxcpath=box.lxcpath,
                                  profile=config.profile)
    container.record(cgroups=recorded_cgroups(box.name, box.lxcpath))
    init = box.run(config.argv, *stdio)
    container.record(pids=[identity(init.monitor_pid)] + ([identity(init.init_pid)] if init.init_pid else []))
    container.state.pid = identity(init.init_pid) if init.init_pid else None
    return init


def _make_root(container: ContainerRecord, image: StoredImage, rootfs: Path) -> None:
    """Mount the overlay root on the host (recorded first), or copy the layers there in copy mode."""
    if container.config.mode == COPY:
        copy_layers(image, rootfs)
        return
    options = overlay_dirs(container, image)
    rootfs.mkdir(parents=True, exist_ok=True)
    container.record(mounts=[str(rootfs)])
    _linux.mount("overlay", str(rootfs), "overlay", _linux.MS_NODEV if container.config.profile.nodev else 0, options)


def after_exit(container: ContainerRecord) -> list[str]:
    """What an exited LXC container no longer needs: its root's mount (returned, to release) and idle LXC cgroups."""
    remove_leftovers(container.config.lxc_name, default_lxcpath(), timeout=0.5)
    return list(container.state.footprint.mounts)


def exec_lxc(container: ContainerRecord, command: list[str], stdio: tuple[int | None, int | None, int | None]) -> ExitStatus:
    """Run `command` in a running LXC container (LXC's attach), with its environment and working directory."""
    return lxc_container(container).attach(command, cwd=container.config.cwd, stdio=stdio)

