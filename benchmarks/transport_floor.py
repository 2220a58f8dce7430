"""The floor under isolation's per-call cost on this machine: a round trip between two processes.

Prints the median round trip of (1) one byte over a socket pair and (2) the isolation transport's
control message (a pickled tuple on :class:`jsengine_ml.isolation.transport.Channel`), each
between this process and a forked child that answers at once; no engine involved.

    python benchmarks/transport_floor.py
"""

from __future__ import annotations

import os
import socket
import statistics
import time
from collections.abc import Callable

from jsengine_ml.isolation.transport import Channel


def _median_us(round_trip: Callable[[], None], calls: int = 2000, blocks: int = 9) -> float:
    times = []
    for _ in range(blocks):
        started = time.perf_counter()
        for _ in range(calls):
            round_trip()
        times.append((time.perf_counter() - started) / calls)
    return statistics.median(times) * 1e6


def raw_socket_pair() -> float:
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        a.close()
        while message := b.recv(64):
            b.send(message)
        os._exit(0)
    b.close()

    def round_trip() -> None:
        a.send(b"x")
        a.recv(64)

    try:
        return _median_us(round_trip)
    finally:
        a.close()
        os.waitpid(pid, 0)


def transport_channel() -> float:
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        a.close()
        child = Channel(b.detach())
        while True:
            try:
                child.recv()
            except EOFError:
                os._exit(0)
            child.send(("ok", 2, [], 1 << 20))
    b.close()
    parent = Channel(a.detach())

    def round_trip() -> None:
        parent.send(("call", ("Math.max", 1, 2), {}, 1 << 20))
        while not parent.wait(0.005):
            pass
        parent.recv()

    try:
        return _median_us(round_trip)
    finally:
        parent.close()
        os.waitpid(pid, 0)


if __name__ == "__main__":
    print(f"socket pair, one byte each way:        {raw_socket_pair():6.1f} µs per round trip")
    print(f"isolation transport control message:  {transport_channel():6.1f} µs per round trip")
