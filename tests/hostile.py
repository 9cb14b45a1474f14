"""Servers that misbehave the way real ones do, on loopback: a captive portal's HTML, a proxy that redirects, a
server that trickles, one that sends far too much, one that answers 200 with JSON. Each answers every POST the
same way and counts what it was asked."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RATE = 24_000


def _tone(seconds: float) -> bytes:
    import math
    import struct

    return b"".join(struct.pack("<h", int(6000 * math.sin(i / 7))) for i in range(int(RATE * seconds)))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.server.requests += 1
        behaviour = getattr(self, f"_{self.server.mode}")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up: as it should
            behaviour()

    def _send(self, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _html(self) -> None:  # a captive portal or a proxy's login page, as 200
        page = b"<!DOCTYPE html><html><head><title>Sign in to Hotel WiFi</title></head><body>Accept</body></html>"
        self._send(200, "text/html; charset=utf-8", page)

    def _html_untyped(self) -> None:  # the same, with no Content-Type worth the name
        self._send(200, "application/octet-stream", b"<html><body>Please log in</body></html>")

    def _json200(self) -> None:
        self._send(200, "application/json", json.dumps({"status": "ok", "audio": None}).encode())

    def _redirect(self) -> None:
        self._send(302, "text/html", b"moved", {"Location": "https://login.example.invalid/portal"})

    def _huge(self) -> None:  # 20 minutes of tone for any text
        self._send(200, "audio/pcm", _tone(1.0) * 1200)

    def _trickle(self) -> None:  # a 200 at once, then two bytes a second, for ever
        self.send_response(200)
        self.send_header("Content-Type", "audio/pcm")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while not self.server.stopping.is_set():
            self.wfile.write(b"2\r\n\x00\x00\r\n")
            self.wfile.flush()
            time.sleep(0.5)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    mode: str
    requests: int
    stopping: threading.Event


@contextmanager
def hostile_server(mode: str) -> Iterator[_Server]:
    """``mode``: html, html_untyped, json200, redirect, huge, trickle. ``server.url`` ends in /v1."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.mode, server.requests, server.stopping = mode, 0, threading.Event()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/v1"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
