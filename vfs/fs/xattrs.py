"""Extended attributes: which are stored, which are computed (user.vfs.*), which are refused (ACLs).

History views (`vfs.fs.views`) show the attributes their file had at the time they show.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from vfs.catalog import Catalog
from vfs.errors import NoData, NotPermitted, NotSupported
from vfs.fs.views import Views, is_synthetic
from vfs.types import InodeNo

_UNSUPPORTED_XATTRS = (b"system.posix_acl_access", b"system.posix_acl_default", b"security.selinux")


def _check_not_acl(name: bytes) -> None:
    """POSIX ACLs and SELinux labels are not supported, as on a filesystem mounted without them.

    Storing an ACL would not enforce it and would hide a mode change: `cp -a`, `rsync -A` and tar
    set permissions through system.posix_acl_access and fall back to chmod only on EOPNOTSUPP.
    Reads answer EOPNOTSUPP too, which tells `ls -l` to stop asking for every entry of a directory
    (it asked twice per entry, a round trip each).
    """
    if name in _UNSUPPORTED_XATTRS:
        raise NotSupported("POSIX ACLs and SELinux labels are not supported")


class Xattrs:
    """The extended attributes of live files and of history views.

    Args:
        catalog: where stored attributes live.
        views: resolves history inodes to the file and time they show.
        settle_history: commits the unsettled saves of an inode's history (see `Committer.settle_history`).

    The caller refuses changes to history (read-only) before calling `setxattr` or `removexattr`.
    """

    def __init__(
        self, catalog: Catalog, views: Views, settle_history: Callable[[InodeNo | None], Awaitable[None]]
    ) -> None:
        self.catalog = catalog
        self.views = views
        self._settle_history = settle_history

    async def getxattr(self, ino: InodeNo, name: bytes) -> bytes:
        """Stored attributes, plus user.vfs.hash (BLAKE3 of the content) and user.vfs.version."""
        _check_not_acl(name)
        if name in (b"user.vfs.hash", b"user.vfs.version"):
            if not is_synthetic(ino):
                await self._settle_history(ino)  # a save closed a moment ago is the content now
            version = self.views.content(ino) if is_synthetic(ino) else self.catalog.version_at(ino)
            if version is None:
                raise NoData("no committed content")
            return version.hash.hex().encode() if name == b"user.vfs.hash" else str(version.vno).encode()
        if not self.catalog.xattr_name_used(name):
            # Mostly security.capability, which the kernel asks for before every write(2).
            raise NoData(f"no attribute {name!r}")
        if is_synthetic(ino):
            real, at = self.views.xattr_source(ino)
            return self.catalog.getxattr(real, name, at)
        return self.catalog.getxattr(ino, name)

    def listxattr(self, ino: InodeNo) -> list[bytes]:
        if is_synthetic(ino):
            try:
                return self.catalog.listxattr(*self.views.xattr_source(ino))
            except NoData:
                return []
        return self.catalog.listxattr(ino)

    def setxattr(self, ino: InodeNo, name: bytes, value: bytes) -> None:
        _check_not_acl(name)
        if name.startswith(b"user.vfs."):
            raise NotPermitted("user.vfs.* attributes are computed, not stored")
        self.catalog.setxattr(ino, name, value)

    def removexattr(self, ino: InodeNo, name: bytes) -> None:
        _check_not_acl(name)
        self.catalog.removexattr(ino, name)
