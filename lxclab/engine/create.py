"""Recording a new container (`docker create`): its image found, its command, environment and options checked.

Nothing is created on the host here: `create` only writes the container's record
(lxclab.engine.containers); running it is lxclab.engine.run's job.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

from .. import namespaces, validation
from ..errors import ContainerError, ImageNotFound
from ..limits import Limits
from ..manifest import Platform
from ..security import Profile
from ..store import Store, StoredImage
from ..unionfs import COPY, OVERLAY
from .containers import NAMESPACES, NET_BRIDGE, NET_NONE, ContainerRecord, ContainerConfig, containers, creation_lock, new_id
from .runtimes import runtime_for


def create(ref: str, command: list[str] | None = None, *, name: str | None = None, limits: Limits | None = None,
           hostname: str | None = None, net: str = NET_NONE, rootless: bool | None = None, mode: str | None = None,
           remove: bool = False, runtime: str = NAMESPACES, env: list[str] | tuple[str, ...] = (),
           profile: Profile | None = None, userns: bool = False) -> ContainerRecord:
    """Record a new container of pulled image `ref`; nothing is created on the host yet.

    `command` replaces the image's Cmd (its Entrypoint stays in front). Rootless mode
    (the default for non-root users) needs copy mode, no limits and no bridge network.
    runtime="lxc" has liblxc start it instead (root, no bridge network, no image User).
    `env` adds KEY=value entries over the image's Env (`docker run -e`). The name, host
    name and environment are checked (lxclab.validation) before anything is recorded.
    `profile` is what its root may do (default: runc's and Docker's defaults, lxclab.security).
    `userns` (root, namespaces runtime) runs its root as host ids of lxclab-remap's range
    (namespaces.remap_range), fixed in the record, as Docker's userns-remap does.
    """
    rootless = os.geteuid() != 0 if rootless is None else rootless
    mode = mode or (COPY if rootless else OVERLAY)
    profile = profile or Profile()
    _check_options(net, mode, rootless, limits or Limits())
    if userns:
        _check_userns(rootless, profile)
    image = find_image(ref)
    _check_platform(ref, image)
    runtime_for(runtime).check(net, rootless, image, userns)
    argv = list(image.config.entrypoint) + list(command or image.config.cmd)
    if not argv:
        raise ContainerError(f"image {ref} has no Cmd or Entrypoint: give the command to run after the image name")
    container_id = new_id()
    hostname = validation.hostname(hostname or container_id[:12])
    environment = dict(validation.env_entry(item) for item in image.config.env)
    environment |= dict(validation.env_entry(item, "--env") for item in env)
    config = ContainerConfig(
        id=container_id, name=container_id[:12], image=ref, image_digest=image.digest, argv=argv,
        env={**environment, "HOSTNAME": hostname}, cwd=validation.working_dir(image.config.working_dir),
        user=validation.user(image.config.user) or None,
        hostname=hostname, limits=limits or Limits(), net=net, mode=mode, rootless=rootless,
        remove=remove, created=time.time(), runtime=runtime, security=profile.to_dict(),
        userns=namespaces.remap_range() if userns else None)
    with creation_lock():  # two runs given one --name: the second sees the first's record and is refused
        return ContainerRecord.create(replace(config, name=_check_name(name)) if name else config)


def find_image(ref: str) -> StoredImage:
    """The pulled image `ref`; ImageNotFound telling how to pull it if it is not in the store."""
    try:
        return Store().image(ref)
    except ImageNotFound:
        raise ImageNotFound(f"image {ref} is not in the store: pull it first: lxclab pull {ref}") from None


def _check_platform(ref: str, image: StoredImage) -> None:
    """Refuse an image built for another machine, which the kernel could only refuse with ENOEXEC."""
    host = Platform.host()
    if not host.matches(image.platform):
        raise ContainerError(
            f"image {ref} is for {image.platform}, but this machine is {host}: "
            f"pull the image for this machine again (lxclab pull {ref}) to run it")


def _check_options(net: str, mode: str, rootless: bool, limits: Limits) -> None:
    """Refuse option combinations that cannot work, before anything is recorded."""
    if net not in (NET_NONE, NET_BRIDGE):
        raise ContainerError(f"unknown network {net!r}: use 'none' (only lo) or 'bridge'")
    if mode not in (OVERLAY, COPY):
        raise ContainerError(f"unknown root filesystem mode {mode!r}: use 'overlay' or 'copy'")
    if rootless and mode == OVERLAY:
        raise ContainerError("rootless containers use copy mode (--mode copy): the shared layer cache holds "
                             "overlayfs whiteouts only root can make")
    if rootless and limits != Limits():
        raise ContainerError("limits need a cgroup of the container's own, which needs root here: drop --memory, "
                             "--cpus and --pids, or run as root")
    if rootless and net == NET_BRIDGE:
        raise ContainerError("a bridge network needs root (veth pairs and a bridge); use --net none")


def _check_userns(rootless: bool, profile: Profile) -> None:
    """Refuse --userns where it cannot work: rootless mode, --privileged."""
    if rootless:
        raise ContainerError("--userns maps root to a range of host ids, which needs root; rootless mode already "
                             "runs in a user namespace of your own: drop --userns or --rootless")
    if profile.privileged:
        raise ContainerError("--privileged hands the container the host's powers, which --userns takes away: "
                             "drop one of them")


def _check_name(name: str) -> str:
    """A valid name that no other container of this home has."""
    validation.container_name(name)
    taken = [c for c in containers() if c.name == name]
    if taken:
        raise ContainerError(f"the name {name!r} is in use by container {taken[0].short_id}: "
                             f"remove it (lxclab rm {name}) or choose another name")
    return name
