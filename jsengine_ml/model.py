"""Models: a 2-D float matrix in, a 2-D float matrix out, one engine call per batch.

``load(path)`` opens a TF.js Layers artifact (``model.json`` + weight shards, run by the pinned
tfjs 4.22) or a single-file JavaScript bundle that exports a ``predict`` function.
"""

from __future__ import annotations

import dataclasses
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

from ._types import Array
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
from .topology import graph_model_signature, read_graph, read_layers_artifact, split_weights

#: JS entry points per runtime: (one input to one output, several inputs or outputs, dispose).
RUNTIME_FUNCTIONS = {
    "tfjs": ("__jsml.models.predict", "__jsml.models.runPacked", "__jsml.models.dispose"),
    "bundle": ("__jsml.models.predict", "__jsml.models.runPacked", "__jsml.models.dispose"),
    "compiled": ("__jsml.compiled.predict", "__jsml.compiled.runPacked", "__jsml.compiled.dispose"),
}
#: ``runtime=`` values of :func:`load_layers`; "kernels" (0.1) is an alias of "compiled".
RUNTIMES = ("auto", "compiled", "tfjs")
log = logging.getLogger(__name__)
DEFAULT_MAX_BATCH_ROWS = 65536
_model_ids = itertools.count(1)
#: Errors that say what the engine did (stopped at a limit, crashed), passed through as they are.
_LIMIT_ERRORS = (JSTimeoutError, JSMemoryLimitError, EngineCrashedError)


@dataclass(frozen=True)
class NodeArg:
    """One named input or output of a model: its shape (None = any size, the batch first) and dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str

    @property
    def width(self) -> int | None:
        """Values per batch row (None while a dimension is unknown)."""
        dims = self.shape[1:]
        return None if any(d is None for d in dims) else math.prod(dims)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ModelMetadata:
    """What a loaded model takes and gives, and where it runs.

    ``inputs`` / ``outputs`` list every named input and output (as onnxruntime's ``get_inputs()``);
    ``input_shape`` / ``output_shape`` / ``input_dtype`` / ``output_dtype`` describe the first ones.
    """

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
    inputs: tuple[NodeArg, ...] = ()
    outputs: tuple[NodeArg, ...] = ()

    def __post_init__(self) -> None:
        if not self.inputs:
            object.__setattr__(self, "inputs", (NodeArg("input", tuple(self.input_shape), self.input_dtype),))
        if not self.outputs:
            object.__setattr__(self, "outputs", (NodeArg("output", tuple(self.output_shape), self.output_dtype),))

    @property
    def n_features(self) -> int:
        return math.prod(d or 0 for d in self.input_shape[1:])

    @property
    def n_outputs(self) -> int | None:
        dims = self.output_shape[1:]
        known = [d for d in dims if d is not None]
        return None if len(known) < len(dims) else math.prod(known)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class IModel(ABC):
    """A scoring model: ``predict`` a batch, know its ``metadata``, ``warmup``, ``close``."""

    @property
    @abstractmethod
    def metadata(self) -> ModelMetadata: ...

    @abstractmethod
    def predict(self, rows: Any) -> Array:
        """Score a batch of rows of a one-input, one-output model; return an (n, k) float32 array."""

    @abstractmethod
    def run(self, feeds: dict[str, Any], outputs: list[str] | None = None) -> dict[str, Array]:
        """Score a batch given by input name; return the requested outputs (default: all) by name,
        each of shape (n, *output shape)."""

    def warmup(self, rows: int = 1) -> None:
        """Run a prediction on zeros so the first real call pays no start-up cost."""
        feeds = {arg.name: np.zeros((rows, arg.width or 0), dtype=arg.dtype) for arg in self.metadata.inputs}
        if all(arg.width is not None for arg in self.metadata.inputs):
            self.run(feeds)

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
        self._predict_fn, self._run_fn, self._dispose_fn = RUNTIME_FUNCTIONS[runtime]
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
    def predict(self, rows: Any) -> Array:
        md = self._check_open()
        if len(md.inputs) != 1 or len(md.outputs) != 1:
            raise InputError(
                f"{md.source} has inputs {[a.name for a in md.inputs]} and outputs {[a.name for a in md.outputs]}; "
                f"predict() takes one input and gives one output: use run({{name: rows, ...}})"
            )
        matrix = self._validate_input(rows, md.inputs[0])
        return self._run_batches([matrix])[0]

    def run(self, feeds: dict[str, Any], outputs: list[str] | None = None) -> dict[str, Array]:
        """Score named inputs, as onnxruntime's ``InferenceSession.run``; outputs come back by name.

        ``feeds`` maps every input name of ``metadata.inputs`` to its rows: (n, *shape) or the flat
        (n, width), numpy, lists or a pandas DataFrame, all with the same n. ``outputs`` selects
        outputs by name (default: all). Every problem (a missing or unknown name, a bad shape,
        dtype or value) is reported in one :class:`InputError`.
        """
        md = self._check_open()
        if not isinstance(feeds, dict):
            raise InputError(f"run() takes a dict of input name -> rows; {md.source} takes "
                             f"{[a.name for a in md.inputs]}")
        wanted = [a.name for a in md.outputs] if outputs is None else list(outputs)
        problems = [f"missing input {a.name!r}" for a in md.inputs if a.name not in feeds]
        problems += [f"unknown input {name!r}" for name in feeds if name not in {a.name for a in md.inputs}]
        problems += [f"unknown output {name!r}" for name in wanted if name not in {a.name for a in md.outputs}]
        matrices = []
        for arg in md.inputs:
            if arg.name in feeds:
                try:
                    matrices.append(self._validate_input(feeds[arg.name], arg))
                except InputError as exc:
                    problems.append(str(exc))
        if not problems and len({m.shape[0] for m in matrices}) > 1:
            problems.append("inputs have different numbers of rows: " +
                            ", ".join(f"{a.name}: {m.shape[0]}" for a, m in zip(md.inputs, matrices, strict=True)))
        if problems:
            raise InputError(f"{md.source}: " + "; ".join(problems) +
                             f" (inputs: {', '.join(f'{a.name} {list(a.shape)} {a.dtype}' for a in md.inputs)}; "
                             f"outputs: {', '.join(a.name for a in md.outputs)})")
        results = self._run_batches(matrices)
        by_name = {arg.name: out.reshape(len(out), *[d or -1 for d in arg.shape[1:]])
                   for arg, out in zip(md.outputs, results, strict=True)}
        return {name: by_name[name] for name in wanted}

    def _check_open(self) -> ModelMetadata:
        if self._closed:
            raise ModelError(f"model {self._metadata.source} is closed; load it again")
        return self._metadata

    def _run_batches(self, matrices: list[Array]) -> list[Array]:
        """Outputs (n, width) of validated input matrices, in chunks of at most ``max_batch_rows``."""
        n = matrices[0].shape[0]
        if 0 < n <= self.max_batch_rows:
            return self._run_chunk(matrices)
        widths = [arg.width for arg in self._metadata.outputs]
        if n == 0 and all(w is not None for w in widths):
            return [np.zeros((0, w or 0), dtype=np.float32) for w in widths]
        parts = [self._run_chunk([m[start : start + self.max_batch_rows] for m in matrices])
                 for start in range(0, max(n, 1), self.max_batch_rows)]
        if len(parts) == 1:
            return parts[0]
        return [np.concatenate([p[i] for p in parts], axis=0) for i in range(len(widths))]

    def _run_chunk(self, chunk: list[Array]) -> list[Array]:
        """One engine call: (n, width) output matrices for (n, width) input matrices."""
        n = chunk[0].shape[0]
        source = self._metadata.source
        if len(chunk) == 1 and len(self._metadata.outputs) == 1:
            out = self.engine.transform(self._predict_fn, chunk[0], self._model_id, rows=n)
            if out.ndim < 2 or out.shape[0] != n:
                raise ModelError(
                    f"{source}: the model returned shape {tuple(out.shape)} for {n} rows; "
                    f"a DenseMatrixModel needs an (n, ...) output with one row per input row"
                )
            outs = [out.reshape(n, -1)]
        else:  # several inputs or outputs: one byte buffer in, the outputs back to back out
            packed = np.concatenate([m.view(np.uint8).reshape(-1) for m in chunk]) if n else np.zeros(0, np.uint8)
            flat = self.engine.transform(self._run_fn, packed, self._model_id, n).reshape(-1)
            outs, at = [], 0
            for arg in self._metadata.outputs:
                width = arg.width if arg.width is not None else (flat.size - at) // max(n, 1)
                outs.append(flat[at : at + n * width].reshape(n, width))
                at += n * width
        for arg, out in zip(self._metadata.outputs, outs, strict=True):
            if arg.width is None:  # not declared: the first batch fixes it
                self._fix_widths(outputs={arg.name: out.shape[1]})
            elif out.shape[1] != arg.width:
                raise ModelError(f"{source}: output {arg.name!r} came back with {out.shape[1]} columns, "
                                 f"its metadata says {arg.width}")
        return [out.astype(np.float32, copy=False) for out in outs]

    def _validate_input(self, rows: Any, arg: NodeArg) -> Array:
        """The one input validation: rows of ``arg`` as a contiguous (n, width) float32/int32 matrix."""
        width = arg.width
        if (type(rows) is np.ndarray and rows.dtype == np.float32 and arg.dtype == "float32" and rows.ndim == 2
                and rows.shape[1] == width and rows.flags.c_contiguous
                and not (self.check_finite and not np.isfinite(rows).all())):
            return rows  # already what the engine takes (the common case, checked in a few µs)
        what = f"input {arg.name!r}" if len(self._metadata.inputs) > 1 else "rows"
        if hasattr(rows, "to_numpy") and hasattr(rows, "columns"):  # pandas DataFrame
            rows = rows.to_numpy()
        try:
            matrix = np.asarray(rows)
        except ValueError as exc:
            raise InputError(f"{what} are ragged (rows of different lengths): pass a rectangular matrix "
                             f"({exc})") from exc
        if matrix.dtype == object:
            raise InputError(f"{what} are ragged or hold non-numbers: pass a rectangular numeric matrix")
        if matrix.ndim > 2 and width is not None and tuple(matrix.shape[1:]) == tuple(arg.shape[1:]):
            matrix = matrix.reshape(matrix.shape[0], width)  # (n, *shape) rows, in C order
        if matrix.ndim != 2:
            hint = " (for one row, use row.reshape(1, -1))" if matrix.ndim == 1 else ""
            expected = f"(n, {width}) or (n, {', '.join(map(str, arg.shape[1:]))})" if width else "(n, width)"
            raise InputError(f"{what} must be a 2-D matrix {expected}, got shape {matrix.shape}{hint}")
        if width is None:  # a bundle that declares no width: the first batch fixes it
            width = matrix.shape[1]
            self._fix_widths(inputs={arg.name: width})
        if matrix.shape[1] != width:
            raise InputError(f"{what} have {matrix.shape[1]} columns; {self._metadata.source} takes {width} "
                             f"(input shape {list(arg.shape)})")
        if matrix.dtype.kind not in "fiu" and matrix.dtype != np.bool_:
            raise InputError(f"{what} have dtype {matrix.dtype}; pass floats (float32/float64) or integers")
        if matrix.dtype == np.bool_ or matrix.dtype == np.float16:
            raise InputError(f"{what} have dtype {matrix.dtype}; convert them explicitly (e.g. .astype(np.float32))")
        if matrix.dtype.kind == "f" and self.check_finite:
            finite = np.isfinite(matrix)
            if not finite.all():
                r, c = map(int, np.argwhere(~finite)[0])
                raise InputError(f"{what} hold a non-finite value ({matrix[r, c]!r} at row {r}, column {c}); "
                                 f"clean or impute NaN/inf before scoring (or set model.check_finite = False)")
        if arg.dtype == "int32":
            if matrix.dtype.kind == "f" and not np.array_equal(matrix, np.round(matrix)):
                raise InputError(f"{what} take integers (e.g. token ids); got non-integral floats")
            if matrix.size and (matrix.min() < -(2**31) or matrix.max() >= 2**31):
                raise InputError(f"{what} take integers that fit in int32")
            return np.ascontiguousarray(matrix, dtype=np.int32)
        return np.ascontiguousarray(matrix, dtype=np.float32)

    def _fix_widths(self, inputs: dict[str, int] | None = None, outputs: dict[str, int] | None = None) -> None:
        """Record widths a bundle did not declare, learnt from its first batch (later ones must match)."""
        md = self._metadata

        def fixed(args: tuple[NodeArg, ...], widths: dict[str, int]) -> tuple[NodeArg, ...]:
            return tuple(NodeArg(a.name, (None, widths[a.name]), a.dtype) if a.name in widths else a for a in args)

        ins, outs = fixed(md.inputs, inputs or {}), fixed(md.outputs, outputs or {})
        self._metadata = dataclasses.replace(md, inputs=ins, outputs=outs, input_shape=ins[0].shape,
                                             output_shape=outs[0].shape)

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
    if loader is load_bundle and "runtime" in options:
        raise InputError(f"{path}: runtime= applies to model.json artifacts; a bundle carries its runtime "
                         f"(chosen when it was written: jsengine-ml bundle --runtime ...)")
    return loader(path, backend, engine=engine, version=version, warmup=warmup,
                  max_batch_rows=max_batch_rows, **options)


def _open_engine(backend: str | None, engine: Engine | None, options: dict[str, Any]) -> tuple[Engine, bool]:
    if engine is not None:
        if options:
            raise InputError(f"engine options {sorted(options)} cannot apply to an engine passed in")
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
        extra={k: v for k, v in info.items()
               if k not in ("inputShape", "outputShape", "inputDtype", "outputDtype", "inputs", "outputs")},
        inputs=tuple(NodeArg(a["name"], tuple(a["shape"]), a["dtype"]) for a in info.get("inputs", ())),
        outputs=tuple(NodeArg(a["name"], tuple(a["shape"]), a["dtype"]) for a in info.get("outputs", ())),
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
    if spec.get("format") == "graph-model":
        from .compiled.plan import UnsupportedModelError

        if runtime == "compiled":
            raise UnsupportedModelError(f"{model_json}: graph models run on tfjs (runtime='tfjs' or 'auto'); the "
                                        f"compiled runtime takes TF.js Layers models")
        runtime = "tfjs"
    if runtime in ("compiled", "auto"):
        from .compiled.plan import UnsupportedModelError, compile_graph

        try:
            plan = compile_graph(read_graph(spec, split_weights(spec, shards), source=str(model_json)),
                                 str(model_json))
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


#: Config keys the official converter writes (Keras 2) that tfjs 4.22 rejects although they do not
#: change what the layer computes: dropped before tfjs sees the topology.
TFJS_REJECTED_KEYS = {
    "SeparableConv1D": ("kernel_initializer", "kernel_regularizer", "kernel_constraint"),
    "SeparableConv2D": ("kernel_initializer", "kernel_regularizer", "kernel_constraint"),
}


def tfjs_topology(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with the configs tfjs 4.22 refuses but whose meaning is plain normalized (a copy)."""

    def clean(node: Any) -> Any:
        if isinstance(node, dict):
            node = {k: clean(v) for k, v in node.items()}
            rejected = TFJS_REJECTED_KEYS.get(node.get("class_name", ""), ())
            if rejected and isinstance(node.get("config"), dict):
                node["config"] = {k: v for k, v in node["config"].items() if k not in rejected}
            return node
        if isinstance(node, list):
            return [clean(v) for v in node]
        return node

    return {**spec, "modelTopology": clean(spec["modelTopology"])}


def _load_tfjs(target: Engine, owns: bool, model_json: Path, spec: dict[str, Any], shards: dict[str, bytes],
               version: str | None, max_batch_rows: int, reason: str) -> DenseMatrixModel:
    ensure_tfjs(target)
    model_id = next(_model_ids)
    base = f"jsengine-ml-model-{model_id}"
    target.add_resource(f"{base}/model.json", json.dumps(tfjs_topology(spec)).encode("utf-8"))
    for rel, data in shards.items():
        target.add_resource(f"{base}/{rel}", data)
    try:
        if spec.get("format") == "graph-model":
            inputs, outputs = graph_model_signature(spec, source=str(model_json))
            signature = json.dumps(json.dumps({"inputs": inputs, "outputs": outputs}))
            info = json.loads(target.settle(
                f"__jsml.models.graphUrl({model_id}, '{base}/model.json', {signature})", timeout=120))
            info.update(inputs=inputs, outputs=outputs, inputShape=inputs[0]["shape"],
                        outputShape=outputs[0]["shape"], inputDtype=inputs[0]["dtype"], format="graph-model")
        else:
            info = json.loads(target.settle(f"__jsml.models.layersUrl({model_id}, '{base}/model.json')",
                                            timeout=120))
        info["runtime"] = "tfjs"
        if reason:
            info["runtime_reason"] = reason
    except _LIMIT_ERRORS:
        raise
    except JSEngineMLError as exc:
        raise ModelError(f"{model_json}: tfjs could not load the model: {exc}") from exc
    kind = "tfjs-graph" if spec.get("format") == "graph-model" else "tfjs-layers"
    model = DenseMatrixModel(target, model_id, _metadata(target, kind, model_json, version, info),
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
        if "inputShape" not in info:  # undeclared: n_features=, else the first batch fixes it
            info["inputShape"] = [None, n_features]
        info.setdefault("outputShape", [None, None])
        model = DenseMatrixModel(target, model_id, _metadata(target, "bundle", bundle, version, info),
                                 owns_engine=owns, max_batch_rows=max_batch_rows, runtime="bundle")
        if warmup:
            model.warmup()  # also learns an undeclared output width, when the input width is known
        return model
    except BaseException:
        if owns:
            target.close()
        raise
