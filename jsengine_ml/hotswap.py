"""Hot swap: switch model versions while scoring continues.

A :class:`HotSwapModel` watches a model source (:class:`DirectorySource`, :class:`HttpSource`, or
versions handed to :meth:`HotSwapModel.offer` by an update stream). A background *loader thread*
creates a new engine for each new version, loads it, warms it up and smoke-checks it, then stages
it. The *scoring thread* (whichever thread calls :meth:`~HotSwapModel.predict`) picks the staged
model up at the start of its next call, between two batches, and takes ownership of its engine with
:meth:`Engine.adopt() <jsengine_ml.engine.Engine.adopt>`. An engine is therefore only ever used
by one thread at a time, on every backend (QuickJS aborts the process otherwise):

* loader thread: creates, loads, warms up and checks the engine; never touches it after staging;
* scoring thread: adopts it at the swap and is its only user from then on;
* a retired engine is handed back the same way: the scoring thread stops using it and queues it to
  the loader thread, which adopts it and closes it (closing an engine costs far more than the swap
  itself: ``retire_times`` records it when the scoring thread does it). Pass
  ``close_retired="scorer"`` to close retired engines on the scoring thread instead (at the start
  of the next call; the time is recorded in ``retire_times``).

The pause the scoring thread pays for a swap (taking the staged model, ``adopt()``, moving the
pointers) is measured in ``last_swap_pause_s`` / ``swap_pauses``; it excludes the model's compute.

A version that fails to load, fails the smoke check (a zero row, and ``smoke_rows`` if given, must
give finite outputs of the serving width) or raises is never staged: the serving version stays,
the failure is logged, passed to ``on_error(version, exception)`` and kept in ``failures``.
:meth:`~HotSwapModel.rollback` returns to the previous version, which stays loaded (warm) for that.

Caveat: Duktape (dukpy) and QuickJS hold the GIL while they run JavaScript, so a load on the loader
thread still delays the scoring thread while tfjs is being evaluated (one long call); mini-racer
(V8) releases the GIL and the load runs truly in parallel. The swap pause itself is small on all.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
import shutil
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._types import Array
from .engine import close_at_exit
from .errors import InputError, JSEngineMLError, ModelError
from .model import DenseMatrixModel, IModel, ModelMetadata, load

log = logging.getLogger(__name__)

__all__ = [
    "DirectorySource",
    "HotSwapModel",
    "HttpSource",
    "ModelSource",
    "SwapEvent",
    "SwapFailure",
]


# ---------------------------------------------------------------------- sources
#: One input or output of a version: (name, shape without the batch, dtype).
_Arg = tuple[str, tuple[int | None, ...], str]
#: What a version takes and gives: (its inputs, its outputs).
_Signature = tuple[tuple[_Arg, ...], tuple[_Arg, ...]]


def _signature(md: ModelMetadata) -> _Signature:
    return (tuple((a.name, a.shape[1:], a.dtype) for a in md.inputs),
            tuple((a.name, a.shape[1:], a.dtype) for a in md.outputs))


def _describe(args: tuple[_Arg, ...]) -> str:
    return ", ".join(f"{name} {list(shape)} {dtype}" for name, shape, dtype in args)


def _version_key(name: str) -> list[Any]:
    """Natural order: v2 < v10, 1.9 < 1.10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part]


class ModelSource(ABC):
    """Where versions come from. Polled by the loader thread only."""

    @abstractmethod
    def current(self) -> str | None:
        """The version that should be live now (cheap), or None when the source has none yet."""

    @abstractmethod
    def fetch(self, version: str) -> Path:
        """Make ``version``'s artifact available locally; return its ``model.json`` path or folder."""

    def signature(self, version: str) -> Any:
        """Changes when ``version``'s artifact changes (a failed version is retried when it does)."""
        return None


class DirectorySource(ModelSource):
    """Versions as sub-folders of ``root`` (``v1/``, ``v2/`` … each holding a ``model.json``).

    If ``root/CURRENT`` exists, its content (a folder name) is the live version; otherwise the
    highest version in natural order (v10 > v9) whose folder holds a ``model.json``. Publish a new
    version atomically: write it to a temporary folder and ``rename`` it, or write the folder first
    and ``CURRENT`` last (an incomplete folder fails to load and is retried when its files change).
    """

    def __init__(self, root: str | os.PathLike[str], *, current_file: str = "CURRENT"):
        self.root = Path(root)
        self.current_file = current_file

    def current(self) -> str | None:
        pointer = self.root / self.current_file
        try:
            name = pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            name = None
        except OSError as exc:
            raise ModelError(f"{pointer}: cannot read the current-version file: {exc}") from exc
        if name:
            return name
        try:
            versions = [p.name for p in self.root.iterdir() if p.is_dir() and (p / "model.json").exists()]
        except FileNotFoundError:
            return None
        return max(versions, key=_version_key) if versions else None

    def fetch(self, version: str) -> Path:
        path = self.root / version
        if not (path / "model.json").exists():
            raise ModelError(f"{path}: version {version!r} has no model.json")
        return path

    def signature(self, version: str) -> Any:
        try:
            files = (self.root / version).iterdir()
            return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files))
        except OSError:
            return None

    def __repr__(self) -> str:
        return f"DirectorySource({str(self.root)!r})"


class HttpSource(ModelSource):
    """Versions on an HTTP file server: ``<base>/CURRENT`` names the live version, whose artifact is
    ``<base>/<version>/model.json`` plus the shards its ``weightsManifest`` lists.

    Artifacts are downloaded with urllib into ``cache_dir/<version>/`` (a temporary folder by
    default), into a scratch folder first and renamed when complete.
    """

    def __init__(self, base_url: str, *, cache_dir: str | os.PathLike[str] | None = None, timeout: float = 10.0,
                 current_file: str = "CURRENT"):
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self.current_file = current_file
        self._own_cache = cache_dir is None
        if cache_dir is None:
            cache_dir = tempfile.mkdtemp(prefix="jsengine-ml-http-")
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)

    def _get(self, rel: str) -> bytes:
        url = urllib.parse.urljoin(self.base_url, rel)
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                data: bytes = response.read()
                return data
        except OSError as exc:
            raise ModelError(f"{url}: download failed: {exc}") from exc

    def current(self) -> str | None:
        try:
            text = self._get(self.current_file).decode("utf-8").strip()
        except ModelError as exc:
            if "404" in str(exc):
                return None
            raise
        return text or None

    def signature(self, version: str) -> Any:
        return None

    def fetch(self, version: str) -> Path:
        if "/" in version or version in ("", ".", ".."):
            raise ModelError(f"bad version name {version!r} from {self.base_url}{self.current_file}")
        final = self.cache_dir / version
        if (final / "model.json").exists():
            return final
        quoted = urllib.parse.quote(version)
        raw = self._get(f"{quoted}/model.json")
        try:
            spec = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ModelError(f"{self.base_url}{quoted}/model.json: not valid JSON: {exc}") from exc
        scratch = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=self.cache_dir))
        try:
            (scratch / "model.json").write_bytes(raw)
            for group in spec.get("weightsManifest") or []:
                for rel in group.get("paths", []):
                    if rel.startswith("/") or ".." in Path(rel).parts:
                        raise ModelError(f"{self.base_url}{quoted}/model.json: unsafe shard path {rel!r}")
                    target = scratch / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(self._get(f"{quoted}/{urllib.parse.quote(rel)}"))
            try:
                scratch.rename(final)
            except OSError:  # another fetch won the race
                shutil.rmtree(scratch, ignore_errors=True)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        return final

    def __repr__(self) -> str:
        return f"HttpSource({self.base_url!r})"


# ---------------------------------------------------------------------- records
@dataclass
class _Slot:
    version: str
    model: DenseMatrixModel
    path: str
    load_s: float


@dataclass(frozen=True)
class SwapEvent:
    """One swap as seen by the scoring thread."""

    old: str | None
    new: str
    at: float  # time.time()
    pause_s: float
    rollback: bool = False


@dataclass(frozen=True)
class SwapFailure:
    """A version that was not put into service, and why."""

    version: str
    path: str
    error: BaseException
    at: float = field(default_factory=time.time)


# ---------------------------------------------------------------------- the model
class HotSwapModel(IModel):
    """A model whose version changes under it, between two batches, without stopping scoring.

    ``source``: a :class:`ModelSource` polled every ``poll_interval`` seconds (or None: only
    :meth:`offer`). ``backend`` and ``load_options`` (``time_limit``, ``memory_limit``,
    ``max_batch_rows``) go to :func:`jsengine_ml.model.load` for every version. ``smoke_rows``: a
    batch every new version must score with finite outputs. ``first_model_timeout``: how long a
    :meth:`predict` waits when no version has been loaded yet. ``isolation="process"`` loads each
    version into its own supervised worker process (:mod:`jsengine_ml.isolation`): a version that
    hangs or crashes while loading is a failed version, never a stuck loader.

    Use it from one scoring thread at a time; call :meth:`close` from that thread or once it has
    stopped scoring.
    """

    def __init__(
        self,
        source: ModelSource | str | os.PathLike[str] | None = None,
        *,
        backend: str | None = None,
        poll_interval: float = 1.0,
        smoke_rows: Any = None,
        on_swap: Callable[[str | None, str], Any] | None = None,
        on_error: Callable[[str, BaseException], Any] | None = None,
        load_options: dict[str, Any] | None = None,
        first_model_timeout: float = 60.0,
        keep_previous: bool = True,
        close_retired: str = "loader",
        max_pauses: int = 10000,
        isolation: str | None = None,
    ):
        if isinstance(source, (str, os.PathLike)):
            source = DirectorySource(source)
        if close_retired not in ("loader", "scorer"):
            raise InputError(f"close_retired must be 'loader' or 'scorer', got {close_retired!r}")
        self.source = source
        self.backend = backend
        self.poll_interval = poll_interval
        self.smoke_rows = smoke_rows
        self.on_swap = on_swap
        self.on_error = on_error
        self.load_options = dict(load_options or {})
        if isolation is not None:
            self.load_options["isolation"] = isolation
        self.first_model_timeout = first_model_timeout
        self.keep_previous = keep_previous
        self.close_retired = close_retired
        self.max_pauses = max_pauses

        # scoring-thread state (only the scoring thread writes these)
        self._current: _Slot | None = None
        self._previous: _Slot | None = None
        self._scorer: int | None = None
        self._to_close_here: list[DenseMatrixModel] = []
        self.swap_pauses: list[float] = []
        self.last_swap_pause_s: float | None = None
        self.retire_times: list[float] = []
        self.history: list[SwapEvent] = []

        # shared state (under _lock)
        self._lock = threading.Lock()
        self._staged_cond = threading.Condition(self._lock)
        self._pending: _Slot | None = None
        self._pending_flag = False  # read without the lock on the hot path
        self._rollback_flag = False
        self._signature: _Signature | None = None  # the serving line's inputs and outputs
        self.failures: list[SwapFailure] = []
        self.loaded_versions: list[str] = []

        # loader-thread state
        self._requests: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._last_attempt: tuple[str, Any] | None = None
        self._closed = False
        self._loader = threading.Thread(target=self._loader_main, name="jsengine-ml-hotswap-loader", daemon=True)
        self._loader.start()
        close_at_exit(self)

    # ------------------------------------------------------------------ public API
    def offer(self, version: str, artifact: str | os.PathLike[str]) -> Future[str]:
        """Queue ``version`` (a model.json or its folder) for loading; returns a Future.

        The future resolves to the version once it is loaded, checked and staged (it goes live at
        the next :meth:`predict`), or to the exception that kept it out of service.
        """
        self._check_open()
        fut: Future[str] = Future()
        self._requests.put(("offer", str(version), str(artifact), fut))
        return fut

    def poll_now(self) -> None:
        """Ask the loader thread to poll the source now rather than at the next interval."""
        self._requests.put(("poll",))

    def wait_ready(self, timeout: float | None = None) -> str:
        """Block until a first version is staged or live; return its version."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._staged_cond:
            while self._current is None and self._pending is None:
                self._check_open()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise ModelError(f"no model version became ready within {timeout:g} s{self._failure_hint()}")
                self._staged_cond.wait(remaining)
            return (self._current or self._pending).version  # type: ignore[union-attr]

    @property
    def version(self) -> str | None:
        """The version serving now (on the scoring thread), or None before the first predict."""
        return self._current.version if self._current else None

    @property
    def previous_version(self) -> str | None:
        return self._previous.version if self._previous else None

    @property
    def metadata(self) -> ModelMetadata:
        slot = self._current or self._pending
        if slot is None:
            self.wait_ready(self.first_model_timeout)
            slot = self._current or self._pending
        return slot.model.metadata  # type: ignore[union-attr]

    def predict(self, rows: Any) -> Array:
        return self.predict_with_version(rows)[0]

    def predict_with_version(self, rows: Any) -> tuple[Array, str]:
        """Score ``rows`` with the live version; return (predictions, the version that made them)."""
        slot = self._live()
        return slot.model.predict(rows), slot.version

    def run(self, feeds: dict[str, Any], outputs: list[str] | None = None) -> dict[str, Array]:
        return self.run_with_version(feeds, outputs)[0]

    def run_with_version(self, feeds: dict[str, Any],
                         outputs: list[str] | None = None) -> tuple[dict[str, Array], str]:
        """Score named inputs with the live version (see :meth:`DenseMatrixModel.run`); return
        (outputs by name, the version that made them)."""
        slot = self._live()
        return slot.model.run(feeds, outputs), slot.version

    def _live(self) -> _Slot:
        """The version to score this batch with (a staged version or a rollback takes effect here)."""
        if self._pending_flag or self._rollback_flag or self._current is None or self._to_close_here:
            self._between_batches()
        slot = self._current
        assert slot is not None
        return slot

    def rollback(self) -> str:
        """Go back to the previous version (at the next predict, or now on the scoring thread).

        Returns the version that will serve. A staged-but-not-yet-live version is discarded. The
        version rolled back from becomes the "previous" one (a second rollback rolls forward).
        A source keeps reporting the rolled-back version; it is not reloaded until the source
        announces another version.
        """
        self._check_open()
        with self._lock:
            target = self._previous
            if target is None:
                raise ModelError("rollback(): there is no previous version to return to")
            discarded = self._pending
            self._pending = None
            self._pending_flag = False
            self._rollback_flag = True
        if discarded is not None:  # never adopted: still the loader's
            self._requests.put(("close", discarded.model))
        if threading.get_ident() == self._scorer:
            self._between_batches()
        return target.version

    def adopt(self) -> None:
        """Make the calling thread the scoring thread, taking over the live and previous engines.

        For frameworks that run one task on successive pool threads, never two at once (Beam /
        PyFlink bundles): the previous scoring thread must not predict again.
        """
        for slot in (self._current, self._previous):
            if slot is not None:
                slot.model.engine.adopt()
        for model in self._to_close_here:
            model.engine.adopt()
        self._scorer = threading.get_ident()

    def close(self) -> None:
        """Stop the loader and close every engine (current, previous, staged, retired). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._requests.put(("stop",))
        with self._staged_cond:
            self._staged_cond.notify_all()
        if self._loader is not threading.current_thread():
            self._loader.join(timeout=120)
        models = [s.model for s in (self._current, self._previous, self._pending) if s is not None]
        models += self._to_close_here
        while True:
            try:
                req = self._requests.get_nowait()
            except queue.Empty:
                break
            if req[0] == "close":
                models.append(req[1])
            elif req[0] == "offer":
                req[3].cancel()
        self._current = self._previous = self._pending = None
        self._to_close_here = []
        for model in models:
            self._close_model(model)

    def stats(self) -> dict[str, Any]:
        """Swap pauses (median / max, seconds), swap and failure counts, live and previous versions."""
        pauses = sorted(self.swap_pauses)
        return {
            "version": self.version,
            "previous": self.previous_version,
            "swaps": len(self.history),
            "failures": len(self.failures),
            "pause_median_s": pauses[len(pauses) // 2] if pauses else None,
            "pause_max_s": pauses[-1] if pauses else None,
        }

    def __repr__(self) -> str:
        return f"<HotSwapModel v={self.version} source={self.source!r} backend={self.backend}>"

    # ------------------------------------------------------------------ scoring thread
    def _between_batches(self) -> None:
        self._check_open()
        me = threading.get_ident()
        if self._to_close_here:
            t = time.perf_counter()
            for model in self._to_close_here:
                self._close_model(model)
            self._to_close_here = []
            self.retire_times.append(time.perf_counter() - t)
        if self._current is None:
            self.wait_ready(self.first_model_timeout)
        t0 = time.perf_counter()
        with self._lock:
            staged, self._pending = self._pending, None
            self._pending_flag = False
            rollback, self._rollback_flag = self._rollback_flag, False
        event_old = self._current.version if self._current else None
        retired: DenseMatrixModel | None = None
        is_rollback = False
        if staged is not None:
            staged.model.engine.adopt()
            old, self._current = self._current, staged
            if old is not None:
                if self.keep_previous:
                    if self._previous is not None:
                        retired = self._previous.model
                    self._previous = old
                else:
                    retired = old.model
        elif rollback and self._previous is not None:
            self._current, self._previous = self._previous, self._current
            is_rollback = True
        else:
            self._scorer = me
            return
        if retired is not None:
            if self.close_retired == "loader":
                self._requests.put(("close", retired))
            else:
                self._to_close_here.append(retired)
        pause = time.perf_counter() - t0
        self._scorer = me
        if event_old is None:  # first pick-up: not a swap
            return
        self.last_swap_pause_s = pause
        if len(self.swap_pauses) < self.max_pauses:
            self.swap_pauses.append(pause)
        new = self._current.version
        self.history.append(SwapEvent(event_old, new, time.time(), pause, is_rollback))
        kind = " (rollback)" if is_rollback else ""
        log.info("hot swap %s -> %s%s (pause %.1f µs)", event_old, new, kind, pause * 1e6)
        if self.on_swap is not None:
            try:
                self.on_swap(event_old, new)
            except Exception:  # a callback must not break scoring
                log.exception("on_swap callback raised")

    # ------------------------------------------------------------------ loader thread
    def _loader_main(self) -> None:
        if self.source is not None:
            self._safe(self._poll)
        while True:
            try:
                req = self._requests.get(timeout=self.poll_interval if self.source is not None else None)
            except queue.Empty:
                req = ("poll",)
            kind = req[0]
            if kind == "stop":
                return
            if self._closed:
                if kind == "offer":
                    req[3].cancel()
                continue
            if kind == "offer":
                self._safe(self._load_and_stage, req[1], req[2], req[3])
            elif kind == "poll" and self.source is not None:
                self._safe(self._poll)
            elif kind == "close":
                self._safe(self._close_model, req[1])

    def _safe(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("hot-swap loader: %s failed", getattr(fn, "__name__", fn))

    def _poll(self) -> None:
        source = self.source
        assert source is not None
        try:
            version = source.current()
        except Exception as exc:
            log.warning("hot-swap: polling %r failed: %s", source, exc)
            return
        if version is None:
            return
        signature = source.signature(version)
        attempt = (version, signature)
        if attempt == self._last_attempt:
            return
        self._last_attempt = attempt
        live = self._current.version if self._current else None
        staged = self._pending.version if self._pending else None
        if version in (live, staged):
            return
        try:
            path = source.fetch(version)
        except Exception as exc:
            self._report_failure(version, f"{source!r}", exc)
            return
        self._load_and_stage(version, str(path), None)

    def _load_and_stage(self, version: str, path: str, fut: Future[str] | None) -> None:
        if fut is not None and not fut.set_running_or_notify_cancel():
            return
        t0 = time.perf_counter()
        model: DenseMatrixModel | None = None
        try:
            model = load(path, self.backend, version=version, warmup=True, **self.load_options)
            self._smoke_check(model, version)
        except Exception as exc:
            if model is not None:
                self._close_model(model)
            self._report_failure(version, path, exc)
            if fut is not None:
                fut.set_exception(exc)
            return
        slot = _Slot(version, model, path, time.perf_counter() - t0)
        md = model.metadata
        with self._staged_cond:
            replaced, self._pending = self._pending, slot
            self._pending_flag = True
            if self._signature is None:
                self._signature = _signature(md)
            self.loaded_versions.append(version)
            self._staged_cond.notify_all()
        if replaced is not None:  # staged but never picked up: still ours
            log.info("hot-swap: %s replaced staged %s before it went live", version, replaced.version)
            self._close_model(replaced.model)
        log.info("hot-swap: staged %s from %s (load + warmup + check %.0f ms)", version, path, slot.load_s * 1e3)
        if fut is not None:
            fut.set_result(version)

    def _smoke_check(self, model: DenseMatrixModel, version: str) -> None:
        """A new version must take and give what the serving line does, and score zeros (and
        ``smoke_rows``) with finite outputs, one row per input row."""
        md = model.metadata
        signature = _signature(md)
        if self._signature is not None and signature != self._signature:
            raise ModelError(f"version {version} takes {_describe(signature[0])} and gives {_describe(signature[1])}; "
                             f"the serving line takes {_describe(self._signature[0])} and gives "
                             f"{_describe(self._signature[1])}")
        checks: list[tuple[str, dict[str, Any]]] = []
        if all(a.width is not None for a in md.inputs):  # (a bundle may learn its width from smoke_rows)
            checks.append(("a zero row", {a.name: np.zeros((1, a.width or 0), dtype=a.dtype) for a in md.inputs}))
        if self.smoke_rows is not None:
            smoke = self.smoke_rows if isinstance(self.smoke_rows, dict) else {md.inputs[0].name: self.smoke_rows}
            checks.append(("smoke_rows", smoke))
        for what, feeds in checks:
            n = len(next(iter(feeds.values())))
            for name, out in model.run(feeds).items():
                if out.shape[0] != n:
                    raise ModelError(f"version {version} smoke check: {what} gave {out.shape[0]} rows of {name!r} "
                                     f"for {n}")
                if not np.isfinite(out).all():
                    raise ModelError(f"version {version} smoke check: {what} gave non-finite outputs in {name!r}")

    def _report_failure(self, version: str, path: str, exc: BaseException) -> None:
        self.failures.append(SwapFailure(version, path, exc))
        serving = self._current.version if self._current else None
        log.error("hot-swap: version %s (%s) not put into service, %s keeps serving: %s", version, path, serving, exc)
        if self.on_error is not None:
            try:
                self.on_error(version, exc)
            except Exception:
                log.exception("on_error callback raised")

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _close_model(model: DenseMatrixModel) -> None:
        """Close a model whose engine nobody else uses any more (the caller becomes its owner)."""
        try:
            model.engine.adopt()
            model.close()
        except JSEngineMLError as exc:
            log.warning("hot-swap: closing a retired model failed: %s", exc)

    def _check_open(self) -> None:
        if self._closed:
            raise ModelError("this HotSwapModel is closed")

    def _failure_hint(self) -> str:
        if not self.failures:
            return ""
        last = self.failures[-1]
        return f" (last failure: version {last.version}: {last.error})"


with contextlib.suppress(Exception):  # keep the IModel docs of predict
    HotSwapModel.predict.__doc__ = IModel.predict.__doc__
