"""QuickJS (Bellard) through the ``quickjs`` binding.

Calls are nearly free (~0.1 µs) but the binding passes only primitives: arrays travel as a string of
one character per byte (see ``quickjs.js``). A Context used by two threads aborts the process, so
the owner-thread rule of :class:`~jsengine_ml.engine.Engine` matters most here.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import metadata
from typing import Any, ClassVar

import numpy as np

from ..engine import DTYPE_CODES, Capabilities, Engine
from ..errors import (
    BackendUnavailableError,
    JSEngineMLError,
    JSError,
)
from ._reports import error_from_report, with_filename


class QuickJSEngine(Engine):
    """QuickJS: small and quick to start (~0.1 ms, ~6 MB with tfjs), interpreted (slower compute)."""

    name = "quickjs"
    backend_script = "quickjs.js"
    expected_failures: ClassVar[dict[str, str]] = {
        "test_unicode_string_round_trips_through_eval[[]nul-inside[]]": (
            "the quickjs binding converts a script's string result with JS_ToCString, which ends at the "
            "first NUL (call() results are JSON-wrapped by the shim and keep it)"
        ),
    }

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
            binary_path="string of one character per byte (code point = byte + 1)",
            thread_rule="owner thread only (two threads on one Context abort the process)",
            native_promises=True,
            jit=False,
        )

    def _open(self, time_limit: float | None, memory_limit: int | None) -> None:
        import quickjs

        self._ctx = quickjs.Context()
        if time_limit is not None:
            self._ctx.set_time_limit(float(time_limit))
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

    def _to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        return self._guard(self._fn("__jsml.out"), value)

    def _exec(self, source: str, filename: str) -> Any:
        try:
            value = self._guard(self._ctx.eval, source)
        except JSError as exc:
            raise with_filename(exc, _PLACEHOLDER, filename) from exc.__cause__
        return self._to_python(value)

    def _call_registered(self, fn_id: int, args_json: str) -> Any:
        return self._to_python(self._guard(self._fn("__jsml.callFn"), fn_id, args_json))

    def _put(self, name: str, array: np.ndarray) -> None:
        self._guard(
            self._fn("__jsml.qjs.put"), name, _encode(array), DTYPE_CODES[array.dtype], array.size,
            json.dumps(list(array.shape)),
        )

    def _get_packed(self, expression: str) -> bytes:
        return _decode(self._guard(self._ctx.eval, f"__jsml.qjs.pack({expression})"))

    def _transform_packed(self, fn_id: int, array: np.ndarray, args_json: str) -> bytes:
        text = self._guard(
            self._fn("__jsml.qjs.run"), fn_id, _encode(array), DTYPE_CODES[array.dtype], array.size,
            json.dumps(list(array.shape)), args_json,
        )
        return _decode(text)

    def _run_jobs(self) -> None:
        while self._guard(self._ctx.execute_pending_job):
            pass

    def _drain_console(self) -> None:
        # The binding refuses calls into Python while a time limit is set, so console output is
        # buffered in JS and drained after each call (a call costs ~1 µs here).
        if self._closed or not self._guard(self._fn("__jsml.console.pending")):
            return
        self._log_console_batch(json.loads(self._guard(self._fn("__jsml.console.take"))))

    def _close(self) -> None:
        self._fns.clear()
        del self._ctx


def _encode(array: np.ndarray) -> str:
    if not array.size:
        return ""
    codes = np.frombuffer(array.tobytes(), dtype=np.uint8).astype("<u2") + 1
    return codes.tobytes().decode("utf-16-le")


def _decode(text: str) -> bytes:
    codes = np.frombuffer(text.encode("utf-16-le"), dtype="<u2")
    return (codes - 1).astype(np.uint8).tobytes()


_PLACEHOLDER = re.compile(r"(?P<name><input>)")
_SYNTAX_LINE = re.compile(r"<input>:(\d+)")
