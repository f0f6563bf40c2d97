"""A real HTTP server on localhost for the remote-input tests: files of a folder, Range honoured.

It counts requests and the body bytes it sent, can wait before each answer (an added latency),
and answers chosen paths with a status (403, 500 …) or never (a timeout). The standard library's
``http.server`` ignores ``Range``; this handler answers ``bytes=a-b``, ``bytes=a-`` and
``bytes=-n`` with 206 and the exact slice, as object stores do.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["RangeServer", "serve"]

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


@dataclass
class RangeServer:
    """What a running server counts, and how it misbehaves on purpose.

    Attributes:
        root: Folder served at ``/``.
        url: ``http://127.0.0.1:PORT``.
        latency: Seconds waited before answering each request.
        statuses: Path → status code answered instead of the file (e.g. ``{"/a.tif": 403}``).
        hang: Paths never answered within any sane timeout.
    """

    root: Path
    url: str = ""
    latency: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    hang: set[str] = field(default_factory=set)
    requests: int = 0
    bytes_sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        """Zero the counters."""
        with self.lock:
            self.requests, self.bytes_sent = 0, 0

    def _count(self, sent: int) -> None:
        with self.lock:
            self.requests += 1
            self.bytes_sent += sent


def _handler(server: RangeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _file(self) -> Path | None:
            path = (server.root / self.path.split("?")[0].lstrip("/")).resolve()
            ok = path.is_file() and server.root.resolve() in path.parents
            return path if ok else None

        def _status(self, code: int) -> None:
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()
            server._count(0)

        def _answer(self, body: bool) -> None:
            key = self.path.split("?")[0]
            if server.latency:
                time.sleep(server.latency)
            if key in server.hang:
                time.sleep(30)
                return
            if key in server.statuses:
                return self._status(server.statuses[key])
            path = self._file()
            if path is None:
                return self._status(404)
            size = path.stat().st_size
            start, end = 0, size - 1
            header = self.headers.get("Range")
            if header is not None:
                m = _RANGE.match(header.strip())
                if m is None or (not m[1] and not m[2]):
                    return self._status(416)
                if m[1]:
                    start = int(m[1])
                    end = min(int(m[2]), size - 1) if m[2] else size - 1
                else:
                    start = max(size - int(m[2]), 0)
                if start >= size:
                    return self._status(416)
            length = end - start + 1
            self.send_response(206 if header is not None else 200)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(length))
            if header is not None:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if not body:
                return server._count(0)
            with path.open("rb") as f:
                f.seek(start)
                data = f.read(length)
            self.wfile.write(data)
            server._count(len(data))

        def do_GET(self) -> None:
            self._answer(body=True)

        def do_HEAD(self) -> None:
            self._answer(body=False)

    return Handler


@contextmanager
def serve(root: Path, latency: float = 0.0) -> Iterator[RangeServer]:
    """Serve ``root`` on a free localhost port until the block ends."""
    state = RangeServer(root=root, latency=latency)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
