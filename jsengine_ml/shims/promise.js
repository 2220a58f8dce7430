/*
 * jsengine-ml shim: a small Promises/A+ implementation, installed only where Promise is missing.  ES5.
 *
 * Why: Duktape (dukpy 0.5.x) has no Promise, so async bundles and Engine.settle could not work
 * there. Reactions run as microtasks on the shim queue (__jsml.runMicrotasks), which the host
 * drains after every call. tfjs's ES5 build brings core-js, which may replace this with its own.
 */
(function (g) {
  if (typeof g.Promise === 'function') { return; }
  var ns = g.__jsml;
  var PENDING = 0, FULFILLED = 1, REJECTED = 2;

  function ShimPromise(executor) {
    if (!(this instanceof ShimPromise)) { throw new TypeError('Promise must be called with new'); }
    if (typeof executor !== 'function') { throw new TypeError('Promise resolver is not a function'); }
    this._state = PENDING; this._value = undefined; this._reactions = [];
    var self = this, done = false;
    try {
      executor(function (v) { if (!done) { done = true; resolve(self, v); } },
               function (e) { if (!done) { done = true; settle(self, REJECTED, e); } });
    } catch (e) { if (!done) { done = true; settle(self, REJECTED, e); } }
  }
  function settle(p, state, value) {
    if (p._state !== PENDING) { return; }
    p._state = state; p._value = value;
    var rs = p._reactions; p._reactions = null;
    for (var i = 0; i < rs.length; i++) { schedule(p, rs[i]); }
  }
  function resolve(p, v) {
    if (v === p) { settle(p, REJECTED, new TypeError('A promise cannot be resolved with itself')); return; }
    if (v && (typeof v === 'object' || typeof v === 'function')) {
      var then;
      try { then = v.then; } catch (e) { settle(p, REJECTED, e); return; }
      if (typeof then === 'function') {
        var called = false;
        ns.microtask(function () {
          try {
            then.call(v, function (y) { if (!called) { called = true; resolve(p, y); } },
                         function (r) { if (!called) { called = true; settle(p, REJECTED, r); } });
          } catch (e) { if (!called) { called = true; settle(p, REJECTED, e); } }
        });
        return;
      }
    }
    settle(p, FULFILLED, v);
  }
  function schedule(p, r) {
    ns.microtask(function () {
      var handler = p._state === FULFILLED ? r.onFulfilled : r.onRejected;
      if (typeof handler !== 'function') {
        if (p._state === FULFILLED) { resolve(r.promise, p._value); } else { settle(r.promise, REJECTED, p._value); }
        return;
      }
      var result;
      try { result = handler(p._value); } catch (e) { settle(r.promise, REJECTED, e); return; }
      resolve(r.promise, result);
    });
  }
  ShimPromise.prototype.then = function (onFulfilled, onRejected) {
    var next = new ShimPromise(function () {});
    var r = { onFulfilled: onFulfilled, onRejected: onRejected, promise: next };
    if (this._state === PENDING) { this._reactions.push(r); } else { schedule(this, r); }
    return next;
  };
  ShimPromise.prototype['catch'] = function (onRejected) { return this.then(undefined, onRejected); };
  ShimPromise.prototype['finally'] = function (f) {
    return this.then(function (v) { return ShimPromise.resolve(f()).then(function () { return v; }); },
                     function (e) { return ShimPromise.resolve(f()).then(function () { throw e; }); });
  };
  ShimPromise.resolve = function (v) {
    if (v instanceof ShimPromise) { return v; }
    return new ShimPromise(function (res) { res(v); });
  };
  ShimPromise.reject = function (e) { return new ShimPromise(function (res, rej) { rej(e); }); };
  ShimPromise.all = function (items) {
    return new ShimPromise(function (res, rej) {
      var out = [], left = items.length;
      if (!left) { res(out); return; }
      for (var i = 0; i < items.length; i++) {
        (function (i) {
          ShimPromise.resolve(items[i]).then(function (v) { out[i] = v; if (--left === 0) { res(out); } }, rej);
        })(i);
      }
    });
  };
  ShimPromise.race = function (items) {
    return new ShimPromise(function (res, rej) {
      for (var i = 0; i < items.length; i++) { ShimPromise.resolve(items[i]).then(res, rej); }
    });
  };
  g.Promise = ShimPromise;
  ns.installed.push('Promise');
})(Function('return this')());
