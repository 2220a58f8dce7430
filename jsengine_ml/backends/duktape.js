/*
 * Duktape side of the data path.  dukpy passes values as JSON, but Duktape decodes and encodes
 * base64 in C (Duktape.dec / Duktape.enc), far faster than JSON (`jsengine-ml bench`, data path:
 * speedup_vs_json).
 */
(function (ns) {
  var io = ns.io;
  function decode(b64, code, count) {
    var raw = Duktape.dec('base64', b64);
    var bytes = new Uint8Array(raw.buffer, raw.byteOffset, raw.length);
    return io.view(bytes, code, count);
  }
  ns.duk = {
    put: function (name, b64, code, count, shape) { io.define(name, decode(b64, code, count), shape); },
    pack: function (value) { return Duktape.enc('base64', io.pack(value)); },
    run: function (id, b64, code, count, shape, argsJson) {
      return Duktape.enc('base64', io.run(id, decode(b64, code, count), shape, argsJson));
    },
    // Run the Promise shim's microtasks after every crossing, as native engines do.
    after: function (value) { ns.runMicrotasks(); return value; }
  };
  // dukpy reads .stack of an uncaught value: for null/undefined that read fails inside its error
  // path, Duktape's fatal handler runs and the process hangs. Turn those two into Errors when
  // thrown (a catch in JS then sees the Error, not null/undefined).
  var previousErrThrow = Duktape.errThrow;
  Duktape.errThrow = function (e) {
    if (e === null || e === undefined) { e = new Error('non-error value thrown: ' + e); }
    return typeof previousErrThrow === 'function' ? previousErrThrow(e) : e;
  };
})(__jsml);
