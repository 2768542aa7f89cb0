"""A loopback HTTP proxy that injects faults between an S3 client and its endpoint.

Each request is read whole from the client, then, with probability `rate` (drawn from a seeded RNG),
one fault of `kinds` is applied:

    delay        forward, but answer after a short pause (`delay` seconds, drawn uniformly)
    stall        pause `stall` seconds before answering (beyond a client's read timeout)
    reset        reset the connection without forwarding (the request never happened)
    reset_after  forward, then reset instead of answering (it happened; the answer is lost)
    500, 503     answer InternalError / ServiceUnavailable without forwarding
    slowdown     answer 503 SlowDown without forwarding
    truncate     forward, then send the headers and only part of the body, and hang up

With `status` set, every request is answered with that status and no forwarding (403: the bucket
refuses us for good). With `fault_paths` set, only requests whose path contains it meet faults
("/packs/": pack uploads stall while lease and catalog requests go through). With `strip_conditional`
set, `If-None-Match` and `If-Match` are removed from every request before it is forwarded: an
endpoint that accepts conditional writes and ignores them (Garage). Otherwise conditional writes are
forwarded one at a time: moto checks the condition and then writes, without a lock, so two at once
could both succeed where S3 lets one (the lease's race test met that on a loaded machine). The proxy
serves at most `max_connections` connections at once, closes idle ones after `idle_timeout` seconds
and stops itself after `lifetime` seconds whatever happens.
"""

from __future__ import annotations

import collections
import http.client
import random
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

DEFAULT_KINDS = ("delay", "reset", "reset_after", "500", "503", "slowdown", "truncate")
_CONDITIONAL = {"if-none-match", "if-match"}
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
_ERRORS = {
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "503": (503, "ServiceUnavailable", "Please reduce your request rate."),
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
}
_STATUS_CODES = {403: "AccessDenied", 404: "NoSuchKey", 500: "InternalError", 503: "ServiceUnavailable"}


class FaultProxy:
    """The proxy; use as a context manager. `url` is its endpoint, `stats` counts what it did."""

    def __init__(
        self,
        upstream: str,
        *,
        rate: float = 0.0,
        kinds: Sequence[str] = DEFAULT_KINDS,
        seed: int = 0,
        delay: tuple[float, float] = (0.01, 0.1),
        stall: float = 2.0,
        status: int | None = None,
        strip_conditional: bool = False,
        fault_paths: str | None = None,
        max_connections: int = 32,
        idle_timeout: float = 15.0,
        lifetime: float = 600.0,
    ) -> None:
        unknown = set(kinds) - {*DEFAULT_KINDS, "stall"}
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        parts = urllib.parse.urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rate = rate
        self.kinds = tuple(kinds)
        self.delay = delay
        self.stall = stall
        self.status = status
        self.strip_conditional = strip_conditional
        self.fault_paths = fault_paths
        self.stats: collections.Counter[str] = collections.Counter()
        self.forwarded: list[tuple[str, str, int]] = []  # (method, path, upstream status) of each forwarded request
        # (method, path, its Range header or None, body bytes of the answer) of each forwarded request
        self.answered: list[tuple[str, str, str | None, int]] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._conditional_writes = threading.Lock()  # see the module's docstring
        self._slots = threading.BoundedSemaphore(max_connections)
        self._open: set[socket.socket] = set()
        self._lifetime = lifetime
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._server.idle_timeout = idle_timeout
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="faultproxy", daemon=True)
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True
        self._stopped = False

    def start(self) -> FaultProxy:
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            conns = list(self._open)
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()
        for conn in conns:  # wake handler threads idling on keep-alive connections
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def choose(self) -> str | None:
        """The fault for the next request, or None."""
        with self._lock:
            if self._rng.random() >= self.rate:
                return None
            return self._rng.choice(self.kinds)

    def pause(self) -> float:
        with self._lock:
            return self._rng.uniform(*self.delay)

    def received_bytes(self) -> int:
        """Body bytes of the endpoint's answers forwarded so far (what clients downloaded)."""
        with self._lock:
            return sum(n for *_, n in self.answered)

    def count(self, what: str) -> None:
        with self._lock:
            self.stats[what] += 1

    def wait_idle(self, timeout: float = 60.0, settle: float = 1.0) -> None:
        """Wait until no client connection has been open for `settle` seconds: after a client is killed,
        what it had sent (even a request its connection's handler had not read yet, or a connection
        not yet accepted) has then reached the endpoint. A connection stays open until its handler
        is done with every request on it."""
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            with self._lock:
                busy = bool(self._open)
            now = time.monotonic()
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= settle:
                return
            time.sleep(0.05)
        raise TimeoutError(f"faultproxy still busy after {timeout}s: {len(self._open)} connections open")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultProxy
    idle_timeout: float

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.proxy._slots.acquire(blocking=False):  # bounded: refuse beyond the limit
            self.proxy.count("refused")
            self.shutdown_request(request)
            return
        with self.proxy._lock:
            self.proxy._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.proxy._lock:
            known = request in self.proxy._open
            self.proxy._open.discard(request)
        if known:
            self.proxy._slots.release()
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.proxy.count("handler_error")  # a client hung up mid-request: expected under faults


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # An answer is written as headers then body: with Nagle's algorithm the body waited for the client's
    # delayed ACK of the headers, 40 ms a request (a follower's first read of small files ran at 18/s).
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        self.timeout = self.server.idle_timeout
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        """The request body, whole: a client that hangs up mid-body (killed) sent no request, as with a
        real endpoint, which never stores a body shorter than announced."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self._read_exactly(size))
                self.rfile.readline()
        return self._read_exactly(int(self.headers.get("Content-Length") or 0))

    def _read_exactly(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) < size:
            raise ConnectionError(f"client hung up after {len(data)} of {size} body bytes")
        return data

    def _reset(self) -> None:
        """Hang up with a TCP reset (SO_LINGER 0), as a crashed server or a middlebox would."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.connection.close()

    def _answer_error(self, status: int, code: str, message: str) -> None:
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>{message}</Message></Error>").encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _proxy(self) -> None:
        proxy = self.server.proxy
        body = self._read_body()
        proxy.count("requests")
        if proxy.status is not None:
            proxy.count(str(proxy.status))
            self._answer_error(proxy.status, _STATUS_CODES.get(proxy.status, "Error"), "Injected by faultproxy")
            return
        fault = proxy.choose() if proxy.fault_paths is None or proxy.fault_paths in self.path else None
        if fault is not None:
            proxy.count(fault)
        if fault == "reset":
            self._reset()
            return
        if fault in _ERRORS:
            self._answer_error(*_ERRORS[fault])
            return
        if fault == "delay":
            time.sleep(proxy.pause())
        elif fault == "stall":
            time.sleep(proxy.stall)

        conditional = self.command in ("PUT", "POST") and not proxy.strip_conditional and any(
            name.lower() in _CONDITIONAL for name in self.headers)
        upstream = http.client.HTTPConnection(*proxy.upstream, timeout=60)
        if conditional:
            proxy._conditional_writes.acquire()
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if proxy.strip_conditional and name.lower() in _CONDITIONAL:
                    proxy.count("stripped")
                    continue
                if name.lower() not in _HOP_BY_HOP and name.lower() not in ("content-length", "expect"):
                    upstream.putheader(name, value)
            if body or self.command in ("PUT", "POST"):
                upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body)
            response = upstream.getresponse()
            payload = response.read()
            headers = response.getheaders()
            status, reason = response.status, response.reason
        finally:
            upstream.close()
            if conditional:
                proxy._conditional_writes.release()
        with proxy._lock:
            proxy.forwarded.append((self.command, self.path, status))
            proxy.answered.append((self.command, self.path, self.headers.get("Range"),
                                   0 if self.command == "HEAD" else len(payload)))

        if fault == "reset_after" or (fault == "truncate" and len(payload) < 2):
            self._reset()
            return
        self.send_response_only(status, reason)
        bodyless = self.command == "HEAD" or status in (204, 304)
        for name, value in headers:
            if name.lower() in _HOP_BY_HOP or (name.lower() == "content-length" and not bodyless):
                continue
            self.send_header(name, value)
        if not bodyless:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if bodyless:
            return
        if fault == "truncate":
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self._reset()
            return
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _proxy
