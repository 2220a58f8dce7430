/*
 * V8 (mini-racer) side of the data path.  run() copies the zero-copy input buffer so that the
 * called function may keep its input; call() piggybacks pending console output on the result,
 * because a separate crossing to drain the console would double the cost of a call.
 * Results travel without a JS-side copy: view() writes the header (dtype, shape, console flag and
 * where the data sits in its buffer) into a small persistent header buffer that Python maps once,
 * and returns the result's own ArrayBuffer, which Python copies out of once. A buffer handed to
 * Python as a memoryview must stay referenced from JS until Python has copied it, or V8 may
 * collect it under the view: lastOut holds the last one.
 */
(function (ns) {
  var io = ns.io, TYPES = io.TYPES;
  ns.v8 = {
    inBuf: null,
    lastOut: null,
    head: null,
    headBuffer: function () { ns.v8.head = new Int32Array(10); return ns.v8.head.buffer; },
    // header: [code, ndim, d0..d4, console pending, byteOffset, byteLength]; returns the data buffer.
    view: function (value) {
      var head = ns.v8.head;
      for (var i = 0; i < 10; i++) { head[i] = 0; }
      head[7] = ns.console.pending() ? 1 : 0;
      if (io.isPending(value)) { head[2] = value.pendingId; ns.v8.lastOut = new ArrayBuffer(0); return ns.v8.lastOut; }
      var r = io.normalize(value);
      if (r.shape.length > 5) { throw new RangeError('jsengine-ml: results may have at most 5 dimensions, got ' + r.shape.length); }
      head[0] = r.code; head[1] = r.shape.length;
      for (var j = 0; j < r.shape.length; j++) { head[2 + j] = r.shape[j]; }
      head[8] = r.data.byteOffset; head[9] = r.data.byteLength;
      ns.v8.lastOut = r.data.buffer;
      return r.data.buffer;
    },
    run: function (id, code, count, nbytes, shape, args) {
      var typed = new TYPES[code](ns.v8.inBuf.slice(0, nbytes), 0, count);
      return ns.v8.view(io.apply(id, typed, shape, args));
    },
    call: function (id, args) {
      var value = ns.callFn(id, args);
      if (ns.console.pending()) {
        return '\ue001console:' + JSON.stringify({ console: JSON.parse(ns.console.take()), value: value });
      }
      return value;
    }
  };
})(__jsml);
