/*
 * jsengine-ml shim: a tfjs platform for embedded engines.  ES5.  Evaluated after tfjs itself.
 *
 * Why: tfjs registers a platform only in browsers and Node. In V8 (mini-racer), QuickJS and
 * Duktape, tf.tensor2d(Float32Array) and loadLayersModel fail on isTypedArray until
 * tf.setPlatform(name, {fetch, now, encode, decode, isTypedArray, setTimeoutCustom}) is called.
 * fetch is the fetch-less loader (registered resources only); timers are the host-driven queue.
 */
(function (g) {
  var tf = g.tf;
  if (!tf || typeof tf.setPlatform !== 'function') {
    throw new Error('jsengine-ml: tfjs did not load (no global tf with setPlatform)');
  }
  tf.enableProdMode();  // no per-op NaN checks, and no warning when our platform replaces another
  tf.setPlatform('jsengine-ml', {
    fetch: function (path, init) { return g.__jsml.fetch(path, init); },
    now: function () { return g.performance.now(); },
    encode: function (text) { return new g.TextEncoder().encode(text); },
    decode: function (bytes, encoding) { return new g.TextDecoder(encoding || 'utf-8').decode(bytes); },
    isTypedArray: function (a) {
      return a instanceof Float32Array || a instanceof Int32Array || a instanceof Uint8Array ||
        (typeof Uint8ClampedArray !== 'undefined' && a instanceof Uint8ClampedArray);
    },
    setTimeoutCustom: function (fn, delay) { g.setTimeout(fn, delay); }
  });
  tf.setBackend('cpu');
  g.__jsml.tfjsVersion = tf.version && tf.version.tfjs;
})(Function('return this')());
