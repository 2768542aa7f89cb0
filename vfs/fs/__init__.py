"""Filesystem semantics, independent of FUSE."""
