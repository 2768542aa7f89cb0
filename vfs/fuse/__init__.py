"""The pyfuse3 adapter (the only importer of pyfuse3) and the mount daemon."""
