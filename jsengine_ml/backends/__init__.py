"""Backend registry: built-in engines, third-party engines from entry points, and selection.

A third-party backend subclasses :class:`jsengine_ml.engine.Engine` and registers it in its own
``pyproject.toml``::

    [project.entry-points."jsengine_ml.backends"]
    myengine = "my_package.engine:MyEngine"
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import os
import threading
from dataclasses import dataclass
from importlib import metadata

from ..engine import Capabilities, Engine
from ..errors import BackendUnavailableError, InputError, JSEngineMLError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "jsengine_ml.backends"
ENV_VAR = "JSENGINE_ML_BACKEND"

#: Built-in backends, in the order "best available" tries them.
BUILTIN: dict[str, str] = {
    "v8": "jsengine_ml.backends.v8:V8Engine",
    "quickjs": "jsengine_ml.backends.quickjs:QuickJSEngine",
    "duktape": "jsengine_ml.backends.duktape:DuktapeEngine",
    "spidermonkey": "jsengine_ml.backends.spidermonkey:SpiderMonkeyEngine",
}
_registered: dict[str, type[Engine]] = {}


@dataclass(frozen=True)
class BackendInfo:
    """One known backend: whether it is usable here and, if not, why and how to fix it."""

    name: str
    target: str
    available: bool
    reason: str
    capabilities: Capabilities | None


def register_backend(name: str, engine_class: type[Engine]) -> None:
    """Register an engine class under ``name`` at run time (entry points do this declaratively)."""
    if not (isinstance(engine_class, type) and issubclass(engine_class, Engine)):
        raise InputError(f"{engine_class!r} is not a subclass of jsengine_ml.engine.Engine")
    _registered[name] = engine_class


@functools.cache
def _entry_points() -> tuple[tuple[str, str], ...]:
    """Backends declared by installed distributions (scanning them costs milliseconds: once per process)."""
    return tuple((ep.name, ep.value) for ep in metadata.entry_points(group=ENTRY_POINT_GROUP))


def _known() -> dict[str, str | type[Engine]]:
    known: dict[str, str | type[Engine]] = dict(BUILTIN)
    for name, value in _entry_points():
        known.setdefault(name, value)
    known.update(_registered)
    return known


def _load(name: str, target: str | type[Engine]) -> type[Engine]:
    if isinstance(target, type):
        return target
    module_name, _, attr = target.partition(":")
    try:
        engine_class = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise BackendUnavailableError(f"backend {name!r} ({target}) cannot be imported: {exc}") from exc
    if not (isinstance(engine_class, type) and issubclass(engine_class, Engine)):
        raise BackendUnavailableError(f"backend {name!r} ({target}) is not an Engine subclass")
    return engine_class


def available_backends() -> list[BackendInfo]:
    """Every known backend, usable here or not, with the reason and the pip command when not."""
    infos = []
    for name, target in _known().items():
        label = target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"
        try:
            engine_class = _load(name, target)
            engine_class.check_available()
            caps = engine_class.capabilities()
        except BackendUnavailableError as exc:
            infos.append(BackendInfo(name, label, False, str(exc), None))
        except Exception as exc:  # a broken third-party backend must not break the listing
            infos.append(BackendInfo(name, label, False, f"{type(exc).__name__}: {exc}", None))
        else:
            infos.append(BackendInfo(name, label, True, "", caps))
    return infos


def get_backend(name: str | None = None) -> type[Engine]:
    """The engine class for ``name``; else ``$JSENGINE_ML_BACKEND``; else the best available backend."""
    known = _known()
    chosen = name or os.environ.get(ENV_VAR) or None
    if chosen:
        if chosen not in known:
            raise BackendUnavailableError(
                f"unknown backend {chosen!r}; known backends: {', '.join(known)}"
                + (f" (chosen by ${ENV_VAR})" if not name else "")
            )
        engine_class = _load(chosen, known[chosen])
        engine_class.check_available()
        return engine_class
    reasons = []
    for backend_name, target in known.items():
        try:
            engine_class = _load(backend_name, target)
            engine_class.check_available()
            return engine_class
        except JSEngineMLError as exc:
            reasons.append(f"{backend_name}: {exc}")
    raise BackendUnavailableError("no JavaScript engine is available. " + "; ".join(reasons))


def create_engine(backend: str | None = None, *, isolation: str | None = None, **options: object) -> Engine:
    """Create an engine of the chosen backend (see :func:`get_backend`) with ``time_limit`` etc.

    ``isolation="process"`` (default: ``$JSENGINE_ML_ISOLATION``, else ``"none"``) runs it in a
    supervised worker process (:mod:`jsengine_ml.isolation`); ``max_restarts`` then applies too.
    """
    from ..isolation import isolated_class, resolve_isolation

    engine_class = get_backend(backend)
    mode = resolve_isolation(isolation)
    if (mode == "none" and isolation is None and threading.current_thread() is not threading.main_thread()
            and engine_class.capabilities().main_thread_only):
        # Hot-swap loaders, micro-batchers and thread-local engines create engines on their own
        # threads: a main-thread-only binding serves them from a worker process instead.
        log.info("%s runs on the main thread only: the engine created on thread %r runs isolated",
                 engine_class.name, threading.current_thread().name)
        mode = "process"
    if mode == "process":
        engine_class = isolated_class(engine_class)
        engine_class.check_available()
    _check_options(engine_class, options)
    return engine_class(**options)  # type: ignore[arg-type]


def _check_options(engine_class: type[Engine], options: dict[str, object]) -> None:
    """Unknown engine options are an :class:`InputError` naming the ones the engine takes."""
    accepted: list[str] = []
    for cls in engine_class.__mro__:  # an __init__ taking **options passes them up the chain
        if "__init__" not in vars(cls):
            continue
        params = inspect.signature(vars(cls)["__init__"]).parameters.values()
        accepted += [p.name for p in params if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InputError(f"unknown engine option(s) {unknown} for backend {engine_class.name!r}; "
                         f"engine options are {accepted}")
