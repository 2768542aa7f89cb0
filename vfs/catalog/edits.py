"""Changing the tree: create, link, unlink, rename and metadata changes, each one commit.

Each public method is one `Edit` (`vfs.catalog.journal`), made by `_apply`: in a transaction of its own,
or with `batched` in the open batch and journalled, which is how a journal replays it too.
"""

from __future__ import annotations

import logging
import stat

from vfs.catalog.journal import Arg, Edit, Kind
from vfs.catalog.namespace import Namespace
from vfs.catalog.rows import Commit
from vfs.catalog.schema import LIVE
from vfs.catalog.states import NAME_MAX, States
from vfs.errors import (
    Exists,
    InvalidArgument,
    IsADirectory,
    NameTooLong,
    NotADirectory,
    NotEmpty,
    NotFound,
    NotPermitted,
)
from vfs.types import ROOT_INO, Attr, InodeNo

log = logging.getLogger(__name__)


class TreeEdits(Namespace, States):
    """The tree's POSIX operations, each one commit; they return the new `Attr`.

    `batched` (the mount's requests): in the open batch of edits (see `vfs.catalog.journal`), committed
    by the next other write or `commit_batch`, and meanwhile journalled: it survives a killed process
    all the same.
    """

    def _edit(self, edit: Edit, batched: bool) -> InodeNo | None:
        if not batched:
            with self._write(exact=True) as c:
                return self._apply(c, edit)
        with self._batched_write() as c:
            result = self._apply(c, edit)
            if edit.kind in (Kind.CREATE, Kind.UNLINK, Kind.RMDIR):
                assert result is not None
                edit = Edit(edit.kind, edit.parent, edit.name, result, edit.args)  # the inode made or unlinked
            self._journal_edit(edit)
            return result

    def _apply(self, c: Commit, e: Edit) -> InodeNo | None:
        match e.kind:
            case Kind.UNLINK | Kind.RMDIR:
                return self._unlink(c, e.parent, e.name, e.kind == Kind.RMDIR)
            case Kind.CREATE:
                mode, uid, gid, rdev, target = e.args
                return self._create(c, e.parent, e.name, _int(mode), _int(uid), _int(gid), _int(rdev),
                                    _bytes_or_none(target))
            case Kind.LINK:
                self._link(c, e.ino, e.parent, e.name)
                return None
            case Kind.RENAME:
                new_parent, new_name, noreplace, exchange = e.args
                assert isinstance(new_name, bytes)
                return self._rename(c, e.parent, e.name, InodeNo(_int(new_parent)), new_name,
                                    noreplace=bool(noreplace), exchange=bool(exchange))
            case Kind.SET_ATTR:
                mode, uid, gid, atime_ns, mtime_ns = (_int_or_none(a) for a in e.args)
                self._set_attr(c, e.ino, mode=mode, uid=uid, gid=gid, atime_ns=atime_ns, mtime_ns=mtime_ns)
                return None

    def _replay_edit(self, c: Commit, edit: Edit) -> None:
        result = self._apply(c, edit)
        if edit.kind == Kind.CREATE and result != edit.ino:  # staging files are named by inode number
            log.error("a journalled create of %r was made again as inode %s, not %d", edit.name, result, edit.ino)

    def create(
        self, parent: InodeNo, name: bytes, mode: int, uid: int, gid: int, rdev: int = 0, target: bytes | None = None,
        *, batched: bool = False,
    ) -> Attr:
        """Create a file, directory, symlink (`target`), fifo, socket or device node named `name`.

        In a set-group-ID directory it gets the directory's group instead of `gid` (and a directory the bit).
        """
        ino = self._edit(Edit(Kind.CREATE, parent, name, InodeNo(0), (mode, uid, gid, rdev, target)), batched)
        assert ino is not None
        return self.attr(ino)

    def _create(
        self, c: Commit, parent: InodeNo, name: bytes, mode: int, uid: int, gid: int, rdev: int = 0,
        target: bytes | None = None, lineage: int | None = None,
    ) -> InodeNo:
        dir_state = self._require_dir(parent)
        self._check_new_name(parent, name)
        if dir_state["mode"] & stat.S_ISGID:
            # A set-group-ID directory gives what is made in it its group, and new subdirectories its
            # bit, as Linux filesystems do (the kernel leaves that to us): shared group directories.
            gid = dir_state["gid"]
            mode |= stat.S_ISGID if stat.S_ISDIR(mode) else 0
        ino = InodeNo(self._db.execute("SELECT coalesce(max(ino), 0) + 1 FROM inodes").fetchone()[0])
        self._db.execute("INSERT INTO inodes(ino, kind, created, target, lineage) VALUES (?, ?, ?, ?, ?)",
                         (ino, stat.S_IFMT(mode), c.no, target, ino if lineage is None else lineage))
        size = len(target) if target is not None else 0
        state = dict(mode=mode, uid=uid, gid=gid, rdev=rdev, size=size, atime_ns=c.time_ns, mtime_ns=c.time_ns,
                     ctime_ns=c.time_ns, version=0, subdirs=0)
        self._insert_state(c, ino, state)
        self._add_dirent(c, parent, name, ino)
        self._touch_dir(c, parent, subdirs=int(stat.S_ISDIR(mode)))
        if self._touched is not None and not stat.S_ISDIR(mode):
            self._touched[ino] = self._state_attr(ino, state, 1)  # its one name, no version yet
        return ino

    def link(self, ino: InodeNo, parent: InodeNo, name: bytes, *, batched: bool = False) -> Attr:
        self._edit(Edit(Kind.LINK, parent, name, ino), batched)
        return self.attr(ino)

    def _link(self, c: Commit, ino: InodeNo, parent: InodeNo, name: bytes) -> None:
        if stat.S_ISDIR(self._current_state(ino)["mode"]):
            raise NotPermitted("hard links to directories are not allowed")
        self._require_dir(parent)
        self._check_new_name(parent, name)
        self._add_dirent(c, parent, name, ino)
        self._change_state(c, ino, nlink_change=1, ctime_ns=c.time_ns)
        self._touch_dir(c, parent)

    def unlink(self, parent: InodeNo, name: bytes, *, rmdir: bool = False, batched: bool = False) -> InodeNo:
        """Remove a name (unlink, or rmdir when `rmdir`); returns the inode it pointed to."""
        ino = self._edit(Edit(Kind.RMDIR if rmdir else Kind.UNLINK, parent, name, InodeNo(0)), batched)
        assert ino is not None
        return ino

    def _unlink(self, c: Commit, parent: InodeNo, name: bytes, rmdir: bool) -> InodeNo:
        found = self._live_dirent_state(parent, name)
        if found is None:
            raise NotFound(f"{name!r} not found in directory {parent}")
        dirent_id, ino, names, state = found
        is_dir = stat.S_ISDIR(state["mode"])
        if rmdir and not is_dir:
            raise NotADirectory(f"{name!r} is not a directory")
        if not rmdir and is_dir:
            raise IsADirectory(f"{name!r} is a directory")
        if is_dir and self._has_children(ino):
            raise NotEmpty(f"directory {name!r} is not empty")
        self._end_dirent(c, dirent_id)
        if names > 1 or is_dir:
            self._change_state(c, ino, state, nlink_change=-1, ctime_ns=c.time_ns)
        elif self._touched is not None:
            # Its last name: no state row. POSIX asks a new ctime only of a file that keeps a name, and
            # the row was one of the six statements each file of `rm -rf` cost.
            self._follow_names(ino, self._known_attr(ino), state, -1)
        self._touch_dir(c, parent, subdirs=-int(is_dir))
        return ino

    def _has_children(self, ino: InodeNo) -> bool:
        return self._db.execute(
            "SELECT 1 FROM dirents WHERE parent = ? AND commit_to = ? LIMIT 1", (ino, LIVE)
        ).fetchone() is not None

    def _is_ancestor(self, maybe_ancestor: InodeNo, ino: InodeNo) -> bool:
        while True:
            if ino == maybe_ancestor:
                return True
            if ino == ROOT_INO:
                return False
            row = self._db.execute(
                "SELECT parent FROM dirents WHERE ino = ? AND commit_to = ? LIMIT 1", (ino, LIVE)
            ).fetchone()
            if row is None:
                return False
            ino = InodeNo(int(row[0]))

    def rename(
        self, old_parent: InodeNo, old_name: bytes, new_parent: InodeNo, new_name: bytes,
        *, noreplace: bool = False, exchange: bool = False, batched: bool = False,
    ) -> InodeNo | None:
        """Rename with POSIX semantics (plus RENAME_NOREPLACE / RENAME_EXCHANGE).

        Returns the inode whose name was replaced (it may now have no names left), else None.
        """
        args = (new_parent, new_name, int(noreplace), int(exchange))
        return self._edit(Edit(Kind.RENAME, old_parent, old_name, InodeNo(0), args), batched)

    def _rename(
        self, c: Commit, old_parent: InodeNo, old_name: bytes, new_parent: InodeNo, new_name: bytes,
        *, noreplace: bool, exchange: bool,
    ) -> InodeNo | None:
        src = self._live_dirent(old_parent, old_name)
        if src is None:
            raise NotFound(f"{old_name!r} not found in directory {old_parent}")
        self._require_dir(new_parent)
        dst = self._live_dirent(new_parent, new_name)
        src_dir = stat.S_ISDIR(self._current_state(src[1])["mode"])
        if exchange:
            if dst is None:
                raise NotFound(f"{new_name!r} not found in directory {new_parent}")
            if dst[1] == src[1]:
                return None  # one inode under both names (or one name twice): nothing to swap
            dst_dir = stat.S_ISDIR(self._current_state(dst[1])["mode"])
            if (src_dir and self._is_ancestor(src[1], new_parent)) or (
                dst_dir and self._is_ancestor(dst[1], old_parent)
            ):
                raise InvalidArgument("cannot move a directory into itself")
            self._end_dirent(c, src[0])
            self._end_dirent(c, dst[0])
            self._add_dirent(c, old_parent, old_name, dst[1])
            self._add_dirent(c, new_parent, new_name, src[1])
            for ino in (src[1], dst[1]):
                self._change_state(c, ino, ctime_ns=c.time_ns)
            self._touch_parents(c, old_parent, new_parent, moved_dirs=int(src_dir) - int(dst_dir))
            return None
        if len(new_name) > NAME_MAX:
            raise NameTooLong(f"name of {len(new_name)} bytes is longer than {NAME_MAX}")
        if src_dir and self._is_ancestor(src[1], new_parent):
            raise InvalidArgument("cannot move a directory into itself")
        replaced = None
        if dst is not None:
            if noreplace:
                raise Exists(f"{new_name!r} exists in directory {new_parent}")
            if dst[1] == src[1]:
                return None  # both names are links to one inode: POSIX says do nothing
            dst_dir = stat.S_ISDIR(self._current_state(dst[1])["mode"])
            if src_dir and not dst_dir:
                raise NotADirectory(f"{new_name!r} is not a directory")
            if dst_dir and not src_dir:
                raise IsADirectory(f"{new_name!r} is a directory")
            if dst_dir and self._has_children(dst[1]):
                raise NotEmpty(f"directory {new_name!r} is not empty")
            self._end_dirent(c, dst[0])
            self._change_state(c, dst[1], nlink_change=-1, ctime_ns=c.time_ns)
            replaced = dst[1]
            if not src_dir and self._continues_history(src[1], dst[1]):
                self._join_lineage(src[1], dst[1])
        else:
            self._check_new_name(new_parent, new_name)
        self._end_dirent(c, src[0])
        self._add_dirent(c, new_parent, new_name, src[1])
        self._change_state(c, src[1], ctime_ns=c.time_ns)
        self._touch_parents(c, old_parent, new_parent, moved_dirs=int(src_dir),
                            replaced_dirs=int(replaced is not None and src_dir))
        return replaced

    def _touch_parents(
        self, c: Commit, old_parent: InodeNo, new_parent: InodeNo, *, moved_dirs: int, replaced_dirs: int = 0
    ) -> None:
        """After a rename: `moved_dirs` more directories now in `new_parent` than before in `old_parent`
        (negative when an exchange moved one the other way), `replaced_dirs` ended in `new_parent`."""
        change = dict.fromkeys((old_parent, new_parent), 0)  # one key when both are the same directory
        change[old_parent] -= moved_dirs
        change[new_parent] += moved_dirs - replaced_dirs
        for parent, subdirs in change.items():
            self._touch_dir(c, parent, subdirs)

    def _continues_history(self, src: InodeNo, dst: InodeNo) -> bool:
        """Whether renaming regular file `src` over `dst` is a save of `dst` (its history goes on)."""
        if not stat.S_ISREG(self._current_state(src)["mode"]) or not stat.S_ISREG(self._current_state(dst)["mode"]):
            return False
        links = self._db.execute("SELECT count(*) FROM dirents WHERE ino = ? AND commit_to = ?", (dst, LIVE))
        return int(links.fetchone()[0]) == 0  # the replaced name was its last one (already ended)

    def _join_lineage(self, src: InodeNo, dst: InodeNo) -> None:
        """Renumber src's lineage after dst's last version and merge it into dst's lineage."""
        (src_lineage,) = self._db.execute("SELECT lineage FROM inodes WHERE ino = ?", (src,)).fetchone()
        (dst_lineage,) = self._db.execute("SELECT lineage FROM inodes WHERE ino = ?", (dst,)).fetchone()
        if src_lineage == dst_lineage:
            return
        (last,) = self._db.execute("SELECT coalesce(max(vno), 0) FROM versions WHERE lineage = ?",
                                   (dst_lineage,)).fetchone()
        self._touched = None  # version numbers of other inodes change too: drop every cached attribute
        self._db.execute("UPDATE versions SET lineage = ?, vno = vno + ? WHERE lineage = ?",
                         (dst_lineage, last, src_lineage))
        self._db.execute("UPDATE inodes SET lineage = ? WHERE lineage = ?", (dst_lineage, src_lineage))

    def set_attr(
        self, ino: InodeNo, *, mode: int | None = None, uid: int | None = None, gid: int | None = None,
        atime_ns: int | None = None, mtime_ns: int | None = None, batched: bool = False,
    ) -> Attr:
        """Change metadata (a new state row: part of time travel, not a content version)."""
        self._edit(Edit(Kind.SET_ATTR, InodeNo(0), b"", ino, (mode, uid, gid, atime_ns, mtime_ns)), batched)
        return self.attr(ino)

    def _set_attr(
        self, c: Commit, ino: InodeNo, *, mode: int | None, uid: int | None, gid: int | None,
        atime_ns: int | None, mtime_ns: int | None,
    ) -> None:
        changes: dict[str, int] = {"ctime_ns": c.time_ns}
        if mode is not None:
            changes["mode"] = (self._current_state(ino)["mode"] & stat.S_IFMT(0o170000)) | stat.S_IMODE(mode)
        for key, value in (("uid", uid), ("gid", gid), ("atime_ns", atime_ns), ("mtime_ns", mtime_ns)):
            if value is not None:
                changes[key] = value
        self._change_state(c, ino, **changes)


def _int(a: Arg) -> int:
    assert isinstance(a, int)
    return a


def _int_or_none(a: Arg) -> int | None:
    assert a is None or isinstance(a, int)
    return a


def _bytes_or_none(a: Arg) -> bytes | None:
    assert a is None or isinstance(a, bytes)
    return a
