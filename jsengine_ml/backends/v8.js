/*
 * V8 (mini-racer) side of the data path.  run() copies the zero-copy input buffer so that the
 * called function may keep its input; call() piggybacks pending console output on the result,
 * because a separate crossing to drain the console would double the cost of a call.
 * A buffer handed to Python as a memoryview must stay referenced from JS until Python has copied
 * it, or V8 may collect it under the view: keep() holds the last one.
 */
(function (ns) {
  var TYPES = ns.io.TYPES;
  ns.v8 = {
    inBuf: null,
    lastOut: null,
    keep: function (bytes) { ns.v8.lastOut = bytes.buffer; return bytes.buffer; },
    run: function (id, code, count, nbytes, shape, args) {
      var typed = new TYPES[code](ns.v8.inBuf.slice(0, nbytes), 0, count);
      return ns.v8.keep(ns.io.run(id, typed, shape, args));
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
