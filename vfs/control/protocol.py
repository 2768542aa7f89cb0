"""The control socket's wire format, shared by server and client.

The socket is `STORE/control.sock` (a Unix stream socket, mode 0600). A client writes one request
per line and reads one answer per line, both JSON objects. A request names its operation in "op"
("ping", "flush", "snapshot_create", "snapshot_delete", "restore", "put", "remove", "prune", "gc",
"sync", "status"); an answer is
`{"ok": true, ...}` or `{"ok": false, "error": message, "exit_code": n, "type": error class name}`.
Paths travel as strings made with os.fsdecode (non-UTF-8 bytes as surrogate escapes, which JSON
carries as \\udcXX escapes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vfs import errors
from vfs.errors import VfsError

SOCKET_NAME = "control.sock"
MAX_LINE = 1 << 20  # bytes: longer requests are refused


def socket_path(store: Path) -> Path:
    return store / SOCKET_NAME


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """A message from one line (UsageError if it is not a JSON object)."""
    try:
        message = json.loads(line)
    except ValueError as e:
        raise errors.UsageError(f"malformed control message: {e}") from None
    if not isinstance(message, dict):
        raise errors.UsageError("malformed control message: not a JSON object")
    return message


def error_answer(e: VfsError) -> dict[str, Any]:
    return {"ok": False, "error": str(e), "exit_code": e.exit_code, "type": type(e).__name__}


def error_from(answer: dict[str, Any]) -> VfsError:
    """The VfsError an error answer stands for (its own class when this side knows it)."""
    cls = getattr(errors, str(answer.get("type")), None)
    if not (isinstance(cls, type) and issubclass(cls, VfsError)):
        cls = VfsError
    err = cls(str(answer.get("error", "the daemon reported an error")))
    code = answer.get("exit_code")
    if isinstance(code, int) and code != err.exit_code:
        err.exit_code = code
    return err
