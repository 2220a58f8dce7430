"""QuickJS (Bellard) through the ``quickjs`` binding.

Calls are cheap (``jsengine-ml bench`` measures them, data path) but the binding passes only
primitives: arrays travel as a string of one character per byte (see ``quickjs.js``). A Context
used by two threads aborts the process, so the owner-thread rule of
:class:`~jsengine_ml.engine.Engine` matters most here.

Two things the binding gets wrong are done through the QuickJS C API under it (ctypes, on the
binding's own runtime, after checking its layout; the binding's behaviour stays as a fallback):

* its time limit is process CPU time (``clock()``), so a loop under ``time_limit=1.0`` on a busy
  machine ran 2 s of wall time; here an interrupt handler checks a wall-clock deadline;
* it converts a script's string result with ``JS_ToCString``, which ends at the first NUL; here
  scripts run through ``JS_Eval`` (with their real file name) and non-number results go through
  ``__jsml.out``.
"""

from __future__ import annotations

import ctypes
import json
import re
import time
from functools import lru_cache
from importlib import metadata
from typing import Any

import numpy as np

from .._types import Array
from ..engine import DTYPE_CODES, Capabilities, Engine, Packed, tag_string
from ..errors import (
    BackendUnavailableError,
    JSEngineMLError,
    JSError,
)
from ._reports import error_from_report, with_filename


class QuickJSEngine(Engine):
    """QuickJS: small and quick to start, interpreted (slower compute)."""

    name = "quickjs"
    backend_script = "quickjs.js"

    @classmethod
    def check_available(cls) -> None:
        try:
            import quickjs  # noqa: F401
        except ImportError as exc:
            raise BackendUnavailableError(
                f"the quickjs backend needs the quickjs package ({exc}). Fix: pip install 'jsengine-ml[quickjs]'"
                " (and uninstall quickjs-ng: both install the same module names)"
            ) from exc
        try:
            metadata.version("quickjs")
        except metadata.PackageNotFoundError as exc:
            raise BackendUnavailableError(
                "the importable 'quickjs' module is not the quickjs distribution (quickjs-ng?). "
                "Fix: pip uninstall quickjs-ng && pip install 'jsengine-ml[quickjs]'"
            ) from exc

    @classmethod
    @lru_cache(maxsize=1)
    def capabilities(cls) -> Capabilities:
        cls.check_available()
        return Capabilities(
            backend=cls.name,
            engine="QuickJS",
            engine_version=f"bundled with quickjs {metadata.version('quickjs')}",
            binding=f"quickjs {metadata.version('quickjs')}",
            language="ES2020",
            es_version=2020,
            webassembly=False,
            time_limit=True,
            memory_limit="every allocation of the runtime, typed arrays included",
            memory_limit_scope="all",
            binary_path="string of one character per byte (code point = byte + 1)",
            thread_rule="owner thread only (two threads on one Context abort the process)",
            native_promises=True,
            jit=False,
        )

    def _open(self, time_limit: float | None, memory_limit: int | None) -> None:
        import quickjs

        self._ctx = quickjs.Context()
        self._native = _Native.attach(self._ctx, time_limit is not None)
        if time_limit is not None and self._native is None:
            self._ctx.set_time_limit(float(time_limit))  # the binding's CPU-time limit, as a fallback
        if memory_limit is not None:
            self._ctx.set_memory_limit(int(memory_limit))
        self._fns: dict[str, Any] = {}

    def _fn(self, path: str) -> Any:
        fn = self._fns.get(path)
        if fn is None:
            fn = self._fns[path] = self._guard(self._ctx.eval, path)
        return fn

    def _guard(self, fn: Any, *args: Any) -> Any:
        import quickjs

        native = self._native
        if native is not None and self.time_limit is not None:
            native.deadline = time.monotonic() + self.time_limit
        try:
            return fn(*args)
        except quickjs.StackOverflow as exc:
            raise error_from_report(str(exc), _SYNTAX_LINE) from exc
        except quickjs.JSException as exc:
            text = str(exc)
            if text.startswith("InternalError: interrupted"):
                raise self._limit_error("time") from exc
            # Out of memory while allocating the error object itself: QuickJS then throws null.
            out_of_memory = self.memory_limit is not None and text.strip() == "null"
            if text.startswith("InternalError: out of memory") or out_of_memory:
                raise self._limit_error("memory") from exc
            raise error_from_report(text, _SYNTAX_LINE) from exc
        except (TypeError, ValueError, OverflowError) as exc:
            raise JSEngineMLError(f"quickjs refused a value: {exc}") from exc
        finally:
            if native is not None:
                native.deadline = 0.0

    def _limit_in_rejection(self, name: str, message: str) -> str | None:
        # An interrupted (or out-of-memory) promise job rejects its promise with QuickJS's InternalError.
        if name == "InternalError" and message == "interrupted":
            return "time"
        if name == "InternalError" and message == "out of memory" and self.memory_limit is not None:
            return "memory"
        return None

    def _to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        return self._guard(self._fn("__jsml.out"), value)

    def _exec(self, source: str, filename: str) -> Any:
        try:
            if self._native is None:
                value = self._guard(self._ctx.eval, source)
                return tag_string(value) if isinstance(value, str) else self._to_python(value)
            outcome, value = self._guard(self._native.eval, source, filename)
            if outcome == _STORED:
                return self._guard(self._fn(_TAKE_STORED))
            if outcome == _THROWN:
                self._guard(self._fn(_RETHROW))
            if outcome == _NO_MEMORY:
                raise self._limit_error("memory")
            return value
        except JSError as exc:
            raise with_filename(exc, _PLACEHOLDER, filename) from exc.__cause__

    def _call_registered(self, fn_id: int, args_json: str) -> Any:
        return self._to_python(self._guard(self._fn("__jsml.callFn"), fn_id, args_json))

    def _put(self, name: str, array: Array) -> None:
        self._guard(
            self._fn("__jsml.qjs.put"), name, _encode(array), DTYPE_CODES[array.dtype], array.size,
            json.dumps(list(array.shape)),
        )

    def _get_packed(self, expression: str) -> Packed:
        return Packed.from_bytes(_decode(self._guard(self._ctx.eval, f"__jsml.qjs.pack({expression})")))

    def _transform_packed(self, fn_id: int, array: Array, args_json: str) -> Packed:
        text = self._guard(
            self._fn("__jsml.qjs.run"), fn_id, _encode(array), DTYPE_CODES[array.dtype], array.size,
            json.dumps(list(array.shape)), args_json,
        )
        return Packed.from_bytes(_decode(text))

    def _run_jobs(self) -> None:
        while self._guard(self._ctx.execute_pending_job):
            pass

    def _drain_console(self) -> None:
        # The binding refuses calls into Python while a time limit is set, so console output is
        # buffered in JS and drained after each call (a call is cheap here).
        if self._closed or not self._guard(self._fn("__jsml.console.pending")):
            return
        self._log_console_batch(json.loads(self._guard(self._fn("__jsml.console.take"))))

    def _close(self) -> None:
        self._fns.clear()
        if self._native is not None:
            self._native.detach()
            self._native = None
        del self._ctx


def _encode(array: Array) -> str:
    if not array.size:
        return ""
    codes = np.frombuffer(array.tobytes(), dtype=np.uint8).astype("<u2") + 1
    return codes.tobytes().decode("utf-16-le")


def _decode(text: str) -> bytes:
    codes = np.frombuffer(text.encode("utf-16-le"), dtype="<u2")
    return (codes - 1).astype(np.uint8).tobytes()


_PLACEHOLDER = re.compile(r"(?P<name><input>)")
_SYNTAX_LINE = re.compile(r"(?:<input>|\S):(\d+)")

# ---------------------------------------------------------------------- the C API under the binding
_STORED, _THROWN, _VALUE, _NO_MEMORY = "stored", "thrown", "value", "no memory"
#: JS helpers run through the binding: hand back the stored result (as __jsml.out makes it), or
#: throw the stored exception again so the binding reports it with its usual message and stack.
_TAKE_STORED = "(function(){var g=globalThis,v=g.__jsml_result;delete g.__jsml_result;return __jsml.out(v)})"
_RETHROW = "(function(){var g=globalThis,e=g.__jsml_thrown;delete g.__jsml_thrown;throw e})"
_TAG_INT, _TAG_BOOL, _TAG_NULL, _TAG_UNDEFINED, _TAG_EXCEPTION, _TAG_FLOAT64 = 0, 1, 2, 3, 6, 7


class _JSValue(ctypes.Structure):
    _fields_ = (("u", ctypes.c_uint64), ("tag", ctypes.c_int64))


_INTERRUPT = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


@lru_cache(maxsize=1)
def _library() -> Any:
    import _quickjs

    lib = ctypes.CDLL(_quickjs.__file__)
    lib.JS_GetRuntime.restype = ctypes.c_void_p
    lib.JS_GetRuntime.argtypes = (ctypes.c_void_p,)
    lib.JS_Eval.restype = _JSValue
    lib.JS_Eval.argtypes = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_int)
    lib.JS_GetGlobalObject.restype = _JSValue
    lib.JS_GetGlobalObject.argtypes = (ctypes.c_void_p,)
    lib.JS_GetException.restype = _JSValue
    lib.JS_GetException.argtypes = (ctypes.c_void_p,)
    lib.JS_SetPropertyStr.restype = ctypes.c_int
    lib.JS_SetPropertyStr.argtypes = (ctypes.c_void_p, _JSValue, ctypes.c_char_p, _JSValue)
    lib.__JS_FreeValue.restype = None
    lib.__JS_FreeValue.argtypes = (ctypes.c_void_p, _JSValue)
    lib.JS_SetInterruptHandler.restype = None
    lib.JS_SetInterruptHandler.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
    return lib


class _Native:
    """``JS_Eval`` and a wall-clock interrupt handler on the runtime of a ``quickjs.Context``."""

    def __init__(self, lib: Any, runtime: int, context: int, global_object: _JSValue, timed: bool):
        self._lib, self._runtime, self._context, self._global = lib, runtime, context, global_object
        self.deadline = 0.0  # time.monotonic() past which JavaScript is interrupted; 0: none
        self._handler: Any = None
        if timed:
            def interrupt(_runtime: int, _opaque: int) -> int:
                return 1 if self.deadline and time.monotonic() > self.deadline else 0

            self._handler = _INTERRUPT(interrupt)
            lib.JS_SetInterruptHandler(runtime, ctypes.cast(self._handler, ctypes.c_void_p), None)

    @classmethod
    def attach(cls, ctx: Any, timed: bool) -> _Native | None:
        """Find the binding's JSRuntime/JSContext (its first two fields), or None if the layout differs."""
        try:
            lib = _library()
            base = id(ctx) + ctypes.sizeof(ctypes.c_ssize_t) + ctypes.sizeof(ctypes.c_void_p)  # PyObject_HEAD
            runtime = ctypes.c_void_p.from_address(base).value
            context = ctypes.c_void_p.from_address(base + ctypes.sizeof(ctypes.c_void_p)).value
            if not runtime or not context or lib.JS_GetRuntime(context) != runtime:
                return None
        except (OSError, AttributeError, ImportError):
            return None
        global_object = lib.JS_GetGlobalObject(context)
        # Borrow the reference: the context keeps its global object alive as long as it lives.
        ctypes.c_int.from_address(global_object.u).value -= 1
        return cls(lib, runtime, context, global_object, timed)

    def eval(self, source: str, filename: str) -> tuple[str, Any]:
        """Run a script: (_VALUE, number/bool/None), or the result (_STORED) / exception (_THROWN) kept
        in a global for the binding to take."""
        code = source.encode("utf-8")
        value = self._lib.JS_Eval(self._context, code, len(code), filename.encode("utf-8"), 0)
        tag = value.tag
        if tag == _TAG_INT:
            return _VALUE, ctypes.c_int32(value.u & 0xFFFFFFFF).value
        if tag == _TAG_FLOAT64:
            return _VALUE, ctypes.c_double.from_buffer_copy(ctypes.c_uint64(value.u)).value
        if tag == _TAG_BOOL:
            return _VALUE, bool(value.u & 0xFFFFFFFF)
        if tag in (_TAG_NULL, _TAG_UNDEFINED):
            return _VALUE, None
        if tag == _TAG_EXCEPTION:
            name, outcome, value = b"__jsml_thrown", _THROWN, self._lib.JS_GetException(self._context)
        else:
            name, outcome = b"__jsml_result", _STORED
        if self._lib.JS_SetPropertyStr(self._context, self._global, name, value) < 0:  # takes the value
            self._free(self._lib.JS_GetException(self._context))  # out of memory for the property itself
            return _NO_MEMORY, None
        return outcome, None

    def _free(self, value: _JSValue) -> None:
        """JS_FreeValue (an inline function in quickjs.h)."""
        if value.tag < 0:  # a reference-counted value
            count = ctypes.c_int.from_address(value.u)
            count.value -= 1
            if count.value <= 0:
                self._lib.__JS_FreeValue(self._context, value)

    def detach(self) -> None:
        if self._handler is not None:
            self._lib.JS_SetInterruptHandler(self._runtime, None, None)
