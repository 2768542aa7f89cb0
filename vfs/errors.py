"""The one exception tree of vfs.

Core code raises these; the FUSE adapter maps them to errno in one function and the CLI prints their
message (no traceback) and exits with the class's `exit_code`.
"""

from __future__ import annotations

import errno


class VfsError(Exception):
    """Base of every error vfs raises on purpose."""

    exit_code = 1
    errno = errno.EIO


class UsageError(VfsError):
    """The user asked for something malformed (a bad argument, a bad history spec)."""

    exit_code = 2
    errno = errno.EINVAL


class StoreError(VfsError):
    """The store on disk is missing, unreadable or damaged."""

    exit_code = 3


class NotAStore(StoreError):
    """The path holds no vfs store."""


class SchemaTooNew(StoreError):
    """The store was written by a newer vfs than this one."""


class StoreLocked(StoreError):
    """Another live process has the store open."""

    exit_code = 4


class CorruptChunk(StoreError):
    """Bytes read back from a pack do not match their chunk id, the pack is truncated, or a sealed
    (encrypted) object fails authentication."""


class MissingChunk(StoreError):
    """The catalog points to a chunk that no pack holds."""


class NoSpace(VfsError):
    """The disk under the store is full."""

    errno = errno.ENOSPC


class WrongPassphrase(VfsError):
    """The passphrase (or key file) given opens none of an encrypted volume's key objects.

    Its own exit code, so scripts can tell it from damage; nothing has been written when it is raised.
    """

    exit_code = 7
    errno = errno.EACCES


class KeyRequired(VfsError):
    """An encrypted volume's data was asked for, but the store was opened without its passphrase."""

    exit_code = 7
    errno = errno.EACCES


# Remote object store (vfs.backend): messages name the endpoint and the key, never a credential.
class BackendError(VfsError):
    """The remote refused a request or failed in a way that retrying will not fix."""

    exit_code = 5
    transient = False


class BackendUnavailable(BackendError):
    """A failure worth retrying: timeout, connection reset, 5xx, throttling, a truncated body."""

    transient = True


class BackendNotFound(BackendError):
    """The object asked for does not exist on the remote."""

    errno = errno.ENOENT


class BackendDenied(BackendError):
    """The remote refused access (HTTP 403, bad or missing credentials)."""

    errno = errno.EACCES


class RemoteConflict(BackendError):
    """Another store has written the remote since this one last synced, or it holds another volume.

    This store then publishes nothing there (it would erase the other's commits) and keeps its data.
    """

    exit_code = 6


class LeaseHeld(RemoteConflict):
    """Another store holds the volume's writer lease (or took it from this one): this store publishes
    nothing there. The message names the holder and how to take over (`vfs lease take`)."""

    exit_code = 8


# Filesystem-level errors: each carries the errno a local filesystem would return.
class FsError(VfsError):
    errno = errno.EIO


class NotFound(FsError):
    errno = errno.ENOENT


class Exists(FsError):
    errno = errno.EEXIST


class NotEmpty(FsError):
    errno = errno.ENOTEMPTY


class IsADirectory(FsError):
    errno = errno.EISDIR


class NotADirectory(FsError):
    errno = errno.ENOTDIR


class NameTooLong(FsError):
    errno = errno.ENAMETOOLONG


class ReadOnly(FsError):
    errno = errno.EROFS


class InvalidArgument(FsError):
    errno = errno.EINVAL


class NoData(FsError):
    errno = errno.ENODATA


class NotPermitted(FsError):
    errno = errno.EPERM


class Busy(FsError):
    errno = errno.EBUSY


class NotSupported(FsError):
    errno = errno.EOPNOTSUPP


# The Python API's (vfs.api) errors, also the OSError a Python user expects (`except FileNotFoundError`).
class NoSuchPath(NotFound, FileNotFoundError):  # type: ignore[misc]  # errno: ours is the class's
    """A path, or the version, snapshot or time after its '@', names nothing in the volume."""


class NotWritable(ReadOnly, PermissionError):  # type: ignore[misc]  # errno: as NoSuchPath
    """A write to history (`PATH@SPEC`), or to a volume opened without `writable=True`."""
