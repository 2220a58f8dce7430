// tfjs 4.22 in Node (pure-JS "cpu" backend, the same kernels the embedded engines run), same model.
// Usage: node node_tfjs_bench.js config.json   (config written by jsengine_ml/bench.py)
// config: {tfjs, model_dir, x_path, n_features, input_shape, sizes, repeats, cell_budget_s,
//          latency_samples, latency_budget_s, check_rows, out_check, out_json}
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

async function main() {
  await tf.setBackend('cpu');
  await tf.ready();
  const buf = fs.readFileSync(cfg.x_path);
  const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const spec = JSON.parse(fs.readFileSync(path.join(cfg.model_dir, 'model.json'), 'utf8'));
  const specs = [], datas = [];
  for (const g of spec.weightsManifest) {
    for (const w of g.weights) specs.push(w);
    for (const p of g.paths) datas.push(fs.readFileSync(path.join(cfg.model_dir, p)));
  }
  const joined = Buffer.concat(datas);
  const weightData = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength);
  const rss0 = process.memoryUsage().rss;
  let t0 = now();
  const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: spec.modelTopology, weightSpecs: specs, weightData }));
  tf.tidy(() => { model.predict(tf.zeros([1].concat(cfg.input_shape))); });
  const loadS = now() - t0;
  const rssDelta = process.memoryUsage().rss - rss0;
  const nf = cfg.n_features;
  function run(n) {
    const x = all.subarray(0, n * nf);
    return tf.tidy(() => model.predict(tf.tensor(x, [n].concat(cfg.input_shape))).dataSync());
  }
  const check = run(cfg.check_rows);
  fs.writeFileSync(cfg.out_check, Buffer.from(check.buffer, check.byteOffset, check.byteLength));
  const result = { load_s: loadS, rss_delta: rssDelta, tfjs: tf.version.tfjs, backend: tf.getBackend(),
    node: process.version, times: {}, latency: [] };
  for (const n of cfg.sizes) {
    run(n);  // warm
    const ts = []; const start = now();
    for (let r = 0; r < cfg.repeats; r++) {
      const t = now(); run(n); ts.push(now() - t);
      if (ts.length >= 2 && now() - start > cfg.cell_budget_s) break;
    }
    result.times[n] = median(ts);
  }
  const start = now();
  for (let i = 0; i < cfg.latency_samples; i++) {
    const t = now(); run(1); result.latency.push(now() - t);
    if (now() - start > cfg.latency_budget_s) break;
  }
  fs.writeFileSync(cfg.out_json, JSON.stringify(result));
}
main().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
