"""Compiled models: a :class:`~jsengine_ml.compiled.plan.Plan` loaded into an engine and scored.

On engines that share memory with Python (``Capabilities.zero_copy``: V8) numpy writes each batch
straight into the model's linear memory and reads the outputs from it, around one engine call
(``__jsml.compiled.run``). Elsewhere a batch travels through the engine's data path in one
``transform`` call.
"""

from __future__ import annotations

import functools
import itertools
import json
from importlib import resources as importlib_resources
from typing import Any

import numpy as np

from .._types import Array
from ..engine import Engine
from ..errors import InputError
from ..model import DenseMatrixModel, ModelMetadata, NodeArg
from .plan import Plan

_ids = itertools.count(1)


@functools.cache
def _package_file(name: str) -> bytes:
    return importlib_resources.files("jsengine_ml.compiled").joinpath(name).read_bytes()


def ensure_runtime(engine: Engine) -> str:
    """Evaluate the compiled runtime (and the kernel set this engine uses) once; return "wasm" or "es5"."""
    state = engine.eval("typeof __jsml.compiled === 'object' ? (__jsml.compiled.hasWasm() ? 'wasm' : 'es5') : ''")
    if state:
        return str(state)
    caps = engine.capabilities()
    engine.exec(_package_file("runtime.js").decode("utf-8"), filename="jsengine_ml/compiled/runtime.js")
    if caps.webassembly:
        # The same kernels built with relaxed SIMD (FMA) where the engine has it: faster (benchmarks/kernels_wasm.py
        # times both builds).
        module = "kernels_relaxed.wasm" if engine.eval("__jsml.compiled.relaxedSimd()") else "kernels.wasm"
        engine.put_array("__jsml_wasm", np.frombuffer(_package_file(module), dtype=np.uint8))
        if engine.eval("(function(){var ok=__jsml.compiled.init(__jsml_wasm);"
                       "delete globalThis.__jsml_wasm;return ok})()"):
            return "wasm"
    engine.exec(_package_file("kernels_es5.js").decode("utf-8"), filename="jsengine_ml/compiled/kernels_es5.js")
    return "es5"


class CompiledModel(DenseMatrixModel):
    """A TF.js Layers model run by the compiled runtime (see :mod:`jsengine_ml.compiled`)."""

    def __init__(self, engine: Engine, plan: Plan, metadata: ModelMetadata, model_id: int, *, owns_engine: bool,
                 max_batch_rows: int):
        super().__init__(engine, model_id, metadata, owns_engine=owns_engine, max_batch_rows=max_batch_rows,
                         runtime="compiled")
        self.plan = plan
        self._zero_copy = engine.capabilities().zero_copy
        self._capacity = 0
        self._inputs: list[Array] = []
        self._outputs: list[Array] = []

    def _validate_input(self, rows: Any, arg: NodeArg) -> Array:
        matrix = super()._validate_input(rows, arg)
        vocab = next(p.vocab for p in self.plan.inputs if p.name == arg.name)
        if vocab is None or not matrix.size:
            return matrix
        # the validated matrix is int32 or float32: compared as what it is
        ids = matrix.view(np.int32) if matrix.dtype == np.int32 else matrix.view(np.float32)
        if ids.min() < 0 or ids.max() >= vocab:
            r, c = map(int, np.argwhere((ids < 0) | (ids >= vocab))[0])
            where = f"input {arg.name!r}" if len(self.plan.inputs) > 1 else self.metadata.source
            raise InputError(
                f"{where}: token id {int(matrix[r, c])} at row {r}, column {c} is outside the vocabulary "
                f"[0, {vocab}) of the model's Embedding"
            )
        return matrix

    def _reserve(self, rows: int) -> None:
        """Make room for ``rows`` rows in the engine and (zero-copy) map the model's memory again."""
        self._inputs, self._outputs = [], []  # views on the old memory die first
        target = max(rows, min(2 * self._capacity, self.max_batch_rows))
        info = json.loads(self.engine.call("__jsml.compiled.reserve", self._model_id, target))
        self._capacity = int(info["capacity"])
        memory = self.engine.map_buffer(f"__jsml.compiled.buffer({self._model_id})")
        for ports, offsets, views in ((self.plan.inputs, info["inputs"], self._inputs),
                                      (self.plan.outputs, info["outputs"], self._outputs)):
            for port, offset in zip(ports, offsets, strict=True):
                width = int(np.prod(port.shape))
                views.append(np.ndarray((self._capacity, width), dtype=port.dtype, buffer=memory, offset=offset))

    def _run_chunk(self, chunk: list[Array]) -> list[Array]:
        if not self._zero_copy:
            return super()._run_chunk(chunk)
        n = chunk[0].shape[0]
        if n > self._capacity or not self._inputs:
            self._reserve(n)
        for view, matrix in zip(self._inputs, chunk, strict=True):
            view[:n] = matrix
        self.engine.call("__jsml.compiled.run", self._model_id, n)
        return [view[:n].copy() for view in self._outputs]

    def close(self) -> None:
        self._inputs, self._outputs = [], []
        super().close()


def load_plan(engine: Engine, plan: Plan, metadata: dict[str, Any], *, owns_engine: bool,
              max_batch_rows: int) -> CompiledModel:
    """Load ``plan`` into ``engine`` and return the model (``metadata``: ModelMetadata fields)."""
    caps = engine.capabilities()
    kernels = ensure_runtime(engine)
    model_id = next(_ids)
    slot = f"__jsml_cw{model_id}"
    engine.put_array(slot, np.frombuffer(plan.weights, dtype=np.uint8) if plan.weights else np.zeros(0, np.uint8))
    loaded = json.loads(engine.eval(
        f"(function(){{var r=__jsml.compiled.load({model_id},{json.dumps(json.dumps(plan.as_json()))},{slot},"
        f"{json.dumps(kernels == 'wasm')},{json.dumps(not caps.jit)});delete globalThis.{slot};return r}})()",
        filename="<compiled-load>",
    ))
    inputs = tuple(NodeArg(p.name, (None, *p.shape), p.dtype) for p in plan.inputs)
    outputs = tuple(NodeArg(p.name, (None, *p.shape), p.dtype) for p in plan.outputs)
    md = ModelMetadata(
        kind=metadata["kind"], source=metadata["source"], version=metadata.get("version"),
        input_shape=inputs[0].shape, output_shape=outputs[0].shape, input_dtype=inputs[0].dtype,
        output_dtype=outputs[0].dtype, backend=caps.backend, engine=caps.engine, engine_version=caps.engine_version,
        extra={"runtime": "compiled", "kernels": loaded["kernels"], "ops": loaded["ops"],
               "weight_bytes": len(plan.weights), **metadata.get("extra", {})},
        inputs=inputs, outputs=outputs,
    )
    return CompiledModel(engine, plan, md, model_id, owns_engine=owns_engine, max_batch_rows=max_batch_rows)
