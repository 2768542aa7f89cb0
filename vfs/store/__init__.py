"""The content-addressed data plane: chunks cut by FastCDC, named by BLAKE3, compressed by zstd, packed.

Vocabulary: a *chunk* is a run of a file's plain bytes, named by its *chunk id* (BLAKE3-256 of those
bytes). A *pack* is an append-only local file of chunk *entries* (header + stored bytes). A *location*
says where a chunk's entry is. This layer is synchronous and thread-safe, and knows nothing of files,
paths, SQL, trio or S3: which chunks exist is the catalog's knowledge, passed in as a callable.

The store alone knows the pack format: maintenance asks it to verify, scan, rewrite and delete packs
(`ChunkStore`, `vfs.store.verify`), and reads of a version go through its `ContentReader`.
"""

from vfs.store.chunkstore import ChunkStore, Ingested
from vfs.store.packs import ChunkLocation
from vfs.store.reader import ContentReader

__all__ = ["ChunkLocation", "ChunkStore", "ContentReader", "Ingested"]
