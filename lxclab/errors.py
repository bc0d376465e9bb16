"""Every failure lxclab reports, as one named exception under one base class.

Messages say what failed, on what, and what to do next. Catch `LxclabError` to catch
them all; the CLI prints their message and exits non-zero instead of a traceback.
"""


class LxclabError(Exception):
    """Base class of every error lxclab raises on purpose."""


# --- references and manifests (layer 0) -------------------------------------------------
class InvalidReference(LxclabError):
    """An image reference that cannot be parsed."""


class ManifestError(LxclabError):
    """A manifest, index or config that is malformed or not understood."""


class UnsupportedMediaType(ManifestError):
    """A media type lxclab does not know how to handle."""


class PlatformNotFound(ManifestError):
    """An index has no manifest for the platform asked for."""


class InvalidValue(LxclabError):
    """A name, path, user or environment entry that may not reach a config key, a file name or a process."""


class InvalidImageConfig(ManifestError, InvalidValue):
    """An image config whose run settings (Env, Cmd, WorkingDir, User...) are malformed or unsafe; refused at pull."""


class DigestMismatch(LxclabError):
    """Content whose sha256 is not the digest it was asked for or announced with."""


# --- registry client and store (layer 1) ------------------------------------------------
class RegistryError(LxclabError):
    """A registry answered with an error, or could not be reached."""


class AuthenticationError(RegistryError):
    """The registry or its token server refused the credentials or the scope."""


class NotFound(RegistryError):
    """The registry has no such repository, tag, manifest or blob."""


class StoreError(LxclabError):
    """The local content store cannot hold or find a blob or image."""


class ImageNotFound(StoreError):
    """The image has not been pulled into the local store."""


# --- classroom registry -----------------------------------------------------------------
class ClassroomError(LxclabError):
    """The classroom registry or token server cannot start, stop or answer."""


class TokenError(ClassroomError):
    """A JWT that cannot be decoded, or whose signature does not verify."""


class SeedError(ClassroomError):
    """A seed image that cannot be built or pushed (a package that cannot be fetched, a bad layout)."""


# --- layers and union filesystem --------------------------------------------------------
class LayerError(LxclabError):
    """A layer that cannot be applied; nothing of it was written."""


class UnsafeLayerEntry(LayerError):
    """A tar entry that would write outside the root, or an invalid whiteout."""


class MountError(LxclabError):
    """A mount or unmount that the kernel refused."""


# --- kernel: chroot, namespaces, cgroups, network ---------------------------------------
class KernelError(LxclabError):
    """A system call failed; the message names the call, its arguments and errno."""


class CgroupError(LxclabError):
    """A cgroup that cannot be created, limited, read or removed."""


class InvalidLimit(CgroupError):
    """A resource limit value that cannot be understood (like '12 parsecs')."""


class NetworkError(LxclabError):
    """A network namespace, bridge or veth that cannot be set up or removed."""


class SpawnError(LxclabError):
    """A container process that could not be set up or started; the message names the step."""


class CommandNotFound(SpawnError):
    """The command to run does not exist in the container's root filesystem."""


# --- engine and LXC ---------------------------------------------------------------------
class ContainerError(LxclabError):
    """A container operation that cannot be done in the container's present state."""


class ContainerNotFound(ContainerError):
    """No container with that name or ID exists."""


class NotDefined(ContainerNotFound):
    """An LXC container that has no configuration in its lxcpath (never created, or destroyed)."""


class AlreadyDefined(ContainerError):
    """An LXC container name already taken in that lxcpath."""


class NotRunning(ContainerError):
    """An operation that needs a running container, on one that is stopped or frozen."""


class AlreadyRunning(ContainerError):
    """An operation that needs a stopped container (start, destroy, snapshot), on a running one."""


class NotFrozen(ContainerError):
    """Unfreeze asked of a container that is not frozen."""


class AlreadyFrozen(ContainerError):
    """Freeze asked of a container that is already frozen."""


class SnapshotNotFound(ContainerError):
    """A container has no snapshot of that name."""


class LxcError(ContainerError):
    """liblxc refused or failed an operation; the message names it and quotes LXC's log."""


class LxcUnavailable(LxcError):
    """The python-lxc binding (PyPI `lxc`, built against liblxc) is not installed."""


class ShutdownTimeout(LxcError):
    """A container whose init did not stop within the timeout after LXC's halt signal (it ignores the signal)."""


class RebootFailed(LxcError):
    """A container that did not come back with a new init after LXC's reboot signal (it stopped, or init ignored it)."""


class UnknownConfigKey(LxcError):
    """An LXC config key that liblxc does not know (a misspelt lxc.* key)."""


# --- resource monitoring and graphs -----------------------------------------------------
class SamplingError(LxclabError):
    """Resource samples that cannot be taken, recorded, replayed or drawn."""


# --- hardening: limits and trust (registry, layers, classroom) --------------------------
class ResponseTooLarge(RegistryError):
    """A registry or token server answer (or a declared blob) larger than lxclab's limit for it; not read further."""


class UntrustedRealm(AuthenticationError):
    """A token realm that credentials must not be sent to: another host, or plain HTTP for an HTTPS registry."""


class LayerTooLarge(LayerError):
    """A layer whose uncompressed stream, or one of whose tar headers, is larger than the limit (a compression bomb)."""


class RegistryBusy(RegistryError):
    """A 429 or 5xx answer from a registry or token server, worth trying again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after
