"""The engine contract: one small interface over every embedded JavaScript engine.

An :class:`Engine` is one JavaScript context with optional limits. It evaluates source, calls
functions, moves numpy arrays in and out through the binding's fastest exact path, settles promises
(pumping jobs and timers on engines that need it), and serves ``fetch`` from resources registered by
Python. Backends (``jsengine_ml.backends``) implement a handful of private primitives; everything
else, including the shims, the thread rule and error handling, lives here once.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import json
import logging
import math
import os
import re
import threading
import time
import weakref
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ._types import Array
from .errors import (
    CapabilityError,
    EngineClosedError,
    InputError,
    JSEngineMLError,
    JSError,
    JSMemoryLimitError,
    JSTimeoutError,
    ModelError,
    ResourceError,
    ShimError,
    WrongThreadError,
)

log = logging.getLogger(__name__)
console_log = logging.getLogger("jsengine_ml.console")

#: Shims evaluated, in this order, into every new engine. Each file guards itself and records in
#: ``__jsml.installed`` which stand-ins the engine was missing.
SHIMS = ("global.js", "encoding.js", "reflect.js", "timers.js", "promise.js", "fetch.js", "io.js", "exports.js")

#: numpy dtype <-> code used in the packed array header shared with ``shims/io.js``.
DTYPE_CODES: dict[np.dtype[np.generic], int] = {np.dtype(np.float32): 1, np.dtype(np.int32): 2, np.dtype(np.uint8): 3}
CODE_DTYPES = {code: dtype for dtype, code in DTYPE_CODES.items()}
HEADER_INTS = 8  # [dtype code, ndim, d0..d4, console messages pending]
HEADER_BYTES = HEADER_INTS * 4
MAX_DIMS = 5
PENDING_CODE = 0  # header code of a transform whose function returned a promise

#: console method levels (as named by ``shims/global.js``) -> logging levels.
CONSOLE_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

#: Console messages tfjs prints, as expected, in an engine without a browser (no WebGL, no Node
#: backend, its platform set twice by a sealed bundle): delivered at DEBUG, not as warnings.
EXPECTED_CHATTER = re.compile(
    r"(Initialization of backend (webgl|webgpu|wasm) failed"
    r"|Platform \S+ has already been set"
    r"|.*backend was already registered"
    r"|Hi, looks like you are running TensorFlow\.js in Node)"
)

#: Prefix marking a JSON-encoded non-primitive result coming back from JS (see ``__jsml.out``).
JSON_SENTINEL = "\ue000json:"

_DOTTED = re.compile(r"^(?P<owner>.+)\.(?P<prop>[A-Za-z_$][\w$]*)$")


@dataclass(frozen=True)
class Capabilities:
    """What a backend's engine can do, as declared by the backend."""

    backend: str
    engine: str
    engine_version: str
    binding: str
    language: str
    es_version: int
    webassembly: bool
    time_limit: bool
    memory_limit: str | None
    binary_path: str
    thread_rule: str
    native_promises: bool
    #: Whether the engine compiles hot JavaScript to machine code (V8) or interprets it (QuickJS,
    #: Duktape); the compiled runtime specializes its ES5 kernels on interpreters only.
    jit: bool = False
    #: Whether :meth:`Engine.map_buffer` gives Python a writable zero-copy view of an ArrayBuffer.
    zero_copy: bool = False
    #: Process-wide engine flags in effect (e.g. V8's ``--no-liftoff``), as the backend set them.
    engine_flags: str = ""
    #: What ``memory_limit`` counts: ``"all"`` (every allocation, typed arrays included), ``"heap"``
    #: (the JS heap only: ArrayBuffer stores escape it, so the engine refuses the limit unless the
    #: caller passes ``heap_only_limit=True``), ``"process"`` (the resident memory of an isolated
    #: engine's worker process, enforced by its supervisor) or None (no memory limit).
    memory_limit_scope: str | None = None
    #: Whether the engine runs in a supervised worker process (``isolation="process"``).
    isolated: bool = False
    #: Whether the binding runs JavaScript on the main thread only (pythonmonkey): engines are then
    #: created and adopted there only (:class:`WrongThreadError` elsewhere); threads that load or
    #: batch models (hot swap, micro-batchers) need ``isolation="process"``.
    main_thread_only: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class KnownBug:
    """A conformance case a backend fails because of its binding, declared by the backend."""

    #: The suite case's function name (all its parametrizations), e.g. ``"test_atob_btoa"``.
    test: str
    #: What the case raises on this backend (AssertionError when a check fails).
    raises: type[BaseException]
    #: Why: the binding's behaviour, in a sentence.
    reason: str


@functools.cache
def read_shim(name: str) -> str:
    """Return the source of a shim shipped in ``jsengine_ml/shims``."""
    return importlib_resources.files("jsengine_ml.shims").joinpath(name).read_text(encoding="utf-8")


@functools.cache
def _backend_script(engine_class: type[Engine]) -> str:
    """The backend's data-path script, next to the module of the class that declares it."""
    owner = next(c for c in engine_class.__mro__ if "backend_script" in vars(c))
    script = vars(owner)["backend_script"]
    return Path(inspect.getfile(owner)).with_name(str(script)).read_text(encoding="utf-8")


@functools.cache
def _setup_script(engine_class: type[Engine]) -> str:
    """The shims and the backend's data-path script as one script: one crossing at engine start."""
    parts = [f"/* jsengine_ml/shims/{shim} */\n{read_shim(shim)}" for shim in SHIMS]
    if engine_class.backend_script:
        parts.append(f"/* {engine_class.__module__}:{engine_class.backend_script} */\n{_backend_script(engine_class)}")
    return "\n;\n".join(parts) + "\n;void 0"


def tag_string(value: str) -> str:
    """What ``__jsml.out`` makes of a JS string: tagged JSON when it could be mistaken for a host tag
    or holds a NUL, else the string. For backends whose binding returns a script's string result as it is."""
    if value[:1] in ("\ue000", "\ue001") or "\x00" in value:
        return JSON_SENTINEL + json.dumps(value)
    return value


class Packed(NamedTuple):
    """An array as a backend's data path hands it out of the engine: the int32 header of the packed
    format (``shims/io.js``: dtype code, ndim, dimensions; a pending promise has code 0) and the data.

    ``data`` is the little-endian bytes after the header (bytes, or a view on the engine's own
    memory, read before any more JavaScript runs), None for a pending promise, or an array the
    backend already copied out (a backend that does so unpacks it itself, see :meth:`Engine._unpack`).
    """

    header: NDArray[np.int32]
    data: bytes | memoryview | Array | None

    @classmethod
    def from_bytes(cls, raw: bytes | memoryview) -> Packed:
        """Split header + data as one buffer (what the interpreters' data paths return)."""
        if len(raw) < HEADER_BYTES:
            raise ShimError(f"packed array is truncated ({len(raw)} bytes, header needs {HEADER_BYTES})")
        return cls(np.frombuffer(raw, dtype="<i4", count=HEADER_INTS), memoryview(raw)[HEADER_BYTES:])


def unpack_array(packed: bytes | memoryview) -> Array:
    """Read a packed array (header + little-endian data, see ``shims/io.js``) into a new numpy array."""
    header, data = Packed.from_bytes(packed)
    assert data is not None
    return array_from_header(header, np.frombuffer(data, dtype=np.uint8))


def array_from_header(header: Array, raw: Array) -> Array:
    """Copy ``raw`` (uint8 data) into a new array of the dtype and shape the packed ``header`` gives."""
    code, ndim = int(header[0]), int(header[1])
    if code not in CODE_DTYPES or not 0 <= ndim <= MAX_DIMS:
        raise ShimError(f"packed array has a bad header {header.tolist()}")
    shape = tuple(int(d) for d in header[2 : 2 + ndim])
    dtype = CODE_DTYPES[code]
    count = math.prod(shape)
    data = raw[: count * dtype.itemsize]
    if data.size != count * dtype.itemsize:
        raise ShimError(f"packed array of shape {shape} carries {data.size} bytes, expected {count * dtype.itemsize}")
    out: Array = data.view(dtype.newbyteorder("<")).astype(dtype, copy=True).reshape(shape)
    return out


def as_transfer_array(value: Any, *, what: str = "array") -> Array:
    """Validate ``value`` for transfer into an engine: float32, int32 or uint8, rectangular, ndim 1..6."""
    if isinstance(value, np.ndarray):
        array = value
    else:
        try:
            array = np.asarray(value)
        except ValueError as exc:  # numpy >= 1.24 refuses ragged nested sequences
            raise InputError(f"{what} is ragged (rows of different lengths): {exc}. Pass a rectangular array.") from exc
        if array.dtype == object:
            raise InputError(f"{what} is ragged or holds non-numbers (object dtype). Pass a rectangular numeric array.")
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        elif array.dtype == np.int64:
            array = array.astype(np.int32)
    if array.dtype not in DTYPE_CODES:
        raise InputError(
            f"{what} has dtype {array.dtype}; engines take float32, int32 or uint8. "
            f"Convert it first, e.g. arr.astype(np.float32)."
        )
    if not 1 <= array.ndim <= MAX_DIMS:
        raise InputError(f"{what} has {array.ndim} dimensions; engines take 1 to {MAX_DIMS}.")
    return np.ascontiguousarray(array)


def _args_json(expression: str, args: tuple[Any, ...]) -> str:
    """JSON for call()/transform() arguments; NaN/Infinity are refused (engines' JSON.parse rejects them)."""
    if all(type(a) is int for a in args):  # the per-batch calls (model id, row count): no encoder needed
        return "[" + ",".join(map(str, args)) + "]"
    try:
        return json.dumps(list(args), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"arguments to {expression} must be JSON-able (numbers, strings, lists, dicts; no NaN or "
            f"Infinity); {exc}. Move arrays with put_array() or transform()."
        ) from exc


class JSFunction:
    """A callable handle on a JavaScript function, resolved by expression at each call."""

    def __init__(self, engine: Engine, expression: str):
        self.engine = engine
        self.expression = expression

    def __call__(self, *args: Any) -> Any:
        return self.engine.call(self.expression, *args)

    def __repr__(self) -> str:
        return f"<JSFunction {self.expression!r} on {self.engine!r}>"


class Engine(ABC):
    """One JavaScript context. Subclass it to add a backend (see ``jsengine_ml.backends``).

    Create it on the thread that will use it; every method raises :class:`WrongThreadError` when
    called from another thread. Use it as a context manager or call :meth:`close`.

    ``time_limit`` (seconds) bounds each call into the engine; ``memory_limit`` (bytes) bounds what
    the engine may allocate. A backend that cannot enforce a limit refuses it with
    :class:`~jsengine_ml.errors.CapabilityError` rather than ignore it.
    """

    #: Registry name of the backend ("v8", "quickjs", ...). Set by subclasses.
    name: ClassVar[str] = ""
    #: Whether the next console message is the error text tfjs prints after a failed backend start.
    _chatter_follows: bool
    #: A ``.js`` file next to the backend's module, evaluated after the shims (its data path).
    backend_script: ClassVar[str | None] = None
    #: Bugs of the binding that conformance cases catch, each naming its case exactly (what the
    #: engine cannot do belongs in :meth:`capabilities` instead). ``EngineConformance`` runs those
    #: cases as strict xfails of the declared exception type, and fails if a name matches no case.
    known_bugs: ClassVar[tuple[KnownBug, ...]] = ()

    # ------------------------------------------------------------------ backend primitives
    @classmethod
    @abstractmethod
    def check_available(cls) -> None:
        """Raise :class:`BackendUnavailableError` (with the pip command that fixes it) if unusable here."""

    @classmethod
    @abstractmethod
    def capabilities(cls) -> Capabilities:
        """Describe the engine; may import the binding (call :meth:`check_available` first)."""

    @abstractmethod
    def _open(self, time_limit: float | None, memory_limit: int | None) -> None:
        """Create the binding's context and apply limits."""

    @abstractmethod
    def _exec(self, source: str, filename: str) -> Any:
        """Evaluate ``source``; return what ``__jsml.out`` makes of its completion value (a primitive, or
        tagged JSON; a string the binding returns as it is goes through :func:`tag_string`)."""

    @abstractmethod
    def _call_registered(self, fn_id: int, args_json: str) -> Any:
        """Return ``__jsml.callFn(fn_id, args_json)`` with the fewest crossings."""

    @abstractmethod
    def _put(self, name: str, array: Array) -> None:
        """Set global ``name`` to a typed array holding a copy of ``array`` (C order, flat)."""

    @abstractmethod
    def _get_packed(self, expression: str) -> Packed:
        """Return ``__jsml.io.pack(<expression>)`` as header and data."""

    @abstractmethod
    def _transform_packed(self, fn_id: int, array: Array, args_json: str) -> Packed:
        """Return ``__jsml.io.run(fn_id, <array as typed array>, shape, args)``, packed as for _get_packed."""

    def _unpack(self, packed: Packed) -> Array:
        """A new numpy array from what ``_get_packed`` / ``_transform_packed`` returned."""
        if packed.data is None:
            raise ShimError("a pending result was unpacked")
        if isinstance(packed.data, np.ndarray) and packed.data.dtype != np.uint8:
            raise ShimError(f"{type(self).__name__} hands out unpacked arrays: it must override _unpack")
        return array_from_header(packed.header, np.frombuffer(packed.data, dtype=np.uint8))

    def _run_jobs(self) -> None:  # noqa: B027 - optional hook
        """Run pending promise jobs (microtasks) on engines whose host must drive them."""

    def _drain_console(self) -> None:  # noqa: B027 - optional hook
        """Deliver buffered console messages on engines without a synchronous host callback."""

    def _limit_error(self, kind: str) -> JSEngineMLError:
        """The error for a call the engine stopped at its ``"time"`` or ``"memory"`` limit."""
        if kind == "time":
            return JSTimeoutError(
                f"JavaScript ran longer than the time limit of {self.time_limit:g} s and was stopped; "
                f"the engine is still usable"
            )
        return JSMemoryLimitError(
            f"JavaScript exceeded the memory limit of {self.memory_limit} bytes and was stopped; "
            f"the engine is still usable"
        )

    def _limit_in_rejection(self, name: str, message: str) -> str | None:
        """``"time"`` / ``"memory"`` if a promise rejected because the engine stopped a job at a limit
        (engines that turn an interrupted job into a rejection say so here), else None."""
        return None

    def _log_console(self, level: str, text: str) -> None:
        """Deliver one console message from JS to the Python logger (tfjs's start-up chatter at DEBUG)."""
        severity = CONSOLE_LEVELS.get(level, logging.INFO)
        if self._chatter_follows:  # the error text tfjs prints after "Initialization of backend X failed"
            self._chatter_follows = False
            severity = logging.DEBUG
        elif EXPECTED_CHATTER.match(text):
            self._chatter_follows = text.startswith("Initialization of backend")
            severity = logging.DEBUG
        self.console.log(severity, "%s", text)

    def _log_console_batch(self, batch: dict[str, Any]) -> None:
        """Deliver a drained ``__jsml.console.take()`` batch (messages, and how many were dropped)."""
        for level, text in batch["messages"]:
            self._log_console(level, text)
        if batch.get("dropped"):
            self.console.warning("%d console messages were dropped (buffer full)", batch["dropped"])

    def _map_buffer(self, expression: str) -> memoryview:
        """A writable zero-copy view of the ArrayBuffer ``expression`` evaluates to (zero_copy engines)."""
        raise CapabilityError(
            f"the {self.name} engine cannot share memory with Python (Capabilities.zero_copy is false); "
            f"move arrays with put_array(), get_array() or transform()"
        )

    @abstractmethod
    def _close(self) -> None:
        """Release the binding's context."""

    # ------------------------------------------------------------------ lifecycle
    def __init__(
        self,
        *,
        time_limit: float | None = None,
        memory_limit: int | None = None,
        logger: logging.Logger | None = None,
        heap_only_limit: bool = False,
    ):
        if time_limit is not None and not time_limit > 0:
            raise InputError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
        if memory_limit is not None and not memory_limit > 0:
            raise InputError(f"memory_limit must be a positive number of bytes, got {memory_limit!r}")
        self.time_limit = time_limit
        self.memory_limit = memory_limit
        self.console = logger or console_log
        self._chatter_follows = False
        self._owner = threading.get_ident()
        self._owner_name = threading.current_thread().name
        self._closed = False
        self._fn_ids: dict[str, int] = {}
        self._resources: dict[str, int] = {}
        self.entry_path: str | None = None  # where load_bundle found the entry point
        self._check_limits(time_limit, memory_limit, heap_only_limit)
        self._check_main_thread()
        self._open(time_limit, memory_limit)
        try:
            self._start()
        except BaseException:
            self._close()
            raise
        _LIVE_ENGINES.add(self)

    def _check_limits(self, time_limit: float | None, memory_limit: int | None, heap_only_limit: bool) -> None:
        """Refuse a limit the engine cannot enforce as asked (CapabilityError), rather than ignore it."""
        if time_limit is None and memory_limit is None:
            return
        caps = self.capabilities()
        hint = 'pass isolation="process" to enforce it in a supervised worker process'
        if time_limit is not None and not caps.time_limit:
            raise CapabilityError(f"the {self.name} engine cannot enforce a time limit in-process; {hint}")
        if memory_limit is None:
            return
        if caps.memory_limit_scope is None:
            raise CapabilityError(f"the {self.name} engine cannot enforce a memory limit in-process; {hint}")
        if caps.memory_limit_scope == "heap" and not heap_only_limit:
            raise CapabilityError(
                f"the {self.name} engine's memory limit counts the JS heap only: typed arrays and ArrayBuffers "
                f"can grow past it. Pass heap_only_limit=True to accept that, or {hint} (a limit on the "
                f"worker's whole resident memory)"
            )

    def _start(self) -> None:
        """Make the fresh context ready: the shims and the backend's data-path script, in one crossing."""
        self._exec(_setup_script(type(self)), "jsengine_ml/shims (" + " ".join(SHIMS) + ")")
        self._run_jobs()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Release the engine. Idempotent; later calls to other methods raise EngineClosedError."""
        if self._closed:
            return
        self._check_thread()
        try:
            self._drain_console()
        except JSEngineMLError:
            pass
        self._closed = True
        _LIVE_ENGINES.discard(self)
        self._close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {self.name} {state}>"

    def adopt(self) -> None:
        """Make the calling thread this engine's owner (hand a fully loaded engine to another thread).

        For a loader thread that builds and warms an engine and then hands it to the thread that
        will use it: the receiving thread calls ``adopt()`` before its first use. The previous
        owner must not touch the engine again (it now gets :class:`WrongThreadError`), and the
        hand-off itself must be ordered (a queue, a lock or ``Thread.join``) so that the two threads
        never use the engine at the same time. Adopting a closed engine is allowed (and pointless).
        """
        if not self._closed:
            self._check_main_thread()
        self._owner = threading.get_ident()
        self._owner_name = threading.current_thread().name

    def _check_main_thread(self) -> None:
        """Refuse to create or adopt the engine off the main thread where the binding needs it."""
        if threading.current_thread() is threading.main_thread() or not self.capabilities().main_thread_only:
            return
        raise WrongThreadError(
            f"the {self.name} engine runs JavaScript on the main thread only, and this is thread "
            f"{threading.current_thread().name!r}. Create and use it on the main thread, or leave isolation "
            f'unset (engines created off the main thread then run isolated) or pass isolation="process" to run '
            f"it in a supervised worker process that any thread may use."
        )

    def _check_thread(self) -> None:
        if threading.get_ident() != self._owner:
            raise WrongThreadError(
                f"this {self.name} engine belongs to thread {self._owner_name!r} and was used from "
                f"{threading.current_thread().name!r}. Engines are single-threaded: create one per thread "
                f"(see jsengine_ml.ThreadLocalEngine)."
            )

    def _check_usable(self) -> None:
        if self._closed:
            raise EngineClosedError(f"this {self.name} engine is closed; create a new one")
        self._check_thread()

    # ------------------------------------------------------------------ evaluation
    def eval(self, source: str, *, filename: str = "<eval>") -> Any:
        """Evaluate ``source`` as a script named ``filename`` and return its completion value.

        Primitives come back as Python values; arrays and objects as their JSON (lists, dicts);
        ``undefined`` as ``None``. Promise jobs queued by the script run before this returns.
        """
        self._check_usable()
        if not isinstance(source, str):
            raise InputError(f"source must be str, got {type(source).__name__}")
        return self._crossing(self._exec, source, filename)

    def exec(self, source: str, *, filename: str = "<exec>") -> None:
        """Evaluate ``source`` for its effects only (its completion value is discarded, never converted)."""
        self.eval(f"{source}\n;void 0", filename=filename)

    def eval_file(self, path: str | os.PathLike[str]) -> Any:
        """Evaluate a local JavaScript file; stack traces name it."""
        path = Path(path)
        return self.eval(path.read_text(encoding="utf-8"), filename=str(path))

    def function(self, expression: str) -> JSFunction:
        """Return a callable for the function that ``expression`` evaluates to (a global name or path)."""
        self._check_usable()
        return JSFunction(self, expression)

    def call(self, expression: str, *args: Any) -> Any:
        """Call the function ``expression`` evaluates to with JSON-able ``args``; ``this`` is its owner."""
        self._check_usable()
        fn_id = self._register_function(expression)
        return self._crossing(self._call_registered, fn_id, _args_json(expression, args))

    def _crossing(self, primitive: Any, *args: Any) -> Any:
        """Run a backend primitive, then pending promise jobs; deliver console output; decode the value."""
        try:
            value = primitive(*args)
            self._run_jobs()
        finally:
            self._drain_console()
        return self._decode(value)

    def _register_function(self, expression: str) -> int:
        fn_id = self._fn_ids.get(expression)
        if fn_id is None:
            fn_id = len(self._fn_ids) + 1
            match = _DOTTED.match(expression.strip())
            if match:
                resolver = f"function(){{var o=({match['owner']});return [o,o[{json.dumps(match['prop'])}]]}}"
            else:
                resolver = f"function(){{return [undefined,({expression})]}}"
            self._exec(f"__jsml.fns[{fn_id}]={resolver};{fn_id}", f"<function {expression}>")
            self._fn_ids[expression] = fn_id
        return fn_id

    @staticmethod
    def _decode(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(JSON_SENTINEL):
            try:
                return json.loads(value[len(JSON_SENTINEL) :])
            except json.JSONDecodeError as exc:
                raise ShimError(f"the engine handed back malformed JSON ({exc}): was JSON.stringify replaced?") from exc
        return value

    # ------------------------------------------------------------------ arrays
    def put_array(self, name: str, array: Any) -> None:
        """Set the JS global ``name`` to a Float32Array / Int32Array / Uint8Array copy of ``array``.

        Shape is available in JS as ``__jsml.io.shapes[name]``.
        """
        self._check_usable()
        if not re.match(r"^[A-Za-z_$][\w$]*$", name):
            raise InputError(f"array name must be a JS identifier, got {name!r}")
        array = as_transfer_array(array, what=f"array for {name!r}")
        self._put(name, array)

    def get_array(self, expression: str) -> Array:
        """Evaluate ``expression`` (a typed array, or nested arrays of numbers) into a numpy copy."""
        self._check_usable()
        try:
            packed = self._get_packed(expression)
        finally:
            self._drain_console()
        return self._unpack(packed)

    def transform(self, function: str, array: Any, *args: Any, timeout: float | None = None,
                  rows: int | None = None) -> Array:
        """Call ``function(typedArray, shape, ...args)`` in one crossing and return its result as numpy.

        The function may return a typed array, nested arrays of numbers, ``{data, shape}``, or a
        promise of one of these (which is then settled, see :meth:`settle`). With ``rows``, a result
        whose first dimension differs raises :class:`ModelError` before it is copied out of the engine.
        """
        self._check_usable()
        array = as_transfer_array(array, what="input")
        fn_id = self._register_function(function)
        args_json = _args_json(function, args)
        try:
            packed = self._transform_packed(fn_id, array, args_json)
            if int(packed.header[0]) == PENDING_CODE:
                settle_id = int(packed.header[2])
                self._settle_id(settle_id, timeout, f"{function}(...)")
                packed = self._get_packed(f"__jsml.settled.value({settle_id})")
            header = packed.header
        finally:
            self._drain_console()
        if rows is not None and (int(header[1]) < 1 or int(header[2]) != rows):
            shape = [int(d) for d in header[2 : 2 + int(header[1])]]
            raise ModelError(f"{function} returned shape {shape} for {rows} rows; one output row per input row "
                             f"is needed")
        return self._unpack(packed)

    def map_buffer(self, expression: str) -> memoryview:
        """A writable view, shared with the engine, of the ArrayBuffer ``expression`` evaluates to.

        Only where ``capabilities().zero_copy`` (otherwise :class:`CapabilityError`). The view is
        valid while JavaScript keeps that ArrayBuffer alive and attached: drop it before the buffer
        is detached (``WebAssembly.Memory.grow``, ``transfer``) or released, and map again.
        """
        self._check_usable()
        return self._map_buffer(expression)

    # ------------------------------------------------------------------ promises and timers
    def settle(self, expression: str, *, timeout: float | None = None) -> Any:
        """Evaluate ``expression``, wait for the promise it gives (if any) and return its value.

        Pumps promise jobs and the shim's timer queue until the promise settles, the deadline
        (``timeout`` seconds, default 30) passes (:class:`JSTimeoutError`), or nothing is left that
        could settle it (:class:`ShimError`). A rejection raises :class:`JSError`.
        """
        self._check_usable()
        settle_id = self._exec(f"__jsml.settled.start(function(){{return ({expression})}})", "<settle>")
        try:
            self._settle_id(int(settle_id), timeout, expression)
            value = self._call_registered(self._register_function("__jsml.settled.value"), f"[{int(settle_id)}]")
        finally:
            self._drain_console()
        return self._decode(value)

    def _settle_id(self, settle_id: int, timeout: float | None, what: str) -> None:
        timeout = 30.0 if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            self._run_jobs()
            status = json.loads(self._exec(f"__jsml.settled.poll({settle_id})", "<settle>"))
            if status["state"] == "fulfilled":
                return
            if status["state"] == "rejected":
                self._exec(f"__jsml.settled.forget({settle_id})", "<settle>")
                err = status["error"]
                limit = self._limit_in_rejection(err["name"], err["message"])
                if limit is not None:
                    raise self._limit_error(limit)
                raise JSError(
                    f"promise from {what} rejected: {err['name']}: {err['message']}",
                    js_name=err["name"],
                    js_message=err["message"],
                    js_stack=err.get("stack") or "",
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._exec(f"__jsml.settled.forget({settle_id})", "<settle>")
                raise JSTimeoutError(f"promise from {what} did not settle within {timeout:g} s")
            if status.get("progress"):
                continue
            next_timer = status.get("next")
            if next_timer is None:
                self._exec(f"__jsml.settled.forget({settle_id})", "<settle>")
                raise ShimError(
                    f"promise from {what} can never settle: no timers or jobs are pending in the engine"
                )
            if next_timer:
                time.sleep(min(next_timer / 1000.0, remaining, 0.05))

    def run_timers(self) -> int:
        """Run every timer that is due now (and the jobs they queue); return how many timers are left."""
        self._check_usable()
        return int(self._crossing(self._exec, "__jsml.timers.runDue()", "<timers>"))

    # ------------------------------------------------------------------ fetch-less resources
    def add_resource(self, url: str,
                     data: bytes | bytearray | memoryview | NDArray[np.uint8] | str | os.PathLike[str]) -> None:
        """Serve ``data`` (bytes, or the contents of a local file path) to ``fetch(url)`` in the engine.

        ``url`` may be a full URL, a relative path or a bare file name; a fetch matches it exactly,
        without a leading ``./`` or query string, or by its last path segment.
        """
        self._check_usable()
        if isinstance(data, (str, os.PathLike)):
            path = Path(data)
            try:
                payload = path.read_bytes()
            except OSError as exc:
                raise ResourceError(f"cannot read resource file {path} for {url!r}: {exc}") from exc
        elif isinstance(data, (bytes, bytearray, memoryview)):
            payload = bytes(data)
        elif isinstance(data, np.ndarray) and data.dtype == np.uint8:
            payload = data.tobytes()
        else:
            raise InputError(f"resource data must be bytes or a file path, got {type(data).__name__}")
        slot = self._resources.setdefault(url, len(self._resources) + 1)
        self._put(f"__jsml_res{slot}", np.frombuffer(payload, dtype=np.uint8) if payload else np.zeros(0, np.uint8))
        self._exec(
            f"__jsml.resources.add({json.dumps(url)}, __jsml_res{slot}); delete globalThis.__jsml_res{slot}",
            "<resource>",
        )

    def resources(self) -> list[str]:
        """URLs registered with :meth:`add_resource`."""
        return list(self._resources)

    # ------------------------------------------------------------------ bundles
    def load_bundle(
        self, source: str, *, filename: str = "<bundle>", name: str | None = None, function: str = "predict"
    ) -> JSFunction:
        """Evaluate a (webpack or hand-written) bundle and find its exported entry function.

        ``name`` is the library / global name when known; ``function`` the entry's name. Returns a
        handle on the entry (``__jsml_entry``). Raises :class:`ShimError` listing where it looked.
        """
        self.eval("__jsml_exports.begin()", filename="<bundle-begin>")
        try:
            self.exec(source, filename=filename)
        finally:
            hint = json.dumps(json.dumps({"name": name, "function": function}))
            # end() right after find(): the host's module/exports come back, so the next bundle starts clean.
            find_then_end = f"(function(){{var r=__jsml_exports.find({hint});__jsml_exports.end();return r}})()"
            found = json.loads(self.eval(find_then_end, filename="<bundle-find>"))
        if not found.get("found"):
            looked = "; ".join(found.get("looked_at") or [])
            raise ShimError(
                f"{filename}: no exported {function!r} function found. Looked at: {looked}. Export it "
                f"(module.exports, a webpack library, or a global) or pass name=/function=."
            )
        self.entry_path = found["found"]
        return self.function("__jsml_entry")

    def installed_shims(self) -> list[str]:
        """Names of the stand-ins the shims had to install because this engine lacks them."""
        return list(self.eval("__jsml.installed"))


# ---------------------------------------------------------------------- interpreter exit
#: Every open engine, and the objects that own engines on threads of their own (hot-swap loaders,
#: micro-batchers): closed at interpreter exit. mini-racer hangs the exit when a context that ran
#: hot code is left open, and an isolated engine's worker must not outlive its parent.
_LIVE_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()
_OWNERS: weakref.WeakSet[Any] = weakref.WeakSet()
_LAST: weakref.WeakSet[Any] = weakref.WeakSet()


def close_at_exit(owner: Any, *, last: bool = False) -> None:
    """Have ``owner.close()`` (or ``owner.close_at_exit()`` if it has one) called at interpreter exit:
    before the remaining engines are closed, or after them with ``last=True``."""
    (_LAST if last else _OWNERS).add(owner)


def close_all() -> None:
    """Close every engine (and engine owner) still open in this process; the interpreter exit runs this."""
    for owner in list(_OWNERS):
        _close_quietly(getattr(owner, "close_at_exit", owner.close))
    for engine in list(_LIVE_ENGINES):
        engine.adopt()
        _close_quietly(engine.close)
    for owner in list(_LAST):
        _close_quietly(owner.close)


def _close_quietly(close: Any) -> None:
    try:
        close()
    except Exception:  # exit must go on
        log.debug("closing at exit failed: %r", close, exc_info=True)


atexit.register(close_all)
