"""Duktape 2.x (ES5.1) through ``dukpy`` 0.5.x.

dukpy 0.6 and later embed QuickJS-NG instead of Duktape: this backend then reports itself
unavailable rather than pretend. Duktape has no interrupt or allocation hook exposed by dukpy, so
time and memory limits cannot be enforced in-process: asking for one raises :class:`CapabilityError`
pointing to ``isolation="process"``, where the supervisor of the worker process enforces both.
dukpy holds the GIL while JavaScript runs.
"""

from __future__ import annotations

import base64
import json
import re
from functools import lru_cache
from importlib import metadata
from typing import Any, ClassVar

from .._types import Array
from ..engine import DTYPE_CODES, Capabilities, Engine, KnownBug, Packed, tag_string
from ..errors import BackendUnavailableError, CapabilityError, JSEngineMLError, JSError
from ._reports import error_from_report, with_filename

_CONSOLE_FN = "jsengine_ml.console"


class DuktapeEngine(Engine):
    """Duktape (ES5.1 interpreter): tiny and embeddable; no limits, no ES2015+ syntax."""

    name = "duktape"
    backend_script = "duktape.js"
    known_bugs: ClassVar[tuple[KnownBug, ...]] = (
        KnownBug("test_an_undefined_completion_value_is_none", AssertionError,
                 "dukpy encodes a script's value with duk_json_encode, which gives '{}' for undefined (and for "
                 "functions): eval() cannot tell undefined from an empty object (call() and settle() can)"),
        KnownBug("test_thrown_non_error_value_is_named_in_the_message", AssertionError,
                 "dukpy reports only the .stack of what was thrown, which a primitive lacks: the value arrives "
                 "as 'undefined'"),
    )

    @classmethod
    def check_available(cls) -> None:
        try:
            version = metadata.version("dukpy")
        except metadata.PackageNotFoundError as exc:
            raise BackendUnavailableError(
                "the duktape backend needs dukpy 0.5.x. Fix: pip install 'jsengine-ml[duktape]'"
            ) from exc
        major_minor = tuple(int(p) for p in re.findall(r"\d+", version)[:2])
        if major_minor >= (0, 6):
            raise BackendUnavailableError(
                f"dukpy {version} embeds QuickJS-NG, not Duktape. Fix: pip install 'dukpy>=0.5.1,<0.6' "
                f"(or pip install 'jsengine-ml[duktape]')"
            )
        try:
            from dukpy import _dukpy  # noqa: F401
        except ImportError as exc:
            raise BackendUnavailableError(f"dukpy {version} does not import: {exc}") from exc

    @classmethod
    @lru_cache(maxsize=1)
    def capabilities(cls) -> Capabilities:
        cls.check_available()
        import dukpy

        raw = dukpy.JSInterpreter().evaljs("Duktape.version")
        version = f"{raw // 10000}.{raw // 100 % 100}.{raw % 100}"
        return Capabilities(
            backend=cls.name,
            engine="Duktape",
            engine_version=version,
            binding=f"dukpy {metadata.version('dukpy')}",
            language="ES5.1",
            es_version=5,
            webassembly=False,
            time_limit=False,
            memory_limit=None,
            binary_path="base64 decoded/encoded in C by Duktape.dec/Duktape.enc",
            thread_rule="owner thread only (dukpy holds the GIL while running)",
            native_promises=False,
            jit=False,
        )

    def _open(self, time_limit: float | None, memory_limit: int | None) -> None:
        if time_limit is not None or memory_limit is not None:  # Engine._check_limits refused them already
            raise CapabilityError("the duktape backend cannot enforce a time or memory limit in-process")
        import dukpy
        from dukpy import _dukpy

        self._eval_string = _dukpy.eval_string
        self._jobs_drained = False
        self._interp = dukpy.JSInterpreter()
        # dukpy gives scripts the host: `process.env` is os.environ, and require() /
        # call_python('dukpy.lookup_module', path) read any file. Only the console sink stays.
        self._interp._funcs.clear()
        self._interp.export_function(_CONSOLE_FN, self._log_console)
        self._run_js(
            "var __jsml_host_console = (function (host) { return function (level, text) {"
            f" host('{_CONSOLE_FN}', level, text); }}; }})(call_python);"
            " delete this.process; delete this.require;"
            " Duktape.modSearch = function (id) { throw new Error('jsengine-ml: require(' + id + ') is not"
            " available: a bundle must be self-contained'); };",
            "{}",
        )

    def _run_js(self, code: str, variables: str) -> Any:
        import dukpy

        try:
            raw = self._eval_string(self._interp, code.encode("utf-8"), variables.encode("utf-8"))
        except dukpy.JSRuntimeError as exc:
            raise error_from_report(str(exc), _SYNTAX_LINE) from exc
        except Exception as exc:  # errors raised by Python callbacks come back wrapped
            raise JSEngineMLError(f"dukpy failed: {exc}") from exc
        return None if raw is None else json.loads(raw.decode("utf-8"))

    def _exec(self, source: str, filename: str) -> Any:
        try:
            value = self._run_js(source, "{}")
        except JSError as exc:
            raise with_filename(exc, _PLACEHOLDER, filename) from exc.__cause__
        return tag_string(value) if isinstance(value, str) else value

    def _call_registered(self, fn_id: int, args_json: str) -> Any:
        value = self._run_js(
            "__jsml.duk.after(__jsml.callFn(dukpy.i, dukpy.a))", json.dumps({"i": fn_id, "a": args_json})
        )
        self._jobs_drained = True  # duk.after() ran the microtasks in the same crossing (it did not throw)
        return value

    def _put(self, name: str, array: Array) -> None:
        variables = json.dumps({
            "n": name, "d": base64.b64encode(array.tobytes()).decode("ascii"), "c": DTYPE_CODES[array.dtype],
            "k": array.size, "s": list(array.shape),
        })
        self._run_js("__jsml.duk.put(dukpy.n, dukpy.d, dukpy.c, dukpy.k, dukpy.s)", variables)

    def _get_packed(self, expression: str) -> Packed:
        return Packed.from_bytes(base64.b64decode(self._run_js(f"__jsml.duk.after(__jsml.duk.pack({expression}))",
                                                               "{}")))

    def _transform_packed(self, fn_id: int, array: Array, args_json: str) -> Packed:
        variables = json.dumps({
            "i": fn_id, "d": base64.b64encode(array.tobytes()).decode("ascii"), "c": DTYPE_CODES[array.dtype],
            "k": array.size, "s": list(array.shape), "a": args_json,
        })
        text = self._run_js(
            "__jsml.duk.after(__jsml.duk.run(dukpy.i, dukpy.d, dukpy.c, dukpy.k, dukpy.s, dukpy.a))", variables
        )
        return Packed.from_bytes(base64.b64decode(text))

    def _run_jobs(self) -> None:
        if self._jobs_drained:
            self._jobs_drained = False
            return
        self._run_js("__jsml.runMicrotasks()", "{}")

    def _close(self) -> None:
        self._interp.export_function(_CONSOLE_FN, lambda *args: None)
        del self._interp


_PLACEHOLDER = re.compile(r"\((?P<name>eval):\d+\)")
_SYNTAX_LINE = re.compile(r"\(line (\d+)")
