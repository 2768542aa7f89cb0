"""Replication of a store to a remote object store, and cloning a store back from one.

Vocabulary: the *remote* is a prefix in a bucket (`vfs.backend`). A *pack object* is a sealed local
pack file uploaded as it is, named by its BLAKE3. A *checkpoint* is a consistent copy of the catalog
uploaded as a *base* (every block of the database file) or a *delta* (the blocks changed since the
previous checkpoint); the *pointer* `catalog/latest` names the chain of objects that rebuilds the
newest checkpoint. The *backlog* is what the remote still lacks: sealed packs without a
`remote_packs` row, data in the open pack, and catalog changes since the last checkpoint.

Write ordering: packs, then the checkpoint objects, then the pointer; so a reader that follows the
pointer never finds a catalog that names a pack the bucket lacks. Nothing is written unless the
remote's head is the checkpoint this store last published or cloned (docs/design.md). This package works on a
`Repository` and never imports `vfs.fs` or `vfs.fuse`.
"""
