"""One engine per thread, for thread-pool users."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .backends import create_engine, get_backend
from .engine import Engine


class ThreadLocalEngine:
    """Hands each thread its own engine, created on first use by that thread.

    ``setup(engine)`` runs once per new engine (load a bundle, a model ...). An engine is released
    with its thread's local storage when the thread ends, or by :meth:`close` called from that thread.
    """

    def __init__(self, backend: str | None = None, *, setup: Callable[[Engine], Any] | None = None, **options: Any):
        chosen = get_backend(backend)  # checked now, not on first use
        self._backend = backend or chosen.name
        self._options = options
        self._setup = setup
        self._local = threading.local()
        self._lock = threading.Lock()
        self._count = 0

    def get(self) -> Engine:
        """The calling thread's engine (created now if it has none or it was closed)."""
        engine: Engine | None = getattr(self._local, "engine", None)
        if engine is None or engine.closed:
            engine = create_engine(self._backend, **self._options)
            if self._setup is not None:
                try:
                    self._setup(engine)
                except BaseException:
                    engine.close()
                    raise
            self._local.engine = engine
            with self._lock:
                self._count += 1
        return engine

    @property
    def created(self) -> int:
        """How many engines this object has created so far (one per thread, plus re-creations)."""
        return self._count

    def close(self) -> None:
        """Close the calling thread's engine, if any."""
        engine = getattr(self._local, "engine", None)
        if engine is not None:
            engine.close()
            self._local.engine = None
