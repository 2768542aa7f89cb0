"""Remote bookkeeping: which sealed packs the remote holds (schema: remote_packs); see vfs.sync."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable

from vfs.catalog.transactions import Transactions
from vfs.types import PackNo


class RemotePacks(Transactions):
    """The remote_packs table: packs the remote holds, for sync and remote gc."""

    def remote_packs(self) -> dict[PackNo, tuple[str, int]]:
        """pack -> (object key, size) of every pack the remote holds."""
        return {PackNo(p): (k, n) for p, k, n in self._all("SELECT pack, key, size FROM remote_packs")}

    def remote_pack(self, pack: PackNo) -> tuple[str, int] | None:
        """(object key, size) of `pack` on the remote, or None if it is not there."""
        row = self._one("SELECT key, size FROM remote_packs WHERE pack = ?", (pack,))
        return None if row is None else (str(row[0]), int(row[1]))

    def add_remote_pack(self, pack: PackNo, key: str, size: int) -> None:
        """Record that the remote holds all of `pack` (after it acknowledged the upload)."""
        with self._plain_write():
            self._db.execute("INSERT OR REPLACE INTO remote_packs(pack, key, size, uploaded_ns) VALUES (?,?,?,?)",
                             (pack, key, size, time.time_ns()))

    def forget_remote_packs(self, packs: Iterable[PackNo]) -> dict[PackNo, tuple[str, int]]:
        """Delete the remote rows of `packs` that no chunk row names (checked in the transaction);
        returns pack -> (key, size) of the rows deleted. Remote gc: the next checkpoint then stops
        naming them, and only after it is uploaded are their objects deleted."""
        gone: dict[PackNo, tuple[str, int]] = {}
        with self._plain_write():
            for pack in packs:
                if self._db.execute("SELECT 1 FROM chunks WHERE pack = ? LIMIT 1", (pack,)).fetchone():
                    continue
                row = self._db.execute("SELECT key, size FROM remote_packs WHERE pack = ?", (pack,)).fetchone()
                if row is not None:
                    self._db.execute("DELETE FROM remote_packs WHERE pack = ?", (pack,))
                    gone[PackNo(pack)] = (str(row[0]), int(row[1]))
        return gone

    def replace_remote(self, remote: str | None) -> None:
        """Set the store's remote (meta 'remote', JSON of a RemoteConfig; None removes it) and forget
        every remote_packs row, in one transaction.

        The rows say what the *old* remote holds: kept under a new one, the uploader would skip the
        packs the new one lacks and checkpoint a catalog naming objects it does not have.
        """
        with self._plain_write():
            self._db.execute("DELETE FROM remote_packs")
            if remote is None:
                self._db.execute("DELETE FROM meta WHERE key = 'remote'")
            else:
                self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('remote', ?)", (remote,))

    def packs_in_use(self) -> set[PackNo]:
        """Packs that some chunk row names."""
        return {PackNo(p) for (p,) in self._all("SELECT DISTINCT pack FROM chunks")}

    def max_remote_pack(self) -> int:
        """The highest pack number the remote holds (0 if none): packs up to it are sealed for good."""
        try:
            row = self._one("SELECT coalesce(max(pack), 0) FROM remote_packs")
        except sqlite3.OperationalError:
            return 0  # no table yet (an old catalog opened read-only)
        return int(row[0])

