"""Bringing history back: an old version made current again, a deleted file recreated."""

from __future__ import annotations

import stat

from vfs.catalog.edits import TreeEdits
from vfs.catalog.rows import Version
from vfs.catalog.schema import LIVE
from vfs.catalog.versions import Versions
from vfs.errors import InvalidArgument
from vfs.types import Attr, InodeNo


class Restore(TreeEdits, Versions):
    """Old content made current again, reusing its chunk list (no data is copied)."""

    def commit_existing(self, ino: InodeNo, version: Version, *, origin: str = "restore") -> Version:
        """Make the content of `version` (of any file) the next version of `ino`.

        The new version reuses the old one's chunk list: no data is copied, and history is not
        rewritten (the old version keeps its number; the new one is numbered after `ino`'s last).
        """
        with self._write() as c:
            if not stat.S_ISREG(self._current_state(ino)["mode"]):
                raise InvalidArgument(f"inode {ino} is not a regular file")
            return self._insert_version(c, ino, version.size, version.hash, version.chunks, c.time_ns, origin)

    def restore_file(
        self, parent: InodeNo, name: bytes, version: Version | None, *, mode: int, uid: int, gid: int,
        origin: str = "restore",
    ) -> Attr:
        """Create regular file `name` holding `version`'s content (None: empty), in one transaction.

        The new file continues the history `version` belongs to when no file with a live name carries
        that history on (a deleted file brought back); otherwise it starts its own.
        """
        with self._write() as c:
            lineage = None
            if version is not None:
                (old,) = self._db.execute("SELECT lineage FROM inodes WHERE ino = ?", (version.ino,)).fetchone()
                carried_on = self._db.execute(
                    "SELECT 1 FROM inodes i JOIN dirents d ON d.ino = i.ino WHERE i.lineage = ? AND d.commit_to = ?"
                    " LIMIT 1", (old, LIVE)).fetchone()
                lineage = None if carried_on else int(old)
            ino = self._create(c, parent, name, stat.S_IFREG | stat.S_IMODE(mode), uid, gid, lineage=lineage)
            if version is not None:
                self._insert_version(c, ino, version.size, version.hash, version.chunks, c.time_ns, origin)
        return self.attr(ino)
