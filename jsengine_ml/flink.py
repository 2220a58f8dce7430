"""PyFlink integration: score TF.js models inside Flink jobs, with hot model updates.

Extra: ``pip install 'jsengine-ml[flink]'`` (apache-flink >= 2.0, < 2.4).

* :class:`ModelSpec`: a picklable description of a model (path, backend, version, engine options,
  optional standardization file). Functions are pickled to the workers; engines are created in
  ``open()``, never in ``__init__``.
* :class:`ScoringFunction`: a ``KeyedProcessFunction`` that micro-batches rows (flush at
  ``batch_size`` rows or ``max_delay_ms`` after the first buffered row, by a processing-time timer,
  and at the end of a bounded input, by an event-time timer that the final watermark fires) so one
  engine call scores many rows.
* :class:`HotScoringFunction`: the same, as a ``KeyedBroadcastProcessFunction`` for
  ``data.key_by(...).connect(updates.broadcast(MODEL_STATE)).process(...)``: each parallel instance
  loads every version announced on the broadcast stream in a background thread
  (:class:`~jsengine_ml.hotswap.HotSwapModel`) and swaps between two batches; rows that arrive
  before the first model are buffered, not dropped; a version that fails keeps the old one serving.
* :func:`pandas_scorer`: a vectorized (pandas) scalar UDF for the Table API.
* :func:`check_execution_mode`: refuses V8 in PyFlink's thread mode (``python.execution-mode:
  thread``), which crashed the JVM in testing.

Why keyed functions: a plain ``map``/``flat_map`` gets no timers and no end-of-input hook (its
``close()`` cannot emit), so a micro-batch there is either flushed per count only (the last partial
batch is lost at the end of a bounded stream) or not at all. Keyed functions get timers: a
processing-time timer bounds the latency of a partial batch, and an event-time timer at the far
future is fired by the ``MAX`` watermark Flink emits when a bounded input ends. Key the stream by
something that spreads records over the parallel instances (e.g. ``id % 64``); the buffer is per
instance, not per key.

Records: by default an input element is ``(key, features)`` (a tuple or list whose second item is a
sequence of floats) or a string ``"key,f1,f2,..."``; the output is the string
``"key,version,class"`` (strings are far cheaper to collect than tuples). A model with several
named inputs takes records with several named fields: ``(key, {"numeric": [...], "tokens": [...]})``
or the JSON string ``{"key": ..., "numeric": [...], "tokens": [...]}``; they are scored with
``model.run`` and the output is ``"key,version,{"<output>": [...], ...}"`` (the outputs as JSON).
Pass ``parse=`` / ``emit=`` (picklable callables) to change that.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ._types import Array, Float64Array
from .errors import CapabilityError, InputError

if TYPE_CHECKING:
    from .model import DenseMatrixModel

log = logging.getLogger(__name__)

try:  # pyflink is optional: the module imports (and ModelSpec works) without it
    from pyflink.common import Types
    from pyflink.datastream.functions import KeyedBroadcastProcessFunction, KeyedProcessFunction, RuntimeContext
    from pyflink.datastream.state import MapStateDescriptor

    HAVE_PYFLINK = True
except ImportError:  # pragma: no cover - exercised when the extra is missing
    HAVE_PYFLINK = False

    class KeyedProcessFunction:  # type: ignore[no-redef]
        pass

    class KeyedBroadcastProcessFunction:  # type: ignore[no-redef]
        pass

    RuntimeContext = Any

__all__ = [
    "MODEL_STATE",
    "REJECTED",
    "HotScoringFunction",
    "ModelSpec",
    "ModelUpdate",
    "ScoringFunction",
    "check_execution_mode",
    "in_thread_mode",
    "pandas_scorer",
]

END_OF_INPUT_TIMER = 2**62  # event-time timer fired by the final MAX watermark of a bounded input


def _require_pyflink() -> None:
    if not HAVE_PYFLINK:
        raise ImportError("PyFlink is not installed. Fix: pip install 'jsengine-ml[flink]'")


# ---------------------------------------------------------------------- specs and events
@dataclass(frozen=True)
class ModelSpec:
    """A picklable model description: what :func:`jsengine_ml.model.load` needs, plus preprocessing.

    ``preprocess``: a JSON file with ``mean`` and ``scale`` lists; rows are standardized as
    ``(x - mean) / scale`` before scoring (the Wine model's ``preprocess.json``). ``isolation``:
    ``"process"`` runs the engine in a supervised worker process (see :mod:`jsengine_ml.isolation`;
    None: ``$JSENGINE_ML_ISOLATION`` of the TaskManager, else in-process).
    """

    path: str
    backend: str | None = None
    version: str | None = None
    engine_options: dict[str, Any] = field(default_factory=dict)
    preprocess: str | None = None
    isolation: str | None = None

    def load(self) -> DenseMatrixModel:
        from .model import load

        return load(self.path, self.backend, version=self.version, **self.load_options())

    def load_options(self) -> dict[str, Any]:
        """Options for :func:`jsengine_ml.model.load`: the engine options, and the isolation if set."""
        return {**self.engine_options, **({"isolation": self.isolation} if self.isolation else {})}

    def to_json(self) -> str:
        return json.dumps({"path": self.path, "backend": self.backend, "version": self.version,
                           "engine_options": self.engine_options, "preprocess": self.preprocess,
                           "isolation": self.isolation})

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        d = json.loads(text)
        return cls(d["path"], d.get("backend"), d.get("version"), d.get("engine_options") or {}, d.get("preprocess"),
                   d.get("isolation"))


@dataclass(frozen=True)
class ModelUpdate:
    """A model-update event for the broadcast stream: a version and where its artifact is.

    On the stream it travels as a JSON string (``to_json()``), e.g. a Kafka record value
    ``{"version": "v2", "path": "/models/wine/v2"}``. The path must be readable by every
    TaskManager (a shared volume, or an artifact you fetch first, see docs/flink.md).
    """

    version: str
    path: str

    def to_json(self) -> str:
        return json.dumps({"version": self.version, "path": self.path})

    @classmethod
    def parse(cls, value: Any) -> ModelUpdate:
        if isinstance(value, ModelUpdate):
            return value
        if isinstance(value, (bytes, bytearray)):
            value = value.decode("utf-8")
        if isinstance(value, str):
            value = json.loads(value)
        if isinstance(value, dict):
            return cls(str(value["version"]), str(value["path"]))
        version, path = value
        return cls(str(version), str(path))


if HAVE_PYFLINK:
    from pyflink.datastream import OutputTag

    #: Side output of :class:`HotScoringFunction`: one ``"version,subtask,error"`` string per
    #: instance and rejected version (failed to load, failed the smoke check).
    REJECTED = OutputTag("jsengine-ml-rejected", Types.STRING())
    #: Broadcast state holding the latest update event (version -> JSON) for each operator.
    MODEL_STATE = MapStateDescriptor("jsengine-ml-model", Types.STRING(), Types.STRING())
else:  # pragma: no cover
    MODEL_STATE = None
    REJECTED = None


# ---------------------------------------------------------------------- execution mode
def in_thread_mode() -> bool:
    """True when this Python code runs embedded in the JVM (PyFlink ``python.execution-mode: thread``)."""
    if "pemja" in sys.modules:
        return True
    return any(name.startswith("pyflink.fn_execution.embedded") for name in sys.modules)


def check_execution_mode(backend: str | None, config: Any = None, *, isolation: str | None = None) -> None:
    """Refuse in-process V8 in PyFlink thread mode (it crashed the JVM at parallelism 2 in 3 of 5 runs).

    ``config``: a pyflink ``Configuration``, a ``StreamExecutionEnvironment`` or a dict, checked on
    the client; without it, checks the process this runs in (for use in ``open()``). An isolated
    engine (``isolation="process"``) runs V8 in a worker process, not in the JVM: always allowed.
    """
    from .backends import get_backend
    from .isolation import resolve_isolation

    name = get_backend(backend).name
    if name != "v8" or resolve_isolation(isolation) == "process":
        return
    mode = None
    if config is not None:
        if hasattr(config, "get_config"):  # an environment
            config = config.get_config().get_configuration() if hasattr(config.get_config(), "get_configuration") \
                else None
        if isinstance(config, dict):
            mode = config.get("python.execution-mode")
        elif config is not None:
            mode = config.get_string("python.execution-mode", "process")
    elif in_thread_mode():
        mode = "thread"
    if mode == "thread":
        raise CapabilityError(
            "jsengine-ml: the V8 backend (mini-racer) cannot run in PyFlink's thread mode "
            "(python.execution-mode: thread): V8 inside the JVM process crashed the JVM in testing. "
            "Run it isolated (ModelSpec(..., isolation='process')), use process mode (the default: set "
            "python.execution-mode to 'process') or another backend (ModelSpec(..., backend='quickjs'))."
        )


_instances = itertools.count()


def subtask_index(runtime_context: Any) -> int:
    """This parallel instance's index. In thread mode (PyFlink 2.3) the context's
    ``get_index_of_this_subtask`` fails (its Java object lacks the method): the subtask is then read
    from the task name ("name (i/n)"), else numbered in the order instances open in this process."""
    try:
        return int(runtime_context.get_index_of_this_subtask())
    except AttributeError:
        pass
    try:
        match = re.search(r"\((\d+)/\d+\)", str(runtime_context.get_task_name_with_subtasks()))
        if match:
            return int(match.group(1)) - 1
    except AttributeError:
        pass
    return next(_instances)


# ---------------------------------------------------------------------- record codecs
def parse_record(value: Any) -> tuple[Any, Any]:
    """Default parser: ``(key, features)``, ``"key,f1,f2,..."`` or a JSON object with a ``key`` and
    one field per named input -> (key, features or {input name: values})."""
    if isinstance(value, str):
        if value.startswith("{"):
            fields = json.loads(value)
            return fields.pop("key", None), fields
        key, _, rest = value.partition(",")
        return key, np.fromstring(rest, dtype=np.float32, sep=",") if rest else np.zeros(0, np.float32)
    return value[0], value[1]


#: What an operator emits per scored record: ``emit(key, output row (or rows by output name), version)``.
Emit = Callable[[Any, "Array | dict[str, Array]", "str | None"], Any]


def emit_class(key: Any, probs: Array | dict[str, Array], version: str | None) -> str:
    """Default output: ``"key,version,class"``; for named outputs ``"key,version,{json outputs}"``."""
    if isinstance(probs, dict):
        outputs = {name: np.asarray(row).tolist() for name, row in probs.items()}
        return f"{key},{version},{json.dumps(outputs, separators=(',', ':'))}"
    return f"{key},{version},{int(np.argmax(probs))}"


def _opened(batcher: _Batcher | None) -> _Batcher:
    """The function's batcher, which open() creates (Flink calls open() before any element)."""
    if batcher is None:
        raise RuntimeError("the function was not opened: Flink calls open() before process_element()")
    return batcher


def _load_preprocess(path: str | None) -> tuple[Float64Array, Float64Array] | None:
    if not path:
        return None
    with open(path, encoding="utf-8") as f:
        pre = json.load(f)
    return np.asarray(pre["mean"], dtype=np.float64), np.asarray(pre["scale"], dtype=np.float64)


# ---------------------------------------------------------------------- shared core
class _Batcher:
    """Buffer + model + flush logic shared by the two Flink functions (one per parallel instance)."""

    def __init__(self, batch_size: int, max_delay_ms: float, parse: Callable[[Any], tuple[Any, Any]],
                 emit: Emit,
                 preprocess: str | None):
        self.batch_size = batch_size
        self.max_delay_ms = max_delay_ms
        self.parse = parse
        self.emit = emit
        self.pre = _load_preprocess(preprocess)
        self.keys: list[Any] = []
        self.rows: list[Any] = []
        self.timer_pending = False
        self.end_timer_set = False
        self.model: Any = None  # a DenseMatrixModel or HotSwapModel
        self.thread: int | None = None
        self.records = 0
        self.batches = 0

    def add(self, value: Any) -> None:
        key, features = self.parse(value)
        self.keys.append(key)
        self.rows.append(features)

    def ready(self) -> bool:
        return self.model is not None

    def flush(self) -> Iterable[str]:
        if not self.rows or self.model is None:
            return ()
        if isinstance(self.rows[0], dict):
            return self._flush_named()
        X: Array
        if self.pre is not None:
            X = (np.asarray(self.rows, dtype=np.float64) - self.pre[0]) / self.pre[1]
        else:
            X = np.asarray(self.rows, dtype=np.float32)
        keys, _ = self._take()
        self._rebind()
        if hasattr(self.model, "predict_with_version"):
            probs, version = self.model.predict_with_version(X.astype(np.float32))
        else:
            probs, version = self.model.predict(X.astype(np.float32)), self.model.metadata.version
        return self._emitted(keys, probs, version)

    def _flush_named(self) -> Iterable[str]:
        """Records with one field per named input: scored with ``run``, one dict of outputs per record."""
        if self.pre is not None:
            raise InputError("preprocess= standardizes the features of one-input models; records with named "
                             "fields need their preprocessing in the model (or a parse= function)")
        keys, rows = self._take()
        names = list(rows[0])
        try:
            feeds = {name: np.asarray([row[name] for row in rows]) for name in names}
        except KeyError as exc:
            raise InputError(f"a record lacks the field {exc.args[0]!r} (fields of the first record: {names})") from exc
        self._rebind()
        if hasattr(self.model, "run_with_version"):
            outputs, version = self.model.run_with_version(feeds)
        else:
            outputs, version = self.model.run(feeds), self.model.metadata.version
        return self._emitted(keys, [{name: out[i] for name, out in outputs.items()} for i in range(len(keys))],
                             version)

    def _take(self) -> tuple[list[Any], list[Any]]:
        """The buffered (keys, rows); the buffer starts over and the latency timer is no longer pending."""
        keys, rows = self.keys, self.rows
        self.keys, self.rows = [], []
        self.timer_pending = False
        return keys, rows

    def _emitted(self, keys: list[Any], outputs: Iterable[Any], version: str | None) -> list[str]:
        """One output record per key (its outputs as ``emit`` renders them), counted."""
        self.records += len(keys)
        self.batches += 1
        emit = self.emit
        return [emit(k, out, version) for k, out in zip(keys, outputs, strict=False)]

    def _rebind(self) -> None:
        # The Beam harness may run successive bundles of this function on different pool threads
        # (never two at once): hand the engines over to the thread that runs this bundle.
        me = threading.get_ident()
        if me != self.thread:
            adopt = getattr(self.model, "adopt", None) or self.model.engine.adopt
            adopt()
            self.thread = me

    def schedule(self, ctx: Any) -> None:
        """Register the latency timer (first row of a batch) and, once, the end-of-input timer."""
        timers = ctx.timer_service()
        if not self.timer_pending and self.max_delay_ms:
            timers.register_processing_time_timer(int(timers.current_processing_time() + self.max_delay_ms))
            self.timer_pending = True
        if not self.end_timer_set:
            timers.register_event_time_timer(END_OF_INPUT_TIMER)
            self.end_timer_set = True

    def close(self) -> None:
        if self.model is not None:
            self._rebind()
            self.model.close()
            self.model = None


class ScoringFunction(KeyedProcessFunction):
    """Score a keyed stream with one model per parallel instance, in micro-batches.

    ``data.key_by(lambda r: hash(r[0]) % 64).process(ScoringFunction(spec), Types.STRING())``.
    """

    def __init__(self, spec: ModelSpec, *, batch_size: int = 64, max_delay_ms: float = 200,
                 parse: Callable[[Any], tuple[Any, Any]] = parse_record,
                 emit: Emit = emit_class):
        _require_pyflink()
        self.spec = spec
        self.batch_size = batch_size
        self.max_delay_ms = max_delay_ms
        self.parse = parse
        self.emit = emit
        self._b: _Batcher | None = None

    def open(self, runtime_context: RuntimeContext) -> None:
        check_execution_mode(self.spec.backend, isolation=self.spec.isolation)
        self._b = _Batcher(self.batch_size, self.max_delay_ms, self.parse, self.emit, self.spec.preprocess)
        self._b.model = self.spec.load()
        self._b.thread = threading.get_ident()

    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Any]:
        b = _opened(self._b)
        b.add(value)
        if len(b.rows) >= b.batch_size:
            yield from b.flush()
        else:
            b.schedule(ctx)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterator[Any]:
        b = _opened(self._b)
        if timestamp != END_OF_INPUT_TIMER:
            b.timer_pending = False
        yield from b.flush()

    def close(self) -> None:
        if self._b is not None:
            self._b.close()


class HotScoringFunction(KeyedBroadcastProcessFunction):
    """Score a keyed stream connected to a broadcast stream of :class:`ModelUpdate` events.

    ``data.key_by(key).connect(updates.broadcast(MODEL_STATE)).process(HotScoringFunction(...),
    Types.STRING())``. ``initial``: a model to start with (else rows wait, buffered, for the first
    update event). Each instance loads a new version on a background thread and swaps between two
    batches; ``wait_for_load=True`` (default) blocks the instance while it loads so that every row
    after the event in this instance's input is scored by the new version (deterministic; rows back
    up meanwhile); with False the swap happens at the first batch after the load completes.
    ``isolation="process"`` loads every version into a supervised worker process (default: the
    initial spec's, else ``$JSENGINE_ML_ISOLATION``).
    """

    def __init__(self, initial: ModelSpec | None = None, *, backend: str | None = None,
                 batch_size: int = 64, max_delay_ms: float = 200, preprocess: str | None = None,
                 parse: Callable[[Any], tuple[Any, Any]] = parse_record,
                 emit: Emit = emit_class,
                 wait_for_load: bool = True, load_timeout: float = 300.0,
                 load_options: dict[str, Any] | None = None, isolation: str | None = None):
        _require_pyflink()
        self.initial = initial
        self.backend = backend if backend is not None else (initial.backend if initial else None)
        self.batch_size = batch_size
        self.max_delay_ms = max_delay_ms
        self.preprocess = preprocess if preprocess is not None else (initial.preprocess if initial else None)
        self.parse = parse
        self.emit = emit
        self.wait_for_load = wait_for_load
        self.load_timeout = load_timeout
        self.load_options = dict(load_options or (initial.engine_options if initial else {}) or {})
        self.isolation = isolation if isolation is not None else (initial.isolation if initial else None)
        self._b: _Batcher | None = None
        self._hs: Any = None

    def open(self, runtime_context: RuntimeContext) -> None:
        from .hotswap import HotSwapModel

        check_execution_mode(self.backend, isolation=self.isolation)
        self._b = _Batcher(self.batch_size, self.max_delay_ms, self.parse, self.emit, self.preprocess)
        self._subtask = subtask_index(runtime_context)
        self._hs = HotSwapModel(backend=self.backend, load_options=self.load_options, on_error=self._on_error,
                                isolation=self.isolation)
        self.failed: list[str] = []
        self._reported = 0
        if self.initial is not None:
            self._offer(self.initial.version or "initial", self.initial.path)

    def _on_error(self, version: str, exc: BaseException) -> None:
        self.failed.append(version)
        log.error("jsengine-ml[subtask %s]: model %s rejected, keeping %s: %s", self._subtask, version,
                  self._hs.version if self._hs else None, exc)

    def _offer(self, version: str, path: str) -> list[Any]:
        """Load ``version``; return side-output records for a rejection seen meanwhile."""
        fut = self._hs.offer(version, path)
        if self.wait_for_load:
            try:
                fut.result(self.load_timeout)
            except Exception:  # reported through on_error; the old version keeps serving
                pass
        self._maybe_attach()
        return self._rejections()

    def _rejections(self) -> list[Any]:
        out = []
        failures = self._hs.failures
        while self._reported < len(failures):
            f = failures[self._reported]
            self._reported += 1
            reason = str(f.error).replace("\n", " ")[:300]
            out.append((REJECTED, f"{f.version},{self._subtask},{type(f.error).__name__}: {reason}"))
        return out

    def _maybe_attach(self) -> None:
        b = _opened(self._b)
        if b.model is None and (self._hs._pending is not None or self._hs._current is not None):
            b.model = self._hs

    def process_element(self, value: Any, ctx: KeyedBroadcastProcessFunction.ReadOnlyContext) -> Iterator[Any]:
        b = _opened(self._b)
        b.add(value)
        if self._reported < len(self._hs.failures):
            yield from self._rejections()
        if b.model is None:
            self._maybe_attach()
        if b.model is not None and len(b.rows) >= b.batch_size:
            yield from b.flush()
        else:
            b.schedule(ctx)

    def process_broadcast_element(self, value: Any, ctx: KeyedBroadcastProcessFunction.Context) -> Iterator[Any]:
        update = ModelUpdate.parse(value)
        ctx.get_broadcast_state(MODEL_STATE).put("current", update.to_json())
        # Score what is buffered with the version it arrived under, then load the new one.
        b = _opened(self._b)
        yield from b.flush()
        yield from self._offer(update.version, update.path)
        if b.model is not None and len(b.rows) >= b.batch_size:
            yield from b.flush()

    def on_timer(self, timestamp: int, ctx: KeyedBroadcastProcessFunction.OnTimerContext) -> Iterator[Any]:
        b = _opened(self._b)
        if timestamp != END_OF_INPUT_TIMER:
            b.timer_pending = False
        if b.model is None:
            self._maybe_attach()
            if b.model is None and timestamp == END_OF_INPUT_TIMER and b.rows:
                # the input ended before any model arrived; wait for a load in flight, if any
                try:
                    self._hs.wait_ready(self.load_timeout)
                    self._maybe_attach()
                except Exception as exc:
                    log.error("jsengine-ml: %d rows could not be scored: no model ever loaded (%s)", len(b.rows), exc)
        yield from b.flush()

    def close(self) -> None:
        if self._hs is not None:
            if self._b is not None and self._b.model is not None:
                self._b._rebind()
            self._hs.close()
            self._hs = None


# ---------------------------------------------------------------------- Table API
def pandas_scorer(spec: ModelSpec, *, output: str = "class") -> Any:
    """A vectorized (pandas) scalar UDF scoring one column per feature.

    ``output="class"`` returns the argmax as INT; ``"max_prob"`` the top probability as FLOAT.
    ``t.select(scorer(*[col(c) for c in feature_columns]))``.
    """
    _require_pyflink()
    from pyflink.table import DataTypes
    from pyflink.table.udf import ScalarFunction, udf

    class _Score(ScalarFunction):
        def __init__(self, spec: ModelSpec, output: str):
            self.spec = spec
            self.output = output

        def open(self, function_context: Any) -> None:
            check_execution_mode(self.spec.backend, isolation=self.spec.isolation)
            self.model = self.spec.load()
            self.pre = _load_preprocess(self.spec.preprocess)
            self.thread = threading.get_ident()

        def eval(self, *columns: Any) -> Any:
            import pandas as pd

            X = np.column_stack([np.asarray(c, dtype=np.float64) for c in columns])
            if self.pre is not None:
                X = (X - self.pre[0]) / self.pre[1]
            if threading.get_ident() != self.thread:
                self.model.engine.adopt()
                self.thread = threading.get_ident()
            probs = self.model.predict(X.astype(np.float32))
            if self.output == "class":
                return pd.Series(probs.argmax(axis=1).astype(np.int32))
            return pd.Series(probs.max(axis=1).astype(np.float32))

        def close(self) -> None:
            if getattr(self, "model", None) is not None:
                if threading.get_ident() != self.thread:
                    self.model.engine.adopt()
                self.model.close()

    result_type = DataTypes.INT() if output == "class" else DataTypes.FLOAT()
    return udf(_Score(spec, output), result_type=result_type, func_type="pandas")


# ---------------------------------------------------------------------- job helpers
def configure_env(env: Any, *, parallelism: int | None = None) -> Any:
    """Set what every jsengine-ml job needs: ``python.executable`` = this interpreter, parallelism."""
    from pyflink.common import Configuration

    conf = Configuration()
    conf.set_string("python.executable", sys.executable)
    conf.set_string("python.client.executable", sys.executable)
    env.configure(conf)
    if parallelism:
        env.set_parallelism(parallelism)
    return env
