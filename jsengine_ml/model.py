"""Models: a 2-D float matrix in, a 2-D float matrix out, one engine call per batch.

``load(path)`` opens a TF.js Layers artifact (``model.json`` + weight shards, run by the pinned
tfjs 4.22) or a single-file JavaScript bundle that exports a ``predict`` function.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import warnings
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .backends import create_engine
from .engine import Engine, read_shim
from .errors import (
    EngineCrashedError,
    InputError,
    JSEngineMLError,
    JSMemoryLimitError,
    JSTimeoutError,
    ModelError,
    ShimError,
)
from .runtime import tfjs_dist
from .topology import read_graph, read_layers_artifact, split_weights

#: JS entry points per runtime: (predict, dispose).
RUNTIME_FUNCTIONS = {
    "tfjs": ("__jsml.models.predict", "__jsml.models.dispose"),
    "bundle": ("__jsml.models.predict", "__jsml.models.dispose"),
    "compiled": ("__jsml.compiled.predict", "__jsml.compiled.dispose"),
}
#: ``runtime=`` values of :func:`load_layers`; "kernels" (0.1) is an alias of "compiled".
RUNTIMES = ("auto", "compiled", "tfjs")
log = logging.getLogger(__name__)
DEFAULT_MAX_BATCH_ROWS = 65536
_model_ids = itertools.count(1)
#: Errors that say what the engine did (stopped at a limit, crashed), passed through as they are.
_LIMIT_ERRORS = (JSTimeoutError, JSMemoryLimitError, EngineCrashedError)


@dataclass(frozen=True)
class ModelMetadata:
    """What a loaded model takes and gives, and where it runs."""

    kind: str
    source: str
    version: str | None
    input_shape: tuple[int | None, ...]
    output_shape: tuple[int | None, ...]
    input_dtype: str
    output_dtype: str
    backend: str
    engine: str
    engine_version: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return math.prod(d or 0 for d in self.input_shape[1:])

    @property
    def n_outputs(self) -> int | None:
        dims = self.output_shape[1:]
        return None if any(d is None for d in dims) else math.prod(dims)  # type: ignore[misc]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class IModel(ABC):
    """A scoring model: ``predict`` a batch, know its ``metadata``, ``warmup``, ``close``."""

    @property
    @abstractmethod
    def metadata(self) -> ModelMetadata: ...

    @abstractmethod
    def predict(self, rows: Any) -> np.ndarray:
        """Score a batch of rows; return an (n, k) float32 array."""

    def warmup(self, rows: int = 1) -> None:
        """Run a prediction on zeros so the first real call pays no start-up cost."""
        self.predict(np.zeros((rows, self.metadata.n_features), dtype=np.float32))

    @abstractmethod
    def close(self) -> None:
        """Release the model (and its engine when the model owns it). Idempotent."""

    def __enter__(self) -> IModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DenseMatrixModel(IModel):
    """A model scored in a JS engine: (n, features) float matrix in, (n, k) float32 matrix out.

    Inputs may be numpy (float32/float64, or integers for integer-input models), nested lists or a
    pandas DataFrame. They are validated (2-D, width, finite values), sent to the engine in one call
    per batch (batches above ``max_batch_rows`` are chunked) and tensors are disposed in the engine.
    Set ``check_finite = False`` to let NaN and ±inf through; they then propagate as in Keras.
    Outputs are passed through as the model computed them: NaN or ±inf in a result is not an error.
    A result with another width than the metadata says raises :class:`ModelError`; one with another
    number of rows than the input is refused before anything is copied out of the engine (a
    ``RangeError`` from the bundle runtime, a :class:`ModelError` from ``transform(rows=)``).
    """

    #: Refuse NaN / ±inf inputs with :class:`InputError` (default); False passes them to the model.
    check_finite = True

    def __init__(
        self,
        engine: Engine,
        model_id: int,
        metadata: ModelMetadata,
        *,
        owns_engine: bool,
        max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
        runtime: str = "tfjs",
    ):
        self.engine = engine
        self.runtime = runtime
        self._predict_fn, self._dispose_fn = RUNTIME_FUNCTIONS[runtime]
        self._model_id = model_id
        self._metadata = metadata
        self._owns_engine = owns_engine
        self.max_batch_rows = max_batch_rows
        self._closed = False

    @property
    def metadata(self) -> ModelMetadata:
        return self._metadata

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        m = self._metadata
        where = f"v={m.version} on {m.backend} ({m.n_features} -> {m.n_outputs})"
        return f"<DenseMatrixModel {m.kind} {m.source!r} {where}>"

    # ------------------------------------------------------------------ scoring
    def predict(self, rows: Any) -> np.ndarray:
        if self._closed:
            raise ModelError(f"model {self._metadata.source} is closed; load it again")
        matrix = self._validate(rows)
        n = matrix.shape[0]
        width = self._metadata.n_outputs
        if n == 0 and width is not None:
            return np.zeros((0, width), dtype=np.float32)
        parts = [
            self._predict_chunk(matrix[start : start + self.max_batch_rows])
            for start in range(0, max(n, 1), self.max_batch_rows)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def _predict_chunk(self, chunk: np.ndarray) -> np.ndarray:
        n = chunk.shape[0]
        out = self.engine.transform(self._predict_fn, chunk, self._model_id, rows=n)
        if out.ndim < 2 or out.shape[0] != n:
            raise ModelError(
                f"{self._metadata.source}: the model returned shape {tuple(out.shape)} for {n} rows; "
                f"a DenseMatrixModel needs an (n, ...) output with one row per input row"
            )
        out = out.reshape(n, -1)
        if self._metadata.n_outputs is not None and out.shape[1] != self._metadata.n_outputs:
            raise ModelError(
                f"{self._metadata.source}: the model returned {out.shape[1]} columns, "
                f"its metadata says {self._metadata.n_outputs}"
            )
        return out.astype(np.float32, copy=False)

    def _validate(self, rows: Any) -> np.ndarray:
        md = self._metadata
        integer_input = md.input_dtype == "int32"
        if hasattr(rows, "to_numpy") and hasattr(rows, "columns"):  # pandas DataFrame
            rows = rows.to_numpy()
        try:
            matrix = np.asarray(rows)
        except ValueError as exc:
            raise InputError(f"rows are ragged (rows of different lengths): pass a rectangular matrix ({exc})") from exc
        if matrix.dtype == object:
            raise InputError("rows are ragged or hold non-numbers: pass a rectangular numeric matrix")
        if matrix.ndim > 2 and tuple(matrix.shape[1:]) == tuple(md.input_shape[1:]):
            matrix = matrix.reshape(matrix.shape[0], md.n_features)  # (n, *input_shape) rows, in C order
        if matrix.ndim != 2:
            hint = " (for one row, use row.reshape(1, -1))" if matrix.ndim == 1 else ""
            raise InputError(
                f"rows must be a 2-D matrix (n, {md.n_features}) or (n, {', '.join(map(str, md.input_shape[1:]))}), "
                f"got shape {matrix.shape}{hint}"
            )
        if matrix.shape[1] != md.n_features:
            raise InputError(
                f"rows have {matrix.shape[1]} columns; {md.source} takes {md.n_features} "
                f"(input shape {list(md.input_shape)})"
            )
        if matrix.dtype.kind not in "fiub":
            raise InputError(f"rows have dtype {matrix.dtype}; pass floats (float32/float64) or integers")
        if matrix.dtype.kind == "f" and self.check_finite:
            finite = np.isfinite(matrix)
            if not finite.all():
                r, c = map(int, np.argwhere(~finite)[0])
                raise InputError(
                    f"rows hold a non-finite value ({matrix[r, c]!r} at row {r}, column {c}); "
                    f"clean or impute NaN/inf before scoring"
                )
        if integer_input:
            if matrix.dtype.kind == "f" and not np.array_equal(matrix, np.round(matrix)):
                raise InputError(f"{md.source} takes integer inputs (e.g. token ids); got non-integral floats")
            if matrix.size and (matrix.min() < -(2**31) or matrix.max() >= 2**31):
                raise InputError("integer inputs must fit in int32")
            return np.ascontiguousarray(matrix, dtype=np.int32)
        return np.ascontiguousarray(matrix, dtype=np.float32)

    # ------------------------------------------------------------------ lifecycle
    def tensors_in_engine(self) -> int:
        """Live tfjs tensors in this model's engine (should not grow between predictions)."""
        return int(self.engine.call("__jsml.models.numTensors"))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_engine:
            self.engine.close()
        elif not self.engine.closed:
            self.engine.call(self._dispose_fn, self._model_id)


# ---------------------------------------------------------------------- loading
def load(
    path: str | os.PathLike[str],
    backend: str | None = None,
    *,
    engine: Engine | None = None,
    version: str | None = None,
    warmup: bool = True,
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
    **options: Any,
) -> DenseMatrixModel:
    """Load a TF.js Layers artifact (a ``model.json`` or its folder) or a ``.js`` bundle.

    ``backend`` picks the engine (name, ``$JSENGINE_ML_BACKEND``, or the best available); pass an
    existing ``engine`` to share it instead (the model then does not close it). ``engine_options``
    (``time_limit``, ``memory_limit``, ``isolation="process"`` for a supervised worker process, see
    :mod:`jsengine_ml.isolation`) go to the new engine; ``runtime=`` (artifacts) and
    ``name=``/``function=``/``n_features=`` (bundles) go to :func:`load_layers` / :func:`load_bundle`.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model.json"
    if not path.exists():
        raise ModelError(f"{path}: no such model file or folder")
    loader = load_bundle if path.suffix in (".js", ".mjs", ".cjs") else load_layers
    return loader(path, backend, engine=engine, version=version, warmup=warmup,
                  max_batch_rows=max_batch_rows, **options)


def _open_engine(backend: str | None, engine: Engine | None, options: dict[str, Any]) -> tuple[Engine, bool]:
    if engine is not None:
        if options:
            raise ValueError(f"engine options {sorted(options)} cannot apply to an engine passed in")
        return engine, False
    return create_engine(backend, **options), True


def _metadata(engine: Engine, kind: str, source: Path, version: str | None, info: dict[str, Any]) -> ModelMetadata:
    caps = engine.capabilities()
    return ModelMetadata(
        kind=kind,
        source=str(source),
        version=version,
        input_shape=tuple(info["inputShape"]),
        output_shape=tuple(info["outputShape"]),
        input_dtype=info.get("inputDtype", "float32"),
        output_dtype=info.get("outputDtype", "float32"),
        backend=caps.backend,
        engine=caps.engine,
        engine_version=caps.engine_version,
        extra={k: v for k, v in info.items() if k not in ("inputShape", "outputShape", "inputDtype", "outputDtype")},
    )


def ensure_tfjs(engine: Engine) -> None:
    """Evaluate the pinned tfjs build that fits the engine, plus the platform shim, once per engine."""
    if engine.eval("typeof __jsml.tfjsVersion === 'string'"):
        return
    dist = tfjs_dist(engine.capabilities().es_version)
    engine.exec(dist.read_text(encoding="utf-8"), filename=str(dist))
    engine.exec(read_shim("tfjs_platform.js"), filename="jsengine_ml/shims/tfjs_platform.js")
    _ensure_model_runtime(engine)


def _ensure_model_runtime(engine: Engine) -> None:
    if not engine.eval("typeof __jsml.models === 'object'"):
        engine.exec(read_shim("model.js"), filename="jsengine_ml/shims/model.js")


def load_layers(
    model_json: str | os.PathLike[str],
    backend: str | None = None,
    *,
    engine: Engine | None = None,
    version: str | None = None,
    warmup: bool = True,
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
    runtime: str = "auto",
    **engine_options: Any,
) -> DenseMatrixModel:
    """Load a TF.js Layers artifact (model.json + shards).

    ``runtime="compiled"`` compiles the model into a plan of WebAssembly SIMD kernels (engines with
    WebAssembly) or ES5 kernels (interpreters): no tfjs, one engine call per batch (see
    docs/compiled-runtime.md); a layer it does not cover raises :class:`ModelError` naming it.
    ``runtime="tfjs"`` runs the model on tfjs 4.22, loaded by tfjs's own HTTP loader served by the
    fetch-less shim. ``"auto"`` (the default) compiles when every layer is covered, else logs why
    and uses tfjs (the reason is kept in ``metadata.extra["runtime_reason"]``).
    """
    if runtime == "kernels":
        warnings.warn('runtime="kernels" is now runtime="compiled"', DeprecationWarning, stacklevel=2)
        runtime = "compiled"
    if runtime not in RUNTIMES:
        raise InputError(f"runtime must be one of {', '.join(map(repr, RUNTIMES))}, got {runtime!r}")
    model_json = Path(model_json)
    spec, shards = read_layers_artifact(model_json)
    plan = None
    reason = ""
    if runtime in ("compiled", "auto"):
        from .compiled.plan import UnsupportedModelError, compile_graph

        try:
            plan = compile_graph(read_graph(spec, split_weights(spec, shards), source=str(model_json)),
                                 str(model_json))
            if len(plan.inputs) != 1 or len(plan.outputs) != 1:
                raise UnsupportedModelError(f"{model_json}: {len(plan.inputs)} inputs and {len(plan.outputs)} "
                                            f"outputs; predict() takes one input and gives one output")
        except UnsupportedModelError as exc:
            if runtime == "compiled":
                raise
            reason = str(exc)
            log.warning("runtime='auto' runs %s on tfjs: %s", model_json, exc)
    target, owns = _open_engine(backend, engine, engine_options)
    try:
        if plan is not None:
            from .compiled.model import load_plan

            model: DenseMatrixModel = load_plan(
                target, plan, {"kind": "tfjs-layers", "source": str(model_json), "version": version},
                owns_engine=owns, max_batch_rows=max_batch_rows)
        else:
            model = _load_tfjs(target, owns, model_json, spec, shards, version, max_batch_rows, reason)
        if warmup:
            model.warmup()
        return model
    except BaseException:
        if owns:
            target.close()
        raise


def _load_tfjs(target: Engine, owns: bool, model_json: Path, spec: dict[str, Any], shards: dict[str, bytes],
               version: str | None, max_batch_rows: int, reason: str) -> DenseMatrixModel:
    ensure_tfjs(target)
    model_id = next(_model_ids)
    base = f"jsengine-ml-model-{model_id}"
    target.add_resource(f"{base}/model.json", json.dumps(spec).encode("utf-8"))
    for rel, data in shards.items():
        target.add_resource(f"{base}/{rel}", data)
    try:
        info = json.loads(target.settle(f"__jsml.models.layersUrl({model_id}, '{base}/model.json')", timeout=120))
        info["runtime"] = "tfjs"
        if reason:
            info["runtime_reason"] = reason
    except _LIMIT_ERRORS:
        raise
    except JSEngineMLError as exc:
        raise ModelError(f"{model_json}: tfjs could not load the model: {exc}") from exc
    model = DenseMatrixModel(target, model_id, _metadata(target, "tfjs-layers", model_json, version, info),
                             owns_engine=owns, max_batch_rows=max_batch_rows)
    if model.metadata.n_outputs is None:
        raise ModelError(f"{model_json}: output shape {list(model.metadata.output_shape)} is not fixed")
    return model


def load_bundle(
    bundle: str | os.PathLike[str],
    backend: str | None = None,
    *,
    engine: Engine | None = None,
    version: str | None = None,
    warmup: bool = True,
    max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
    name: str | None = None,
    function: str = "predict",
    n_features: int | None = None,
    **engine_options: Any,
) -> DenseMatrixModel:
    """Load a single-file bundle exposing a predict function (found by the export discovery shim).

    The input width comes from the bundle's ``predict.inputShape`` / ``inputShape`` export when it
    declares one (bundles written by ``jsengine-ml bundle`` do), else from ``n_features``.
    """
    bundle = Path(bundle)
    try:
        source = bundle.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{bundle}: cannot read bundle: {exc}") from exc
    target, owns = _open_engine(backend, engine, engine_options)
    try:
        _ensure_model_runtime(target)
        try:
            target.load_bundle(source, filename=str(bundle), name=name, function=function)
        except _LIMIT_ERRORS:
            raise
        except ShimError as exc:
            raise ModelError(f"{bundle}: not a model bundle: {exc}") from exc
        except JSEngineMLError as exc:
            raise ModelError(f"{bundle}: the bundle failed to load: {exc}") from exc
        model_id = next(_model_ids)
        declared = target.call("__jsml.models.bundle", model_id)
        info = json.loads(declared) if declared else {}
        if "inputShape" not in info:
            if n_features is None:
                raise ModelError(
                    f"{bundle}: the bundle does not declare its input shape; pass n_features= to load()"
                )
            info["inputShape"] = [None, n_features]
        info.setdefault("outputShape", [None, None])
        model = DenseMatrixModel(target, model_id, _metadata(target, "bundle", bundle, version, info),
                                 owns_engine=owns, max_batch_rows=max_batch_rows, runtime="bundle")
        if warmup:
            model._metadata = _learn_output_width(model)
        return model
    except BaseException:
        if owns:
            target.close()
        raise


def _learn_output_width(model: DenseMatrixModel) -> ModelMetadata:
    out = model.predict(np.zeros((1, model.metadata.n_features), dtype=np.float32))
    md = model.metadata
    if md.n_outputs is None:
        md = ModelMetadata(**{**md.as_dict(), "output_shape": (None, out.shape[1])})
    return md
