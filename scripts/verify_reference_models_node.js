#!/usr/bin/env node
// Load TF.js Layers exports with tfjs 4.22 in node (no fetch: files are read with fs and handed to
// tf.io.fromMemory), predict each directory's golden.npz `x` and compare with its golden `y`.
//
//   node scripts/verify_reference_models_node.js [--tol 1e-5] [--json] [DIR ...]
//
// Without DIRs every directory under jsengine_ml/reference_models is checked. A DIR must hold
// model.json, its weight shards and golden.npz (written by np.savez, i.e. an uncompressed zip).
// Prints one line per model (or, with --json, one JSON document on stdout); exits 1 when a model
// is off by more than the tolerance or fails to load.
'use strict';
const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const tf = require(path.join(ROOT, 'jsengine_ml', 'js', 'node_modules', '@tensorflow', 'tfjs'));

// --- minimal .npz (stored zip) + .npy reader --------------------------------------------------
function readNpz(file) {
  const buf = fs.readFileSync(file);
  const out = {};
  let off = 0;
  while (off + 30 <= buf.length && buf.readUInt32LE(off) === 0x04034b50) {
    const flags = buf.readUInt16LE(off + 6);
    const method = buf.readUInt16LE(off + 8);
    let size = buf.readUInt32LE(off + 18);
    const nameLen = buf.readUInt16LE(off + 26);
    const extraLen = buf.readUInt16LE(off + 28);
    const name = buf.toString('utf8', off + 30, off + 30 + nameLen);
    const extraStart = off + 30 + nameLen;
    if (size === 0xffffffff) { // zip64: sizes live in extra field 0x0001 (uncompressed, compressed)
      let e = extraStart;
      while (e < extraStart + extraLen) {
        const id = buf.readUInt16LE(e);
        const len = buf.readUInt16LE(e + 2);
        if (id === 1) { size = Number(buf.readBigUInt64LE(e + 4 + 8)); break; }
        e += 4 + len;
      }
    }
    if (method !== 0 || (flags & 8)) throw new Error(`${file}: ${name} is compressed; use np.savez`);
    const dataStart = extraStart + extraLen;
    out[name.replace(/\.npy$/, '')] = parseNpy(buf.subarray(dataStart, dataStart + size), `${file}:${name}`);
    off = dataStart + size;
  }
  return out;
}

function parseNpy(buf, where) {
  if (buf.readUInt8(0) !== 0x93 || buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${where}: not .npy`);
  const major = buf.readUInt8(6);
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', hstart, hstart + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${where}: fortran order`);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map(s => s.trim()).filter(Boolean).map(Number);
  const raw = buf.subarray(hstart + hlen);
  const copy = new Uint8Array(raw); // aligned copy
  const types = {'<f4': [Float32Array, 'float32'], '<i4': [Int32Array, 'int32']};
  if (!(descr in types)) throw new Error(`${where}: dtype ${descr} not supported (float32/int32 only)`);
  const [Ctor, dtype] = types[descr];
  return {data: new Ctor(copy.buffer, 0, copy.byteLength / Ctor.BYTES_PER_ELEMENT), shape, dtype};
}

// --- model loading ----------------------------------------------------------------------------
async function loadModel(dir) {
  const modelJson = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const weightSpecs = [];
  const parts = [];
  for (const group of modelJson.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) parts.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(parts);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return tf.loadLayersModel(tf.io.fromMemory({modelTopology: modelJson.modelTopology, weightSpecs, weightData}));
}

async function verify(dir, tol) {
  const name = path.basename(path.resolve(dir));
  try {
    const golden = readNpz(path.join(dir, 'golden.npz'));
    const model = await loadModel(dir);
    // One input and output: x / y. Several: x_<input name> / y_<output name> (model order).
    const named = !('x' in golden);
    const inKeys = named ? model.inputNames.map(n => 'x_' + n) : ['x'];
    const outKeys = named ? model.outputNames.map(n => 'y_' + n) : ['y'];
    const xs = inKeys.map(k => tf.tensor(golden[k].data, golden[k].shape, golden[k].dtype));
    let ys = model.predict(xs.length === 1 ? xs[0] : xs);
    if (!Array.isArray(ys)) ys = [ys];
    let maxErr = 0, shapeError = null;
    outKeys.forEach((key, j) => {
      const got = ys[j].dataSync(), want = golden[key].data;
      if (JSON.stringify(ys[j].shape) !== JSON.stringify(golden[key].shape)) {
        shapeError = `${key}: shape ${ys[j].shape} != ${golden[key].shape}`;
      }
      for (let i = 0; i < want.length; i++) maxErr = Math.max(maxErr, Math.abs(got[i] - want[i]));
    });
    if (shapeError) maxErr = Infinity;
    tf.dispose([...xs, ...ys]);
    model.dispose();
    return {name, dir, rows: golden[inKeys[0]].shape[0], maxAbsError: maxErr,
            ok: !shapeError && maxErr <= tol, error: shapeError};
  } catch (err) {
    return {name, dir, ok: false, maxAbsError: null, error: String(err && err.stack || err)};
  }
}

async function main() {
  const args = process.argv.slice(2);
  let tol = 1e-5;
  let asJson = false;
  const dirs = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--tol') tol = Number(args[++i]);
    else if (args[i] === '--json') asJson = true;
    else dirs.push(args[i]);
  }
  if (dirs.length === 0) {
    const base = path.join(ROOT, 'jsengine_ml', 'reference_models');
    for (const d of fs.readdirSync(base).sort()) {
      const file = path.join(base, d, 'model.json');
      if (fs.existsSync(file) && (JSON.parse(fs.readFileSync(file, 'utf8')).format || 'layers-model') === 'layers-model') {
        dirs.push(path.join(base, d));  // graph models are checked by scripts/make_graph_models.py
      }
    }
  }
  const results = [];
  for (const d of dirs) results.push(await verify(d, tol));
  if (asJson) {
    process.stdout.write(JSON.stringify({tfjs: tf.version.tfjs, tol, results}) + '\n');
  } else {
    console.log(`tfjs ${tf.version.tfjs}, backend ${tf.getBackend()}, tolerance ${tol}`);
    for (const r of results) {
      const err = r.maxAbsError == null ? 'n/a' : r.maxAbsError.toExponential(3);
      console.log(`${r.ok ? 'OK  ' : 'FAIL'} ${r.name.padEnd(16)} rows=${r.rows ?? '-'} max_abs_err=${err}` +
                  (r.error ? `\n     ${r.error}` : ''));
    }
  }
  process.exitCode = results.every(r => r.ok) ? 0 : 1;
}

main();
