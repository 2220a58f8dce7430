"""The worker process of an isolated engine: one engine, served one request at a time.

Started by :mod:`jsengine_ml.isolation.supervisor` as ``python -m jsengine_ml.isolation.worker CTRL_FD
SHM_FD PARENT_PID``. It waits (as a warm spare, jsengine-ml already imported) for a ``start``
request naming the backend class and its options, creates the engine, then runs each request as
the engine's public method of that name and answers with the result, the console output the call
produced and the size of the shared memory. ``reset`` closes the engine and makes it a spare again
(a worker whose engine was closed cleanly is reused; one that was killed never is). Every engine
crossing is stamped in the shared header, so the supervisor can stop a crossing that runs past the
time limit even on engines without one.

It dies with its parent (``PR_SET_PDEATHSIG`` on Linux, and end of file on the control socket),
and leaves by ``os._exit`` after closing its engine: no interpreter teardown that could hang.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import os
import pickle
import signal
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..engine import Engine

from .transport import Channel, SharedRegion, put_arrays, take_arrays

#: Engine primitives whose duration is a "crossing" for the time limit.
CROSSINGS = ("_exec", "_call_registered", "_put", "_get_packed", "_transform_packed", "_run_jobs", "_drain_console")


class _Collect(logging.Handler):
    """Collects the engine's console records until the reply takes them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelno, record.getMessage()))

    def take(self) -> list[tuple[int, str]]:
        out, self.records = self.records, []
        return out


def _stamped_class(engine_class: type[Engine], region: SharedRegion) -> type[Engine]:
    """A subclass of ``engine_class`` whose crossings stamp their start time in the shared header."""

    depth = [0]  # crossings may nest (a primitive calling another): the outermost one is timed

    def wrap(name: str) -> Any:
        method = getattr(engine_class, name)

        def crossing(self: Any, *args: Any) -> Any:
            if not depth[0]:
                region.stamp(time.monotonic())
            depth[0] += 1
            try:
                return method(self, *args)
            finally:
                depth[0] -= 1
                if not depth[0]:
                    region.stamp(0.0)

        crossing.__name__ = name
        return crossing

    return type(engine_class.__name__, (engine_class,), {name: wrap(name) for name in CROSSINGS})


def _load_class(target: str) -> type[Engine]:
    module, _, qualname = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(0)


def _error_payload(exc: BaseException) -> bytes:
    exc.__cause__ = exc.__context__ = None
    exc.__traceback__ = None
    try:
        payload = pickle.dumps(exc)
        pickle.loads(payload)
        return payload
    except Exception:  # an exception that does not survive pickling: keep its type name and text
        from ..errors import JSEngineMLError

        return pickle.dumps(JSEngineMLError(f"{type(exc).__name__}: {exc}"))


def serve(conn: Channel, region: SharedRegion) -> None:
    """Answer requests until ``close`` or the end of the control socket."""
    engine: Any = None
    console = _Collect()
    logger = logging.getLogger("jsengine_ml.isolation.worker.console")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(console)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            op, args, kwargs, size = conn.recv()
        except (EOFError, OSError):
            break
        region.follow(size)
        try:
            if op == "start":
                target, options, timed = args
                engine_class = _load_class(target)
                if timed:  # the supervisor times crossings only when there is a time limit
                    engine_class = _stamped_class(engine_class, region)
                engine = engine_class(logger=logger, **options)
                result: Any = None
            elif op == "capabilities":  # asked here so the supervisor never loads an engine itself
                result = _load_class(args[0]).capabilities().as_dict()
            elif op == "close":
                break
            elif op == "reset":  # back to a spare: the engine goes, the warm process stays
                if engine is not None:
                    engine, old = None, engine
                    old.close()
                result = None
            else:
                result = getattr(engine, op)(*take_arrays(args, region, copy=False), **kwargs)
            reply = ("ok", put_arrays((result,), region)[0], console.take(), region.size)
        except BaseException as exc:  # every failure goes back to the supervisor
            reply = ("error", _error_payload(exc), console.take(), region.size)
        if engine is not None and engine.closed and op != "reset":
            # The engine gave itself up (an isolate it could not stop): so does this process.
            conn.send(("retire", reply, [], region.size))
            os._exit(0)
        conn.send(reply)
    if engine is not None:
        try:
            engine.close()
        except BaseException:
            pass
    try:
        conn.send(("closed", None, console.take(), region.size))
    except OSError:
        pass


def main(argv: list[str] | None = None) -> None:
    ctrl_fd, shm_fd, parent = (int(a) for a in (argv or sys.argv[1:])[:3])
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    conn = Channel(ctrl_fd)
    region = SharedRegion(shm_fd)
    try:
        serve(conn, region)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
