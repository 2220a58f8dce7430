#!/usr/bin/env python3
"""Make TF.js GRAPH models (format "graph-model") with the official converter from TF SavedModels.

Runs in the pinned converter venv (scripts/converter-requirements.txt: tensorflowjs 4.22.0,
tensorflow 2.19.0, ...; set up by scripts/make_converter_fixtures.sh), never in the dev venv:

    /work/convvenv/bin/python scripts/make_graph_models.py [--only NAME ...] [--out DIR] [--no-verify]

For each model it builds a small ``tf.Module`` with seeded weights (numpy default_rng, no training),
exports it with ``tf.saved_model.save`` and an explicit ``serving_default`` signature (named inputs,
dict of named outputs), and runs

    tensorflowjs_converter --input_format tf_saved_model --output_format tfjs_graph_model
        --signature_name serving_default --saved_model_tags serve <saved_model> <out>/<name>/

then writes next to the converter's model.json + group1-shard*of*.bin:

* golden.npz: seeded inputs and the outputs of the reloaded SavedModel's serving signature. One
  input/output: keys ``x`` / ``y``. Several: ``x_<signature input name>`` / ``y_<signature output
  name>`` (graph_multi: x_numeric, x_tokens, y_proba, y_score). float32, int32 for token ids.
* reference.json: model description, signature (names, dtypes, shapes, graph tensor names, golden
  keys), graph ops, converter command, tool versions and the result of the tfjs check below.

Unless --no-verify, it then loads every model in node (jsengine_ml/js/node_modules/@tensorflow/tfjs
4.22: the package main, dist/tf.node.js, and the ES5 build dist/tf.min.js, each in its own node
process) with tf.loadGraphModel(tf.io.fromMemory(...)) and tf.loadGraphModelSync([modelJson,
weights]), runs execute / executeAsync / predict with named inputs, compares with golden.npz
(max abs error <= 1e-5, else the script fails) and records what tfjs reports (model.inputs,
model.outputs, inputNodes, outputNodes, default output order) in reference.json. For graph_multi it
also converts a --use_structured_outputs_names variant into a temp dir and records how tfjs labels
its outputs (the variant is not kept). With --no-verify the previous reference.json's "tfjs" block
is carried over unchanged.

Deterministic: a rerun gives byte-identical files. The .npz files are written with fixed zip
timestamps, and each node's ``attr`` keys in model.json are sorted after conversion (the converter
writes them in the randomized order of a C++ protobuf map; see canonical_attr_order); the rest of
the converter output (graph, weights, shards, signature) is byte-stable for the same SavedModel.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["TF_DETERMINISTIC_OPS"] = "1"
os.environ["CUDA_VISIBLE_DEVICES"] = ""

import argparse
import importlib.metadata
import io
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

tf.get_logger().setLevel("ERROR")
tf.autograph.set_verbosity(0)
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
tf.config.experimental.enable_op_determinism()

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "jsengine_ml" / "reference_models"
CONVERTER = Path(sys.executable).parent / "tensorflowjs_converter"
TFJS_DIR = ROOT / "jsengine_ml" / "js" / "node_modules" / "@tensorflow" / "tfjs"
ROWS = 16  # golden rows per model
TOL = 1e-5
SIGNATURE = "serving_default"
CONVERTER_ARGS = [
    "--input_format", "tf_saved_model", "--output_format", "tfjs_graph_model",
    "--signature_name", SIGNATURE, "--saved_model_tags", "serve",
]  # fmt: skip


# --------------------------------------------------------------------------------------------
# seeded weights
# --------------------------------------------------------------------------------------------
def seed_of(name: str) -> int:
    return zlib.crc32(name.encode())


class Seeded:
    """Draws weights from one default_rng in call order (the order is part of the model definition)."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def kernel(self, shape: tuple[int, ...], name: str) -> tf.Variable:
        fan_in = int(np.prod(shape[:-1]))  # uniform(+-sqrt(3/fan_in)): unit-variance outputs
        lim = np.sqrt(3.0 / fan_in)
        return tf.Variable(self.rng.uniform(-lim, lim, shape).astype(np.float32), name=name)

    def bias(self, n: int, name: str) -> tf.Variable:
        return tf.Variable(self.rng.uniform(-0.2, 0.2, (n,)).astype(np.float32), name=name)

    def embedding(self, shape: tuple[int, int], name: str) -> tf.Variable:
        return tf.Variable(self.rng.normal(0.0, 1.0, shape).astype(np.float32), name=name)


# --------------------------------------------------------------------------------------------
# models: tf.Module with one serving function; its argument names are the signature input names,
# the keys of the returned dict the signature output names
# --------------------------------------------------------------------------------------------
class GraphMLP(tf.Module):
    def __init__(self, seed: int):
        super().__init__(name="graph_mlp")
        s = Seeded(seed)
        self.w1, self.b1 = s.kernel((13, 16), "hidden/kernel"), s.bias(16, "hidden/bias")
        self.w2, self.b2 = s.kernel((16, 3), "probs/kernel"), s.bias(3, "probs/bias")

    @tf.function(input_signature=[tf.TensorSpec([None, 13], tf.float32, name="features")])
    def serve(self, features):
        h = tf.nn.relu(tf.matmul(features, self.w1) + self.b1)
        return {"probs": tf.nn.softmax(tf.matmul(h, self.w2) + self.b2)}


VOCAB = 20


class GraphMulti(tf.Module):
    def __init__(self, seed: int):
        super().__init__(name="graph_multi")
        s = Seeded(seed)
        self.num_w, self.num_b = s.kernel((8, 16), "numeric_dense/kernel"), s.bias(16, "numeric_dense/bias")
        self.emb = s.embedding((VOCAB, 4), "token_embedding")
        self.conv_w, self.conv_b = s.kernel((3, 4, 8), "token_conv/kernel"), s.bias(8, "token_conv/bias")
        self.mix_w, self.mix_b = s.kernel((24, 12), "mix/kernel"), s.bias(12, "mix/bias")
        self.proba_w, self.proba_b = s.kernel((12, 3), "proba/kernel"), s.bias(3, "proba/bias")
        self.score_w, self.score_b = s.kernel((12, 1), "score/kernel"), s.bias(1, "score/bias")

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 8], tf.float32, name="numeric"),
            tf.TensorSpec([None, 6], tf.int32, name="tokens"),
        ]
    )
    def serve(self, numeric, tokens):
        a = tf.nn.relu(tf.matmul(numeric, self.num_w) + self.num_b)  # [N, 16]
        e = tf.gather(self.emb, tokens)  # [N, 6, 4]
        c = tf.nn.relu(tf.nn.conv1d(e, self.conv_w, stride=1, padding="SAME") + self.conv_b)  # [N, 6, 8]
        p = tf.reduce_mean(c, axis=1)  # [N, 8]
        h = tf.tanh(tf.matmul(tf.concat([a, p], axis=1), self.mix_w) + self.mix_b)  # [N, 12]
        return {
            "proba": tf.nn.softmax(tf.matmul(h, self.proba_w) + self.proba_b),
            "score": tf.matmul(h, self.score_w) + self.score_b,
        }


@dataclass
class Spec:
    name: str
    module: Callable[[int], tf.Module]
    description: str
    computation: str
    int_high: dict[str, int]  # int32 input name -> exclusive upper bound of the ids


MODELS = [
    Spec(
        "graph_mlp", GraphMLP,
        "TF.js graph model (official converter, tf_saved_model -> tfjs_graph_model) of a tf.Module MLP: "
        "one float32 input 'features' [None, 13] -> Dense(16, relu) -> Dense(3, softmax) -> output 'probs'. "
        "Seeded random weights, no training.",
        "probs = softmax(relu(features @ hidden_kernel[13,16] + hidden_bias[16]) @ probs_kernel[16,3] + probs_bias[3])",
        {},
    ),
    Spec(
        "graph_multi", GraphMulti,
        "TF.js graph model (official converter, tf_saved_model -> tfjs_graph_model) of a tf.Module feature "
        "model with two named inputs, 'numeric' float32 [None, 8] and 'tokens' int32 [None, 6] (ids 0..19), "
        "and two named outputs, 'proba' [None, 3] (softmax) and 'score' [None, 1] (linear). "
        "Seeded random weights, no training.",
        "a = relu(numeric @ W[8,16] + b[16]); e = gather(embedding[20,4], tokens) -> [N,6,4]; "
        "c = relu(conv1d(e, K[3,4,8], stride 1, SAME) + b[8]) -> [N,6,8]; p = mean(c, axis 1) -> [N,8]; "
        "h = tanh(concat([a, p], axis 1) @ W[24,12] + b[12]); proba = softmax(h @ W[12,3] + b[3]); "
        "score = h @ W[12,1] + b[1]",
        {"tokens": VOCAB},
    ),
]  # fmt: skip


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez without timestamps: stored zip entries dated 1980-01-01, so reruns are byte-identical."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            zf.writestr(info, buf.getvalue())


def to_json(obj, indent: int = 0) -> str:
    """json.dumps(indent=2), except that short lists of scalars (shapes, names) stay on one line."""
    pad, inner = "  " * indent, "  " * (indent + 1)
    if isinstance(obj, dict) and obj:
        items = [f"{inner}{json.dumps(k)}: {to_json(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and obj and (any(isinstance(v, (dict, list)) for v in obj) or len(json.dumps(obj)) > 100):
        if all(isinstance(v, list) and not any(isinstance(w, (dict, list)) for w in v) for v in obj):
            return json.dumps(obj)  # list of shapes
        return "[\n" + ",\n".join(inner + to_json(v, indent + 1) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj)


def write_json(path: Path, obj) -> None:
    path.write_text(to_json(obj) + "\n")


def make_inputs(fn, seed: int, int_high: dict[str, int]) -> dict[str, np.ndarray]:
    """Seeded rows for each signature input, in the function's argument order."""
    rng = np.random.default_rng(seed + 1)
    xs = {}
    for spec in fn.input_signature:
        shape = (ROWS, *[int(d) for d in spec.shape[1:]])
        if spec.dtype.is_integer:
            x = rng.integers(0, int_high[spec.name], shape, dtype=np.int32)
            x[0, :2] = [0, int_high[spec.name] - 1]  # both ends of the id range appear
        else:
            x = rng.normal(0.0, 1.0, shape).astype(np.float32)
        xs[spec.name] = x
    return xs


def run_converter(saved_model: Path, out_dir: Path, extra: list[str] | None = None) -> list[str]:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    cmd = [str(CONVERTER), *CONVERTER_ARGS, *(extra or []), str(saved_model), str(out_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"tensorflowjs_converter failed: {' '.join(cmd)}")
    return cmd


def canonical_attr_order(model_json_path: Path) -> int:
    """Sort each graph node's ``attr`` keys in model.json; return how many nodes changed.

    The converter writes ``json.dump(MessageToDict(graph_def))``; NodeDef.attr is a protobuf map that
    grappler (C++) serializes in a per-process randomized order, so the attr key order of a node
    (e.g. ``num_args`` before or after ``leakyrelu_alpha``) changes from run to run. Nothing else in
    model.json is touched: the file is checked to round-trip byte-identically through json first,
    and is written back the way the converter writes it (``json.dump`` defaults).
    """
    text = model_json_path.read_text()
    model_json = json.loads(text)
    if json.dumps(model_json) != text:
        raise SystemExit(f"{model_json_path}: not in json.dump format, refusing to rewrite")
    topology = model_json["modelTopology"]
    nodes = list(topology.get("node", []))
    for func in topology.get("library", {}).get("function", []):
        nodes += func.get("nodeDef", [])
    changed = 0
    for node in nodes:
        if "attr" in node and list(node["attr"]) != sorted(node["attr"]):
            node["attr"] = dict(sorted(node["attr"].items()))
            changed += 1
    model_json_path.write_text(json.dumps(model_json))
    return changed


def dims(shape) -> list[int | None]:
    return [None if d is None else int(d) for d in shape]


def tool_versions() -> dict[str, str]:
    return {
        "python": ".".join(map(str, sys.version_info[:3])),
        "tensorflowjs": importlib.metadata.version("tensorflowjs"),
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "protobuf": importlib.metadata.version("protobuf"),
    }


# --------------------------------------------------------------------------------------------
# node / tfjs verification (the JavaScript runs once per tfjs build, in its own node process)
# --------------------------------------------------------------------------------------------
VERIFY_JS = r"""
'use strict';
const fs = require('fs');
const path = require('path');
const [tfjsPath, jobPath, outPath] = process.argv.slice(2);
const tf = require(tfjsPath);
const job = JSON.parse(fs.readFileSync(jobPath, 'utf8'));

function readNpz(file) {  // stored (uncompressed) zip of .npy files, as save_npz writes them
  const buf = fs.readFileSync(file);
  const out = {};
  let off = 0;
  while (off + 30 <= buf.length && buf.readUInt32LE(off) === 0x04034b50) {
    const size = buf.readUInt32LE(off + 18);
    const nameLen = buf.readUInt16LE(off + 26);
    const extraLen = buf.readUInt16LE(off + 28);
    const name = buf.toString('utf8', off + 30, off + 30 + nameLen);
    const start = off + 30 + nameLen + extraLen;
    const npy = buf.subarray(start, start + size);
    const hlen = npy.readUInt16LE(8);
    const header = npy.toString('latin1', 10, 10 + hlen);
    const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
    const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map(s => s.trim()).filter(Boolean).map(Number);
    const bytes = new Uint8Array(npy.subarray(10 + hlen));
    const [Ctor, dtype] = {'<f4': [Float32Array, 'float32'], '<i4': [Int32Array, 'int32']}[descr];
    const data = new Ctor(bytes.buffer, 0, bytes.byteLength / Ctor.BYTES_PER_ELEMENT);
    out[name.replace(/\.npy$/, '')] = {data, shape, dtype};
    off = start + size;
  }
  return out;
}

function readModel(dir) {
  const modelJson = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const weightSpecs = [];
  const parts = [];
  for (const group of modelJson.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) parts.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(parts);
  return {modelJson, weightSpecs, weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength)};
}

const shapeOf = t => t.shape;
function describe(r) {
  if (r instanceof tf.Tensor) return {kind: 'Tensor', shape: r.shape};
  if (Array.isArray(r)) return {kind: 'Tensor[]', shapes: r.map(shapeOf)};
  const o = {};
  for (const k of Object.keys(r)) o[k] = r[k].shape;
  return {kind: 'NamedTensorMap', shapes: o};
}
function maxAbs(t, want) {
  if (JSON.stringify(t.shape) !== JSON.stringify(want.shape)) return null;
  const g = t.dataSync();
  let e = 0;
  for (let i = 0; i < want.data.length; i++) e = Math.max(e, Math.abs(g[i] - want.data[i]));
  return e;
}
function errors(list, spec, golden) {  // list: tensors in spec.outputs order
  const o = {};
  spec.outputs.forEach((out, i) => { o[out.name] = maxAbs(list[i], golden[out.key]); });
  return o;
}
const attempt = async (f) => { try { return await f(); } catch (e) { return {error: String(e.message || e)}; } };

async function verify(spec) {
  const golden = readNpz(path.join(spec.dir, 'golden.npz'));
  const {modelJson, weightSpecs, weightData} = readModel(spec.dir);
  const r = {};
  const model = await tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: modelJson.modelTopology, weightSpecs, weightData, format: modelJson.format,
    generatedBy: modelJson.generatedBy, convertedBy: modelJson.convertedBy, signature: modelJson.signature,
    userDefinedMetadata: modelJson.userDefinedMetadata}));
  const feeds = () => {
    const m = {};
    for (const inp of spec.inputs) {
      const g = golden[inp.key];
      m[inp.name] = tf.tensor(g.data, g.shape, g.dtype);
    }
    return m;
  };
  const outNames = spec.outputs.map(o => o.name);
  r.model_inputs = model.inputs;
  r.model_outputs = model.outputs;
  r.inputNodes = model.inputNodes;
  r.outputNodes = model.outputNodes;
  r.structuredOutputKeys = model.modelStructuredOutputKeys == null ? null : model.modelStructuredOutputKeys;
  let y = model.execute(feeds(), outNames);
  r.execute_named = {returns: describe(y), max_abs_error: errors(outNames.length === 1 ? [y] : y, spec, golden)};
  y = await model.executeAsync(feeds(), outNames);
  r.executeAsync_named = {returns: describe(y), max_abs_error: errors(outNames.length === 1 ? [y] : y, spec, golden)};
  r.execute_default = await attempt(() => {
    const d = model.execute(feeds());
    const list = d instanceof tf.Tensor ? [d] : d;
    const errs = {};
    if (Array.isArray(list)) {
      list.forEach((t, i) => { const n = model.outputNodes[i]; const o = spec.outputs.find(x => x.name === n);
        errs[n] = o ? maxAbs(t, golden[o.key]) : null; });
    }
    return {returns: describe(d), outputNodes_order_max_abs_error: errs};
  });
  r.predict = await attempt(() => {
    const d = model.predict(feeds());
    const o = {returns: describe(d)};
    if (!(d instanceof tf.Tensor) && !Array.isArray(d)) {
      o.max_abs_error_by_key = {};
      for (const out of spec.outputs) {
        if (d[out.name]) o.max_abs_error_by_key[out.name] = maxAbs(d[out.name], golden[out.key]);
      }
    }
    return o;
  });
  r.execute_graph_tensor_names = await attempt(() => {
    const f = feeds();
    const byTensor = {};
    for (const inp of spec.inputs) byTensor[inp.tensor] = f[inp.name];
    const ys = model.execute(byTensor, spec.outputs.map(o => o.tensor));
    return {inputs: Object.keys(byTensor), outputs: spec.outputs.map(o => o.tensor),
            max_abs_error: errors(outNames.length === 1 ? [ys] : ys, spec, golden)};
  });
  if (spec.inputs.length === 1) {
    r.execute_positional_tensor = await attempt(() => {
      const ys = model.execute(feeds()[spec.inputs[0].name], outNames);
      return {max_abs_error: errors([ys], spec, golden)};
    });
  } else {
    r.execute_positional_array_in_function_order = await attempt(() => {
      const f = feeds();
      const ys = model.execute(spec.inputs.map(i => f[i.name]), outNames);
      return {max_abs_error: errors(ys, spec, golden)};
    });
  }
  r.loadGraphModelSync = await attempt(() => {
    const m2 = tf.loadGraphModelSync([modelJson, weightData]);
    const ys = m2.execute(feeds(), outNames);
    return {max_abs_error: errors(outNames.length === 1 ? [ys] : ys, spec, golden)};
  });
  r.without_signature = await attempt(async () => {
    const m3 = await tf.loadGraphModel(
      tf.io.fromMemory({modelTopology: modelJson.modelTopology, weightSpecs, weightData}));
    const o = {model_inputs: m3.inputs.map(i => i.name), model_outputs: m3.outputs.map(i => i.name),
               inputNodes: m3.inputNodes, outputNodes: m3.outputNodes};
    const named = await attempt(() => { m3.execute(feeds(), outNames); return 'ok'; });
    o.execute_with_signature_output_names = named === 'ok' ? 'ok' : named.error;
    return o;
  });
  return r;
}

(async () => {
  const out = {tfjs: tf.version.tfjs, backend: null, models: {}};
  await tf.setBackend('cpu');
  await tf.ready();
  out.backend = tf.getBackend();
  for (const spec of job) out.models[spec.label] = await attempt(() => verify(spec));
  fs.writeFileSync(outPath, JSON.stringify(out));
})().catch(e => { console.error(e); process.exit(1); });
"""

BUILDS = {
    "tf.node.js": "the package main (require('@tensorflow/tfjs') in node resolves to dist/tf.node.js)",
    "tf.min.js": "the ES5 UMD build dist/tf.min.js (the one jsengine_ml loads on ES5 engines such as Duktape)",
}


def run_node(job: list[dict], node: str) -> dict[str, dict]:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        script, job_path = Path(tmp) / "verify_graph.js", Path(tmp) / "job.json"
        script.write_text(VERIFY_JS)
        job_path.write_text(json.dumps(job))
        for build in BUILDS:
            target = TFJS_DIR if build == "tf.node.js" else TFJS_DIR / "dist" / build
            out = Path(tmp) / f"{build}.json"
            cmd = [node, str(script), str(target), str(job_path), str(out)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0 or not out.exists():
                raise SystemExit(f"node verification with {build} failed:\n{proc.stdout}\n{proc.stderr}")
            results[build] = json.loads(out.read_text())
    return results


def worst(errors: dict) -> float | None:
    vals = list(errors.values())
    return None if not vals or any(v is None for v in vals) else max(vals)


def tfjs_block(spec: Spec, io_desc: dict, results: dict[str, dict], node_version: str, variant: dict | None) -> dict:
    ins = [i["name"] for i in io_desc["inputs"]]
    outs = [o["name"] for o in io_desc["outputs"]]
    feeds = "{" + ", ".join(f"{n}: tf.tensor(..., [n, {', '.join(str(d) for d in i['shape'][1:])}], '{i['dtype']}')"
                            for n, i in zip(ins, io_desc["inputs"], strict=True)) + "}"
    first = results["tf.node.js"]["models"][spec.name]
    call = {
        "load": (
            "const model = await tf.loadGraphModel(tf.io.fromMemory({modelTopology: modelJson.modelTopology, "
            "weightSpecs: modelJson.weightsManifest.flatMap(g => g.weights), weightData /* ArrayBuffer: the shards "
            "concatenated in manifest order */, format: modelJson.format, generatedBy: modelJson.generatedBy, "
            "convertedBy: modelJson.convertedBy, signature: modelJson.signature, "
            "userDefinedMetadata: modelJson.userDefinedMetadata}))"
        ),
        "load_sync": "const model = tf.loadGraphModelSync([modelJson, weightData])  // no Promise needed",
        "run": f"const ys = model.execute({feeds}, {json.dumps(outs)})",
        "returns": (
            "one tf.Tensor (single output name given as an array of one still returns a Tensor)"
            if len(outs) == 1
            else f"tf.Tensor[] in the order of the output names passed ({', '.join(outs)})"
        ),
        "input_names": ins,
        "output_names": outs,
        "graph_input_tensors": [i["tensor"] for i in io_desc["inputs"]],
        "graph_output_tensors": [o["tensor"] for o in io_desc["outputs"]],
        "execute_or_executeAsync": (
            "execute (synchronous): the graph has no control flow or dynamic shapes; executeAsync gives the same "
            "values but prints a warning suggesting execute"
        ),
    }
    passed = {
        build: {
            "execute_named": worst(r["models"][spec.name]["execute_named"]["max_abs_error"]),
            "executeAsync_named": worst(r["models"][spec.name]["executeAsync_named"]["max_abs_error"]),
            "loadGraphModelSync": worst(r["models"][spec.name]["loadGraphModelSync"].get("max_abs_error", {})),
        }
        for build, r in results.items()
    }
    in_names = [i["name"] for i in first["model_inputs"]]
    out_names = [o["name"] for o in first["model_outputs"]]
    by_tensor = first["execute_graph_tensor_names"]
    no_sig = first["without_signature"]
    default = first["execute_default"]
    findings = [
        f"execute() takes the signature input names as dict keys ({', '.join(ins)}) and the signature output names "
        f"as output list ({', '.join(outs)}); the graph tensor names work too "
        f"({', '.join(by_tensor['inputs'])} -> {', '.join(by_tensor['outputs'])}: "
        f"{'ok' if 'max_abs_error' in by_tensor else by_tensor.get('error')}).",
        f"model.inputs[].name = {in_names} (the Placeholder node names, which equal the signature input names for a "
        f"tf.function export); model.outputs[].name = {out_names} (graph node names, NOT the signature output names "
        f"{sorted(outs)}); model.outputNodes = {first['outputNodes']} carries the signature output names, "
        f"model.inputNodes = {first['inputNodes']}.",
        f"Order: model.inputNodes / model.outputNodes follow the key order of model.json 'signature' "
        f"({first['inputNodes']} / {first['outputNodes']}); execute(inputs) without output names returns "
        f"{default['returns'].get('kind')} {default['returns'].get('shapes', default['returns'].get('shape'))} in "
        f"model.outputNodes order, and a positional Tensor[] input is matched to "
        f"model.inputNodes order. Pass a named dict and explicit output names.",
        "Without 'signature' in the artifacts handed to tfjs: model.outputNodes = "
        f"{no_sig.get('outputNodes')} and execute(inputs, {json.dumps(outs)}) fails: "
        f"{no_sig.get('execute_with_signature_output_names')!r}. Pass signature: modelJson.signature to "
        "tf.io.fromMemory (tf.loadGraphModelSync([modelJson, weightData]) takes it from modelJson).",
    ]
    if "execute_positional_array_in_function_order" in first:
        pos = first["execute_positional_array_in_function_order"]
        findings.append(
            f"execute([{', '.join(ins)}]) (Tensor[] in the function's argument order) fails: {pos.get('error')!r}"
            if "error" in pos else "execute(Tensor[] in argument order) works"
        )
    same = all(r["models"][spec.name] == first for r in results.values())
    findings.append(
        "dist/tf.min.js (ES5 build) loads and runs this graph model in node exactly like the package main: "
        + ("every recorded field is identical." if same else "see details (some fields differ).")
    )
    block = {
        "tfjs_version": results["tf.node.js"]["tfjs"],
        "backend": results["tf.node.js"]["backend"],
        "node": node_version,
        "tolerance": TOL,
        "passed": all(v is not None and v <= TOL for b in passed.values() for v in b.values()),
        "call": call,
        "model_inputs_carry_signature_names": sorted(in_names) == sorted(ins),
        "model_outputs_carry_signature_names": sorted(out_names) == sorted(outs),
        "model_outputNodes_carry_signature_names": sorted(first["outputNodes"]) == sorted(outs),
        "findings": findings,
        "max_abs_error": passed,
        "builds": BUILDS,
        "details": {
            build: (r["models"][spec.name] if build == "tf.node.js" or not same else "identical to tf.node.js")
            for build, r in results.items()
        },
    }
    if variant is not None:
        block["structured_outputs_variant"] = variant
    return block


def check_results(results: dict[str, dict], names: list[str]) -> list[str]:
    problems = []
    for build, r in results.items():
        for name in names:
            m = r["models"][name]
            if "error" in m:
                problems.append(f"{build} {name}: {m['error']}")
                continue
            for key in ("execute_named", "executeAsync_named", "loadGraphModelSync"):
                e = worst(m[key].get("max_abs_error", {})) if isinstance(m[key], dict) else None
                if e is None or e > TOL:
                    problems.append(f"{build} {name} {key}: max abs error {e} ({m[key]})")
    return problems


# --------------------------------------------------------------------------------------------
def build_model(spec: Spec, out_root: Path, tmp: Path) -> tuple[dict, Path]:
    module = spec.module(seed_of(spec.name))
    saved = tmp / f"{spec.name}_saved_model"
    tf.saved_model.save(module, str(saved), signatures={SIGNATURE: module.serve})
    out_dir = out_root / spec.name
    print(f"[{spec.name}] SavedModel -> tensorflowjs_converter -> {out_dir}", flush=True)
    run_converter(saved, out_dir)
    canonical_attr_order(out_dir / "model.json")

    xs = make_inputs(module.serve, seed_of(spec.name), spec.int_high)
    loaded = tf.saved_model.load(str(saved))
    fn = loaded.signatures[SIGNATURE]
    ys = {k: np.asarray(v, dtype=np.float32) for k, v in fn(**{k: tf.constant(v) for k, v in xs.items()}).items()}
    out_order = sorted(ys)  # the signature's (and tf.nest's) order of a dict of outputs

    single = len(xs) == 1 and len(ys) == 1
    x_key = {n: ("x" if single else f"x_{n}") for n in xs}
    y_key = {n: ("y" if single else f"y_{n}") for n in ys}
    save_npz(out_dir / "golden.npz", {**{x_key[n]: a for n, a in xs.items()}, **{y_key[n]: ys[n] for n in out_order}})

    model_json = json.loads((out_dir / "model.json").read_text())
    sig = model_json["signature"]
    io_desc = {
        "inputs": [
            {"name": n, "dtype": str(a.dtype), "shape": dims(fn.structured_input_signature[1][n].shape),
             "tensor": sig["inputs"][n]["name"], "golden_key": x_key[n]}
            for n, a in xs.items()
        ],
        "outputs": [
            {"name": n, "dtype": str(ys[n].dtype), "shape": dims(fn.structured_outputs[n].shape),
             "tensor": sig["outputs"][n]["name"], "golden_key": y_key[n]}
            for n in out_order
        ],
    }  # fmt: skip
    ops = Counter(node["op"] for node in model_json["modelTopology"]["node"])
    shards = sorted(p.name for p in out_dir.glob("*.bin"))
    reference = {
        "name": spec.name,
        "description": spec.description,
        "format": model_json["format"],
        "computation": spec.computation,
        "signature": {
            "name": SIGNATURE,
            **io_desc,
            "model_json_signature_order": {
                "inputs": list(sig["inputs"]),
                "outputs": list(sig["outputs"]),
                "note": (
                    "order of the keys in model.json 'signature' (the converter serializes protobuf maps in "
                    "upb hash order, stable but neither argument nor alphabetical order); tfjs takes "
                    "model.inputNodes / model.outputNodes, the positional input order and the default "
                    "output order of execute() from it"
                ),
            },
        },
        "graph": {
            "ops": dict(sorted(ops.items())),
            "nodes": sum(ops.values()),
            "weights": sum(len(g["weights"]) for g in model_json["weightsManifest"]),
            "weight_bytes": sum((out_dir / s).stat().st_size for s in shards),
            "producer": model_json["modelTopology"]["versions"]["producer"],
            "userDefinedMetadata": model_json.get("userDefinedMetadata"),
        },
        "golden": {
            "file": "golden.npz",
            "rows": ROWS,
            "keys": ("x = the single input, y = the single output" if single else
                     "x_<signature input name>, y_<signature output name>"),
            "source": (
                "outputs of tf.saved_model.load(<saved_model>).signatures['serving_default'](**inputs) "
                "(TensorFlow, float32 CPU, 1 thread, op determinism on); inputs: numpy default_rng(crc32(name) + 1), "
                "float32 N(0, 1), int32 ids uniform in [0, vocab) with row 0 starting 0, vocab-1"
            ),
        },
        "files": ["model.json", *shards, "golden.npz", "reference.json"],
        "made_by": {
            "script": "scripts/make_graph_models.py (run with the pinned converter venv: /work/convvenv/bin/python)",
            "source_model": (
                f"tf.Module '{spec.name}' with a tf.function(input_signature=[...]) 'serve' returning a dict, "
                "exported with tf.saved_model.save(module, dir, signatures={'serving_default': module.serve}); "
                "the SavedModel is not kept"
            ),
            "weights": "numpy default_rng(zlib.crc32(name)): kernels uniform(+-sqrt(3/fan_in)), biases "
                       "uniform(+-0.2), embeddings N(0, 1); no training",
            "converter_command": " ".join(["tensorflowjs_converter", *CONVERTER_ARGS, "<saved_model_dir>",
                                           f"jsengine_ml/reference_models/{spec.name}"]),
            "postprocessing": (
                "model.json: the keys of every node's 'attr' map sorted (the converter writes them in the "
                "randomized order of a C++ protobuf map, so they differ from run to run); nothing else changed "
                "(json.dump format kept, signature key order as the converter wrote it)"
            ),
            "tools": tool_versions(),
            "model_json_fields": {"generatedBy": model_json.get("generatedBy"),
                                  "convertedBy": model_json.get("convertedBy"), "keys": list(model_json)},
        },
    }  # fmt: skip
    return reference, saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", help="model names (default: all)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--no-verify", action="store_true", help="skip the node/tfjs check (keeps the old 'tfjs' block)")
    args = ap.parse_args()
    specs = [s for s in MODELS if not args.only or s.name in args.only]
    unknown = set(args.only or []) - {s.name for s in MODELS}
    if unknown:
        raise SystemExit(f"unknown models: {sorted(unknown)}")
    if not CONVERTER.exists():
        raise SystemExit(f"{CONVERTER} missing: use the pinned converter venv (scripts/make_converter_fixtures.sh)")
    node = shutil.which("node")
    if not args.no_verify and (node is None or not TFJS_DIR.is_dir()):
        raise SystemExit("node or jsengine_ml/js/node_modules/@tensorflow/tfjs missing: pass --no-verify")
    args.out.mkdir(parents=True, exist_ok=True)

    previous_tfjs = {}  # read before the converter empties the output folders
    for spec in specs:
        old = args.out / spec.name / "reference.json"
        if old.exists():
            previous_tfjs[spec.name] = json.loads(old.read_text()).get("tfjs")

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        refs, saved = {}, {}
        for spec in specs:
            refs[spec.name], saved[spec.name] = build_model(spec, args.out, tmp)

        if args.no_verify:
            for spec in specs:
                if previous_tfjs.get(spec.name) is not None:
                    refs[spec.name]["tfjs"] = previous_tfjs[spec.name]
        else:
            node_version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
            job = []
            for spec in specs:
                desc = refs[spec.name]["signature"]
                job.append({"label": spec.name, "dir": str(args.out / spec.name),
                            "inputs": [{"name": i["name"], "key": i["golden_key"], "tensor": i["tensor"]}
                                       for i in desc["inputs"]],
                            "outputs": [{"name": o["name"], "key": o["golden_key"], "tensor": o["tensor"]}
                                        for o in desc["outputs"]]})  # fmt: skip
            variant_dir = None
            if "graph_multi" in saved:
                print("[graph_multi] --use_structured_outputs_names variant (temp dir, not kept)", flush=True)
                variant_dir = tmp / "graph_multi_structured"
                run_converter(saved["graph_multi"], variant_dir, ["--use_structured_outputs_names", "true"])
                shutil.copy(args.out / "graph_multi" / "golden.npz", variant_dir / "golden.npz")
                base = next(j for j in job if j["label"] == "graph_multi")
                job.append({**base, "label": "graph_multi_structured", "dir": str(variant_dir)})
            print(f"verifying in node ({', '.join(BUILDS)})", flush=True)
            results = run_node(job, node)
            problems = check_results(results, [s.name for s in specs])
            for spec in specs:
                variant = None
                if spec.name == "graph_multi":
                    vmj = json.loads((variant_dir / "model.json").read_text())
                    vres = results["tf.node.js"]["models"]["graph_multi_structured"]
                    variant = {
                        "converter_flag": "--use_structured_outputs_names true",
                        "userDefinedMetadata": vmj.get("userDefinedMetadata"),
                        "model_json_signature_outputs_order": list(vmj["signature"]["outputs"]),
                        "predict": vres["predict"],
                        "execute_default": vres["execute_default"],
                        "execute_named": vres["execute_named"],
                        "finding": (
                            "with this flag the converter adds userDefinedMetadata.structuredOutputKeys (the output "
                            "names sorted) and tfjs 4.22 model.predict() returns a NamedTensorMap, but it pairs the "
                            "sorted keys with the tensors in model.outputNodes order (model.json signature order), "
                            "so keys and tensors can be mislabeled; see 'predict' (max_abs_error_by_key null = "
                            "shape mismatch). execute(inputs, [names]) with explicit output names stays correct. "
                            "Not kept: the shipped model uses the converter default (no flag)."
                        ),
                        "tf.min.js_predict": results["tf.min.js"]["models"]["graph_multi_structured"]["predict"],
                    }
                refs[spec.name]["tfjs"] = tfjs_block(spec, refs[spec.name]["signature"], results, node_version, variant)
            if problems:
                for spec in specs:
                    write_json(args.out / spec.name / "reference.json", refs[spec.name])
                raise SystemExit("tfjs verification failed:\n  " + "\n  ".join(problems))

        for spec in specs:
            write_json(args.out / spec.name / "reference.json", refs[spec.name])
    for spec in specs:
        files = sorted(p.name for p in (args.out / spec.name).iterdir())
        print(f"[{spec.name}] {', '.join(files)}")


if __name__ == "__main__":
    main()
