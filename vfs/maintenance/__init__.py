"""Keeping a store healthy for years: retention (`prune`), garbage collection (`gc`) and checks (`fsck`).

Vocabulary: a *policy* says which snapshots and versions to keep; *pruning* deletes the rest from the
catalog (snapshot names and version rows); *garbage* is then chunk rows and pack bytes no version uses,
which `gc` frees, deleting in the reverse of the write order (catalog rows first, pack bytes after).
These modules act on an open Repository; `service.Maintenance` drives them, in the daemon when the store
is mounted (the control server asks it) and in the CLI's own process when it is not.
"""
