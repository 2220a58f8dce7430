"""The exception hierarchy of jsengine-ml.

Every error raised by the library derives from :class:`JSEngineMLError`. Exceptions of the
underlying bindings (mini-racer, quickjs, dukpy) are translated at the backend boundary and never
leak out; the original is kept as ``__cause__``.
"""

from __future__ import annotations


class JSEngineMLError(Exception):
    """Base class of every error raised by jsengine-ml."""


class BackendUnavailableError(JSEngineMLError):
    """The requested backend cannot be used here (not installed, wrong version, unknown name)."""


class CapabilityError(JSEngineMLError):
    """The backend cannot do what was asked (e.g. enforce a time limit); pick another backend."""


class EngineClosedError(JSEngineMLError):
    """The engine was closed; create a new one."""


class WrongThreadError(JSEngineMLError):
    """An engine was used from a thread other than the one that created it."""


class JSError(JSEngineMLError):
    """A JavaScript exception was thrown inside the engine.

    ``js_name`` is the JS error's ``name`` (``TypeError`` ...), ``js_message`` its message and
    ``js_stack`` its stack trace as reported by the engine (may be empty).
    """

    def __init__(self, message: str, *, js_name: str = "Error", js_message: str = "", js_stack: str = ""):
        super().__init__(message)
        self.js_name = js_name
        self.js_message = js_message or message
        self.js_stack = js_stack


class JSSyntaxError(JSError):
    """The source did not parse. ``filename``/``line`` locate the error when the engine says so."""

    def __init__(self, message: str, *, filename: str | None = None, line: int | None = None, **kw: str):
        super().__init__(message, **kw)
        self.filename = filename
        self.line = line


class JSTimeoutError(JSEngineMLError):
    """A call ran past the engine's time limit and was interrupted; the engine stays usable.

    (An isolated engine's worker was killed for it: the next call runs on a fresh worker.)
    """


class JSMemoryLimitError(JSEngineMLError):
    """A call allocated past the engine's memory limit and was stopped; the engine stays usable.

    (An isolated engine's worker was killed for it: the next call runs on a fresh worker.)
    """


class EngineCrashedError(JSEngineMLError):
    """An isolated engine's worker process died (a native abort, a signal, an exit) during a call.

    ``signal`` is the signal that ended it (or None), ``exit_code`` its exit status (or None),
    ``stderr`` the tail of what the worker printed. The next call runs on a fresh worker with the
    engine's setup replayed.
    """

    def __init__(self, message: str, *, signal: int | None = None, exit_code: int | None = None, stderr: str = ""):
        super().__init__(message)
        self.signal = signal
        self.exit_code = exit_code
        self.stderr = stderr


class ShimError(JSEngineMLError):
    """A shim could not do its job (no exported entry point found, a timer or promise never settled)."""


class ResourceError(ShimError):
    """A resource requested by JavaScript (fetch) is not registered, or the network was asked for."""


class InputError(JSEngineMLError, ValueError):
    """Input data has the wrong dtype, shape or values."""


class ModelError(JSEngineMLError):
    """A model artifact is missing, corrupt or does not behave like a model."""


class ExportError(JSEngineMLError):
    """A Keras model could not be exported to TF.js Layers."""


class UnsupportedLayerError(ExportError):
    """The Keras model uses a layer type that the exporter does not support."""
