/*
 * SpiderMonkey (pythonmonkey) host entries.  Evaluated first in each engine's own global (a fresh
 * realm, see spidermonkey.py), before the shims; evaluates to the list of functions Python calls.
 *
 * pythonmonkey calls a JS function with `this` set to ITS global, the one holding `python`,
 * `pmEval` and `require`: so Python calls only these strict functions, which never read `this`,
 * take only strings and numbers, and return only primitives or ArrayBuffers (Python maps those as
 * memoryviews). They catch everything the engine's code throws and hand back a report string, so
 * pythonmonkey never converts (or runs getters of) a thrown value.
 *
 * Buffers Python keeps mapped (the control block, the transform input) are at least MIN_MAPPED
 * bytes: SpiderMonkey stores small ArrayBuffers' data inside the (movable) object.
 */
(function (g) {
  'use strict';
  var indirectEval = g.eval;
  var ERROR = '\ue001error:';
  var MIN_MAPPED = 65536;
  var control = new ArrayBuffer(MIN_MAPPED);
  // control block: [0..9] the packed header of the last result, [16] console messages pending.
  var head = new Int32Array(control, 0, 10);
  var ns = g.__jsml = { consoleFlag: new Int32Array(control, 64, 1) };
  var inBuf = null;
  var lastOut = null;

  function describe(e) {
    try {
      if (e !== null && (typeof e === 'object' || typeof e === 'function') && typeof e.name === 'string') {
        var stack = typeof e.stack === 'string' ? e.stack : '';
        var at = typeof e.lineNumber === 'number' ? e.lineNumber : 0;
        return JSON.stringify({ name: e.name, message: String(e.message), stack: stack, line: at });
      }
      return JSON.stringify({ name: '', message: String(e), stack: '', line: 0 });
    } catch (inner) {
      return JSON.stringify({ name: 'Error', message: 'an error whose description threw', stack: '', line: 0 });
    }
  }
  function out(value) {
    var t = typeof value;
    if (value === null || value === undefined || t === 'number' || t === 'boolean') { return value; }
    return ns.out(value);
  }
  // header: [code, ndim, d0..d4, console pending, byteOffset, byteLength]; returns the data's buffer.
  function view(value) {
    var io = ns.io;
    for (var i = 0; i < 10; i++) { head[i] = 0; }
    if (io.isPending(value)) { head[2] = value.pendingId; return undefined; }
    var r = io.normalize(value);
    if (r.shape.length > 5) {
      throw new RangeError('jsengine-ml: results may have at most 5 dimensions, got ' + r.shape.length);
    }
    head[0] = r.code; head[1] = r.shape.length;
    for (var j = 0; j < r.shape.length; j++) { head[2 + j] = r.shape[j]; }
    head[8] = r.data.byteOffset; head[9] = r.data.byteLength;
    lastOut = r.data.buffer;
    return lastOut;
  }
  function guarded(fn) {
    return function (a, b, c, d, e, f) {
      try {
        return fn(a, b, c, d, e, f);
      } catch (err) {
        return ERROR + describe(err);
      }
    };
  }
  return [
    control,
    // 1: run a script; its completion value as __jsml.out makes it.
    guarded(function (source, filename) {
      return out(indirectEval(source + '\n//# sourceURL=' + filename));
    }),
    // 2: call registered function `id` with JSON arguments (its result as __jsml.out makes it).
    guarded(function (id, argsJson) { return ns.callFn(id, argsJson); }),
    // 3: a typed array named `name` for Python to fill: its buffer.
    guarded(function (name, code, count, shapeJson) {
      return ns.io.alloc(name, code, count, JSON.parse(shapeJson));
    }),
    // 4: evaluate an expression and describe it in the header: the buffer holding its data.
    guarded(function (source, filename) {
      return view(indirectEval('(' + source + ')\n//# sourceURL=' + filename));
    }),
    // 5: the transform input buffer, at least `nbytes` long (Python writes the batch into it).
    guarded(function (nbytes) {
      if (inBuf === null || inBuf.byteLength < nbytes) {
        inBuf = new ArrayBuffer(Math.max(nbytes, 2 * (inBuf ? inBuf.byteLength : 0), MIN_MAPPED));
      }
      return inBuf;
    }),
    // 6: run registered function `id` on the first `nbytes` of the input buffer (copied: the
    //    function may keep its input); describe the result in the header.
    guarded(function (id, code, count, nbytes, shapeJson, argsJson) {
      var typed = new ns.io.TYPES[code](inBuf.slice(0, nbytes), 0, count);
      return view(ns.io.apply(id, typed, JSON.parse(shapeJson), argsJson));
    }),
    // 7: an ArrayBuffer to map, if it is big enough to live outside its object.
    guarded(function (source, filename) {
      var buffer = indirectEval('(' + source + ')\n//# sourceURL=' + filename);
      if (!(buffer instanceof ArrayBuffer)) { return 'not an ArrayBuffer: ' + typeof buffer; }
      if (buffer.byteLength < MIN_MAPPED) { return 'an ArrayBuffer of ' + buffer.byteLength + ' bytes'; }
      return buffer;
    })
  ];
})(globalThis)
