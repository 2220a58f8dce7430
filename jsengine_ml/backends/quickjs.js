/*
 * QuickJS side of the data path.  The quickjs binding passes only primitives, and a str holding
 * NUL bytes is cut short on the way in, so bytes travel as a string with one character per byte,
 * code point = byte + 1 (U+0001..U+0100): faster than JSON both ways (`jsengine-ml bench`, data
 * path: speedup_vs_json) and than base64 decoded in JS.
 */
(function (ns) {
  var io = ns.io;
  function decode(text, code, count) {
    var n = text.length;
    var bytes = new Uint8Array(n);
    for (var i = 0; i < n; i++) { bytes[i] = text.charCodeAt(i) - 1; }
    return new io.TYPES[code](bytes.buffer, 0, count);
  }
  function encode(bytes) {
    var parts = [], n = bytes.length, chunk = 4096;
    for (var i = 0; i < n; i += chunk) {
      var end = Math.min(n, i + chunk), tmp = new Array(end - i);
      for (var j = i; j < end; j++) { tmp[j - i] = bytes[j] + 1; }
      parts.push(String.fromCharCode.apply(null, tmp));
    }
    return parts.join('');
  }
  ns.qjs = {
    put: function (name, text, code, count, shapeJson) {
      io.define(name, decode(text, code, count), JSON.parse(shapeJson));
    },
    pack: function (value) { return encode(io.pack(value)); },
    run: function (id, text, code, count, shapeJson, argsJson) {
      return encode(io.run(id, decode(text, code, count), JSON.parse(shapeJson), argsJson));
    }
  };
})(__jsml);
