"""The bulk loader: many files with their versions in one transaction (benchmarks build large catalogs with it).

It writes rows the way `TreeEdits.create` and `Versions.commit_version` would, through the catalog's
own transaction and row helpers (package-internal), only batched.
"""

from __future__ import annotations

import stat
from collections.abc import Sequence

from vfs.catalog.catalog import Catalog
from vfs.catalog.rows import encode_chunk_list
from vfs.catalog.schema import LIVE
from vfs.catalog.states import STATE_COLS, STATE_ROW
from vfs.errors import Exists, InvalidArgument
from vfs.store import Ingested
from vfs.types import InodeNo


def bulk_create_files(
    catalog: Catalog, parent: InodeNo, files: Sequence[tuple[bytes, Sequence[Ingested]]], *, mode: int, uid: int,
    gid: int, origin: str = "write",
) -> list[InodeNo]:
    """Create many regular files in `parent`, each with its content versions, in one transaction.

    For imports and for building large catalogs (benchmarks), where one transaction per `create`
    and `commit_version` is far too slow. `files` holds (name, contents): the contents become
    versions 1, 2, ... of that file, as `commit_version` would record them (their chunks must be
    durable already). Everything is made by one commit, so the versions of a file share its commit
    number and the file's one state points to its last version; names are checked as by `create`.

    Returns:
        The new files' inodes, in the order of `files`.
    """
    if not stat.S_ISREG(mode):
        raise InvalidArgument("bulk_create_files creates regular files only")
    with catalog._write() as c:
        catalog._require_dir(parent)
        names = set()
        for name, _ in files:
            catalog._check_new_name(parent, name)
            if name in names:
                raise Exists(f"{name!r} is given twice")
            names.add(name)
        # Inode numbers as SQLite would assign them (max + 1): the write lock is held.
        first = int(catalog._db.execute("SELECT coalesce(max(ino), 0) + 1 FROM inodes").fetchone()[0])
        inos = [InodeNo(first + i) for i in range(len(files))]
        t = c.time_ns
        locations = {loc.chunk_id: loc for _, contents in files for ing in contents for loc in ing.new}
        blobs = {id(ing): encode_chunk_list(ing.chunks) for _, contents in files for ing in contents}
        db = catalog._db
        db.executemany(
            "INSERT OR IGNORE INTO chunks(id, pack, offset, codec, stored_len, plain_len)"
            " VALUES (?,?,?,?,?,?)",
            [(x.chunk_id, x.pack, x.offset, x.codec, x.stored_len, x.plain_len)
             for x in locations.values()],
        )
        db.executemany("INSERT INTO inodes(ino, kind, created, lineage) VALUES (?, ?, ?, ?)",
                       [(ino, stat.S_IFREG, c.no, ino) for ino in inos])
        # Version ids as SQLite assigns them (max + 1, in insertion order), so states can point to them.
        next_id = int(db.execute("SELECT coalesce(max(id), 0) + 1 FROM versions").fetchone()[0])
        rows, last_ids = [], []
        for ino, (_, contents) in zip(inos, files, strict=True):
            for vno, ing in enumerate(contents, 1):
                rows.append((next_id, ino, ino, vno, c.no, ing.size, ing.content_hash, blobs[id(ing)], t, origin))
                next_id += 1
            last_ids.append(next_id - 1 if contents else 0)
        db.executemany(
            "INSERT INTO versions(id, ino, lineage, vno, commit_no, size, hash, chunks, mtime_ns, origin)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        db.executemany(
            f"INSERT INTO inode_states(ino, commit_from, {STATE_COLS}) VALUES ({STATE_ROW})",
            [(ino, c.no, mode, uid, gid, 0, contents[-1].size if contents else 0, t, t, t, version, 0)
             for ino, (_, contents), version in zip(inos, files, last_ids, strict=True)],
        )
        db.executemany(
            "INSERT INTO dirents(parent, name, ino, commit_from, commit_to) VALUES (?, ?, ?, ?, ?)",
            [(parent, name, ino, c.no, LIVE) for ino, (name, _) in zip(inos, files, strict=True)],
        )
        catalog._touch_dir(c, parent)
    return inos
