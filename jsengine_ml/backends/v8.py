"""V8 through the ``mini-racer`` binding.

Data path: a JS-allocated ``ArrayBuffer`` comes back to Python as a writable zero-copy memoryview,
so numpy writes inputs straight into V8 memory and reads results from it; one crossing per call.

Crossings: mini-racer's public ``eval`` hops from the caller to its private asyncio loop thread,
then to the isolate's thread, and back the same way. This backend posts the evaluation to the
isolate directly and waits for the result on mini-racer's own result queue (its synchronous path,
meant for the loop thread; here the engine's single owner thread plays that role): two thread
wake-ups instead of four. It falls back to the public path if the binding's internals change.

V8 flags are process-wide and fixed by the first context: before it, this backend initializes
mini-racer with :data:`DEFAULT_FLAGS` (``$JSENGINE_ML_V8_FLAGS`` replaces them). mini-racer runs V8
``--single-threaded``, which disables the background tier-up of WebAssembly from the Liftoff
baseline compiler to TurboFan: the compiled runtime's kernels would stay on the slower Liftoff code.
``--wasm-sync-tier-up`` runs that tier-up on the calling thread instead, once a function has
executed ``--wasm-tiering-budget`` bytes; so a model loads with cheap Liftoff code and its hot
kernels are optimized within the first batches. (``--no-liftoff`` gives the same steady state but
compiles every kernel with TurboFan on first use, a cost paid by every engine at load.)
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
import re
import threading
from functools import lru_cache
from importlib import metadata
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._types import Array
from ..engine import _LIVE_ENGINES, DTYPE_CODES, PENDING_CODE, Capabilities, Engine, Packed, tag_string
from ..errors import (
    BackendUnavailableError,
    JSEngineMLError,
    JSError,
    JSSyntaxError,
    JSTimeoutError,
    ShimError,
)

_CONSOLE_TAG = "\ue001console:"
# Creating MiniRacer contexts from several threads at once can trip V8's one-time process setup
# ("Check failed: !IsConfigurablePoolInitialized()", seen in a PyFlink job whose subtask threads
# opened engines together): contexts are created one at a time.
_CREATE_LOCK = threading.Lock()
FLAGS_ENV = "JSENGINE_ML_V8_FLAGS"
#: After a timed-out evaluation is cancelled, how long to wait for it to report before calling the
#: isolate wedged.
_CANCEL_WAIT_S = 0.5
_abandoned: list[Any] = []
#: Set to 1 to enable V8's WebAssembly trap handler (guard pages instead of a bounds check on every
#: memory access: the kernels run faster, ``python benchmarks/kernels_wasm.py --trap-handler`` times
#: them so). Off by default: V8 then owns SIGSEGV in the process, and a handler installed after it
#: (Python's faulthandler, which pytest enables; a JVM hosting Python) would see a trapped
#: WebAssembly access as a crash.
TRAP_HANDLER_ENV = "JSENGINE_ML_V8_TRAP_HANDLER"
DEFAULT_FLAGS = ("--single-threaded", "--wasm-sync-tier-up", "--wasm-tiering-budget=1000000")
_flags_in_effect: str | None = None


def init_v8() -> str:
    """Initialize mini-racer's V8 once per process with this backend's flags; return the flags in effect.

    ``$JSENGINE_ML_V8_FLAGS`` (space-separated) replaces the defaults. If mini-racer was already
    initialized by someone else, its flags stay (V8 cannot change them) and this says so.
    """
    global _flags_in_effect
    if _flags_in_effect is None:
        import py_mini_racer
        from py_mini_racer import _dll

        flags = tuple(os.environ[FLAGS_ENV].split()) if os.environ.get(FLAGS_ENV) else DEFAULT_FLAGS
        already = getattr(_dll, "_dll_handle", None) is not None
        trap_handler = os.environ.get(TRAP_HANDLER_ENV) == "1" and not already and _enable_trap_handler()
        py_mini_racer.init_mini_racer(flags=flags, ignore_duplicate_init=True)
        _flags_in_effect = "set before jsengine-ml (unknown)" if already else " ".join(flags)
        if trap_handler:
            _flags_in_effect += " (WebAssembly trap handler)"
    return _flags_in_effect


def _enable_trap_handler() -> bool:
    """Call ``v8::V8::EnableWebAssemblyTrapHandler(true)`` in mini-racer's library, before V8 starts."""
    import ctypes
    from importlib import resources

    try:
        library = next(p for p in resources.files("py_mini_racer").iterdir() if p.name.startswith("libmini_racer"))
        enable = ctypes.CDLL(str(library))._ZN2v82V828EnableWebAssemblyTrapHandlerEb
    except (StopIteration, OSError, AttributeError):
        return False
    enable.argtypes, enable.restype = [ctypes.c_bool], ctypes.c_bool
    return bool(enable(True))


_LOCATION = re.compile(r"^(?P<file>.*?):(?P<line>\d+): (?P<rest>.*)$")
_NAMED = re.compile(r"^(?P<name>[A-Za-z_$][\w$]*): (?P<message>.*)$", re.S)


class V8Engine(Engine):
    """V8 (JIT, WebAssembly) via mini-racer: fastest compute (per-call cost: ``jsengine-ml bench``, data path)."""

    name = "v8"
    backend_script = "v8.js"

    @classmethod
    def check_available(cls) -> None:
        try:
            import py_mini_racer  # noqa: F401
        except ImportError as exc:
            raise BackendUnavailableError(
                f"the v8 backend needs mini-racer ({exc}). Fix: pip install 'jsengine-ml[v8]'"
            ) from exc

    @classmethod
    @lru_cache(maxsize=1)
    def capabilities(cls) -> Capabilities:
        cls.check_available()
        flags = init_v8()
        from py_mini_racer import MiniRacer

        with _CREATE_LOCK:
            racer = MiniRacer()
        try:
            version = racer.v8_version
            version = version() if callable(version) else str(version)
        finally:
            racer.close()
        return Capabilities(
            backend=cls.name,
            engine="V8",
            engine_version=version,
            binding=f"mini-racer {metadata.version('mini-racer')}",
            language="ES2024",
            es_version=2024,
            webassembly=True,
            time_limit=True,
            memory_limit="JS heap (ArrayBuffer backing stores are not counted: refused unless heap_only_limit=True)",
            binary_path="zero-copy ArrayBuffer memoryview",
            thread_rule="owner thread only (the binding itself would accept any thread)",
            native_promises=True,
            jit=True,
            zero_copy=True,
            engine_flags=flags,
            memory_limit_scope="heap",
        )

    # ------------------------------------------------------------------ primitives
    def _open(self, time_limit: float | None, memory_limit: int | None) -> None:
        init_v8()
        from py_mini_racer import MiniRacer

        with _CREATE_LOCK:
            self._racer = MiniRacer()
        if memory_limit is not None:
            self._racer.set_hard_memory_limit(int(memory_limit))
        self._direct = _DirectEval.attach(self._racer)
        self._in_view: memoryview | None = None
        self._in_capacity = 0
        self._out: Any = None
        self._head: NDArray[np.int32] | None = None  # maps __jsml.v8.head, written by every view()
        # __jsml.consoleFlag[0] is 1 while console messages wait: read here without a crossing.
        self._console_flag = np.frombuffer(
            self._run("(globalThis.__jsml = {consoleFlag: new Int32Array(1)}).consoleFlag.buffer"), dtype="<i4")

    def _run(self, code: str) -> Any:
        if self._direct is not None:
            try:
                return self._guard(self._direct.eval, code, self.time_limit, self._limit_error)
            except _Wedged as wedged:
                self._abandon()
                raise JSTimeoutError(
                    f"{wedged.error} -- except that it is not: a promise job that V8 runs outside any "
                    f"evaluation kept running and mini-racer cannot interrupt it. This engine is abandoned "
                    f"(closed; its thread runs until the process exits). Run untrusted code with "
                    f'isolation="process", where the supervisor kills such a worker.'
                ) from None
        return self._guard(self._racer.eval, code, timeout_sec=self.time_limit)

    def _map_buffer(self, expression: str) -> memoryview:
        view = self._run(expression)
        if not isinstance(view, memoryview):
            raise ShimError(f"{expression} is not an ArrayBuffer (got {type(view).__name__})")
        return view

    def _guard(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import py_mini_racer as mr
        from py_mini_racer._exc import MiniRacerBaseException  # not re-exported by the package

        try:
            return fn(*args, **kwargs)
        except mr.JSTimeoutException as exc:
            raise self._limit_error("time") from exc
        except mr.JSOOMException as exc:
            # mini-racer leaves a termination pending after the limit fires: the next evaluation
            # would be stopped too. Let a no-op take it, so the engine is usable right away.
            with contextlib.suppress(mr.JSEvalException):
                self._racer.eval("void 0")
            raise self._limit_error("memory") from exc
        except mr.JSParseException as exc:
            raise _syntax_error(str(exc)) from exc
        except mr.JSEvalException as exc:
            raise _js_error(str(exc)) from exc
        except MiniRacerBaseException as exc:
            raise JSEngineMLError(f"mini-racer failed: {exc}") from exc

    def _exec(self, source: str, filename: str) -> Any:
        # V8 names the script after a trailing sourceURL comment: stack traces show the file name.
        value = self._run(f"{source}\n//# sourceURL={filename}")
        return tag_string(value) if isinstance(value, str) else self._to_python(value)

    def _to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, memoryview):
            return bytes(value)
        from py_mini_racer import JSUndefined

        if value is JSUndefined:
            return None
        # A handle on a JS object / array / function: let JS render it as tagged JSON.
        if self._out is None:
            self._out = self._run("__jsml.out")
        return self._guard(self._out, value)

    def _call_registered(self, fn_id: int, args_json: str) -> Any:
        value = self._run(f"__jsml.v8.call({fn_id},{args_json})")
        if isinstance(value, str) and value.startswith(_CONSOLE_TAG):
            payload = json.loads(value[len(_CONSOLE_TAG) :])
            self._log_console_batch(payload["console"])
            return payload["value"]
        return self._to_python(value)

    def _put(self, name: str, array: Array) -> None:
        code = DTYPE_CODES[array.dtype]
        buffer = self._run(f"__jsml.io.alloc({json.dumps(name)},{code},{array.size},{json.dumps(list(array.shape))})")
        if array.size:
            np.ndarray(array.shape, dtype=array.dtype, buffer=buffer)[...] = array

    def _packed(self, code: str) -> Packed:
        """Run ``code`` (ending in ``__jsml.v8.view(...)``): a header copy and a view on the result's
        own buffer (header[8:10] give the data's offset and length in it)."""
        if self._head is None:
            self._head = np.frombuffer(self._run("__jsml.v8.headBuffer()"), dtype="<i4")
        view = self._run(code)
        header = self._head.copy()
        if int(header[0]) == PENDING_CODE:
            return Packed(header, None)
        offset, length = int(header[8]), int(header[9])
        return Packed(header, view[offset : offset + length])

    def _get_packed(self, expression: str) -> Packed:
        return self._packed(f"__jsml.v8.view({expression})")

    def _transform_packed(self, fn_id: int, array: Array, args_json: str) -> Packed:
        nbytes = array.nbytes
        if nbytes > self._in_capacity or self._in_view is None:
            capacity = max(nbytes, 2 * self._in_capacity, 4096)
            self._in_view = self._run(f"__jsml.v8.inBuf=new ArrayBuffer({capacity})")
            self._in_capacity = capacity
        if nbytes:
            np.ndarray(array.shape, dtype=array.dtype, buffer=self._in_view)[...] = array
        code = DTYPE_CODES[array.dtype]
        return self._packed(
            f"__jsml.v8.run({fn_id},{code},{array.size},{nbytes},{json.dumps(list(array.shape))},{args_json})"
        )

    def _drain_console(self) -> None:
        if self._closed or not self._console_flag[0]:
            return
        text = self._run("__jsml.console.take()")
        if text:
            self._log_console_batch(json.loads(text))


    def _abandon(self) -> None:
        """Give up on a wedged isolate: closed for Python, never torn down (that would wait for it)."""
        self._closed = True
        self._direct = None
        self._console_flag = np.zeros(1, dtype="<i4")
        # Never freed, not even when the interpreter exits and clears this module: mini-racer's
        # teardown of the context would wait for the job forever (the process would not exit).
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(self._racer))
        _abandoned.append(self._racer)
        _LIVE_ENGINES.discard(self)

    def _close(self) -> None:
        self._in_view = None
        self._head = None
        self._out = None
        self._console_flag = np.zeros(1, dtype="<i4")
        self._direct = None
        self._racer.close()


class _DirectEval:
    """mini-racer's evaluation with two thread wake-ups (see the module docstring)."""

    def __init__(self, ctx: Any, dll: Any, results: queue.Queue[Any]):
        self._ctx = ctx
        self._dll = dll
        self._results = results

    @classmethod
    def attach(cls, racer: Any) -> _DirectEval | None:
        ctx = getattr(racer, "_ctx", None)
        needed = ("_dll", "_ctx", "_non_cancelable_mr_task_results_queue", "_python_to_value_handle",
                  "_value_handle_to_python")
        if ctx is None or not all(hasattr(ctx, name) for name in needed):
            return None
        if not all(hasattr(ctx._dll, name) for name in ("mr_eval", "mr_cancel_task")):
            return None
        return cls(ctx, ctx._dll, ctx._non_cancelable_mr_task_results_queue)

    def eval(self, code: str, timeout: float | None, limit_error: Any) -> Any:
        ctx = self._ctx
        handle = ctx._python_to_value_handle(code)  # kept alive until the result is back
        task = self._dll.mr_eval(ctx._ctx, handle.raw, 0)
        try:
            result = self._results.get(timeout=timeout)
        except queue.Empty:
            self._dll.mr_cancel_task(ctx._ctx, task)
            try:
                self._results.get(timeout=_CANCEL_WAIT_S)  # the terminated evaluation still reports; drop it
            except queue.Empty:
                # Nothing to terminate: the isolate is busy outside any evaluation (a promise job V8
                # runs after an evaluation reported), which mini-racer cannot interrupt.
                raise _Wedged(limit_error("time")) from None
            raise limit_error("time") from None
        del handle
        return ctx._value_handle_to_python(result)


class _Wedged(Exception):  # an internal signal: never leaves the backend
    """The isolate cannot be stopped; carries the limit error to raise."""

    def __init__(self, error: JSEngineMLError):
        super().__init__(str(error))
        self.error = error



def _js_error(text: str) -> JSError:
    """Translate mini-racer's ``file:line: Name: message\\n<source>\\n^\\n\\n<stack>`` report."""
    head, _, stack = text.partition("\n\n")
    first = head.splitlines()[0] if head else text
    location = _LOCATION.match(first)
    rest = location["rest"] if location else first
    named = _NAMED.match(rest)
    name, message = (named["name"], named["message"]) if named else ("Error", rest)
    if name == "Uncaught":  # e.g. "Uncaught 42" for a thrown non-error value
        name, message = "Error", f"non-error value thrown: {message}"
    where = f" at {location['file']}:{location['line']}" if location else ""
    stack = stack.strip()
    return JSError(f"{name}: {message}{where}\n{stack}".rstrip(), js_name=name, js_message=message, js_stack=stack)


def _syntax_error(text: str) -> JSSyntaxError:
    error = _js_error(text)
    head = text.splitlines()[0] if text else ""
    location = _LOCATION.match(head)
    return JSSyntaxError(
        str(error),
        filename=location["file"] if location else None,
        line=int(location["line"]) if location else None,
        js_name=error.js_name,
        js_message=error.js_message,
        js_stack=error.js_stack,
    )


