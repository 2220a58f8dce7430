// tfjs 4.22 in Node (pure-JS "cpu" backend, the kernels tfjs runs in the embedded engines too):
// every workload in one process, same rows as the other contenders.
// Usage: node node_tfjs_bench.js config.json   (config written by jsengine_ml/bench/contenders.py)
// config: {tfjs, sizes, repeats, cell_budget_s, max_cell_s, probe_rows, latency_samples, latency_budget_s,
//          latency_min_samples,
//          check_rows, out_json, models: [{name, model_dir, x_path, dtype, input_shape, n_features, out_prefix}]}
// Writes out_json: {tfjs, backend, node, models: {name: {load_s, rss_delta, times, runs, skipped, latency}}}
// and, per model, the outputs of the check rows (<out_prefix>.check.bin) and of the last timed run
// of each batch size (<out_prefix>.<n>.bin), float32 little-endian, for the agreement checks.
'use strict';
const fs = require('fs');
const path = require('path');

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const origWarn = console.warn, origLog = console.log;
console.warn = () => {}; console.log = () => {};  // tfjs' "use tfjs-node" banner
const tf = require(cfg.tfjs);
console.warn = origWarn; console.log = origLog;

function now() { return Number(process.hrtime.bigint()) / 1e9; }
function median(a) { const s = a.slice().sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; }
function save(file, values) { fs.writeFileSync(file, Buffer.from(values.buffer, values.byteOffset, values.byteLength)); }

async function loadModel(dir, inputShape) {
  const spec = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const specs = [], datas = [];
  for (const g of spec.weightsManifest) {
    for (const w of g.weights) specs.push(w);
    for (const p of g.paths) datas.push(fs.readFileSync(path.join(dir, p)));
  }
  const joined = Buffer.concat(datas);
  const weightData = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength);
  const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: spec.modelTopology, weightSpecs: specs, weightData }));
  tf.tidy(() => { model.predict(tf.zeros([1].concat(inputShape))); });
  return model;
}

// Seconds one run at batch n should take (same rule as jsengine_ml/bench/measure.py: estimate).
function estimate(points, n) {
  if (!points.length) return 0;
  const [n1, t1] = points[points.length - 1];
  if (points.length === 1) return t1 * n / n1;
  const [n0, t0] = points[points.length - 2];
  return t1 + Math.max(0, (t1 - t0) / (n1 - n0)) * (n - n1);
}

function timeCell(run, n, estimate) {
  if (estimate * 4 < cfg.cell_budget_s) run(n);  // warm-up unless expensive
  const ts = []; const start = now(); let out = null;
  for (let r = 0; r < cfg.repeats; r++) {
    const t = now(); out = run(n); ts.push(now() - t);
    if (now() - start > cfg.cell_budget_s) break;
  }
  return { seconds: median(ts), runs: ts.length, out };
}

async function benchModel(m) {
  const buf = fs.readFileSync(m.x_path);
  const Typed = m.dtype === 'int32' ? Int32Array : Float32Array;
  const all = new Typed(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const rss0 = process.memoryUsage().rss;
  const t0 = now();
  const model = await loadModel(m.model_dir, m.input_shape);
  const res = { load_s: now() - t0, rss_delta: process.memoryUsage().rss - rss0, times: {}, runs: {}, skipped: {}, latency: [] };
  function run(n) {
    const x = all.subarray(0, n * m.n_features);
    return tf.tidy(() => model.predict(tf.tensor(x, [n].concat(m.input_shape), m.dtype)).dataSync());
  }
  save(m.out_prefix + '.check.bin', run(cfg.check_rows));
  const points = [], probe = cfg.probe_rows;
  for (const n of cfg.sizes) {
    let est = estimate(points, n);
    if (est > cfg.max_cell_s && points.length === 1 && probe && points[0][0] < probe && probe < n &&
        estimate(points, probe) <= cfg.max_cell_s) {
      const t = now(); run(probe); points.push([probe, now() - t]);  // a second point, as in measure.py
      est = estimate(points, n);
    }
    if (est > cfg.max_cell_s) { res.skipped[n] = `estimated ${est.toFixed(1)} s per run > ${cfg.max_cell_s} s`; continue; }
    const cell = timeCell(run, n, est);
    res.times[n] = cell.seconds; res.runs[n] = cell.runs;
    save(m.out_prefix + '.' + n + '.bin', cell.out);
    points.push([n, cell.seconds]);
  }
  run(1);
  const start = now();
  for (let i = 0; i < cfg.latency_samples; i++) {
    const t = now(); run(1); res.latency.push(now() - t);
    if (now() - start > cfg.latency_budget_s && res.latency.length >= cfg.latency_min_samples) break;
  }
  model.dispose();
  return res;
}

async function main() {
  await tf.setBackend('cpu');
  await tf.ready();
  const result = { tfjs: tf.version.tfjs, backend: tf.getBackend(), node: process.version, models: {} };
  for (const m of cfg.models) {
    try { result.models[m.name] = await benchModel(m); } catch (e) { result.models[m.name] = { error: String(e && e.stack || e) }; }
  }
  fs.writeFileSync(cfg.out_json, JSON.stringify(result));
}
main().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
