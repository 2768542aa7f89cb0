"""The systemd notification protocol (sd_notify), for a daemon run by a Type=notify unit."""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def sd_notify(state: str) -> bool:
    """Tell systemd (a Type=notify unit) about our state, e.g. "READY=1"; False when not run by it.

    The protocol: one datagram to the Unix socket named by $NOTIFY_SOCKET (a leading '@' names an
    abstract socket). Errors are logged, never raised: a failed notification must not stop a mount.
    """
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as e:
        log.error("cannot notify systemd at %s: %s", path, e)
        return False
    return True
