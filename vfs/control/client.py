"""Client of the control socket: how CLI commands ask a running daemon to act on its store."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from vfs.control.protocol import MAX_LINE, decode, encode, error_from, socket_path
from vfs.errors import VfsError


def call(store: Path, request: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
    """Send one request to the daemon serving `store` and return its answer.

    Raises:
        VfsError: the daemon answered with an error (the matching subclass, with its exit code), or
            cannot be reached.
    """
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(socket_path(store)))
            sock.sendall(encode(request))
            line = _read_line(sock)
    except OSError as e:
        raise VfsError(f"cannot talk to the daemon of {store}: {e.strerror or e}") from None
    answer = decode(line)
    if not answer.get("ok"):
        raise error_from(answer)
    return answer


def daemon_running(store: Path) -> bool:
    """Whether a daemon answers on `store`'s control socket."""
    if not socket_path(store).exists():
        return False
    try:
        call(store, {"op": "ping"}, timeout=5.0)
    except VfsError:
        return False
    return True


def _read_line(sock: socket.socket) -> bytes:
    buf = bytearray()
    while not buf.endswith(b"\n"):
        data = sock.recv(65536)
        if not data:
            raise ConnectionResetError("the daemon closed the connection without answering")
        buf += data
        if len(buf) > MAX_LINE:
            raise ConnectionError("answer too long")
    return bytes(buf)
