"""Isolation: any engine in a supervised worker process (``isolation="process"``).

``create_engine(backend, isolation="process")``, ``load(..., isolation="process")``, the hot-swap
loader, the micro-batcher and the PyFlink operators (or ``$JSENGINE_ML_ISOLATION=process``) run
the engine in a child process that the library supervises (:mod:`.supervisor`): the same API and
results, time and memory limits on every backend (Duktape included), and a crash, a kill or a hang
turned into one Python exception, the next call running on a fresh worker with the setup replayed.
"""

from __future__ import annotations

import os

from ..errors import InputError
from .supervisor import IsolatedEngine, isolated_class

ENV_VAR = "JSENGINE_ML_ISOLATION"
MODES = ("none", "process")

__all__ = ["ENV_VAR", "MODES", "IsolatedEngine", "isolated_class", "resolve_isolation"]


def resolve_isolation(isolation: str | None = None) -> str:
    """``isolation`` if given, else ``$JSENGINE_ML_ISOLATION``, else ``"none"``; checked."""
    chosen = isolation if isolation is not None else (os.environ.get(ENV_VAR) or "none")
    if chosen not in MODES:
        where = "" if isolation is not None else f" (from ${ENV_VAR})"
        raise InputError(f"isolation must be one of {', '.join(map(repr, MODES))}, got {chosen!r}{where}")
    return chosen
