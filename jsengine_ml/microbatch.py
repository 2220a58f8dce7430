"""Micro-batching: a per-record API over a batch model.

``MicroBatcher`` collects records submitted from any thread and scores them in batches of at most
``max_batch`` rows, flushing when a batch is full or when the oldest waiting record has waited
``max_delay_s`` seconds (≤ 5 ms), whichever comes first. Each ``submit(row)`` returns a
:class:`RecordResult` (``result()``, ``done()``, ``exception()``, like a Future) that resolves to
exactly that record's output row. Records are copied straight into a preallocated batch matrix and
a whole batch is released with one event, so the per-record cost stays at a few microseconds.

Engines are single-threaded (the owner-thread rule): the batcher creates the model *on its flusher
thread* from a factory (or a path + backend) and only ever uses it there, so callers never touch it::

    with MicroBatcher(path="model_dir", backend="v8", max_batch=256, max_delay_s=0.002) as mb:
        future = mb.submit(row)          # any thread
        probs = future.result()          # (k,) float32

A model with several named inputs or outputs takes a record as a dict (input name -> that input's
row) and resolves to a dict (output name -> that output's row), scored with ``model.run``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ._types import Array
from .engine import close_at_exit
from .errors import EngineClosedError, InputError, ModelError

MAX_DELAY_LIMIT_S = 0.005

__all__ = ["MicroBatcher", "RecordResult"]


class _Batch:
    """Rows of one micro-batch (one matrix per model input), filled in place by producers, and its outcome."""

    __slots__ = ("count", "created", "done", "error", "inputs", "out")

    def __init__(self, capacity: int, rows: list[Array]):
        self.inputs = [np.empty((capacity, row.shape[0]), dtype=row.dtype) for row in rows]
        self.count = 0
        self.created = time.monotonic()
        self.done = threading.Event()
        self.out: Array | dict[str, Array] | None = None
        self.error: BaseException | None = None

    def finish(self, out: Array | dict[str, Array] | None, error: BaseException | None) -> None:
        self.out, self.error = out, error
        self.done.set()


class RecordResult:
    """The pending output row of one submitted record (a minimal Future)."""

    __slots__ = ("_batch", "_index")

    def __init__(self, batch: _Batch, index: int):
        self._batch = batch
        self._index = index

    def done(self) -> bool:
        return self._batch.done.is_set()

    def exception(self, timeout: float | None = None) -> BaseException | None:
        done = self._batch.done
        if not done.is_set() and not done.wait(timeout):  # is_set(): no lock once the batch is scored
            raise TimeoutError("the record was not scored in time")
        return self._batch.error

    def result(self, timeout: float | None = None) -> Any:
        """Wait for and return this record's output row (a dict of rows by output name for a model
        with several inputs or outputs); re-raise the batch's error if it failed."""
        error = self.exception(timeout)
        if error is not None:
            raise error
        out = self._batch.out
        assert out is not None
        if isinstance(out, dict):
            return {name: rows[self._index] for name, rows in out.items()}
        return out[self._index]


class MicroBatcher:
    """Score single records in micro-batches on a dedicated flusher thread that owns the model.

    Parameters
    ----------
    model_factory:
        Zero-argument callable returning a model (anything with ``predict(2-D array)`` and
        ``close()``, e.g. :func:`jsengine_ml.model.load`). Called on the flusher thread.
    path, backend, load_options, isolation:
        Alternatively, a model path (and backend / options) for :func:`jsengine_ml.model.load`;
        ``isolation="process"`` runs its engine in a supervised worker process.
    max_batch:
        Flush as soon as this many records are waiting.
    max_delay_s:
        Flush when the oldest waiting record has waited this long (0 < T ≤ 5 ms).
    """

    def __init__(
        self,
        model_factory: Callable[[], Any] | None = None,
        *,
        path: str | None = None,
        backend: str | None = None,
        load_options: dict[str, Any] | None = None,
        max_batch: int = 256,
        max_delay_s: float = 0.002,
        start_timeout: float = 120.0,
        name: str = "jsengine-ml-microbatch",
        isolation: str | None = None,
    ):
        if (model_factory is None) == (path is None):
            raise InputError("pass exactly one of model_factory or path")
        if not isinstance(max_batch, int) or max_batch < 1:
            raise InputError(f"max_batch must be a positive int, got {max_batch!r}")
        if not (isinstance(max_delay_s, (int, float)) and 0 < max_delay_s <= MAX_DELAY_LIMIT_S):
            raise InputError(f"max_delay_s must be in (0, {MAX_DELAY_LIMIT_S}] seconds, got {max_delay_s!r}")
        if model_factory is None:
            options = dict(load_options or {})
            if isolation is not None:
                options["isolation"] = isolation

            model_path = path

            def model_factory() -> Any:
                from .model import load

                assert model_path is not None
                return load(model_path, backend, **options)

        self._factory = model_factory
        self.max_batch = max_batch
        self.max_delay_s = float(max_delay_s)
        self._lock = threading.Lock()  # taken directly on the hot path (cheaper than the Condition's wrapper)
        self._cond = threading.Condition(self._lock)
        self._open: _Batch | None = None  # the batch records are being added to
        self._full: deque[_Batch] = deque()  # full batches waiting for the flusher
        self._closing = False
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self.n_features: int | None = None
        self.metadata: Any = None
        #: (name, width or None, dtype) per model input; named: records and results are dicts.
        self._inputs: list[tuple[str, int | None, np.dtype[Any]]] = []
        self._named = False
        # statistics (read without the lock; approximate while running)
        self.batches = 0
        self.records = 0
        self.flush_full = 0
        self.flush_timer = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        close_at_exit(self)
        if not self._ready.wait(start_timeout):
            raise TimeoutError(f"the micro-batcher's model did not load within {start_timeout} s")
        if self._start_error is not None:
            self._thread.join()
            raise self._start_error

    # ------------------------------------------------------------------ producer side
    def submit(self, row: Any) -> RecordResult:
        """Queue one record (a 1-D row of ``n_features`` numbers, or a dict of rows by input name);
        return a handle on its output."""
        values = self._record(row)
        with self._lock:
            if self._closing:
                raise EngineClosedError("this MicroBatcher is closed; create a new one")
            batch = self._open
            if batch is None:
                # The first record of a batch starts the delay clock: wake the flusher to time it.
                batch = self._open = _Batch(self.max_batch, values)
                self._cond.notify()
            index = batch.count
            for matrix, value in zip(batch.inputs, values, strict=True):
                if value.shape[0] != matrix.shape[1]:
                    raise InputError(f"submit() takes rows of {matrix.shape[1]} values (as the batch so far), "
                                     f"got {value.shape[0]}")
                matrix[index] = value
            batch.count = index + 1
            if batch.count == self.max_batch:
                self._full.append(batch)
                self._open = None
                self._cond.notify()
        return RecordResult(batch, index)

    def _record(self, row: Any) -> list[Array]:
        """One record as a 1-D array per model input (checked for shape, cast to the input's dtype)."""
        if not self._named and not isinstance(row, dict):
            arr = np.asarray(row, dtype=np.float32)
            if arr.ndim == 2 and arr.shape[0] == 1:
                arr = arr[0]
            if arr.ndim != 1 or (self.n_features is not None and arr.shape[0] != self.n_features):
                raise InputError(f"submit() takes one row of {self.n_features} numbers, got shape {arr.shape}")
            return [arr]
        names = [name for name, _, _ in self._inputs]
        if not isinstance(row, dict) or set(row) != set(names):
            got = sorted(row) if isinstance(row, dict) else type(row).__name__
            raise InputError(f"this model takes named inputs {names}: submit({{name: row, ...}}) with exactly those "
                             f"names, got {got}")
        values = []
        for name, width, dtype in self._inputs:
            arr = np.asarray(row[name]).reshape(-1)
            if width is not None and arr.shape[0] != width:
                raise InputError(f"input {name!r} takes {width} values per record, got {arr.shape[0]}")
            if dtype.kind == "i" and not (arr.dtype.kind in "iu" or np.array_equal(arr, np.round(arr))):
                raise InputError(f"input {name!r} takes integer ids ({dtype}), got {arr.dtype} values {arr.tolist()}")
            values.append(arr.astype(dtype, copy=False))
        return values

    def submit_many(self, rows: Iterable[Any]) -> list[RecordResult]:
        """Queue several records; one result handle each, in order."""
        return [self.submit(r) for r in rows]

    def predict_one(self, row: Any, timeout: float | None = None) -> Array:
        """Submit one record and wait for its output row."""
        out: Array = self.submit(row).result(timeout)
        return out

    # ------------------------------------------------------------------ flusher side
    def _run(self) -> None:
        try:
            model = self._factory()
            md = getattr(model, "metadata", None)
            self.metadata = md
            if md is not None and getattr(md, "n_features", None):
                self.n_features = int(md.n_features)
            ins, outs = getattr(md, "inputs", None) or [], getattr(md, "outputs", None) or []
            self._inputs = [(a.name, a.width, np.dtype(a.dtype)) for a in ins]
            self._named = len(ins) > 1 or len(outs) > 1
        except BaseException as exc:
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                batch = self._next_batch()
                if batch is None:
                    break
                self._score(model, batch)
        finally:
            try:
                model.close()
            finally:
                self._fail_pending(RuntimeError("the MicroBatcher stopped before scoring this record"))

    def _next_batch(self) -> _Batch | None:
        with self._cond:
            while True:
                if self._full:
                    self.flush_full += 1
                    return self._full.popleft()
                batch = self._open
                if batch is not None:
                    wait = batch.created + self.max_delay_s - time.monotonic()
                    if wait <= 0 or self._closing:
                        self._open = None
                        self.flush_timer += 1
                        return batch
                    self._cond.wait(wait)
                    continue
                if self._closing:
                    return None
                self._cond.wait()

    def _score(self, model: Any, batch: _Batch) -> None:
        try:
            out: Array | dict[str, Array]
            if self._named:
                named: dict[str, Array] = model.run({name: m[: batch.count] for (name, _, _), m
                                                     in zip(self._inputs, batch.inputs, strict=True)})
                out, rows = named, {len(v) for v in named.values()}
            else:
                single = np.asarray(model.predict(batch.inputs[0][: batch.count]))
                out, rows = single, {single.shape[0]}
            if rows != {batch.count}:
                raise ModelError(f"the model returned {sorted(rows)} rows for a batch of {batch.count}")
        except BaseException as exc:
            batch.finish(None, exc)
            if not isinstance(exc, Exception):
                raise
            return
        batch.finish(out, None)
        self.batches += 1
        self.records += batch.count

    def _fail_pending(self, exc: BaseException) -> None:
        with self._cond:
            self._closing = True
            leftovers = list(self._full) + ([self._open] if self._open is not None else [])
            self._full.clear()
            self._open = None
        for batch in leftovers:
            batch.finish(None, exc)

    # ------------------------------------------------------------------ lifecycle
    @property
    def closed(self) -> bool:
        return self._closing

    def close(self, timeout: float | None = None) -> None:
        """Score everything already submitted, then close the model on its own thread. Idempotent."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def close_at_exit(self) -> None:
        """At interpreter exit: close, waiting at most 10 s for the flusher."""
        self.close(timeout=10.0)

    def __enter__(self) -> MicroBatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> dict[str, float]:
        """Batches scored, records scored, mean batch size, and how batches were triggered."""
        return {
            "batches": self.batches,
            "records": self.records,
            "mean_batch": (self.records / self.batches) if self.batches else math.nan,
            "flush_full": self.flush_full,
            "flush_timer": self.flush_timer,
        }
