/*
 * jsengine-ml shim: setTimeout / setInterval / setImmediate and clears on a host-driven queue,
 * plus the bookkeeping the host uses to settle promises.  ES5.
 *
 * Why: QuickJS and Duktape have no timers at all; V8 under mini-racer has its own, fired from
 * its loop thread whenever it likes. tfjs (setTimeoutCustom, nextFrame) and core-js's Promise
 * (Duktape) need timers. One queue driven by the host gives the same order and deadlines on every
 * engine: timers run only when the host pumps (Engine.settle, Engine.run_timers).
 */
(function (g) {
  var ns = g.__jsml;
  var queue = [];  // [{id, due, fn, args, interval}], kept sorted by (due, id)
  var nextId = 1;
  var seq = 0;

  function insert(t) {
    var i = queue.length;
    while (i > 0 && (queue[i - 1].due > t.due || (queue[i - 1].due === t.due && queue[i - 1].seq > t.seq))) { i--; }
    queue.splice(i, 0, t);
  }
  function schedule(fn, ms, args, interval) {
    if (typeof fn !== 'function') { throw new TypeError('jsengine-ml timers: callback must be a function (strings are not evaluated)'); }
    var delay = Math.max(0, Number(ms) || 0);
    var t = { id: nextId++, seq: seq++, due: Date.now() + delay, fn: fn, args: args, interval: interval ? Math.max(1, delay) : 0 };
    insert(t);
    return t.id;
  }
  function clear(id) {
    for (var i = 0; i < queue.length; i++) {
      if (queue[i].id === id) { queue.splice(i, 1); return; }
    }
  }
  var slice = Array.prototype.slice;
  g.setTimeout = function (fn, ms) { return schedule(fn, ms, slice.call(arguments, 2), false); };
  g.setInterval = function (fn, ms) { return schedule(fn, ms, slice.call(arguments, 2), true); };
  g.setImmediate = function (fn) { return schedule(fn, -1, slice.call(arguments, 1), false); };
  g.clearTimeout = g.clearInterval = g.clearImmediate = clear;

  // Microtasks for engines without native promises (the Promise shim queues here).
  var micro = [];
  ns.microtask = function (fn) { micro.push(fn); };
  ns.runMicrotasks = function () {
    var n = 0;
    while (micro.length) { var f = micro.shift(); n++; f(); }
    return n;
  };

  ns.timers = {
    pending: function () { return queue.length; },
    ran: 0,
    // Run every timer due now (timers they add for now run too, up to a bound), return how many are left.
    runDue: function () {
      var now = Date.now(), ran = 0;
      ns.timers.ran = ns.runMicrotasks();
      while (queue.length && queue[0].due <= now && ran < 100000) {
        var t = queue.shift();
        ran++;
        if (t.interval) { t.due = now + t.interval; t.seq = seq++; insert(t); }
        t.fn.apply(g, t.args);
        ns.runMicrotasks();
      }
      ns.timers.ran += ran;
      return queue.length;
    },
    // Milliseconds until the next timer is due (0 when one is due), or null when none is queued.
    next: function () { return queue.length ? Math.max(0, queue[0].due - Date.now()) : null; }
  };

  // Promise settling for the host: start(thunk) -> id; poll(id) -> JSON status; value(id).
  var slots = {};
  var nextSlot = 1;
  function errorInfo(e) {
    if (e && typeof e === 'object') {
      return { name: String(e.name || 'Error'), message: String(e.message !== undefined ? e.message : e), stack: e.stack ? String(e.stack) : '' };
    }
    return { name: 'Error', message: 'non-error value thrown: ' + String(e), stack: '' };
  }
  ns.settled = {
    start: function (thunk) {
      var id = nextSlot++, s = slots[id] = { state: 'pending' };
      var value;
      try { value = thunk(); } catch (e) { s.state = 'rejected'; s.error = errorInfo(e); return id; }
      if (value && (typeof value === 'object' || typeof value === 'function') && typeof value.then === 'function') {
        value.then(function (v) { s.state = 'fulfilled'; s.value = v; },
                   function (e) { s.state = 'rejected'; s.error = errorInfo(e); });
      } else { s.state = 'fulfilled'; s.value = value; }
      return id;
    },
    poll: function (id) {
      ns.timers.runDue();
      var s = slots[id];
      if (!s) { return JSON.stringify({ state: 'rejected', error: { name: 'Error', message: 'unknown promise slot ' + id } }); }
      // progress: timers or shim microtasks ran, so native promise jobs may be queued: poll again.
      return JSON.stringify({ state: s.state, error: s.error, next: ns.timers.next(),
        progress: ns.timers.ran + micro.length });
    },
    value: function (id) { var v = slots[id].value; delete slots[id]; return v; },
    forget: function (id) { delete slots[id]; }
  };
})(Function('return this')());
