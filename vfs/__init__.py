"""vfs: a FUSE filesystem over a versioned, content-addressed store."""

__version__ = "0.1.0"
