"""vfs from Python: open a volume (a store directory, mounted or not, or a remote one) and read, write and share its
versions without a mount, without FUSE and without root.

    import vfs
    with vfs.open("~/stores/work", writable=True) as vol:
        vol.put("data", "./data")                  # a folder as new versions; unchanged files cost nothing
        vol.versions("data/run1.csv")               # number, time, size, hash of each version
        vol.read_text("data/run1.csv@yesterday")    # `@SPEC` as in the mount: @3, @-2h, @SNAPSHOT, ...
        ref = vol.url("data/run1.csv")              # blake3://HEX/run1.csv: share it
    vfs.load(ref, location="~/stores/work")         # the content, by its hash

Modules: `opening` (`open`, `load`), `volume` (`Volume`), `remote` (`s3://` volumes: read-only views and
writers), `reading` (lookups and listings), `writer` (changes, through the daemon when mounted),
`files` (file objects), `urls` (references), `progress` (tqdm), `location` (what `open` accepts),
`fsspec_fs` (the `vfs://` protocol for pandas and friends).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vfs.api.opening import load, open
    from vfs.api.reading import Entry, FileVersion
    from vfs.api.volume import Volume

__all__ = ["Entry", "FileVersion", "Volume", "load", "open"]

# Imported on first use, as `vfs` imports this package: a light submodule (`location`, which the CLI's
# every command uses) must not bring the whole API (the store, the catalog, trio, boto3) with it.
_HOME = {"Entry": "reading", "FileVersion": "reading", "Volume": "volume", "load": "opening", "open": "opening"}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"vfs.api.{_HOME[name]}"), name)
    raise AttributeError(f"module 'vfs.api' has no attribute {name!r}")
