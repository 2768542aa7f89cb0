"""pyfuse3 Operations over a FileSystem: argument mapping, file/dir handle tables, errno translation.

Errors are translated in one place, `_errno`: vfs errors carry their errno, anything unexpected is
logged with the operation and its first arguments and answered with EIO (the mount stays up).
"""

from __future__ import annotations

import errno
import functools
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, ParamSpec, TypeVar

import pyfuse3

from vfs.errors import NotFound, VfsError
from vfs.fs.filesystem import FileSystem
from vfs.fs.types import Attr
from vfs.fs.views import is_synthetic
from vfs.fuse.kernel import KernelCache
from vfs.types import InodeNo

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

# Every change reaches the filesystem through the kernel, which invalidates its own caches, so
# long timeouts are safe; content changed by other paths is invalidated explicitly. A hidden history
# name in a live directory is cached for a second only (`f@-1h` means another version a minute
# later, yet `ls -l f@/` must not look `f@` up again for every entry); names inside history
# directories are immutable views, cached longer (a snapshot may still be deleted elsewhere).
# A name missing from a live directory is cached as missing just as long (`missing_entry`): the
# kernel's own create, mkdir, link, symlink and rename replace that entry, and the daemon's other ways
# of adding names have the kernel forget the names they added: restore and put through the control
# socket, and a follower's refresh (it forgets every name that began or ended). Never for a name with
# '@': f@9 resolves once f has a 9th version.
TIMEOUT = 300.0
HIDDEN_NAME_TIMEOUT = 1.0
HISTORY_TIMEOUT = 10.0


def _errno(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except pyfuse3.FUSEError:
            raise
        except VfsError as e:
            if e.errno == errno.EIO:  # damage or an outage: the program sees only EIO, the log says which
                log.error("%s%r: %s", fn.__name__, _brief(args), e)
            raise pyfuse3.FUSEError(e.errno) from None
        except OSError as e:
            log.warning("%s%r: %s", fn.__name__, _brief(args), e)
            raise pyfuse3.FUSEError(e.errno or errno.EIO) from None
        except Exception:
            log.exception("internal error in %s%r", fn.__name__, _brief(args))
            raise pyfuse3.FUSEError(errno.EIO) from None

    return wrapper


def _brief(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The arguments worth logging: inode numbers and names, never file data."""
    return tuple(a for a in args[1:3] if isinstance(a, int | bytes) and not (isinstance(a, bytes) and len(a) > 255))


def entry(attr: Attr, *, parent: int = 0) -> pyfuse3.EntryAttributes:
    """Attributes for the kernel; `parent` (when known) decides how long the name may be cached."""
    e = pyfuse3.EntryAttributes()
    e.st_ino = attr.ino
    e.generation = 0
    history = is_synthetic(attr.ino)
    if not history:
        e.entry_timeout = TIMEOUT
    else:
        e.entry_timeout = HISTORY_TIMEOUT if is_synthetic(parent) else HIDDEN_NAME_TIMEOUT
    e.attr_timeout = HISTORY_TIMEOUT if history else TIMEOUT
    e.st_mode = attr.mode
    e.st_nlink = attr.nlink
    e.st_uid = attr.uid
    e.st_gid = attr.gid
    e.st_rdev = attr.rdev
    e.st_size = attr.size
    e.st_blksize = 65536
    e.st_blocks = (attr.size + 511) // 512
    e.st_atime_ns = attr.atime_ns
    e.st_mtime_ns = attr.mtime_ns
    e.st_ctime_ns = attr.ctime_ns
    return e


def missing_entry() -> pyfuse3.EntryAttributes:
    """A negative entry: the name does not exist, and the kernel may remember so."""
    e = pyfuse3.EntryAttributes()
    e.st_ino = 0
    e.entry_timeout = TIMEOUT
    return e


class Operations(pyfuse3.Operations):
    enable_writeback_cache = True
    supports_dot_lookup = False

    def __init__(self, fs: FileSystem, kernel: KernelCache) -> None:
        super().__init__()
        self.fs = fs
        self.kernel = kernel
        self._dirs: dict[int, InodeNo] = {}
        self._next_dir = 1
        # Handles opened by the daemon's own write-back threads (kernel.writing_back).
        self._own_handles: set[int] = set()

    @_errno
    async def lookup(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        parent = InodeNo(parent_inode)
        try:
            attr = await self.fs.lookup(parent, name)
        except NotFound:
            if is_synthetic(parent) or b"@" in name:
                raise
            return missing_entry()
        return entry(attr, parent=parent_inode)

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        pass  # inodes live in the catalog; nothing in memory depends on kernel references

    @_errno
    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        return entry(self.fs.getattr(InodeNo(inode)))

    @_errno
    async def setattr(
        self, inode: int, attr: pyfuse3.EntryAttributes, fields: pyfuse3.SetattrFields, fh: int | None,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        new = await self.fs.setattr(
            InodeNo(inode),
            mode=attr.st_mode if fields.update_mode else None,
            uid=attr.st_uid if fields.update_uid else None,
            gid=attr.st_gid if fields.update_gid else None,
            size=attr.st_size if fields.update_size else None,
            atime_ns=attr.st_atime_ns if fields.update_atime else None,
            mtime_ns=attr.st_mtime_ns if fields.update_mtime else None,
        )
        return entry(new)

    @_errno
    async def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        return self.fs.readlink(InodeNo(inode))

    @_errno
    async def mknod(
        self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        return entry(self.fs.mknod(InodeNo(parent_inode), name, mode, rdev, ctx.uid, ctx.gid))

    @_errno
    async def mkdir(
        self, parent_inode: int, name: bytes, mode: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        return entry(await self.fs.mkdir(InodeNo(parent_inode), name, mode & ~ctx.umask, ctx.uid, ctx.gid))

    @_errno
    async def unlink(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        self.fs.unlink(InodeNo(parent_inode), name)

    @_errno
    async def rmdir(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        self.fs.rmdir(InodeNo(parent_inode), name)

    @_errno
    async def symlink(
        self, parent_inode: int, name: bytes, target: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        return entry(self.fs.symlink(InodeNo(parent_inode), name, target, ctx.uid, ctx.gid))

    @_errno
    async def rename(
        self, parent_inode_old: int, name_old: bytes, parent_inode_new: int, name_new: bytes, flags: int,
        ctx: pyfuse3.RequestContext,
    ) -> None:
        self.fs.rename(
            InodeNo(parent_inode_old), name_old, InodeNo(parent_inode_new), name_new,
            noreplace=bool(flags & pyfuse3.RENAME_NOREPLACE), exchange=bool(flags & pyfuse3.RENAME_EXCHANGE),
        )

    @_errno
    async def link(
        self, inode: int, new_parent_inode: int, new_name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        return entry(self.fs.link(InodeNo(inode), InodeNo(new_parent_inode), new_name))

    @_errno
    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        fh = await self.fs.open(InodeNo(inode), flags)
        if ctx.pid in self.kernel.writing_back:
            self._own_handles.add(fh)
        keep_cache, direct_io = self.fs.page_cache_use(fh)
        return pyfuse3.FileInfo(fh=fh, keep_cache=keep_cache, direct_io=direct_io)

    @_errno
    async def create(
        self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: pyfuse3.RequestContext
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        fh, attr = await self.fs.create(InodeNo(parent_inode), name, mode & ~ctx.umask, flags, ctx.uid, ctx.gid)
        return pyfuse3.FileInfo(fh=fh, keep_cache=True), entry(attr)

    @_errno
    async def read(self, fh: int, off: int, size: int) -> bytes:
        return await self.fs.read(fh, off, size)

    @_errno
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        return await self.fs.write(fh, off, buf)

    async def flush(self, fh: int) -> None:
        # Nothing to do at close(2) (a follower forgets a deferred old version at RELEASE): ENOSYS, and
        # the kernel asks no more, which saves a request per close.
        raise pyfuse3.FUSEError(errno.ENOSYS)

    @_errno
    async def release(self, fh: int) -> None:
        self._own_handles.discard(fh)
        await self.fs.release(fh)

    @_errno
    async def fsync(self, fh: int, datasync: bool) -> None:
        if fh in self._own_handles:
            return  # the kernel has sent the inode's dirty pages: all the daemon wanted
        await self.fs.fsync(fh)

    @_errno
    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        attr = self.fs.getattr(InodeNo(inode))
        if not attr.is_dir:
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        fh = self._next_dir
        self._next_dir += 1
        self._dirs[fh] = InodeNo(inode)
        return fh

    @_errno
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        ino = self._dirs[fh]
        while entries := await self.fs.readdir(ino, start_id):
            for cookie, name, attr in entries:
                if not pyfuse3.readdir_reply(token, name, entry(attr, parent=ino), cookie):
                    return
            start_id = entries[-1][0]

    async def releasedir(self, fh: int) -> None:
        self._dirs.pop(fh, None)

    @_errno
    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        await self.fs.fsyncdir()

    @_errno
    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        s = self.fs.statfs()
        out = pyfuse3.StatvfsData()
        out.f_bsize = out.f_frsize = s.block_size
        out.f_blocks, out.f_bfree, out.f_bavail = s.blocks, s.blocks_free, s.blocks_avail
        out.f_files, out.f_ffree, out.f_favail = s.files, s.files_free, s.files_free
        out.f_namemax = s.name_max
        return out

    @_errno
    async def setxattr(self, inode: int, name: bytes, value: bytes, ctx: pyfuse3.RequestContext) -> None:
        self.fs.setxattr(InodeNo(inode), name, value)

    @_errno
    async def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        return await self.fs.getxattr(InodeNo(inode), name)

    @_errno
    async def listxattr(self, inode: int, ctx: pyfuse3.RequestContext) -> list[bytes]:
        return self.fs.listxattr(InodeNo(inode))

    @_errno
    async def removexattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        self.fs.removexattr(InodeNo(inode), name)
