"""vfs: a FUSE filesystem over a versioned, content-addressed store.

From Python (no mount needed): `vfs.open(STORE)` returns a `vfs.Volume`; `vfs.load(URL)` reads content
shared by reference. See `vfs.api` and docs/python.md. `import vfs` stays cheap: the API is imported on
first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from vfs.api import Volume, load, open

__all__ = ["Volume", "load", "open"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        import vfs.api

        return getattr(vfs.api, name)
    raise AttributeError(f"module 'vfs' has no attribute {name!r}")
