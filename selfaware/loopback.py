"""An HTTP handler served on 127.0.0.1 in a background thread: the plumbing behind the suite's fake
provider endpoints (tests and benchmarks point real SDKs at them, since `httpx2` is not mockable)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackServer:
    def __init__(self, handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1", port: int = 0,
                 poll_interval: float = 0.01) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"fake endpoints serve on loopback only, not {host!r}")
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(poll_interval,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):  # returns self, typed by subclasses' use
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
