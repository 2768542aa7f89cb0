#!/usr/bin/env python3
"""A minimal pyfuse3 + trio passthrough filesystem: the ceiling for any Python FUSE filesystem here.

Usage: passthrough.py SOURCE MOUNTPOINT [--foreground]

Every inode the kernel knows about holds an O_PATH descriptor of its backing file, so renames, hard links
and unlinked-but-open files need no path bookkeeping; operations use the *at() system calls relative to
the parent's descriptor.  The FUSE inode number is the backing st_ino (the source root maps to ROOT_INODE),
so SOURCE must not span several filesystems.  Data I/O is an inline os.pread/os.pwrite on the trio loop.

keep_cache and the long entry/attr timeouts assume nobody changes SOURCE except through the mount.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import faulthandler
import functools
import logging
import os
import resource
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, ParamSpec, TypeVar

import pyfuse3
import trio
from pyfuse3 import EntryAttributes, FileInfo, FUSEError, RequestContext, SetattrFields, StatvfsData

log = logging.getLogger("passthrough")

TIMEOUT = 300.0  # entry/attr cache seconds: nothing changes SOURCE behind the kernel's back
# The kernel settings the vfs daemon makes for a writable mount (vfs.fuse.kernel), so that the
# passthrough stays the ceiling: 1 MiB read requests, and a larger share of cached writes.
BDI_SETTINGS = {"read_ahead_kb": "1024", "max_ratio": "20", "min_ratio": "5"}
_libc = ctypes.CDLL(None, use_errno=True)
P = ParamSpec("P")
R = TypeVar("R")


def _fuse_errors(handler: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Report an OSError of a request handler to the kernel as its errno (pyfuse3 catches only FUSEError)."""

    @functools.wraps(handler)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await handler(*args, **kwargs)
        except OSError as e:
            raise FUSEError(e.errno or errno.EIO) from None

    return wrapper


def _proc(fd: int) -> str:
    """A path that reopens or modifies the file behind an O_PATH descriptor."""
    return f"/proc/self/fd/{fd}"


def _backing_flags(flags: int) -> int:
    # With the writeback cache the kernel reads pages of write-only files and computes append offsets
    # itself, sending writes at explicit offsets that O_APPEND would ignore.  O_DIRECT needs aligned
    # buffers, which Python does not give.
    if flags & os.O_ACCMODE == os.O_WRONLY:
        flags = (flags & ~os.O_ACCMODE) | os.O_RDWR
    return flags & ~(os.O_APPEND | os.O_DIRECT | os.O_NOCTTY)


class Passthrough(pyfuse3.Operations):
    enable_writeback_cache = True
    supports_dot_lookup = False

    def __init__(self, source: str) -> None:
        super().__init__()
        root_fd = os.open(source, os.O_PATH | os.O_DIRECTORY)
        self._fds: dict[int, int] = {pyfuse3.ROOT_INODE: root_fd}  # inode -> O_PATH descriptor
        self._lookups: dict[int, int] = {pyfuse3.ROOT_INODE: 1}  # inode -> kernel lookup count
        self._root_ino = os.fstat(root_fd).st_ino
        self._listings: dict[int, list[bytes]] = {}  # directory handle -> names, snapshot at offset 0

    def _inode(self, st: os.stat_result) -> int:
        return pyfuse3.ROOT_INODE if st.st_ino == self._root_ino else st.st_ino

    def _attr(self, st: os.stat_result) -> EntryAttributes:
        attr = EntryAttributes()
        attr.st_ino = self._inode(st)
        for name in ("st_mode", "st_nlink", "st_uid", "st_gid", "st_rdev", "st_size", "st_blksize",
                     "st_blocks", "st_atime_ns", "st_mtime_ns", "st_ctime_ns"):
            setattr(attr, name, getattr(st, name))
        attr.entry_timeout = attr.attr_timeout = TIMEOUT
        return attr

    def _fd(self, inode: int) -> int:
        try:
            return self._fds[inode]
        except KeyError:
            raise FUSEError(errno.ESTALE) from None

    def _remember(self, fd: int, attr: EntryAttributes | None = None) -> EntryAttributes:
        """Count one kernel lookup of the file behind fd (an O_PATH descriptor this call takes over)."""
        if attr is None:
            attr = self._attr(os.fstat(fd))
        if attr.st_ino in self._fds:
            os.close(fd)
        else:
            self._fds[attr.st_ino] = fd
        self._lookups[attr.st_ino] = self._lookups.get(attr.st_ino, 0) + 1
        return attr

    def _entry(self, parent: int, name: bytes, ctx: RequestContext | None = None) -> EntryAttributes:
        pfd = self._fd(parent)
        if ctx is not None and os.geteuid() == 0 and (ctx.uid, ctx.gid) != (0, 0):
            os.chown(name, ctx.uid, ctx.gid, dir_fd=pfd, follow_symlinks=False)
        return self._remember(os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=pfd))

    @_fuse_errors
    async def lookup(self, parent_inode: int, name: bytes, ctx: RequestContext) -> EntryAttributes:
        return self._entry(parent_inode, name)

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        for inode, nlookup in inode_list:
            left = self._lookups.get(inode, 0) - nlookup
            if left > 0 or inode == pyfuse3.ROOT_INODE:
                self._lookups[inode] = left
                continue
            self._lookups.pop(inode, None)
            fd = self._fds.pop(inode, None)
            if fd is not None:
                os.close(fd)

    @_fuse_errors
    async def getattr(self, inode: int, ctx: RequestContext) -> EntryAttributes:
        return self._attr(os.fstat(self._fd(inode)))

    @_fuse_errors
    async def setattr(self, inode: int, attr: EntryAttributes, fields: SetattrFields, fh: int | None,
                      ctx: RequestContext) -> EntryAttributes:
        path = _proc(self._fd(inode))
        if fields.update_size:
            os.truncate(fh if fh is not None else path, attr.st_size)
        if fields.update_mode:
            os.chmod(path, attr.st_mode & 0o7777)
        if fields.update_uid or fields.update_gid:
            os.chown(path, attr.st_uid if fields.update_uid else -1, attr.st_gid if fields.update_gid else -1)
        if fields.update_atime or fields.update_mtime:
            st = os.stat(path)
            os.utime(path, ns=(attr.st_atime_ns if fields.update_atime else st.st_atime_ns,
                               attr.st_mtime_ns if fields.update_mtime else st.st_mtime_ns))
        return await self.getattr(inode, ctx)

    @_fuse_errors
    async def readlink(self, inode: int, ctx: RequestContext) -> bytes:
        return os.fsencode(os.readlink("", dir_fd=self._fd(inode)))

    @_fuse_errors
    async def mkdir(self, parent_inode: int, name: bytes, mode: int, ctx: RequestContext) -> EntryAttributes:
        os.mkdir(name, mode, dir_fd=self._fd(parent_inode))
        return self._entry(parent_inode, name, ctx)

    @_fuse_errors
    async def symlink(self, parent_inode: int, name: bytes, target: bytes,
                      ctx: RequestContext) -> EntryAttributes:
        os.symlink(target, name, dir_fd=self._fd(parent_inode))
        return self._entry(parent_inode, name, ctx)

    @_fuse_errors
    async def link(self, inode: int, new_parent_inode: int, new_name: bytes,
                   ctx: RequestContext) -> EntryAttributes:
        os.link(_proc(self._fd(inode)), new_name, dst_dir_fd=self._fd(new_parent_inode), follow_symlinks=True)
        return self._entry(new_parent_inode, new_name)

    @_fuse_errors
    async def unlink(self, parent_inode: int, name: bytes, ctx: RequestContext) -> None:
        os.unlink(name, dir_fd=self._fd(parent_inode))

    @_fuse_errors
    async def rmdir(self, parent_inode: int, name: bytes, ctx: RequestContext) -> None:
        os.rmdir(name, dir_fd=self._fd(parent_inode))

    @_fuse_errors
    async def rename(self, parent_inode_old: int, name_old: bytes, parent_inode_new: int, name_new: bytes,
                     flags: int, ctx: RequestContext) -> None:
        # os.rename has no flags; renameat2 implements RENAME_NOREPLACE and RENAME_EXCHANGE.
        if _libc.renameat2(self._fd(parent_inode_old), name_old, self._fd(parent_inode_new), name_new,
                           ctypes.c_uint(flags)) != 0:
            raise FUSEError(ctypes.get_errno())

    @_fuse_errors
    async def open(self, inode: int, flags: int, ctx: RequestContext) -> FileInfo:
        fd = os.open(_proc(self._fd(inode)), _backing_flags(flags) & ~(os.O_CREAT | os.O_EXCL))
        return FileInfo(fh=fd, keep_cache=True)

    @_fuse_errors
    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int,
                     ctx: RequestContext) -> tuple[FileInfo, EntryAttributes]:
        fd = os.open(name, _backing_flags(flags) | os.O_CREAT, mode, dir_fd=self._fd(parent_inode))
        try:
            return FileInfo(fh=fd, keep_cache=True), self._entry(parent_inode, name, ctx)
        except BaseException:
            os.close(fd)
            raise

    @_fuse_errors
    async def read(self, fh: int, off: int, size: int) -> bytes:
        return os.pread(fh, size, off)

    @_fuse_errors
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        return os.pwrite(fh, buf, off)

    @_fuse_errors
    async def release(self, fh: int) -> None:
        os.close(fh)

    @_fuse_errors
    async def fsync(self, fh: int, datasync: bool) -> None:
        await trio.to_thread.run_sync(os.fdatasync if datasync else os.fsync, fh)

    @_fuse_errors
    async def opendir(self, inode: int, ctx: RequestContext) -> int:
        return os.open(_proc(self._fd(inode)), os.O_RDONLY | os.O_DIRECTORY)

    @_fuse_errors
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        # Offsets index a snapshot taken when a listing starts, so they stay stable while the directory
        # changes; a later rewinddir (offset 0) takes a fresh one.
        if start_id == 0 or fh not in self._listings:
            self._listings[fh] = sorted(os.fsencode(n) for n in os.listdir(fh))
        names = self._listings[fh]
        for offset in range(start_id, len(names)):
            try:
                fd = os.open(names[offset], os.O_PATH | os.O_NOFOLLOW, dir_fd=fh)
            except FileNotFoundError:
                continue  # removed since the snapshot
            attr = self._attr(os.fstat(fd))
            if not pyfuse3.readdir_reply(token, names[offset], attr, offset + 1):
                os.close(fd)
                return
            self._remember(fd, attr)  # readdirplus counts a lookup only for the entries it replied

    @_fuse_errors
    async def releasedir(self, fh: int) -> None:
        self._listings.pop(fh, None)
        os.close(fh)

    @_fuse_errors
    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        await trio.to_thread.run_sync(os.fsync, fh)

    @_fuse_errors
    async def statfs(self, ctx: RequestContext) -> StatvfsData:
        st = os.statvfs(self._fd(pyfuse3.ROOT_INODE))
        data = StatvfsData()
        for name in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree",
                     "f_favail", "f_namemax"):
            setattr(data, name, getattr(st, name))
        return data


async def serve(mountpoint: str, ready_w: int | None) -> None:
    """Answer requests until unmounted or signalled; report readiness once the mount is usable."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_terminate_on_signal)
        nursery.start_soon(_when_mounted, mountpoint, ready_w)
        await pyfuse3.main()
        nursery.cancel_scope.cancel()


def _tune_bdi(mountpoint: str) -> None:
    # The stat waits for the kernel's INIT exchange (which resets read_ahead_kb), answered by our loop.
    device = os.stat(mountpoint).st_dev
    for name, value in BDI_SETTINGS.items():
        with open(f"/sys/class/bdi/{os.major(device)}:{os.minor(device)}/{name}", "w") as f:
            f.write(value)


async def _when_mounted(mountpoint: str, ready_w: int | None) -> None:
    try:
        await trio.to_thread.run_sync(_tune_bdi, mountpoint)
    except OSError as e:
        log.warning("cannot tune the mount's bdi: %s", e)
    log.info("ready: %s", mountpoint)
    if ready_w is not None:
        null = os.open(os.devnull, os.O_RDWR)
        for stream in (0, 1, 2):
            os.dup2(null, stream)
        os.write(ready_w, b"1")
        os.close(ready_w)


async def _terminate_on_signal() -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for _ in signals:
            pyfuse3.terminate()  # pyfuse3.main() returns; main() unmounts


def _request_stats(ops: Passthrough) -> Any:
    """With VFS_FUSE_STATS set (scripts/bench --requests), count requests as the vfs daemon does."""
    if not os.environ.get("VFS_FUSE_STATS"):
        return None
    from vfs.fuse.stats import RequestStats  # only then: this script otherwise needs nothing of vfs

    stats = RequestStats.from_environment()
    if stats is not None:
        stats.wrap(ops)
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("source")
    parser.add_argument("mountpoint")
    parser.add_argument("--foreground", action="store_true", help="do not detach from the terminal")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    faulthandler.enable()
    os.umask(0)  # the kernel has already applied the caller's umask to every mode we get
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # one O_PATH descriptor per known inode
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1 << 20, 1 << 20))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    mountpoint = os.path.realpath(args.mountpoint)
    options = set(pyfuse3.default_options) | {"fsname=passthrough", "subtype=passthrough"}
    if os.geteuid() == 0:
        options.add("allow_other")
    ready_w = None
    if not args.foreground:
        # Detach, but return only once the mount is usable (or failed).
        ready_r, ready_w = os.pipe()
        if os.fork() > 0:
            os.close(ready_w)
            return 0 if os.read(ready_r, 1) == b"1" else 1
        os.close(ready_r)
        os.setsid()
    ops = Passthrough(args.source)
    stats = _request_stats(ops)
    pyfuse3.init(ops, mountpoint, options)
    try:
        trio.run(serve, mountpoint, ready_w)
    finally:
        pyfuse3.close()  # unmounts unless already unmounted (fusermount3 -u)
        if stats is not None:
            stats.dump()
    return 0


if __name__ == "__main__":
    sys.exit(main())
