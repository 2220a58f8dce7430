/*
 * jsengine-ml shim: the global object, the __jsml namespace and console.  ES5.
 *
 * Why: bundles look for the global object under different names. tfjs tries window, global,
 * process and self ("Could not find a global object" otherwise); webpack's `window`, `self`,
 * `global` and UMD library types write to those names. V8 (mini-racer) and QuickJS have none of
 * window/self/global; Duktape has none of them either. QuickJS has no console at all, and the
 * consoles of V8 and dukpy go nowhere useful: console is always routed to the host (Python logging).
 * A sealed webpack bundle of tfjs registers its browser platform by itself only when
 * window.document is non-null, so a minimal `document` (no DOM, no WebGL) is provided.
 */
(function (g) {
  var installed = [];
  function provide(name, value) {
    if (typeof g[name] === 'undefined') {
      g[name] = value;
      installed.push(name);
    }
  }
  provide('globalThis', g);
  provide('global', g);
  provide('window', g);
  provide('self', g);
  if (typeof g.document === 'undefined') {
    g.document = {
      jsengineMlStandIn: true,
      createElement: function (tag) {
        return {
          tagName: String(tag).toUpperCase(), style: {},
          getContext: function () { return null; },
          addEventListener: function () {}, removeEventListener: function () {}
        };
      },
      addEventListener: function () {}, removeEventListener: function () {},
      getElementById: function () { return null; }, querySelector: function () { return null; }
    };
    installed.push('document');
  }

  var ns = g.__jsml = g.__jsml || {};
  ns.installed = installed;
  ns.provide = provide;
  ns.fns = {};
  // A backend whose binding can call Python synchronously defines __jsml_host_console first.
  if (typeof g.__jsml_host_console === 'function') { ns.consoleSink = g.__jsml_host_console; }

  // Hand a value back to the host: primitives as they are, anything else as tagged JSON.
  ns.out = function (value) {
    var t = typeof value;
    if (value === null || value === undefined || t === 'number' || t === 'boolean') {
      return value === undefined ? null : value;
    }
    if (t === 'string') {
      // JSON-wrap strings that look like a host tag (U+E000 result, U+E001 console) or hold a NUL
      // (the quickjs binding ends a returned string at its first NUL).
      var c0 = value.charCodeAt(0);
      return c0 === 0xe000 || c0 === 0xe001 || value.indexOf('\u0000') >= 0 ? '\ue000json:' + JSON.stringify(value) : value;
    }
    if (t === 'function') {
      return '\ue000json:' + JSON.stringify({ 'function': value.name || '(anonymous)' });
    }
    try {
      return '\ue000json:' + JSON.stringify(value, ns.jsonReplacer);
    } catch (e) {  // cyclic or otherwise unserializable: describe it rather than fail the call
      return '\ue000json:' + JSON.stringify({ unserializable: Object.prototype.toString.call(value), reason: String(e.message) });
    }
  };
  ns.jsonReplacer = function (key, value) {
    if (value && typeof value === 'object' && typeof value.length === 'number' &&
        typeof value.BYTES_PER_ELEMENT === 'number') {
      return Array.prototype.slice.call(value);
    }
    if (typeof value === 'number' && value !== value) { return null; }
    return value;
  };
  // Call a registered function (see Engine.call): resolver gives [owner, fn].
  ns.callFn = function (id, argsJson) {
    var pair = ns.fns[id]();
    var fn = pair[1];
    if (typeof fn !== 'function') {
      throw new TypeError('jsengine-ml: not a function: ' + String(fn));
    }
    var args = typeof argsJson === 'string' ? JSON.parse(argsJson) : argsJson;
    return ns.out(fn.apply(pair[0], args));
  };

  // console -> host.  The host installs a synchronous sink (__jsml.consoleSink) when its binding
  // can call Python cheaply; otherwise messages are buffered and the host drains them. A host that
  // shares memory with JS sets __jsml.consoleFlag (an Int32Array it maps): 1 while messages wait,
  // so it can tell without a crossing.
  function format(args) {
    var parts = [];
    for (var i = 0; i < args.length; i++) {
      var a = args[i];
      if (typeof a === 'string') { parts.push(a); continue; }
      if (a && a.stack && a.message !== undefined) { parts.push(String(a.stack)); continue; }
      try { parts.push(typeof a === 'object' ? JSON.stringify(a, ns.jsonReplacer) : String(a)); }
      catch (e) { parts.push(String(a)); }
    }
    return parts.join(' ');
  }
  var buffer = [];
  var dropped = 0;
  function emit(level) {
    return function () {
      var text = format(arguments);
      if (typeof ns.consoleSink === 'function') { ns.consoleSink(level, text); return; }
      if (buffer.length >= 10000) { buffer.shift(); dropped++; }
      buffer.push([level, text]);
      if (ns.consoleFlag) { ns.consoleFlag[0] = 1; }
    };
  }
  ns.console = {
    pending: function () { return buffer.length; },
    take: function () {
      if (!buffer.length && !dropped) { return ''; }
      var out = JSON.stringify({ messages: buffer, dropped: dropped });
      buffer = []; dropped = 0;
      if (ns.consoleFlag) { ns.consoleFlag[0] = 0; }
      return out;
    }
  };
  var timersStart = {};
  var counts = {};
  g.console = {
    log: emit('info'), info: emit('info'), warn: emit('warning'), error: emit('error'),
    debug: emit('debug'), trace: emit('debug'),
    assert: function (cond) {
      if (!cond) { emit('error')('Assertion failed: ' + format(Array.prototype.slice.call(arguments, 1))); }
    },
    time: function (label) { timersStart[label || 'default'] = Date.now(); },
    timeEnd: function (label) {
      label = label || 'default';
      emit('info')(label + ': ' + (Date.now() - (timersStart[label] || Date.now())) + 'ms');
    },
    count: function (label) {
      label = label || 'default';
      counts[label] = (counts[label] || 0) + 1;
      emit('info')(label + ': ' + counts[label]);
    },
    group: function () {}, groupEnd: function () {}, table: emit('info'), dir: emit('info')
  };
})(Function('return this')());
