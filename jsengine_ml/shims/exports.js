/*
 * jsengine_ml shim: find the entry function a JavaScript bundle exported.
 *
 * ES5 only (must run on Duktape 2.x, QuickJS and V8): no let/const/arrows/
 * classes, no Map/Set/Promise.
 *
 * Protocol (the host evaluates, in this order, in one global scope):
 *   1. the global-object shim (globalThis/window/self/global -> global object)
 *   2. this file                       -> defines the global __jsml_exports
 *   3. __jsml_exports.begin()          -> returns undefined
 *   4. the bundle source
 *   5. __jsml_exports.find(hintJSON)   -> returns a JSON *string*, never throws
 *   6. optionally __jsml_exports.end() -> restores the host's module/exports
 *
 * begin():
 *   Snapshots the global object's own property names, removes any previous
 *   __jsml_entry, and installs fresh CommonJS stand-ins as globals:
 *   module = {exports: {}}, exports = module.exports.  The previous values of
 *   `module` / `exports` (if any) are remembered; find() leaves the stand-ins
 *   in place (handy for debugging) and end() puts the previous values back
 *   (or deletes the globals if they did not exist); repeated begin() calls
 *   without end() keep the values seen by the first one.  The found entry keeps
 *   working after end(): it holds references, not global look-ups.
 *
 * find(hint):
 *   hint is a JSON string (an object or nothing is accepted too):
 *     {"name": "<optional global/library name, dotted allowed: A.B>",
 *      "function": "<optional function name, default predict>"}
 *   Search order (first callable wins):
 *     a. if name given: the global `name` (falling back to a global lexical
 *        binding, i.e. a top-level let/const/class), module.exports[name],
 *        exports[name]
 *     b. module.exports, then exports (skipped when it is still the same
 *        object as module.exports), then every own key K of them
 *        (commonjs: exports.WineModel = {...})
 *     c. every global property that is new (or re-assigned) since begin(), in creation order,
 *        ignoring __jsml*, webpackChunk*, webpackJsonp* and the module/exports
 *        stand-ins
 *   For each candidate value V at path P the patterns tried are, in order:
 *        P.<fn>          V[fn] is a function
 *        P               V itself is a function (always for the roots and for
 *                        an explicit name; for other keys only when the key
 *                        or the function's own .name equals fn)
 *        P.default       V.default is a function
 *        P.default.<fn>  V.default[fn] is a function
 *   On success the function is stored as globalThis.__jsml_entry, called with
 *   `this` = the object it was found on, and globalThis.__jsml_entry_path is
 *   set.  Returned JSON:
 *     {"found": "module.exports.default.predict", "looked_at": [...]}
 *   On failure:
 *     {"found": null, "looked_at": ["module.exports (empty object)",
 *      "exports (same object as module.exports)",
 *      "globals new since the bundle: none", ...]}
 *   If something unexpected throws, "error": "<message>" is added and found is
 *   null.  looked_at always describes every place that was examined.
 */
var __jsml_exports = (function () {
  var G = Function('return this')();
  var hasOwn = Object.prototype.hasOwnProperty;
  var IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
  var IGNORED_PREFIXES = ['__jsml', 'webpackChunk', 'webpackJsonp'];
  var STAND_INS = { module: true, exports: true };
  // Globals a binding re-creates on every evaluation (dukpy 0.5): changed, but not by the bundle.
  var BINDING_GLOBALS = { dukpy: true, call_python: true, _require_set_module_id: true };
  var MAX_KEYS = 12;

  var state = { snapshot: null, saved: null };

  function ownNames(obj) {
    try {
      return Object.getOwnPropertyNames(obj);
    } catch (e) {
      return [];
    }
  }

  // Property read that survives throwing getters / exotic host objects.
  function get(obj, key) {
    if (obj === null || (typeof obj !== 'object' && typeof obj !== 'function')) {
      return undefined;
    }
    try {
      return obj[key];
    } catch (e) {
      return undefined;
    }
  }

  function isFn(v) {
    return typeof v === 'function';
  }

  function isObj(v) {
    return v !== null && (typeof v === 'object' || typeof v === 'function');
  }

  function join(path, key) {
    if (IDENT.test(key)) {
      return path ? path + '.' + key : key;
    }
    return path + '[' + JSON.stringify(key) + ']';
  }

  function startsWith(s, prefix) {
    return s.slice(0, prefix.length) === prefix;
  }

  function isIgnored(name) {
    for (var i = 0; i < IGNORED_PREFIXES.length; i++) {
      if (startsWith(name, IGNORED_PREFIXES[i])) {
        return true;
      }
    }
    return false;
  }

  function fnName(f) {
    var n = get(f, 'name');
    return typeof n === 'string' ? n : '';
  }

  function keyList(obj) {
    var names = ownNames(obj);
    var shown = names.slice(0, MAX_KEYS).join(', ');
    return names.length > MAX_KEYS ? shown + ', ... (' + names.length + ' keys)' : shown;
  }

  // Short human description used in looked_at.
  function describe(v) {
    if (v === undefined) {
      return 'undefined';
    }
    if (v === null) {
      return 'null';
    }
    if (typeof v === 'function') {
      return 'function ' + (fnName(v) || '(anonymous)');
    }
    if (typeof v === 'object') {
      if (ownNames(v).length === 0) {
        return 'empty object';
      }
      return (Object.prototype.toString.call(v) === '[object Array]' ? 'array' : 'object') +
        ' with keys ' + keyList(v);
    }
    return typeof v;
  }

  // Try the entry-point patterns on one candidate value.
  function probe(value, path, owner, fn, selfOk) {
    if (!isObj(value)) {
      return null;
    }
    var direct = get(value, fn);
    if (isFn(direct)) {
      return { fn: direct, owner: value, path: join(path, fn) };
    }
    if (selfOk && isFn(value)) {
      return { fn: value, owner: owner, path: path };
    }
    var dflt = get(value, 'default');
    if (isFn(dflt)) {
      return { fn: dflt, owner: value, path: path + '.default' };
    }
    var dfltFn = get(dflt, fn);
    if (isFn(dfltFn)) {
      return { fn: dfltFn, owner: dflt, path: path + '.default.' + fn };
    }
    return null;
  }

  // probe() a CommonJS root, then every library-name object inside it.
  function probeRoot(value, path, owner, fn) {
    var hit = probe(value, path, owner, fn, true);
    if (hit || !isObj(value)) {
      return hit;
    }
    var keys = ownNames(value);
    for (var i = 0; i < keys.length; i++) {
      var k = keys[i];
      if (k === '__esModule' || k === 'default' || k === fn || (isFn(value) &&
          (k === 'length' || k === 'name' || k === 'prototype' || k === 'arguments' ||
           k === 'caller'))) {
        continue;
      }
      var v = get(value, k);
      hit = probe(v, join(path, k), value, fn, fnName(v) === fn);
      if (hit) {
        return hit;
      }
    }
    return null;
  }

  // Resolve an explicit (possibly dotted) name on the global object, falling
  // back to global lexical bindings (top-level let/const/class are not
  // properties of the global object on V8/QuickJS).
  function resolveName(name) {
    var parts = name.split('.');
    var head = parts[0];
    var value;
    if (hasOwn.call(G, head) || !IDENT.test(head)) {
      value = get(G, head);
    } else {
      try {
        value = (0, eval)('typeof ' + head + ' === "undefined" ? undefined : ' + head);
      } catch (e) {
        value = undefined;
      }
    }
    var owner = G;
    for (var i = 1; i < parts.length; i++) {
      owner = value;
      value = get(value, parts[i]);
    }
    return { value: value, owner: owner };
  }

  function parseHint(hint, looked) {
    var h = hint;
    if (typeof h === 'string') {
      if (/^\s*$/.test(h)) {
        h = {};
      } else {
        try {
          h = JSON.parse(h);
        } catch (e) {
          looked.push('hint (not valid JSON, ignored: ' + String(e && e.message || e) + ')');
          h = {};
        }
      }
    }
    if (!isObj(h)) {
      h = {};
    }
    var name = typeof h.name === 'string' && h.name ? h.name : null;
    var fn = typeof h['function'] === 'string' && h['function'] ? h['function'] : 'predict';
    return { name: name, fn: fn };
  }

  function search(opts, looked) {
    var fn = opts.fn;
    var hit;
    var mod = get(G, 'module');
    var modExports = get(mod, 'exports');
    var exp = get(G, 'exports');

    // a. explicit name
    if (opts.name) {
      var r = resolveName(opts.name);
      looked.push('global ' + opts.name + ' (' + describe(r.value) + ')');
      hit = probe(r.value, opts.name, r.owner, fn, true);
      if (hit) {
        return hit;
      }
      if (isObj(modExports)) {
        var mv = get(modExports, opts.name);
        looked.push(join('module.exports', opts.name) + ' (' + describe(mv) + ')');
        hit = probe(mv, join('module.exports', opts.name), modExports, fn, true);
        if (hit) {
          return hit;
        }
      }
      if (isObj(exp) && exp !== modExports) {
        var ev = get(exp, opts.name);
        looked.push(join('exports', opts.name) + ' (' + describe(ev) + ')');
        hit = probe(ev, join('exports', opts.name), exp, fn, true);
        if (hit) {
          return hit;
        }
      }
    }

    // b. CommonJS stand-ins
    if (isObj(mod)) {
      looked.push('module.exports (' + describe(modExports) + ')');
      hit = probeRoot(modExports, 'module.exports', mod, fn);
      if (hit) {
        return hit;
      }
    } else {
      looked.push('module (' + describe(mod) + ')');
    }
    if (isObj(exp) && exp === modExports) {
      looked.push('exports (same object as module.exports)');
    } else {
      looked.push('exports (' + describe(exp) + ')');
      hit = probeRoot(exp, 'exports', G, fn);
      if (hit) {
        return hit;
      }
    }

    // c. globals created by the bundle
    var names = ownNames(G);
    var fresh = [];
    var i;
    for (i = 0; i < names.length; i++) {
      var n = names[i];
      if (isIgnored(n) || STAND_INS[n] === true) {
        continue;
      }
      if (BINDING_GLOBALS[n] === true && state.snapshot && hasOwn.call(state.snapshot, '$' + n)) {
        continue;
      }
      // Not new: present at begin() with the same value (a bundle that re-assigns a global,
      // e.g. the same library loaded again, counts as new).
      if (state.snapshot && hasOwn.call(state.snapshot, '$' + n) && unchanged(state.snapshot['$' + n], n)) {
        continue;
      }
      fresh.push(n);
    }
    var described = [];
    for (i = 0; i < fresh.length; i++) {
      var gv = get(G, fresh[i]);
      if (i < 20) {
        described.push(fresh[i] + ' (' + describe(gv) + ')');
      }
      hit = probe(gv, fresh[i], G, fn, fresh[i] === fn || fnName(gv) === fn);
      if (hit) {
        break;
      }
    }
    if (fresh.length > 20) {
      described.push('... (' + fresh.length + ' in all)');
    }
    looked.push((state.snapshot ? 'globals new since the bundle: '
                                : 'globals (begin() was not called, so all of them): ') +
                (described.length ? described.join(', ') : 'none'));
    return hit || null;
  }

  // A global's value at begin() as {value}, or null for accessors (never read: no side effects).
  function dataValue(name) {
    var d;
    try {
      d = Object.getOwnPropertyDescriptor(G, name);
    } catch (e) {
      return null;
    }
    return d && hasOwn.call(d, 'value') ? { value: d.value } : null;
  }

  function unchanged(before, name) {
    if (before === null) {
      return true;
    }
    var now = dataValue(name);
    return now !== null && (now.value === before.value || (now.value !== now.value && before.value !== before.value));
  }

  function remember(name) {
    return { had: hasOwn.call(G, name), value: get(G, name) };
  }

  function restore(name, saved) {
    try {
      if (saved.had) {
        G[name] = saved.value;
      } else {
        delete G[name];
      }
    } catch (e) {
      // non-configurable host global: leave it
    }
  }

  function begin() {
    var names = ownNames(G);
    var snap = {};
    for (var i = 0; i < names.length; i++) {
      snap['$' + names[i]] = dataValue(names[i]);
    }
    state.snapshot = snap;
    // A begin() not followed by end() keeps the host's original values, so
    // repeated begin() calls never "restore" an earlier stand-in.
    if (!state.saved) {
      state.saved = { module: remember('module'), exports: remember('exports') };
    }
    try {
      delete G.__jsml_entry;
      delete G.__jsml_entry_path;
    } catch (e) {
      G.__jsml_entry = undefined;
    }
    var m = { exports: {} };
    G.module = m;
    G.exports = m.exports;
  }

  function find(hint) {
    var looked = [];
    try {
      var hit = search(parseHint(hint, looked), looked);
      if (!hit) {
        return JSON.stringify({ found: null, looked_at: looked });
      }
      var f = hit.fn;
      var owner = hit.owner;
      G.__jsml_entry = function () {
        return f.apply(owner, arguments);
      };
      G.__jsml_entry.target = f;  // the exported function itself (its own properties, e.g. jsengineMlInfo)
      G.__jsml_entry_path = hit.path;
      return JSON.stringify({ found: hit.path, looked_at: looked });
    } catch (e) {
      var msg;
      try {
        msg = String(e && e.message || e);
      } catch (e2) {
        msg = 'unprintable exception';
      }
      return JSON.stringify({ found: null, looked_at: looked, error: msg });
    }
  }

  function end() {
    if (state.saved) {
      restore('module', state.saved.module);
      restore('exports', state.saved.exports);
      state.saved = null;
    }
  }

  return { begin: begin, find: find, end: end };
})();
