"""SpiderMonkey through the ``pythonmonkey`` binding.

pythonmonkey runs one SpiderMonkey context per process, on the thread that imported it, with one
global object that is not a sandbox: it holds ``python`` (``eval``, ``exec``, ``exit``, ``getenv``,
``load``, ``print``, ``paths``), ``pmEval``, ``require`` (CommonJS from disk, ``.py`` modules
included), ``XMLHttpRequest`` (its ``send()`` outside an asyncio loop segfaulted the process),
``debuggerGlobal`` (a global with ``Debugger``), ``setTimeout`` and friends bound to Python's event
loop, ``URL``, ``console`` writing to ``sys.stdout``. This backend never runs engine code there.

**A fresh global per engine.** Each engine gets a new global object: a new realm in
pythonmonkey's compartment, made through the JSAPI under the binding (``JS_NewGlobalObject`` with
the standard global class, realm options copied from pythonmonkey's realm; ctypes, checked at
start). It has the ECMAScript built-ins and nothing else (no ``Debugger`` either); the shims then
install what the other engines get. Built-ins are the realm's own, so a model that pollutes
``Object.prototype`` does so for itself only, and engines live side by side (hot swap in-process).

**What crosses.** pythonmonkey calls a JS function with ``this`` set to its own global, and turns
Python objects handed to JS into proxies of them. So Python calls only the strict host entries of
``spidermonkey.js`` (which never read ``this``), hands them only ``str``/``int``/``float``, and
takes back only primitives and ArrayBuffers (as memoryviews): anything else is refused. Thrown
values are described in JS by the entries, never converted by pythonmonkey. The hostile-bundle
suite's ``reaches-for-python`` case checks this from inside a model.

**Data path.** Zero-copy both ways: numpy writes a batch into an ArrayBuffer of the engine's
global mapped as a memoryview, and reads results out of the result's own buffer (one copy into a
new numpy array); the compiled runtime maps its WebAssembly memory (``Capabilities.zero_copy``).

**Promise jobs.** pythonmonkey sends promise jobs to the running asyncio loop and fails without
one. During each crossing this backend stands in a small job queue as the running loop; the
engine runs the queued jobs itself (``_run_jobs``), like QuickJS.

**Limits.** A time limit is in-process: a POSIX timer (``SIGEV_THREAD``) calls
``JS_RequestInterruptCallback`` at the deadline without needing the GIL, and the interrupt
callback stops the script (uncatchable); the engine stays usable. SpiderMonkey's heap limit is per
process, not per global, so a memory limit needs ``isolation="process"``.

**Threads.** Main thread only: a call from another thread fails with "too much recursion", and
importing pythonmonkey on another thread segfaulted the interpreter at exit. Engines are created
and used on the main thread (``Capabilities.main_thread_only``); loader and batcher threads need
``isolation="process"``.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import lru_cache
from importlib import metadata, util
from typing import Any

import numpy as np

from .._types import Array
from ..engine import DTYPE_CODES, Capabilities, Engine, Packed, array_from_header
from ..errors import (
    BackendUnavailableError,
    CapabilityError,
    JSEngineMLError,
    JSError,
    JSSyntaxError,
    ShimError,
    WrongThreadError,
)

_ERROR_TAG = "\ue001error:"
_MIN_MAPPED = 65536  # the smallest ArrayBuffer map_buffer accepts (spidermonkey.js: MIN_MAPPED)
_SOURCE = os.path.join(os.path.dirname(__file__), "spidermonkey.js")
_MAIN_THREAD_ONLY = (
    "pythonmonkey runs JavaScript on the main thread only (a call from another thread fails, and importing it "
    "elsewhere crashed the interpreter at exit): create and use spidermonkey engines on the main thread, or pass "
    'isolation="process" to run one in a supervised worker process that any thread may use'
)
# entry indices in the list spidermonkey.js evaluates to
_CONTROL, _EXEC, _CALL, _ALLOC, _VIEW, _INBUF, _RUN, _MAP = range(8)


class SpiderMonkeyEngine(Engine):
    """SpiderMonkey (JIT, WebAssembly) via pythonmonkey: a fresh global per engine (per-call cost:
    ``jsengine-ml bench``, data path)."""

    name = "spidermonkey"

    @classmethod
    def check_available(cls) -> None:
        try:
            version = metadata.version("pythonmonkey")
        except metadata.PackageNotFoundError as exc:
            raise BackendUnavailableError(
                "the spidermonkey backend needs pythonmonkey. Fix: pip install 'jsengine-ml[spidermonkey]'"
            ) from exc
        if not version.startswith("1.4."):
            raise BackendUnavailableError(
                f"the spidermonkey backend reaches under pythonmonkey 1.4.x (its JSAPI symbols); found {version}. "
                f"Fix: pip install 'jsengine-ml[spidermonkey]'"
            )
        if util.find_spec("pythonmonkey") is None:
            raise BackendUnavailableError("pythonmonkey is installed but not importable")

    @classmethod
    @lru_cache(maxsize=1)
    def capabilities(cls) -> Capabilities:
        cls.check_available()
        version = metadata.version("pythonmonkey")
        return Capabilities(
            backend=cls.name,
            engine="SpiderMonkey",
            engine_version="136 (mozjs-136a1, bundled with pythonmonkey)",
            binding=f"pythonmonkey {version}",
            language="ES2024",
            es_version=2024,
            webassembly=True,
            time_limit=True,
            memory_limit=None,
            binary_path="zero-copy ArrayBuffer memoryview",
            thread_rule="main thread only (pythonmonkey's one SpiderMonkey context lives there); "
                        'other threads: isolation="process"',
            native_promises=True,
            jit=True,
            zero_copy=True,
            main_thread_only=True,
        )

    # ------------------------------------------------------------------ primitives
    def _open(self, time_limit: float | None, memory_limit: int | None) -> None:
        if memory_limit is not None:  # Engine._check_limits refused it already
            raise CapabilityError("the spidermonkey backend cannot enforce a memory limit in-process")
        if threading.current_thread() is not threading.main_thread():
            raise WrongThreadError(_MAIN_THREAD_ONLY)
        self._host = _host()
        entries = self._host.new_global()
        self._entries = [entries[i] for i in range(len(entries))]
        control = self._entries[_CONTROL]
        self._head = np.frombuffer(control, dtype="<i4", count=10)
        self._console_flag = np.frombuffer(control, dtype="<i4", count=1, offset=64)
        self._in_view: memoryview | None = None
        self._in_capacity = 0

    def _cross(self, index: int, *args: Any) -> Any:
        """Call host entry ``index``; turn a described JS error into a Python one."""
        value = self._host.call(self._entries[index], args, self.time_limit, self._limit_error)
        if isinstance(value, str) and value.startswith(_ERROR_TAG):
            raise _error(json.loads(value[len(_ERROR_TAG):]))
        return value

    def _exec(self, source: str, filename: str) -> Any:
        try:
            return self._to_python(self._cross(_EXEC, source, filename))
        except JSSyntaxError as exc:
            raise JSSyntaxError(str(exc), filename=filename, line=exc.line, js_name=exc.js_name,
                                js_message=exc.js_message, js_stack=exc.js_stack) from exc.__cause__

    def _to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if value is self._host.null:
            return None
        if isinstance(value, float):
            # pythonmonkey hands every number over as a float; integral ones come back as int (as on V8)
            if value.is_integer() and abs(value) < 2**53 and not (value == 0 and str(value)[0] == "-"):
                return int(value)
            return value
        if isinstance(value, str):
            return str(value)  # (tagged by __jsml.out where it could be mistaken for a tag)
        raise ShimError(f"the engine handed back a {type(value).__name__}, not a primitive")

    def _call_registered(self, fn_id: int, args_json: str) -> Any:
        return self._to_python(self._cross(_CALL, fn_id, args_json))

    def _put(self, name: str, array: Array) -> None:
        buffer = self._cross(_ALLOC, name, DTYPE_CODES[array.dtype], array.size, json.dumps(list(array.shape)))
        if array.size:  # written before any more JavaScript runs (a small buffer's data may move with it)
            np.ndarray(array.shape, dtype=array.dtype, buffer=_buffer(buffer))[...] = array

    def _packed(self, buffer: Any) -> Packed:
        """(header, the result as a new numpy array), copied before any more JavaScript runs."""
        header = self._head.copy()
        if buffer is None:  # a pending promise
            return Packed(header, None)
        offset, length = int(header[8]), int(header[9])
        data = np.frombuffer(_buffer(buffer), dtype=np.uint8, count=length, offset=offset)
        return Packed(header, array_from_header(header, data))

    def _unpack(self, packed: Packed) -> Array:
        """The array _packed already copied out (the engine's buffer may move once JavaScript runs)."""
        if not isinstance(packed.data, np.ndarray):
            raise ShimError("a pending result was unpacked")
        return packed.data

    def _get_packed(self, expression: str) -> Packed:
        return self._packed(self._cross(_VIEW, expression, "<get_array>"))

    def _transform_packed(self, fn_id: int, array: Array, args_json: str) -> Packed:
        nbytes = array.nbytes
        if nbytes > self._in_capacity or self._in_view is None:
            self._in_view = _buffer(self._cross(_INBUF, nbytes))
            self._in_capacity = len(self._in_view)
        if nbytes:
            np.ndarray(array.shape, dtype=array.dtype, buffer=self._in_view)[...] = array
        code = DTYPE_CODES[array.dtype]
        return self._packed(self._cross(_RUN, fn_id, code, array.size, nbytes, json.dumps(list(array.shape)),
                                        args_json))

    def _map_buffer(self, expression: str) -> memoryview:
        value = self._cross(_MAP, expression, "<map_buffer>")
        if isinstance(value, str):
            raise ShimError(
                f"{expression} is {value}: the spidermonkey engine maps ArrayBuffers of at least {_MIN_MAPPED} "
                f"bytes (SpiderMonkey keeps smaller ones' data inside the movable object)"
            )
        return _buffer(value)

    def _run_jobs(self) -> None:
        self._host.run_jobs(self.time_limit, self._limit_error)

    def _drain_console(self) -> None:
        if self._closed or not self._console_flag[0]:
            return
        text = self._exec("__jsml.console.take()", "<console>")
        if text:
            self._log_console_batch(json.loads(text))

    def _close(self) -> None:
        self._in_view = None
        self._head = self._console_flag = np.zeros(10, dtype="<i4")
        self._entries = []  # the global is garbage once nothing in Python holds its functions
        self._host.forget_jobs_if_idle()


def _buffer(value: Any) -> memoryview:
    if not isinstance(value, memoryview):
        raise ShimError(f"the engine handed back a {type(value).__name__}, not an ArrayBuffer")
    return value


def _error(report: dict[str, Any]) -> JSError:
    name, message, stack = report["name"], report["message"], report["stack"].rstrip()
    if not name:
        name, message = "Error", f"non-error value thrown: {message}"
    text = f"{name}: {message}\n{stack}".rstrip()
    if name == "SyntaxError":
        return JSSyntaxError(text, line=int(report["line"]) or None, js_name=name, js_message=message, js_stack=stack)
    return JSError(text, js_name=name, js_message=message, js_stack=stack)


# ---------------------------------------------------------------------- the binding, once per process
_get_running_loop = asyncio._get_running_loop
_set_running_loop = asyncio._set_running_loop


class _JobQueue:
    """Stands in for the running asyncio loop during crossings: pythonmonkey enqueues promise jobs here."""

    def __init__(self) -> None:
        self.jobs: deque[Any] = deque()

    # pythonmonkey's rejection tracker installs its own handler on a loop that has none
    _exception_handler = staticmethod(lambda loop, context: None)

    def call_soon_threadsafe(self, callback: Any, *args: Any, context: Any = None) -> _Handle:
        self.jobs.append(callback)
        return _Handle()

    call_soon = call_soon_threadsafe

    def create_future(self) -> _Future:  # for unhandled rejections (pythonmonkey reports them to a future)
        return _Future()

    def get_debug(self) -> bool:
        return False

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        pass


class _Handle:
    def cancel(self) -> None:
        pass


class _Future:
    def set_result(self, value: Any) -> None:
        pass

    def set_exception(self, exc: Any) -> None:
        pass

    def done(self) -> bool:
        return True

    def cancelled(self) -> bool:
        return False


class _JSClass(ctypes.Structure):
    _fields_ = (("name", ctypes.c_char_p), ("flags", ctypes.c_uint32), ("cOps", ctypes.c_void_p),
                ("spec", ctypes.c_void_p), ("ext", ctypes.c_void_p), ("oOps", ctypes.c_void_p))


class _SigEvent(ctypes.Structure):
    _fields_ = (("value", ctypes.c_void_p), ("signo", ctypes.c_int), ("notify", ctypes.c_int),
                ("function", ctypes.c_void_p), ("attributes", ctypes.c_void_p), ("pad", ctypes.c_byte * 32))


class _TimeSpec(ctypes.Structure):
    _fields_ = (("sec", ctypes.c_long), ("nsec", ctypes.c_long))


class _ITimerSpec(ctypes.Structure):
    _fields_ = (("interval", _TimeSpec), ("value", _TimeSpec))


_P = ctypes.c_void_p
#: JSCLASS_GLOBAL_FLAGS of SpiderMonkey 136 (js/public/Class.h): JSCLASS_IS_GLOBAL | 6 reserved slots.
_GLOBAL_FLAGS = (1 << 17) | (6 << 8)
_SIGEV_THREAD, _CLOCK_MONOTONIC = 2, 1
_INTERRUPT = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p)
_SYMBOLS = {  # short name -> (library, mangled symbol, restype, argtypes)
    "creation_options_ref": ("moz", "_ZN2JS23RealmCreationOptionsRefEP9JSContext", _P, (_P,)),
    "behaviors_ref": ("moz", "_ZN2JS17RealmBehaviorsRefEP9JSContext", _P, (_P,)),
    "creation_options_copy": ("pm", "_ZN2JS20RealmCreationOptionsC1ERKS0_", None, (_P, _P)),
    "creation_options_free": ("pm", "_ZN2JS20RealmCreationOptionsD1Ev", None, (_P,)),
    "realm_options": ("pm", "_ZN2JS12RealmOptionsC1ERKNS_20RealmCreationOptionsERKNS_14RealmBehaviorsE", None,
                      (_P, _P, _P)),
    "realm_options_free": ("pm", "_ZN2JS12RealmOptionsD1Ev", None, (_P,)),
    "set_existing_compartment": ("moz", "_ZN2JS20RealmCreationOptions22setExistingCompartmentEP8JSObject", _P,
                                 (_P, _P)),
    "current_global": ("moz", "_ZN2JS19CurrentGlobalOrNullEP9JSContext", _P, (_P,)),
    "new_global": ("moz", "_Z18JS_NewGlobalObjectP9JSContextPK7JSClassP12JSPrincipalsN2JS21OnNewGlobalHookOptionERKNS6_"
                   "12RealmOptionsE", _P, (_P, _P, _P, ctypes.c_int, _P)),
    "define_property": ("moz", "_Z17JS_DefinePropertyP9JSContextN2JS6HandleIP8JSObjectEEPKcS5_j", ctypes.c_bool,
                        (_P, _P, ctypes.c_char_p, _P, ctypes.c_uint)),
    "add_interrupt_callback": ("moz", "_Z23JS_AddInterruptCallbackP9JSContextPFbS0_E", ctypes.c_bool, (_P, _P)),
}
_REQUEST_INTERRUPT = "_Z27JS_RequestInterruptCallbackP9JSContext"


class _Host:
    """pythonmonkey's context, new globals in it, the interrupt timer and the promise job queue."""

    def __init__(self) -> None:
        import pythonmonkey
        from pythonmonkey import pythonmonkey as native

        self._pm = pythonmonkey
        self.null = pythonmonkey.null
        directory = os.path.dirname(native.__file__)
        libraries = {"pm": ctypes.CDLL(native.__file__),
                     "moz": ctypes.CDLL(os.path.join(directory, "libmozjs-136a1.so"))}
        self._fn: dict[str, Any] = {}
        for short, (library, symbol, restype, argtypes) in _SYMBOLS.items():
            function = getattr(libraries[library], symbol)
            function.restype, function.argtypes = restype, argtypes
            self._fn[short] = function
        self._cx = ctypes.c_void_p.in_dll(libraries["pm"], "GLOBAL_CX").value
        if not self._cx:
            raise BackendUnavailableError("pythonmonkey has no SpiderMonkey context (GLOBAL_CX is null)")
        self._ops = ctypes.c_void_p.in_dll(libraries["moz"], "_ZN2JS21DefaultGlobalClassOpsE")
        self._class = _JSClass(b"global", _GLOBAL_FLAGS, ctypes.addressof(self._ops), None, None, None)
        with open(_SOURCE, encoding="utf-8") as source:
            self._entries_source = source.read() + "\n//# sourceURL=jsengine_ml/backends/spidermonkey.js"
        self._count = 0
        # time limits: the deadline of the crossing under way (0: none) and whether the callback fired
        self.deadline = 0.0
        self.interrupted = False
        self._callback = _INTERRUPT(self._interrupt)
        if not self._fn["add_interrupt_callback"](self._cx, ctypes.cast(self._callback, _P)):
            raise BackendUnavailableError("JS_AddInterruptCallback failed")
        request_interrupt = ctypes.cast(getattr(libraries["moz"], _REQUEST_INTERRUPT), _P).value
        if request_interrupt is None:
            raise BackendUnavailableError(f"{_REQUEST_INTERRUPT} is not exported by the SpiderMonkey library")
        self._timer = _Timer(request_interrupt, self._cx)
        self.loop = _JobQueue()

    def _interrupt(self, _cx: int) -> bool:
        if self.deadline and time.monotonic() >= self.deadline:
            self.interrupted = True
            return False  # stop the script: an uncatchable termination
        return True

    def new_global(self) -> Any:
        """A fresh global with the standard classes only; returns the entries spidermonkey.js gives."""
        fn = self._fn
        cx = self._cx
        main = ctypes.c_void_p(fn["current_global"](cx))
        # (buffers larger than RealmCreationOptions / RealmOptions, which the copies fill)
        creation = (ctypes.c_uint64 * 128)()
        options = (ctypes.c_uint64 * 512)()
        fn["creation_options_copy"](ctypes.addressof(creation), fn["creation_options_ref"](cx))
        # one compartment with pythonmonkey's realm: typed arrays and functions need no wrappers
        fn["set_existing_compartment"](ctypes.addressof(creation), main)
        fn["realm_options"](ctypes.addressof(options), ctypes.addressof(creation), fn["behaviors_ref"](cx))
        fn["creation_options_free"](ctypes.addressof(creation))
        global_object = ctypes.c_void_p(fn["new_global"](
            cx, ctypes.addressof(self._class), None, 0, ctypes.addressof(options)))
        fn["realm_options_free"](ctypes.addressof(options))
        if not global_object.value:
            raise JSEngineMLError("SpiderMonkey could not create a global object")
        self._count += 1
        slot = f"__jsml_new_global_{self._count}"
        # pythonmonkey's global holds the new one just long enough to read its eval; nothing else
        # of that global is ever handed to the new one.
        if not fn["define_property"](cx, ctypes.addressof(main), slot.encode(), ctypes.addressof(global_object),
                                           0):
            raise JSEngineMLError("SpiderMonkey could not hand over a new global object")
        try:
            global_eval = self._pm.eval(f"globalThis.{slot}.eval")
            check = self._pm.eval(f"Object.getPrototypeOf(globalThis.{slot}.Object.prototype) === null "
                                  f"&& globalThis.{slot}.Object !== Object && !('python' in globalThis.{slot})")
        finally:
            self._pm.eval(f"delete globalThis.{slot}")
        if check is not True:
            raise JSEngineMLError("the new SpiderMonkey global is not a fresh realm")
        entries = self.call(global_eval, (self._entries_source,), None, None)
        if isinstance(entries, str):
            raise ShimError(f"spidermonkey.js did not evaluate: {entries}")
        return entries

    def call(self, function: Any, args: tuple[Any, ...], time_limit: float | None, limit_error: Any) -> Any:
        """Call a JS function in a crossing: the job queue stands in as the running loop, and the
        time limit (if any) is armed."""
        previous = _get_running_loop()
        _set_running_loop(self.loop)  # type: ignore[arg-type]  # the job queue stands in for a loop
        if time_limit is not None:
            self.interrupted = False
            self.deadline = time.monotonic() + time_limit
            self._timer.arm(time_limit)
        try:
            return function(*args)
        except self._pm.SpiderMonkeyError as exc:
            raise self._failure(exc, limit_error) from exc
        except (TypeError, ValueError, RuntimeError) as exc:
            raise JSEngineMLError(f"pythonmonkey refused a value: {exc}") from exc
        finally:
            if time_limit is not None:
                self.deadline = 0.0
            _set_running_loop(previous)

    def _failure(self, exc: BaseException, limit_error: Callable[[str], JSEngineMLError] | None) -> JSEngineMLError:
        if self.interrupted and limit_error is not None:
            self.interrupted = False
            return limit_error("time")
        text = str(exc)
        if "too much recursion" in text:
            return JSError(f"InternalError: too much recursion\n{text}", js_name="InternalError",
                           js_message="too much recursion")
        if "out of memory" in text:
            return JSError(f"InternalError: out of memory\n{text}", js_name="InternalError", js_message="out of memory")
        return JSEngineMLError(f"SpiderMonkey failed: {text}")

    def run_jobs(self, time_limit: float | None, limit_error: Any) -> None:
        jobs = self.loop.jobs
        while jobs:
            self.call(jobs.popleft(), (), time_limit, limit_error)

    def forget_jobs_if_idle(self) -> None:
        """Nothing to do: queued jobs of a closed engine's global still run (harmlessly) with the next
        engine's jobs; they keep that global alive until then."""


class _Timer:
    """A POSIX timer whose expiry calls ``JS_RequestInterruptCallback(cx)`` on a thread of its own."""

    def __init__(self, request_interrupt: int, cx: int):
        self._libc = ctypes.CDLL(None, use_errno=True)
        event = _SigEvent()
        event.value, event.notify, event.function = cx, _SIGEV_THREAD, request_interrupt
        self._id = ctypes.c_void_p()
        if self._libc.timer_create(_CLOCK_MONOTONIC, ctypes.byref(event), ctypes.byref(self._id)) != 0:
            raise BackendUnavailableError(f"timer_create failed (errno {ctypes.get_errno()})")
        self._spec = _ITimerSpec()
        self._spec_ref = ctypes.byref(self._spec)

    def arm(self, seconds: float) -> None:
        """Fire once, ``seconds`` from now (an earlier arming is replaced)."""
        self._spec.value.sec = int(seconds)
        self._spec.value.nsec = max(int((seconds - int(seconds)) * 1e9), 1)
        self._libc.timer_settime(self._id, 0, self._spec_ref, None)


_HOST: _Host | None = None


def _host() -> _Host:
    global _HOST
    if _HOST is None:
        try:
            _HOST = _Host()
        except (OSError, AttributeError, ValueError) as exc:
            raise BackendUnavailableError(
                f"pythonmonkey's SpiderMonkey could not be reached through its JSAPI symbols ({exc}); "
                f"this backend needs pythonmonkey 1.4.x. Fix: pip install 'jsengine-ml[spidermonkey]'"
            ) from exc
    return _HOST

