"""A minimal HTTP model service on loopback: the baseline a remote scorer would be.

Stdlib only (``http.server.ThreadingHTTPServer``), HTTP/1.1 keep-alive, TCP_NODELAY on every
connection, bound to 127.0.0.1. The model is the numpy reference (:class:`NumpyReference`, same
weights as every other contender). Protocol (TF-Serving-like JSON)::

    POST /predict   {"instances": [[...], ...]}   ->   {"predictions": [[...], ...]}

The benchmark runs it as a subprocess (``python -m jsengine_ml.bench.http_service --model DIR``); it
prints one JSON line ``{"port": N}`` when listening and exits after ``--max-requests`` requests or
``--idle-timeout`` seconds without one.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _State:
    def __init__(self, max_requests: int):
        self.max_requests = max_requests
        self.count = 0
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def tick(self) -> bool:
        """Count a request; False once the budget is spent."""
        with self.lock:
            self.count += 1
            self.last = time.monotonic()
            return self.count <= self.max_requests


def make_server(model: Any, state: _State) -> ThreadingHTTPServer:
    import numpy as np

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if not state.tick():
                self._reply(503, b'{"error": "request budget exhausted"}')
            elif self.path != "/predict":
                self._reply(404, b'{"error": "POST /predict"}')
            else:
                try:
                    y = model.predict(np.asarray(json.loads(body)["instances"]))
                    self._reply(200, json.dumps({"predictions": y.tolist()}).encode())
                except Exception as exc:  # report, keep serving
                    self._reply(400, json.dumps({"error": str(exc)}).encode())

        def _reply(self, code: int, payload: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--model", required=True, help="reference model folder (model.json + shard)")
    ap.add_argument("--max-requests", type=int, default=200_000)
    ap.add_argument("--idle-timeout", type=float, default=60.0)
    args = ap.parse_args(argv)
    from .workloads import NumpyReference, single_thread_blas

    single_thread_blas()
    state = _State(args.max_requests)
    server = make_server(NumpyReference(args.model), state)

    def watchdog() -> None:
        while True:
            time.sleep(0.5)
            if state.count >= args.max_requests or time.monotonic() - state.last > args.idle_timeout:
                server.shutdown()
                return

    threading.Thread(target=watchdog, daemon=True).start()
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
