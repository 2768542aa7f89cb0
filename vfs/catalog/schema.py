"""The catalog's SQLite schema: the one definition of every table and column.

Time travel rests on two ideas. Every change is one transaction that inserts a row into `commits`, so
a commit number names a state of the whole tree. Rows that can stop being true (directory entries,
xattrs) carry the range of commits [commit_from, commit_to) in which they held; rows that describe a
new state of something (inode_states, versions) carry the commit that made them, and hold until a
later row for the same thing. "The tree at commit S" is then a set of indexed queries, never a copy.
"""

from __future__ import annotations

import stat

SCHEMA_VERSION = 2  # 2: inode_states.subdirs

# commit_to of a row that still holds ("live"): larger than any real commit number.
LIVE = 1 << 62


def holds(commit_to: int, at: int) -> bool:
    """Whether a row ending at `commit_to` still holds at commit `at` (at LIVE: whether it is live)."""
    return commit_to > at or commit_to == LIVE


# inode_states.version of a state whose content version was pruned (`vfs prune`). The state row itself
# stays, so the inode's metadata history (mode, size, times) and the tree at any commit still resolve;
# only the bytes are gone: reading that content (`f@time`, a view of a snapshot that was not kept) is
# NotFound ("pruned"), never an empty file. Versions held by a kept snapshot and the latest version of
# every file that has a name are never pruned, so live paths and kept snapshots never meet it.
PRUNED = -1

# Added after schema version 1 without a version bump: Catalog.open creates it when missing, and an
# older vfs ignores it.
REMOTE_TABLES = """
-- Sealed packs that are safely on the remote (vfs.sync). A sealed pack without a row is in the upload
-- backlog; a row is inserted only after the remote acknowledged the whole object.
CREATE TABLE IF NOT EXISTS remote_packs (
    pack        INTEGER PRIMARY KEY, -- local pack number (chunks.pack)
    key         TEXT NOT NULL,       -- object key under the remote prefix: 'packs/' + hex BLAKE3 of the file
    size        INTEGER NOT NULL,    -- bytes of the pack file (= of the object)
    uploaded_ns INTEGER NOT NULL     -- wall clock, ns since the epoch, when the upload was acknowledged
                                     -- (or found already complete on the remote)
);
"""

TABLES = f"""
-- Facts about the store as a whole: 'schema_version', 'store_id' (random hex, names the volume),
-- 'config' (JSON of the StoreConfig the store was created with), and, once a remote is set, 'remote'
-- (JSON: url s3://BUCKET/PREFIX, endpoint_url, region; never a credential) and 'cache_size' (bytes of
-- local pack data to keep at most, evicting uploaded packs; absent = no cap); after a pull (vfs.sync.pull),
-- 'pulled' (JSON: seq, chain, db_hash, epoch of the checkpoint the catalog was installed from).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row per catalog transaction.
CREATE TABLE commits (
    commit_no INTEGER PRIMARY KEY, -- strictly increasing; 1 is the store's creation
    time_ns   INTEGER NOT NULL     -- wall clock, ns since the epoch; never less than the previous row's
);
CREATE INDEX commits_time ON commits(time_ns);

-- What never changes about an inode.
CREATE TABLE inodes (
    ino     INTEGER PRIMARY KEY, -- 1 is the root directory
    kind    INTEGER NOT NULL,    -- file type bits of st_mode (S_IFREG, S_IFDIR, S_IFLNK, ...)
    created INTEGER NOT NULL,    -- commit that created it
    target  BLOB,                -- symlink target; NULL for every other kind
    lineage INTEGER NOT NULL     -- the history its content versions are numbered in: its own ino, or,
                                 -- once it replaced a file by rename (an editor's atomic save), that
                                 -- file's lineage, so the path's history goes on
);
CREATE INDEX inodes_lineage ON inodes(lineage); -- a rename over a file moves a whole lineage into another

-- Successive attribute states of an inode: the state at commit S is the row with the greatest
-- commit_from <= S. A content version, chmod, chown, utimens, truncate or link change adds a row (but
-- not the unlink of a file's last name), and so does every change of a directory's entries (for the
-- directory).
CREATE TABLE inode_states (
    ino         INTEGER NOT NULL REFERENCES inodes(ino),
    commit_from INTEGER NOT NULL, -- commit that made this state
    mode        INTEGER NOT NULL, -- full st_mode (type bits and permission bits)
    uid         INTEGER NOT NULL,
    gid         INTEGER NOT NULL,
    rdev        INTEGER NOT NULL, -- device number for device nodes, else 0
    size        INTEGER NOT NULL, -- bytes; for files equals versions.size of `vno` (0 when vno is 0)
    atime_ns    INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    ctime_ns    INTEGER NOT NULL,
    version     INTEGER NOT NULL, -- versions.id of a file's content in this state; 0 = empty / not a file;
                                  -- -1 (PRUNED) = the content version was pruned (see PRUNED above)
    subdirs     INTEGER NOT NULL, -- a directory's subdirectories in this state (st_nlink is 2 + subdirs);
                                  -- 0 for every other kind. Kept by every change of the directory's
                                  -- entries (they all add a state row for it), so getattr reads it
                                  -- instead of counting, and the count at any commit comes for free
    PRIMARY KEY (ino, commit_from)
) WITHOUT ROWID;

-- Committed contents of files. Content is immutable once written; numbered 1, 2, 3 ... per lineage.
-- `vfs prune` deletes rows (numbers leave gaps, never reused); states that pointed to them get PRUNED.
CREATE TABLE versions (
    id        INTEGER PRIMARY KEY, -- stable identity (inode_states point here)
    ino       INTEGER NOT NULL REFERENCES inodes(ino), -- the inode that wrote it
    lineage   INTEGER NOT NULL,  -- inodes.lineage of that inode: the history it is numbered in
    vno       INTEGER NOT NULL,  -- 1 is the first version of the lineage; never reused. A file renamed
                                 -- over another joins its lineage: its own versions then follow the
                                 -- replaced file's (renumbered once, at that rename)
    commit_no INTEGER NOT NULL,  -- commit that created it; the writer's (ino's) inode_states row at this
                                 -- commit holds the mode and owner it was made with (what FILE@N shows)
    size      INTEGER NOT NULL,  -- content length in bytes
    hash      BLOB NOT NULL,     -- BLAKE3-256 of the whole content
    chunks    BLOB NOT NULL,     -- the content's chunks in order: (32-byte chunk id, u32 LE plain length)*
    mtime_ns  INTEGER NOT NULL,  -- the file's mtime when the version was committed
    origin    TEXT NOT NULL      -- how it came to be: 'write', 'recovery', 'restore', 'clone'
);
CREATE UNIQUE INDEX versions_number ON versions(lineage, vno);
CREATE INDEX versions_commit ON versions(lineage, commit_no);
CREATE INDEX versions_hash ON versions(hash);

-- Names in directories, with the commits during which each name pointed to its inode.
CREATE TABLE dirents (
    id          INTEGER PRIMARY KEY, -- readdir cookie: grows with each new entry, never reused
    parent      INTEGER NOT NULL,    -- directory inode
    name        BLOB NOT NULL,       -- raw name bytes (no '/', no NUL, at most 255 bytes)
    ino         INTEGER NOT NULL,    -- inode the name points to
    commit_from INTEGER NOT NULL,    -- first commit in which the entry exists
    commit_to   INTEGER NOT NULL     -- first commit in which it no longer exists; {LIVE} while it does
);
CREATE INDEX dirents_name ON dirents(parent, name, commit_from);
CREATE INDEX dirents_list ON dirents(parent, commit_to, id);
CREATE INDEX dirents_ino ON dirents(ino, commit_to);

-- Extended attributes, versioned like directory entries.
CREATE TABLE xattrs (
    ino         INTEGER NOT NULL,
    name        BLOB NOT NULL,
    value       BLOB NOT NULL,
    commit_from INTEGER NOT NULL, -- first commit with this value
    commit_to   INTEGER NOT NULL  -- first commit without it; {LIVE} while it holds
);
CREATE INDEX xattrs_name ON xattrs(ino, name, commit_from);
CREATE INDEX xattrs_live ON xattrs(ino, commit_to);

-- Named snapshots: a snapshot is a name for a commit, nothing is copied.
CREATE TABLE snapshots (
    name      TEXT PRIMARY KEY,
    commit_no INTEGER NOT NULL,  -- the tree of the snapshot is the tree at this commit
    time_ns   INTEGER NOT NULL   -- when it was taken
);

-- Where each stored chunk is. A row is inserted in the same transaction as the first version that
-- uses the chunk, after the pack bytes are durable. `vfs gc` deletes rows no version uses (before it
-- deletes pack bytes) and moves rows to a new pack when it repacks (after the new pack is durable).
CREATE TABLE chunks (
    id         BLOB PRIMARY KEY,  -- BLAKE3-256 of the plain bytes
    pack       INTEGER NOT NULL,  -- local pack number
    offset     INTEGER NOT NULL,  -- of the entry header in the pack
    codec      INTEGER NOT NULL,  -- 0 raw, 1 zstd; bit 0x80 (SEALED): the entry is sealed (pack format 2)
    stored_len INTEGER NOT NULL,  -- bytes in the pack after the entry header
    plain_len  INTEGER NOT NULL   -- bytes after decoding
) WITHOUT ROWID;
CREATE INDEX chunks_pack ON chunks(pack);
""" + REMOTE_TABLES

# Upgrades of an older catalog, by the version they lead to; each runs in one transaction at open.
MIGRATIONS = {
    # inode_states.subdirs, filled in for every state of every directory: the subdirectory entries that
    # held at its commit, from one sorted pass over entry births (+1) and deaths (-1) per directory;
    # and inodes indexed by lineage (a rename over a file, every atomic save, scanned all of them).
    2: f"""
ALTER TABLE inode_states ADD COLUMN subdirs INTEGER NOT NULL DEFAULT 0;
CREATE TEMP TABLE subdir_counts (dir INTEGER, at INTEGER, n INTEGER, PRIMARY KEY (dir, at)) WITHOUT ROWID;
INSERT INTO subdir_counts
    SELECT dir, at, sum(sum(delta)) OVER (PARTITION BY dir ORDER BY at) FROM (
        SELECT d.parent AS dir, d.commit_from AS at, 1 AS delta FROM dirents d JOIN inodes i ON i.ino = d.ino
            WHERE i.kind = {stat.S_IFDIR}
        UNION ALL
        SELECT d.parent, d.commit_to, -1 FROM dirents d JOIN inodes i ON i.ino = d.ino
            WHERE i.kind = {stat.S_IFDIR} AND d.commit_to != {LIVE})
    GROUP BY dir, at;
UPDATE inode_states SET subdirs = coalesce((SELECT n FROM subdir_counts c WHERE c.dir = inode_states.ino
    AND c.at <= inode_states.commit_from ORDER BY c.at DESC LIMIT 1), 0)
    WHERE mode & {stat.S_IFMT(0o177777)} = {stat.S_IFDIR};
DROP TABLE subdir_counts;
CREATE INDEX IF NOT EXISTS inodes_lineage ON inodes(lineage);
""",
}
