"""The pyfuse3 adapter (the only importer of pyfuse3): operations and the kernel session."""
