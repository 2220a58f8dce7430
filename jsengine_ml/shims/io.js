/*
 * jsengine-ml shim: typed-array transfer between Python and the engine.  ES5.
 *
 * Why: no binding moves numpy data into a typed array by itself. mini-racer maps a JS ArrayBuffer
 * into Python as a writable memoryview (zero copy) but takes no bytes from Python; quickjs takes
 * only primitives (strings); dukpy passes JSON. Arrays travel as a packed layout: a header of 8
 * little-endian int32 [dtype code, ndim, d0..d4, console pending] and the data. Backends add the decoding that fits
 * their binding (see jsengine_ml/backends).
 */
(function (g) {
  var ns = g.__jsml;
  var TYPES = { 1: Float32Array, 2: Int32Array, 3: Uint8Array };
  var HEADER = 32;
  var io = ns.io = { shapes: {}, TYPES: TYPES, HEADER: HEADER };

  function codeOf(a) {
    if (a instanceof Float32Array) { return 1; }
    if (a instanceof Int32Array) { return 2; }
    if (a instanceof Uint8Array) { return 3; }
    return 0;
  }
  function isTyped(a) {
    return a && typeof a === 'object' && typeof a.BYTES_PER_ELEMENT === 'number' && typeof a.length === 'number';
  }
  // Infer the shape of nested arrays of numbers; throw on ragged input.
  function shapeOf(v) {
    var shape = [];
    while (v && typeof v === 'object' && !isTyped(v) && typeof v.length === 'number') {
      shape.push(v.length);
      if (!v.length) { break; }
      v = v[0];
    }
    if (isTyped(v)) { shape.push(v.length); }
    return shape;
  }
  function flatten(v, shape, depth, out) {
    var n = shape[depth];
    if (!v || typeof v.length !== 'number' || v.length !== n) {
      throw new RangeError('jsengine-ml: the result is ragged: expected length ' + n + ' at depth ' + depth +
        ', got ' + (v && v.length !== undefined ? v.length : typeof v));
    }
    if (depth === shape.length - 1) {
      for (var i = 0; i < n; i++) {
        var x = v[i];
        if (typeof x !== 'number') { throw new TypeError('jsengine-ml: the result holds a non-number (' + typeof x + ') at depth ' + depth); }
        out.push(x);
      }
      return;
    }
    for (var j = 0; j < n; j++) { flatten(v[j], shape, depth + 1, out); }
  }
  // Normalize a JS result into {code, shape, data(typed array)}.
  io.normalize = function (v) {
    if (v && typeof v === 'object' && !isTyped(v) && v.data !== undefined && v.shape !== undefined) {
      var inner = io.normalize(v.data), shape = [];
      var count = 1;
      for (var i = 0; i < v.shape.length; i++) { shape.push(v.shape[i] | 0); count *= v.shape[i]; }
      if (count !== inner.data.length) {
        throw new RangeError('jsengine-ml: result shape [' + shape + '] needs ' + count + ' values, data has ' + inner.data.length);
      }
      inner.shape = shape;
      return inner;
    }
    if (isTyped(v)) {
      var code = codeOf(v);
      if (!code) { v = new Float32Array(v); code = 1; }  // Float64Array, Int16Array, ... -> float32
      return { code: code, shape: [v.length], data: v };
    }
    if (v && typeof v === 'object' && typeof v.length === 'number') {
      var s = shapeOf(v);
      if (s.length > 5) { throw new RangeError('jsengine-ml: results may have at most 5 dimensions, got ' + s.length); }
      var flat = [];
      if (s.length && s[s.length - 1] !== 0 && s.indexOf(0) < 0) { flatten(v, s, 0, flat); }
      return { code: 1, shape: s, data: new Float32Array(flat) };
    }
    if (typeof v === 'number') { return { code: 1, shape: [], data: new Float32Array([v]) }; }
    throw new TypeError('jsengine-ml: expected a typed array, nested arrays of numbers or {data, shape}, got ' +
      (v === null ? 'null' : typeof v));
  };
  // Pack a result as header + data bytes (a Uint8Array over a fresh ArrayBuffer).
  io.pack = function (v) {
    var r = io.normalize(v);
    var bytes = new Uint8Array(HEADER + r.data.length * r.data.BYTES_PER_ELEMENT);
    var head = new Int32Array(bytes.buffer, 0, 8);
    head[0] = r.code; head[1] = r.shape.length;
    if (r.shape.length > 5) { throw new RangeError('jsengine-ml: results may have at most 5 dimensions, got ' + r.shape.length); }
    for (var i = 0; i < r.shape.length; i++) { head[2 + i] = r.shape[i]; }
    head[7] = ns.console.pending() ? 1 : 0;
    bytes.set(new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength), HEADER);
    return bytes;
  };
  io.pending = function (settleId) {
    var bytes = new Uint8Array(HEADER);
    var head = new Int32Array(bytes.buffer, 0, 8);
    head[0] = 0; head[1] = 0; head[2] = settleId; head[7] = ns.console.pending() ? 1 : 0;
    return bytes;
  };
  // Wrap raw bytes (a Uint8Array holding a packed array's data) as a typed array of `code`.
  io.view = function (bytes, code, count) {
    var T = TYPES[code];
    if (bytes.byteOffset % T.BYTES_PER_ELEMENT === 0) { return new T(bytes.buffer, bytes.byteOffset, count); }
    var copy = new Uint8Array(count * T.BYTES_PER_ELEMENT);
    copy.set(bytes.subarray(0, count * T.BYTES_PER_ELEMENT));
    return new T(copy.buffer, 0, count);
  };
  io.define = function (name, typed, shape) {
    g[name] = typed;
    io.shapes[name] = shape;
  };
  // Allocate a typed array as global `name`; the host fills its buffer (zero-copy bindings).
  io.alloc = function (name, code, count, shape) {
    var typed = new TYPES[code](count);
    io.define(name, typed, shape);
    return typed.buffer;
  };
  // Run registered function `id` on an input typed array; pack its (possibly promised) result.
  // Call registered function `id` on an input typed array: its result, or {pendingId} for a promise.
  io.apply = function (id, typed, shape, argsJson) {
    var pair = ns.fns[id]();
    var fn = pair[1];
    if (typeof fn !== 'function') { throw new TypeError('jsengine-ml: not a function: ' + String(fn)); }
    var args = [typed, shape].concat(typeof argsJson === 'string' ? JSON.parse(argsJson) : (argsJson || []));
    var result = fn.apply(pair[0], args);
    if (result && (typeof result === 'object' || typeof result === 'function') && typeof result.then === 'function') {
      return { pendingId: ns.settled.start(function () { return result; }) };
    }
    return result;
  };
  io.isPending = function (r) { return r !== null && typeof r === 'object' && typeof r.pendingId === 'number'; };
  io.run = function (id, typed, shape, argsJson) {
    var r = io.apply(id, typed, shape, argsJson);
    return io.isPending(r) ? io.pending(r.pendingId) : io.pack(r);
  };
})(Function('return this')());
