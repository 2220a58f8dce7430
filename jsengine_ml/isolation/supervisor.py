"""The supervisor: an :class:`~jsengine_ml.engine.Engine` whose JavaScript runs in a worker process.

:class:`IsolatedEngine` has the Engine API; each public call is one control message to the worker
(arrays in shared memory, see :mod:`.transport`), which runs the same call on a real engine of the
chosen backend. While it waits, the supervisor watches the worker:

* a crossing (one entry into the engine) running past ``time_limit`` (plus a grace period where the
  backend enforces the limit itself) gets the worker killed: :class:`JSTimeoutError`;
* resident memory growing more than ``memory_limit`` bytes above what the worker used right after
  its engine started gets it killed: :class:`JSMemoryLimitError` (read from ``/proc``, not
  ``RLIMIT_AS``, which V8's address-space reservations trip);
* a worker that dies (a native abort, a signal, an exit): :class:`EngineCrashedError` with the
  signal or exit code and the tail of what it printed.

After any of these the next call starts a fresh worker and replays the engine's setup (every
successful eval, call, put_array, add_resource, settle and run_timers, in order), so a loaded model
is loaded again; consecutive failures back off (0, 0.1, 0.2 … 2 s) and ``restarts`` counts them.
Workers are started by one long-lived spawner thread (a worker dies with it, i.e. with the process)
and one warm spare waits, jsengine-ml imported, so a start or restart costs an engine, not a Python.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import pickle
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, ClassVar

import numpy as np

from .._types import Array
from ..engine import Capabilities, Engine, Packed, _args_json, as_transfer_array, close_at_exit
from ..errors import (
    BackendUnavailableError,
    EngineCrashedError,
    InputError,
    JSEngineMLError,
    JSMemoryLimitError,
    JSTimeoutError,
)
from .transport import INITIAL_BYTES, Channel, SharedRegion, anonymous_fd, put_arrays, take_arrays

log = logging.getLogger(__name__)

PYTHON_ENV = "JSENGINE_ML_WORKER_PYTHON"
SPARES_ENV = "JSENGINE_ML_SPARE_WORKERS"
#: How often the supervisor looks at a busy worker (time stamp, memory, liveness).
WATCH_INTERVAL_S = 0.005
#: Extra time given to a backend that enforces the time limit itself (its error leaves the worker usable).
GRACE_S = 0.5
START_TIMEOUT_S = 120.0
CLOSE_TIMEOUT_S = 5.0
MAX_BACKOFF_S = 2.0
#: The setup journal stops growing past this many steps; a later crash then cannot be repaired.
MAX_JOURNAL = 10_000
#: A worker whose engine was closed cleanly is reused for another engine, this many times at most.
MAX_ENGINES_PER_WORKER = 50
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


# ---------------------------------------------------------------------- worker processes
def worker_python() -> str:
    """The Python that runs workers: ``$JSENGINE_ML_WORKER_PYTHON``, else this interpreter (also when
    embedded, e.g. in PyFlink's thread mode, where ``sys.executable`` may not be a Python)."""
    chosen = os.environ.get(PYTHON_ENV)
    if chosen:
        return chosen
    for candidate in (sys.executable, getattr(sys, "_base_executable", ""),
                      os.path.join(sys.exec_prefix, "bin", "python3")):
        if candidate and os.path.basename(candidate).startswith("python") and os.access(candidate, os.X_OK):
            return candidate
    raise BackendUnavailableError(f"no Python executable found to run isolated engines; set ${PYTHON_ENV}")


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    # The worker imports what this process imports (a source checkout, a test folder's backend ...).
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env.pop("PYTHONSTARTUP", None)
    return env


class _Worker:
    """One worker process, its control connection and its shared memory."""

    def __init__(self, python: str) -> None:
        parent_sock, child_sock = socket.socketpair()
        self.stderr = tempfile.TemporaryFile(prefix="jsengine-ml-worker-")
        shm_fd = anonymous_fd(INITIAL_BYTES)
        try:
            self.proc = subprocess.Popen(
                [python, "-m", "jsengine_ml.isolation.worker", str(child_sock.fileno()), str(shm_fd), str(os.getpid())],
                pass_fds=(child_sock.fileno(), shm_fd), stdin=subprocess.DEVNULL, stdout=self.stderr,
                stderr=self.stderr, env=_worker_env(), close_fds=True,
            )
        except BaseException:
            parent_sock.close()
            os.close(shm_fd)
            self.stderr.close()
            raise
        finally:
            child_sock.close()
        self.pid = self.proc.pid
        self.conn = Channel(parent_sock.detach())
        self.region = SharedRegion(shm_fd)
        self.ready = False
        self.dead = False
        self.baseline_rss = 0
        self.engines = 0  # engines this process has run (a recycled worker runs several)

    # ------------------------------------------------------------------ state
    def alive(self) -> bool:
        return not self.dead and self.proc.poll() is None

    def rss(self) -> int:
        """Resident memory of the worker in bytes (0 if it cannot be read)."""
        try:
            with open(f"/proc/{self.pid}/statm", "rb") as f:
                return int(f.read().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            return 0

    def stderr_tail(self, limit: int = 4000) -> str:
        with contextlib.suppress(OSError, ValueError):
            self.stderr.flush()
            size = self.stderr.seek(0, os.SEEK_END)
            self.stderr.seek(max(0, size - limit))
            return self.stderr.read().decode("utf-8", "replace").strip()
        return ""

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        if self.ready:
            return
        if not self.conn.wait(timeout):
            self.kill()
            raise EngineCrashedError(f"the worker process (pid {self.pid}) did not start within {timeout:g} s")
        try:
            self.conn.recv()
        except (EOFError, OSError):
            raise self._crashed("start") from None
        self.ready = True

    # ------------------------------------------------------------------ one request
    def request(self, op: str, args: tuple[Any, ...], kwargs: dict[str, Any], watch: _Watch) -> Any:
        """Send one request, watch the worker until it answers, return the result (or raise)."""
        payload = put_arrays(args, self.region)
        try:
            self.conn.send((op, payload, kwargs, self.region.size))
        except OSError:
            raise self._crashed(op) from None
        conn, region, proc = self.conn, self.region, self.proc
        while not conn.wait(WATCH_INTERVAL_S):
            if proc.poll() is not None:
                raise self._crashed(op)
            if watch.time_limit is not None:
                started = region.crossing_started()
                if started and time.monotonic() - started > watch.time_limit + watch.grace:
                    self.kill()
                    raise JSTimeoutError(
                        f"JavaScript ran longer than the time limit of {watch.time_limit:g} s; its worker process "
                        f"(pid {self.pid}) was killed and the next call runs on a fresh one"
                    )
            if watch.memory_limit is not None:
                grown = self.rss() - self.baseline_rss
                if grown > watch.memory_limit:
                    self.kill()
                    raise JSMemoryLimitError(
                        f"JavaScript exceeded the memory limit of {watch.memory_limit} bytes (its worker process "
                        f"grew by {grown >> 20} MiB); the worker (pid {self.pid}) was killed and the next call "
                        f"runs on a fresh one"
                    )
        try:
            status, result, console, size = conn.recv()
        except (EOFError, OSError):
            raise self._crashed(op) from None
        retire = status == "retire"  # the worker's engine gave itself up: this answer is its last
        if retire:
            status, result, console, size = result
        try:
            watch.console(console)
            region.follow(size)
            if status == "error":
                raise pickle.loads(result)
            return take_arrays((result,), region, copy=True)[0]
        finally:
            if retire:
                self.kill()

    def _crashed(self, op: str) -> EngineCrashedError:
        code = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            code = self.proc.wait(timeout=CLOSE_TIMEOUT_S)
        self.kill()
        sig = -code if code is not None and code < 0 else None
        how = (f"killed by {signal.Signals(sig).name}" if sig else
               f"exited with code {code}" if code is not None else "stopped answering")
        tail = self.stderr_tail()
        return EngineCrashedError(
            f"the engine's worker process (pid {self.pid}) died during {op}: {how}"
            + (f"; it printed:\n{tail}" if tail else ""),
            signal=sig, exit_code=None if sig else code, stderr=tail,
        )

    # ------------------------------------------------------------------ ending
    def kill(self) -> None:
        """Kill the process now and reap it; release the connection and the shared memory."""
        self.dead = True
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=CLOSE_TIMEOUT_S)
        self._release()

    def reset(self) -> bool:
        """Close the worker's engine and keep the process (for reuse); False if that failed (it is then gone)."""
        try:
            self.conn.send(("reset", (), {}, self.region.size))
            if self.conn.wait(CLOSE_TIMEOUT_S):
                status, *_ = self.conn.recv()
                if status == "ok":
                    return True
        except (OSError, EOFError):
            pass
        self.kill()
        return False

    def close(self) -> None:
        """Ask the worker to close its engine and exit; kill it if it does not within a few seconds."""
        if self.dead:
            return
        self.dead = True
        with contextlib.suppress(OSError, EOFError):
            self.conn.send(("close", (), {}, self.region.size))
            if self.conn.wait(CLOSE_TIMEOUT_S):
                self.conn.recv()
        try:
            self.proc.wait(timeout=CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._release()

    def _release(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()
        with contextlib.suppress(OSError, ValueError):
            self.region.close()
        with contextlib.suppress(OSError):
            self.stderr.close()


@dataclasses.dataclass
class _Watch:
    """What the supervisor enforces during one request, and where console output goes."""

    time_limit: float | None
    grace: float
    memory_limit: int | None
    console: Callable[[list[tuple[int, str]]], None]


class _Spawner:
    """Starts worker processes on one long-lived thread (the thread a worker's PR_SET_PDEATHSIG is
    tied to), and keeps warm spares ready."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._spares: dict[str, list[_Worker]] = {}

    def _run(self) -> None:
        while True:
            job, future = self._jobs.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(job())
                except BaseException as exc:  # handed to the waiting caller
                    future.set_exception(exc)

    def _submit(self, job: Callable[[], Any]) -> Future[Any]:
        with self._lock:
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()  # (after a fork the spawner thread is gone: start another)
                self._spares = {}
                self._thread = threading.Thread(target=self._run, name="jsengine-ml-spawner", daemon=True)
                self._thread.start()
        future: Future[Any] = Future()
        self._jobs.put((job, future))
        return future

    def take(self, python: str) -> _Worker:
        """A started worker process (a warm spare if one is ready); a new spare is started behind it."""
        worker = None
        with self._lock:
            spares = self._spares.get(python) or []
            while spares and worker is None:
                candidate = spares.pop()
                if candidate.alive():
                    worker = candidate
                else:
                    candidate.kill()
        if worker is None:
            worker = self._submit(lambda: _Worker(python)).result()
        if _spare_count() > 0:
            self._submit(lambda: self._add_spare(python))
        worker.engines += 1
        return worker

    def give_back(self, python: str, worker: _Worker) -> None:
        """Take back the worker of a cleanly closed engine: reset, it becomes a spare (or is closed)."""
        with self._lock:
            room = len(self._spares.get(python, [])) < 2 * max(1, _spare_count())
        if not room or worker.engines >= MAX_ENGINES_PER_WORKER or not worker.reset():
            worker.close()
            return
        with self._lock:
            self._spares.setdefault(python, []).append(worker)

    def _add_spare(self, python: str) -> None:
        with self._lock:
            if len(self._spares.get(python, [])) >= _spare_count():
                return
        worker = _Worker(python)
        with self._lock:
            self._spares.setdefault(python, []).append(worker)

    def close(self) -> None:
        """Stop the spares (at exit, and in tests that count processes)."""
        with self._lock:
            spares = [w for ws in self._spares.values() for w in ws]
            self._spares = {}
        for worker in spares:
            worker.close()

    def spare_pids(self) -> list[int]:
        with self._lock:
            return [w.pid for ws in self._spares.values() for w in ws]


def _spare_count() -> int:
    try:
        return max(0, int(os.environ.get(SPARES_ENV, "1")))
    except ValueError:
        return 1


SPAWNER = _Spawner()
close_at_exit(SPAWNER, last=True)


# ---------------------------------------------------------------------- the engine
_IDENTIFIER = re.compile(r"^[A-Za-z_$][\w$]*$")
_JOURNALED = frozenset({"eval", "call", "put_array", "add_resource", "settle", "run_timers"})


class IsolatedEngine(Engine):
    """An engine of another backend (``inner_class``) running in a supervised worker process.

    Made by :func:`isolated_class` / ``create_engine(backend, isolation="process")``. The API and
    the results are those of the backend in-process; ``map_buffer`` is refused (``zero_copy`` is
    False: compiled models use ``transform``). ``time_limit`` and ``memory_limit`` are enforced on
    every backend (see the module docstring). ``max_restarts`` (default: no limit) caps the fresh
    workers started after failures; ``restarts`` counts them.
    """

    inner_class: ClassVar[type[Engine]]

    def __init__(self, *, max_restarts: int | None = None, **options: Any):
        self.max_restarts = max_restarts
        self.restarts = 0
        self._failures = 0  # consecutive failed calls (for the back-off)
        self._journal: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self._restorable = True
        self._worker: _Worker | None = None
        super().__init__(**options)

    # ------------------------------------------------------------------ class level
    @classmethod
    def check_available(cls) -> None:
        cls.inner_class.check_available()
        if "<locals>" in cls.inner_class.__qualname__:
            raise BackendUnavailableError(
                f"{cls.inner_class.__qualname__} is defined inside a function: a worker process cannot import it. "
                f"Define the backend class at module level to run it isolated."
            )

    @classmethod
    def capabilities(cls) -> Capabilities:
        return _isolated_capabilities(cls.inner_class)

    @property
    def pid(self) -> int | None:
        """Process id of the current worker (None between a failure and the next call)."""
        return self._worker.pid if self._worker is not None else None

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"open, worker pid {self.pid}"
        return f"<IsolatedEngine {self.name} ({state}, {self.restarts} restarts)>"

    # ------------------------------------------------------------------ lifecycle
    def _open(self, time_limit: float | None, memory_limit: int | None) -> None:
        inner = inner_capabilities(self.inner_class)
        self._inner_options: dict[str, Any] = {}
        if time_limit is not None and inner.time_limit:
            self._inner_options["time_limit"] = time_limit
        if memory_limit is not None and inner.memory_limit_scope:
            self._inner_options["memory_limit"] = memory_limit
            self._inner_options["heap_only_limit"] = inner.memory_limit_scope == "heap"
        self._watch = _Watch(time_limit, GRACE_S if inner.time_limit else 0.0, memory_limit, self._console_records)
        self._target = f"{self.inner_class.__module__}:{self.inner_class.__qualname__}"
        self._python = worker_python()
        self._worker = self._start_worker()

    def _start(self) -> None:
        """Nothing to do here: the worker's engine evaluated its shims when it started."""

    def _start_worker(self) -> _Worker:
        worker = SPAWNER.take(self._python)
        try:
            worker.wait_ready()
            # The engine's own start (imports, shims) is not the JavaScript the memory limit is about:
            # the limit counts from what the worker holds once its engine is up.
            worker.request("start", (self._target, self._inner_options, self._watch.time_limit is not None), {},
                           dataclasses.replace(self._watch, memory_limit=None))
            worker.baseline_rss = worker.rss()
            for op, args, kwargs in self._journal:
                worker.request(op, args, kwargs, self._watch)
        except BaseException as exc:
            worker.kill()
            if self._journal and isinstance(exc, JSEngineMLError):
                raise EngineCrashedError(f"a fresh worker could not replay the engine's setup: {exc}") from exc
            raise
        return worker

    def _close(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None and not worker.dead:
            SPAWNER.give_back(self._python, worker)
        self._journal = []

    # ------------------------------------------------------------------ requests
    def _request(self, op: str, *args: Any, **kwargs: Any) -> Any:
        self._check_usable()
        worker = self._worker
        if worker is None or worker.dead:
            worker = self._worker = self._restart()
        try:
            result = worker.request(op, args, kwargs, self._watch)
        except BaseException:
            if worker.dead:  # killed for a limit, or crashed: the next call gets a fresh worker
                self._worker = None
                self._failures += 1
            raise
        self._failures = 0
        if op in _JOURNALED and self._restorable:
            if len(self._journal) >= MAX_JOURNAL:
                self._restorable = False
                self._journal = []
                log.warning("isolated %s engine: more than %d setup steps; a crashed worker can no longer be "
                            "restored (create a new engine after a crash)", self.name, MAX_JOURNAL)
            else:
                self._journal.append((op, args, kwargs))
        return result

    def _restart(self) -> _Worker:
        if not self._restorable:
            raise EngineCrashedError(f"this isolated {self.name} engine's worker died and its setup is too long to "
                                     f"replay ({MAX_JOURNAL}+ steps): create a new engine")
        if self.max_restarts is not None and self.restarts >= self.max_restarts:
            raise EngineCrashedError(f"this isolated {self.name} engine's worker died {self.restarts + 1} times; "
                                     f"max_restarts={self.max_restarts} reached")
        if self._failures > 1:
            time.sleep(min(MAX_BACKOFF_S, 0.1 * 2 ** (self._failures - 2)))
        worker = self._start_worker()
        self.restarts += 1
        log.info("isolated %s engine: fresh worker pid %d (restart %d)", self.name, worker.pid, self.restarts)
        return worker

    def _console_records(self, records: list[tuple[int, str]]) -> None:
        for level, text in records:
            self.console.log(level, "%s", text)

    # ------------------------------------------------------------------ the Engine API, forwarded
    def eval(self, source: str, *, filename: str = "<eval>") -> Any:
        if not isinstance(source, str):
            self._check_usable()
            raise InputError(f"source must be str, got {type(source).__name__}")
        return self._request("eval", source, filename=filename)

    def call(self, expression: str, *args: Any) -> Any:
        self._check_usable()
        _args_json(expression, args)  # refuse what JSON cannot carry here, like an in-process engine
        return self._request("call", expression, *args)

    def put_array(self, name: str, array: Any) -> None:
        self._check_usable()
        if not _IDENTIFIER.match(name):
            raise InputError(f"array name must be a JS identifier, got {name!r}")
        array = as_transfer_array(array, what=f"array for {name!r}")
        self._request("put_array", name, array.copy())

    def get_array(self, expression: str) -> Array:
        return self._request("get_array", expression)  # type: ignore[no-any-return]

    def transform(self, function: str, array: Any, *args: Any, timeout: float | None = None,
                  rows: int | None = None) -> Array:
        self._check_usable()
        array = as_transfer_array(array, what="input")
        _args_json(function, args)
        return self._request("transform", function, array, *args, timeout=timeout, rows=rows)  # type: ignore[no-any-return]

    def settle(self, expression: str, *, timeout: float | None = None) -> Any:
        return self._request("settle", expression, timeout=timeout)

    def run_timers(self) -> int:
        return int(self._request("run_timers"))

    def add_resource(self, url: str, data: Any) -> None:
        self._check_usable()
        payload = _resource_bytes(url, data)
        self._request("add_resource", url, np.frombuffer(payload, dtype=np.uint8).copy())
        self._resources.setdefault(url, len(self._resources) + 1)

    # The primitives are never used: every public call above is one request to the worker.
    def _exec(self, source: str, filename: str) -> Any:
        raise NotImplementedError("IsolatedEngine forwards public calls, not primitives")

    def _call_registered(self, fn_id: int, args_json: str) -> Any:
        raise NotImplementedError("IsolatedEngine forwards public calls, not primitives")

    def _put(self, name: str, array: Array) -> None:
        raise NotImplementedError("IsolatedEngine forwards public calls, not primitives")

    def _get_packed(self, expression: str) -> Packed:
        raise NotImplementedError("IsolatedEngine forwards public calls, not primitives")

    def _transform_packed(self, fn_id: int, array: Array, args_json: str) -> Packed:
        raise NotImplementedError("IsolatedEngine forwards public calls, not primitives")


def _resource_bytes(url: str, data: Any) -> bytes:
    from pathlib import Path

    from ..errors import ResourceError

    if isinstance(data, (str, os.PathLike)):
        try:
            return Path(data).read_bytes()
        except OSError as exc:
            raise ResourceError(f"cannot read resource file {data} for {url!r}: {exc}") from exc
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise InputError(f"resource data must be bytes or a file path, got {type(data).__name__}")


@functools.cache
def inner_capabilities(inner_class: type[Engine]) -> Capabilities:
    """The backend's own capabilities, asked of a worker: the supervisor never loads an engine binding
    (V8 started inside PyFlink's JVM is what crashed it)."""
    python = worker_python()
    worker = SPAWNER.take(python)
    try:
        worker.wait_ready()
        answer = worker.request("capabilities", (f"{inner_class.__module__}:{inner_class.__qualname__}",), {},
                                _Watch(None, 0.0, None, lambda records: None))
    except BaseException:
        worker.kill()
        raise
    SPAWNER.give_back(python, worker)
    return Capabilities(**answer)


@functools.cache
def _isolated_capabilities(inner_class: type[Engine]) -> Capabilities:
    inner = inner_capabilities(inner_class)
    in_worker = f"; in the worker, the engine's own: {inner.memory_limit}" if inner.memory_limit else ""
    return dataclasses.replace(
        inner,
        time_limit=True,
        memory_limit=f"growth of the worker process's resident memory, enforced by the supervisor{in_worker}",
        memory_limit_scope="process",
        zero_copy=False,
        isolated=True,
        thread_rule="owner thread only (the engine runs in a supervised worker process)",
        main_thread_only=False,
    )


@functools.cache
def isolated_class(engine_class: type[Engine]) -> type[IsolatedEngine]:
    """The :class:`IsolatedEngine` subclass running ``engine_class`` in a worker process."""
    if issubclass(engine_class, IsolatedEngine):
        return engine_class
    return type(f"Isolated{engine_class.__name__}", (IsolatedEngine,), {
        "inner_class": engine_class,
        "name": engine_class.name,
        "known_bugs": engine_class.known_bugs,
        "__module__": __name__,
        "__doc__": f"{engine_class.__name__} in a supervised worker process.",
    })
