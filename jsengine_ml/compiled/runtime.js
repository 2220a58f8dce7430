/*
 * jsengine-ml compiled runtime: runs a plan (see jsengine_ml/compiled/plan.py) over one linear
 * memory per model with either kernel set: WebAssembly (kernels.wasm, where the engine has
 * WebAssembly) or ES5 (kernels_es5.js, with weight-literal specializations on interpreters).  ES5.
 *
 * Memory layout of a model: [kernel set's own area | weights | slot 0 | slot 1 | ...]. Slots are
 * sized for `capacity` batch rows; reserve() grows them (weights stay where they are), run() then
 * executes the ops for n <= capacity rows with no allocation. The host may write inputs into and
 * read outputs from the memory directly (zero-copy engines), or go through predict().
 * Installed as `__jsml.compiled` on the global object, or on `__jsml_scope` when a variable of that
 * name is in scope (a bundle keeps its own copy that way, sealed from the host's).
 */
(function (g) {
  var ns = g.__jsml = g.__jsml || {};
  var models = {};
  var wasmModule = null;
  var heapBase = 0;  // where the wasm module's own data and stack end (its __heap_base)
  // A minimal module holding one f32x4.relaxed_madd: validates where relaxed SIMD (FMA) is available.
  var RELAXED_SIMD_PROBE = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x01, 0x60, 0x03, 0x7b,
    0x7b, 0x7b, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00, 0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20,
    0x02, 0xfd, 0x85, 0x02, 0x0b];
  // Rows per pass over the ops: a big batch runs in slices whose activations stay in cache.
  var SLICE_BYTES = 262144;
  var PAGE = 65536;

  function align(v) { return (v + 15) & ~15; }

  function wasmKernels(pages) {
    var memory = new WebAssembly.Memory({ initial: pages });
    var instance = new WebAssembly.Instance(wasmModule, { env: { memory: memory } });
    return {
      kind: 'wasm',
      fns: instance.exports,
      buffer: function () { return memory.buffer; },
      ensure: function (bytes) {
        var have = memory.buffer.byteLength;
        if (bytes > have) { memory.grow(Math.ceil((bytes - have) / PAGE)); }
      }
    };
  }

  function es5Kernels(bytes) {
    var heap = new ArrayBuffer(bytes);
    var set = ns.es5Kernels.create(heap);
    return {
      kind: 'es5',
      fns: set,
      set: set,
      buffer: function () { return heap; },
      ensure: function (need, keep) {
        if (need <= heap.byteLength) { return; }
        var grown = new ArrayBuffer(Math.max(need, 2 * heap.byteLength));
        new Uint8Array(grown).set(new Uint8Array(heap, 0, keep));
        heap = grown;
        set.setHeap(heap);
      }
    };
  }

  function decodeArg(a) {
    if (typeof a === 'number') { return a; }
    if (a[0] === 'f') { return a[1] === 'inf' ? Infinity : (a[1] === '-inf' ? -Infinity : NaN); }
    return a;
  }

  // Resolve every op's arguments for the current slot offsets; n-dependent ones are noted.
  function bind(m) {
    var ops = m.plan.ops, bound = [];
    for (var i = 0; i < ops.length; i++) {
      var spec = ops[i], args = [], rows = [], slots = [];
      for (var j = 0; j < spec[1].length; j++) {
        var a = decodeArg(spec[1][j]);
        if (typeof a === 'number') { args.push(a); continue; }
        if (a[0] === 's') { args.push(m.slotAt[a[1]] + a[2]); slots.push(j, 4 * a[3]); continue; }
        if (a[0] === 'w') { args.push(m.weightsAt + a[1]); continue; }
        if (a[0] === 'n') { args.push(0); rows.push(j, a[1]); continue; }
        throw new Error('jsengine-ml compiled: bad plan argument ' + JSON.stringify(a));
      }
      var fn = m.kernels.fns[spec[0]];
      if (typeof fn !== 'function') { throw new Error('jsengine-ml compiled: the ' + m.kernels.kind + ' kernel set has no kernel ' + spec[0]); }
      var special = m.specialized[i];
      if (special === undefined) {
        special = m.specialize && m.kernels.set && m.kernels.set.specialize ? m.kernels.set.specialize(spec[0], args) : null;
        m.specialized[i] = special;
      }
      bound.push({ name: spec[0], layer: spec[2], fn: special || fn, args: args, base: args.slice(), rows: rows,
        slots: slots });
    }
    m.bound = bound;
  }

  // Rows per slice: the bytes one row touches (every slot's row) fit SLICE_BYTES.
  function sliceRows(plan) {
    var rowBytes = 0;
    for (var k = 0; k < plan.slots.length; k++) { rowBytes += 4 * plan.slots[k][0]; }
    return Math.max(1, Math.floor(SLICE_BYTES / Math.max(rowBytes, 1)));
  }

  // Input and output slots (io) hold `capacity` rows; the others one slice of rows.
  function layout(m, capacity) {
    var plan = m.plan, at = m.weightsAt + align(plan.weightBytes), slotAt = [];
    for (var i = 0; i < plan.slots.length; i++) {
      var s = plan.slots[i], rows = s[2] ? capacity : Math.min(capacity, m.slice);
      slotAt.push(at);
      at += align(4 * (s[0] * rows + s[1]));
    }
    return { slotAt: slotAt, end: at };
  }

  function portsInfo(m) {
    var info = { capacity: m.capacity, sliceRows: m.slice, inputs: [], outputs: [] };
    for (var i = 0; i < m.plan.inputs.length; i++) { info.inputs.push(m.slotAt[m.plan.inputs[i].slot]); }
    for (var j = 0; j < m.plan.outputs.length; j++) { info.outputs.push(m.slotAt[m.plan.outputs[j].slot]); }
    return info;
  }

  function rowSize(port) {
    var s = 1;
    for (var i = 0; i < port.shape.length; i++) { s *= port.shape[i]; }
    return s;
  }

  // Run the ops for n rows: in slices of m.slice rows, each op on rows [first, first + count).
  function run(m, n) {
    if (n > m.capacity) { throw new RangeError('jsengine-ml compiled: ' + n + ' rows exceed the reserved ' + m.capacity); }
    for (var first = 0; first < n || first === 0; first += m.slice) {
      runSlice(m, first, Math.min(m.slice, n - first));
      if (n === 0) { break; }
    }
    return 0;
  }

  function runSlice(m, first, count) {
    var bound = m.bound;
    for (var i = 0; i < bound.length; i++) {
      var op = bound[i], args = op.args, rows = op.rows, slots = op.slots, j;
      for (j = 0; j < rows.length; j += 2) { args[rows[j]] = count * rows[j + 1]; }
      for (j = 0; j < slots.length; j += 2) { args[slots[j]] = op.base[slots[j]] + first * slots[j + 1]; }
      var status = op.fn.apply(null, args);
      if (status !== 0) {
        if (op.name === 'embedding') {  // status - 1: the position in this slice's ids (argument 0)
          var position = status - 1;
          for (j = 0; j < slots.length; j += 2) { if (slots[j] === 0) { position += first * slots[j + 1] / 4; } }
          throw new RangeError('jsengine-ml compiled: layer ' + op.layer + ': token id at position ' + position +
            ' is outside the vocabulary [0, ' + args[4] + ')');
        }
        throw new Error('jsengine-ml compiled: kernel ' + op.name + ' of layer ' + op.layer + ' failed with status ' + status);
      }
    }
    return 0;
  }

  function model(id) {
    var m = models[id];
    if (!m) { throw new Error('jsengine-ml compiled: model ' + id + ' is not loaded (closed?)'); }
    return m;
  }

  ns.compiled = {
    // Compile the WebAssembly kernel set once per engine (bytes: Uint8Array of kernels.wasm).
    init: function (bytes) {
      if (wasmModule === null && typeof WebAssembly === 'object' && bytes && bytes.length) {
        wasmModule = new WebAssembly.Module(bytes);
        var probe = new WebAssembly.Instance(wasmModule, { env: { memory: new WebAssembly.Memory({ initial: 16 }) } });
        heapBase = probe.exports.__heap_base.value;
      }
      return wasmModule !== null;
    },
    hasWasm: function () { return wasmModule !== null; },
    // Whether this engine's WebAssembly has relaxed SIMD (the host then sends kernels_relaxed.wasm).
    relaxedSimd: function () {
      try { return typeof WebAssembly === 'object' && WebAssembly.validate(new Uint8Array(RELAXED_SIMD_PROBE)); }
      catch (e) { return false; }
    },
    // planJson: the plan; weights: Uint8Array of the packed weights; useWasm / specialize: booleans.
    load: function (id, planJson, weights, useWasm, specialize) {
      var plan = typeof planJson === 'string' ? JSON.parse(planJson) : planJson;
      if (plan.abi !== 1) { throw new Error('jsengine-ml compiled: plan ABI ' + plan.abi + ' is not supported'); }
      if (weights.length !== plan.weightBytes) {
        throw new Error('jsengine-ml compiled: ' + weights.length + ' weight bytes given, the plan needs ' + plan.weightBytes);
      }
      if (useWasm && wasmModule === null) { throw new Error('jsengine-ml compiled: WebAssembly kernels are not initialized'); }
      var m = { plan: plan, capacity: 0, specialize: !!specialize, specialized: [] };
      var weightsAt = align(useWasm ? heapBase : 16);
      m.slice = sliceRows(plan);
      var first = layout({ plan: plan, weightsAt: weightsAt, slice: m.slice }, 1).end;
      m.kernels = useWasm ? wasmKernels(Math.ceil(first / PAGE)) : es5Kernels(first);
      m.weightsAt = weightsAt;
      new Uint8Array(m.kernels.buffer(), weightsAt, weights.length).set(weights);
      models[id] = m;
      ns.compiled.reserve(id, 1);
      return JSON.stringify({ kernels: m.kernels.kind, ops: plan.ops.length, weightsAt: weightsAt });
    },
    // Make room for `rows` rows; returns {capacity, inputs: [byte offsets], outputs: [...]} as JSON.
    reserve: function (id, rows) {
      var m = model(id);
      if (rows > m.capacity || !m.bound) {
        var capacity = Math.max(rows, m.capacity, 1), lay = layout(m, capacity);
        m.kernels.ensure(lay.end, m.weightsAt + m.plan.weightBytes);
        m.capacity = capacity;
        m.slotAt = lay.slotAt;
        bind(m);
      }
      return JSON.stringify(portsInfo(m));
    },
    // The model's memory (an ArrayBuffer): zero-copy engines map it once per reserve().
    buffer: function (id) { return model(id).kernels.buffer(); },
    run: function (id, n) { return run(model(id), n); },
    // One input, one output, through the engine's data path: copy in, run, hand back a view.
    predict: function (data, shape, id) {
      var m = model(id), n = shape[0];
      if (m.plan.inputs.length !== 1 || m.plan.outputs.length !== 1) {
        throw new Error('jsengine-ml compiled: predict() takes one input and gives one output; use run()');
      }
      if (n > m.capacity) { ns.compiled.reserve(id, n); }
      var input = m.plan.inputs[0], output = m.plan.outputs[0];
      if (data.length !== n * rowSize(input)) {
        throw new RangeError('jsengine-ml compiled: ' + data.length + ' input values for ' + n + ' rows of ' + rowSize(input));
      }
      var InT = input.dtype === 'int32' ? Int32Array : Float32Array;
      new InT(m.kernels.buffer(), m.slotAt[input.slot], n * rowSize(input)).set(data.subarray(0, n * rowSize(input)));
      run(m, n);
      var OutT = output.dtype === 'int32' ? Int32Array : Float32Array;
      return { data: new OutT(m.kernels.buffer(), m.slotAt[output.slot], n * rowSize(output)), shape: [n].concat(output.shape) };
    },
    // Several inputs or outputs through the engine's data path: `bytes` holds each input's n rows
    // back to back (plan order, 4-byte values); the outputs come back the same way, as float32.
    runPacked: function (bytes, shape, id, n) {
      var m = model(id), plan = m.plan, at = 0, total = 0, i;
      if (n > m.capacity) { ns.compiled.reserve(id, n); }
      for (i = 0; i < plan.inputs.length; i++) {
        var size = 4 * n * rowSize(plan.inputs[i]);
        if (at + size > bytes.length) { throw new RangeError('jsengine-ml compiled: packed inputs are short'); }
        new Uint8Array(m.kernels.buffer(), m.slotAt[plan.inputs[i].slot], size).set(bytes.subarray(at, at + size));
        at += size;
      }
      run(m, n);
      for (i = 0; i < plan.outputs.length; i++) { total += n * rowSize(plan.outputs[i]); }
      var out = new Float32Array(total), o = 0;
      for (i = 0; i < plan.outputs.length; i++) {
        var count = n * rowSize(plan.outputs[i]);
        out.set(new Float32Array(m.kernels.buffer(), m.slotAt[plan.outputs[i].slot], count), o);
        o += count;
      }
      return out;
    },
    info: function (id) { return JSON.stringify(portsInfo(model(id))); },
    // The bound ops with their arguments for n rows (benchmarks time them one by one).
    _debugOps: function (id, n) {
      var m = model(id), out = [];
      for (var i = 0; i < m.bound.length; i++) {
        var op = m.bound[i], args = op.base.slice();
        for (var j = 0; j < op.rows.length; j += 2) { args[op.rows[j]] = n * op.rows[j + 1]; }
        out.push({ name: op.name, layer: op.layer, fn: op.fn, args: args });
      }
      return out;
    },
    dispose: function (id) { delete models[id]; return 0; }
  };
})(typeof __jsml_scope === 'object' && __jsml_scope ? __jsml_scope : Function('return this')());
