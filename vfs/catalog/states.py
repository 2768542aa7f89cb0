"""Row helpers of write transactions: inode states and directory entries.

An inode's state (schema: inode_states) is a whole row per commit that changed it; these helpers read
the current one and add the next. They run inside a transaction `_write` opened, with its `Commit`.
"""

from __future__ import annotations

import stat

from vfs.catalog.rows import Commit
from vfs.catalog.schema import LIVE
from vfs.catalog.transactions import Transactions
from vfs.errors import Exists, InvalidArgument, NameTooLong, NotADirectory, NotFound
from vfs.types import Attr, InodeNo, VersionNo

NAME_MAX = 255
STATE_COLS = "mode, uid, gid, rdev, size, atime_ns, mtime_ns, ctime_ns, version, subdirs"
STATE_KEYS = tuple(c.strip() for c in STATE_COLS.split(","))
STATE_ROW = ",".join("?" * (2 + len(STATE_KEYS)))  # placeholders of (ino, commit_from, *state)


class States(Transactions):
    """Reading and adding inode state rows and directory entries inside a write transaction."""

    def _live_dirent(self, parent: InodeNo, name: bytes) -> tuple[int, InodeNo] | None:
        row = self._db.execute(
            # Pinned: the planner preferred dirents_list, a scan of every live entry of the directory.
            "SELECT id, ino FROM dirents INDEXED BY dirents_name WHERE parent = ? AND name = ? AND commit_to = ?",
            (parent, name, LIVE),
        ).fetchone()
        return (int(row[0]), InodeNo(int(row[1]))) if row else None

    def _live_dirent_state(self, parent: InodeNo, name: bytes) -> tuple[int, InodeNo, int, dict[str, int]] | None:
        """`_live_dirent` with the inode's count of live names and its current state, in one query."""
        row = self._db.execute(
            f"SELECT d.id, d.ino, (SELECT count(*) FROM dirents WHERE ino = d.ino AND commit_to = ?), {STATE_COLS}"
            " FROM dirents d INDEXED BY dirents_name JOIN inode_states s ON s.ino = d.ino"
            " AND s.commit_from = (SELECT max(commit_from) FROM inode_states WHERE ino = d.ino)"
            " WHERE d.parent = ? AND d.name = ? AND d.commit_to = ?",
            (LIVE, parent, name, LIVE),
        ).fetchone()
        if row is None:
            return None
        return int(row[0]), InodeNo(int(row[1])), int(row[2]), dict(zip(STATE_KEYS, row[3:], strict=True))

    def _current_state(self, ino: InodeNo) -> dict[str, int]:
        known = self._known_attr(ino)
        if known is not None and known.is_dir:
            # A directory's attributes are its whole state row (no version; subdirs is nlink - 2): a
            # create or delete in a directory whose attributes the kernel just asked for reads no row.
            return dict(mode=known.mode, uid=known.uid, gid=known.gid, rdev=known.rdev, size=known.size,
                        atime_ns=known.atime_ns, mtime_ns=known.mtime_ns, ctime_ns=known.ctime_ns, version=0,
                        subdirs=known.nlink - 2)
        row = self._db.execute(
            f"SELECT {STATE_COLS} FROM inode_states WHERE ino = ? ORDER BY commit_from DESC LIMIT 1", (ino,)
        ).fetchone()
        if row is None:
            raise NotFound(f"inode {ino} does not exist")
        return dict(zip(STATE_KEYS, row, strict=True))

    def _insert_state(self, c: Commit, ino: InodeNo, state: dict[str, int]) -> None:
        if self._touched is not None:
            # A directory's state row tells all its attributes (it has no versions, and its link count
            # is 2 + subdirs): cached at once, the kernel's GETATTR after each create or delete in it
            # costs no query. Other inodes' link counts and version numbers live in other tables.
            is_dir = stat.S_ISDIR(state["mode"]) and state["version"] == 0
            self._touched[ino] = self._state_attr(ino, state, 2 + state["subdirs"]) if is_dir else None
        self._db.execute(
            f"INSERT OR REPLACE INTO inode_states(ino, commit_from, {STATE_COLS}) VALUES ({STATE_ROW})",
            (ino, c.no, *(state[k] for k in STATE_KEYS)),
        )

    @staticmethod
    def _state_attr(ino: InodeNo, state: dict[str, int], nlink: int, vno: int = 0) -> Attr:
        """The attributes of an inode in `state`, with `nlink` names and version number `vno`."""
        return Attr(ino, state["mode"], state["uid"], state["gid"], state["rdev"], state["size"], state["atime_ns"],
                    state["mtime_ns"], state["ctime_ns"], VersionNo(vno), nlink)

    def _known_attr(self, ino: InodeNo) -> Attr | None:
        """The live attributes of `ino` as of now in the open `exact` write transaction, when known
        without a query: changed in it and derived, or cached and unchanged in it."""
        if self._touched is None:
            return None  # outside such a transaction (another may have changed rows behind the cache)
        if ino in self._touched:
            return self._touched[ino]
        return self._live_attrs.get(ino)

    def _change_state(
        self, c: Commit, ino: InodeNo, state: dict[str, int] | None = None, /, *, nlink_change: int = 0,
        vno: int | None = None, **changes: int,
    ) -> dict[str, int]:
        """Add a state row of `ino`: its current one (or `state`, if the caller read it) with `changes`,
        after a change of its names by `nlink_change` in the same transaction. A change that makes a
        version current (`version`, its row id, in `changes`) must also give its number, `vno`."""
        assert vno is not None or "version" not in changes  # else the cache would keep the old number
        before = self._known_attr(ino)
        state = dict(state if state is not None else self._current_state(ino), **changes)
        self._insert_state(c, ino, state)
        if before is not None and not before.is_dir:
            self._follow_names(ino, before, state, nlink_change, vno)
        return state

    def _follow_names(
        self, ino: InodeNo, before: Attr | None, state: dict[str, int], nlink_change: int, vno: int | None = None,
    ) -> None:
        """Cache the attributes of file `ino` in `state` after its names changed by `nlink_change` in the
        open `exact` transaction: its link count and version number (not in its state row) follow from
        `before`, what was known of it (None: nothing, so nothing is cached), and from `vno`, the number
        of a version the change made current."""
        assert self._touched is not None
        self._touched[ino] = (None if before is None else self._state_attr(
            ino, state, before.nlink + nlink_change, before.vno if vno is None else vno))

    def _add_dirent(self, c: Commit, parent: InodeNo, name: bytes, ino: InodeNo) -> None:
        self._db.execute(
            "INSERT INTO dirents(parent, name, ino, commit_from, commit_to) VALUES (?, ?, ?, ?, ?)",
            (parent, name, ino, c.no, LIVE),
        )

    def _end_dirent(self, c: Commit, dirent_id: int) -> None:
        self._db.execute("UPDATE dirents SET commit_to = ? WHERE id = ?", (c.no, dirent_id))

    def _touch_dir(self, c: Commit, parent: InodeNo, subdirs: int = 0) -> None:
        """The entries of `parent` changed, and it gained (or with a negative `subdirs` lost) subdirectories."""
        state = self._current_state(parent)
        state.update(mtime_ns=c.time_ns, ctime_ns=c.time_ns, subdirs=state["subdirs"] + subdirs)
        self._insert_state(c, parent, state)

    def _check_new_name(self, parent: InodeNo, name: bytes) -> None:
        if len(name) > NAME_MAX:
            raise NameTooLong(f"name of {len(name)} bytes is longer than {NAME_MAX}")
        if not name or b"/" in name or b"\0" in name or name in (b".", b".."):
            raise InvalidArgument(f"invalid name {name!r}")
        if self._live_dirent(parent, name) is not None:
            raise Exists(f"{name!r} exists in directory {parent}")

    def _require_dir(self, ino: InodeNo) -> dict[str, int]:
        """The current state of directory `ino` (NotADirectory if it is none)."""
        state = self._current_state(ino)
        if not stat.S_ISDIR(state["mode"]):
            raise NotADirectory(f"inode {ino} is not a directory")
        return state
