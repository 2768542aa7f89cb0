"""References to content, to share: `blake3://HEX/NAME`.

A reference names content by its BLAKE3 hash (64 hex digits) and, for people and for the file it is
saved as, the name it had (`blake3://9f2c.../results.csv`); the name does not take part in resolving it.
Any store that holds the content resolves it, whatever path the content has there: a colleague's clone
of the same remote, or a store it was put into (kachery's `sha1://HASH/name`, with vfs's hash).
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from vfs.errors import UsageError

SCHEME = "blake3://"
_URL = re.compile(r"^blake3://([0-9a-fA-F]{64})(?:/(.*))?$", re.DOTALL)


def url_of(content_hash: str, name: str = "") -> str:
    """The reference of `blake3:HEX` content, with `name` (percent-encoded) for people."""
    digits = content_hash.removeprefix("blake3:")
    return f"{SCHEME}{digits.lower()}/{quote(name, safe='')}" if name else f"{SCHEME}{digits.lower()}"


def is_url(text: str) -> bool:
    return text.startswith(SCHEME)


def parse_url(url: str) -> tuple[str, str]:
    """('blake3:HEX', name) of a reference.

    Raises:
        UsageError: it is not `blake3://` and 64 hex digits, optionally '/NAME'.
    """
    found = _URL.match(url)
    if found is None:
        raise UsageError(f"{url!r} is not a vfs content reference (blake3://<64 hex digits>[/NAME])")
    return "blake3:" + found.group(1).lower(), unquote(found.group(2) or "")
