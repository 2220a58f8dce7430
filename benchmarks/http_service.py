"""A minimal HTTP model service on loopback, the baseline a remote scorer would be.

Stdlib only (``http.server.ThreadingHTTPServer``), HTTP/1.1 keep-alive, TCP_NODELAY on every
connection, bound to 127.0.0.1 only. The model is the numpy forward pass from
:mod:`jsengine_ml.bench` (same weights as the engines). Protocol (TF-Serving-like JSON)::

    POST /predict   {"instances": [[...], ...]}   ->   {"predictions": [[...], ...]}

Run by the benchmark as a subprocess; prints one JSON line ``{"port": N}`` when listening, and
exits after ``--max-requests`` requests or ``--idle-timeout`` seconds without a request.

    python benchmarks/http_service.py --model jsengine_ml/reference_models/wine
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


def make_server(model, max_requests: int) -> ThreadingHTTPServer:
    state = {"count": 0, "last": time.monotonic()}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            with lock:
                state["count"] += 1
                state["last"] = time.monotonic()
                over = state["count"] > max_requests
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            if over:
                self._reply(503, b'{"error": "request budget exhausted"}')
                return
            if self.path != "/predict":
                self._reply(404, b'{"error": "POST /predict"}')
                return
            try:
                x = np.asarray(json.loads(body)["instances"], dtype=np.float32)
                y = model.predict(x)
                payload = json.dumps({"predictions": y.tolist()}).encode()
            except Exception as exc:  # report, keep serving
                self._reply(400, json.dumps({"error": str(exc)}).encode())
                return
            self._reply(200, payload)

        def _reply(self, code: int, payload: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.state = state  # type: ignore[attr-defined]
    return server


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="reference model folder (model.json + shard)")
    ap.add_argument("--max-requests", type=int, default=200_000)
    ap.add_argument("--idle-timeout", type=float, default=60.0)
    args = ap.parse_args(argv)
    from jsengine_ml.bench import NumpyModel

    model = NumpyModel.from_dir(args.model)
    server = make_server(model, args.max_requests)

    def watchdog() -> None:
        while True:
            time.sleep(0.5)
            st = server.state  # type: ignore[attr-defined]
            if st["count"] >= args.max_requests or time.monotonic() - st["last"] > args.idle_timeout:
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
