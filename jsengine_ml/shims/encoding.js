/*
 * jsengine-ml shim: TextEncoder / TextDecoder (UTF-8), atob / btoa, performance.now.  ES5.
 *
 * Why: V8 as embedded by mini-racer and QuickJS have none of these; tfjs needs encode/decode for
 * its platform and a sealed tfjs bundle registers its browser platform only when TextEncoder,
 * TextDecoder and performance exist. Duktape has TextEncoder/TextDecoder and performance but
 * not atob/btoa. Each is installed only where missing.
 */
(function (g) {
  var provide = g.__jsml.provide;

  function Utf8Encoder() {}
  Utf8Encoder.prototype.encoding = 'utf-8';
  Utf8Encoder.prototype.encode = function (input) {
    var s = input === undefined ? '' : String(input);
    var out = [];
    for (var i = 0; i < s.length; i++) {
      var c = s.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
        var d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) { c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); i++; }
        else { c = 0xfffd; }
      } else if (c >= 0xd800 && c <= 0xdfff) { c = 0xfffd; }
      if (c < 0x80) { out.push(c); }
      else if (c < 0x800) { out.push(0xc0 | (c >> 6), 0x80 | (c & 63)); }
      else if (c < 0x10000) { out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63)); }
      else { out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63)); }
    }
    return new Uint8Array(out);
  };

  function Utf8Decoder(label) {
    var l = String(label === undefined ? 'utf-8' : label).toLowerCase();
    if (l !== 'utf-8' && l !== 'utf8') { throw new RangeError('jsengine-ml TextDecoder supports utf-8 only, got ' + label); }
  }
  Utf8Decoder.prototype.encoding = 'utf-8';
  Utf8Decoder.prototype.decode = function (input) {
    if (input === undefined) { return ''; }
    var bytes = input instanceof ArrayBuffer ? new Uint8Array(input)
      : new Uint8Array(input.buffer, input.byteOffset || 0, input.byteLength);
    var chunks = [], units = [];
    for (var i = 0; i < bytes.length;) {
      var b = bytes[i++], c;
      if (b < 0x80) { c = b; }
      else if (b >= 0xc2 && b < 0xe0 && i < bytes.length) { c = ((b & 31) << 6) | (bytes[i++] & 63); }
      else if (b >= 0xe0 && b < 0xf0 && i + 1 < bytes.length) {
        c = ((b & 15) << 12) | ((bytes[i] & 63) << 6) | (bytes[i + 1] & 63); i += 2;
      } else if (b >= 0xf0 && b < 0xf5 && i + 2 < bytes.length) {
        c = ((b & 7) << 18) | ((bytes[i] & 63) << 12) | ((bytes[i + 1] & 63) << 6) | (bytes[i + 2] & 63); i += 3;
      } else { c = 0xfffd; }
      if (c >= 0x10000) { c -= 0x10000; units.push(0xd800 + (c >> 10), 0xdc00 + (c & 1023)); }
      else { units.push(c); }
      if (units.length >= 8192) { chunks.push(String.fromCharCode.apply(null, units)); units = []; }
    }
    chunks.push(String.fromCharCode.apply(null, units));
    return chunks.join('');
  };
  provide('TextEncoder', Utf8Encoder);
  provide('TextDecoder', Utf8Decoder);

  var B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  provide('btoa', function (s) {
    s = String(s);
    var out = [];
    for (var i = 0; i < s.length; i += 3) {
      var a = s.charCodeAt(i), b = s.charCodeAt(i + 1), c = s.charCodeAt(i + 2);
      if (a > 255 || b > 255 || c > 255) { throw new Error('btoa: the string contains characters outside Latin1'); }
      var t = (a << 16) | ((b || 0) << 8) | (c || 0);
      out.push(B64.charAt(t >> 18), B64.charAt((t >> 12) & 63),
        i + 1 < s.length ? B64.charAt((t >> 6) & 63) : '=', i + 2 < s.length ? B64.charAt(t & 63) : '=');
    }
    return out.join('');
  });
  provide('atob', function (s) {
    s = String(s).replace(/[\s=]+/g, '');
    var out = [], bits = 0, acc = 0;
    for (var i = 0; i < s.length; i++) {
      var v = B64.indexOf(s.charAt(i));
      if (v < 0) { throw new Error('atob: invalid base64 character ' + JSON.stringify(s.charAt(i))); }
      acc = (acc << 6) | v; bits += 6;
      if (bits >= 8) { bits -= 8; out.push(String.fromCharCode((acc >> bits) & 255)); }
    }
    return out.join('');
  });
  provide('performance', { now: function () { return Date.now(); }, timeOrigin: Date.now() });
})(Function('return this')());
