/*
 * jsengine-ml shim: Reflect.construct with newTarget, Reflect.get / Reflect.set with a receiver.  ES5.
 *
 * Why: Duktape 2.x has Reflect but throws "unsupported" for Reflect.construct when newTarget
 * differs from the target and for Reflect.get/set with a receiver. Babel-compiled ES5 classes
 * (tfjs's tf.min.js: SimpleRNN, LSTM, GRU ...) use them for `super(...)` and `super.method()`.
 * The replacements emulate both for ES5 objects; construct is marked `sham`, which makes Babel's
 * helpers use their plain ES5 path.
 */
(function (g) {
  var R = g.Reflect;
  if (typeof R !== 'object') { return; }
  function fails(f) { try { f(); return false; } catch (e) { return true; } }
  var nativeConstruct = R.construct, nativeGet = R.get, nativeSet = R.set;

  if (fails(function () { nativeConstruct(function () {}, [], function () {}); })) {
    var construct = function (target, args, newTarget) {
      if (newTarget === undefined || newTarget === target) { return nativeConstruct(target, args); }
      var obj = Object.create(newTarget.prototype);
      var result = target.apply(obj, args);
      return result !== null && (typeof result === 'object' || typeof result === 'function') ? result : obj;
    };
    construct.sham = true;
    R.construct = construct;
    g.__jsml.installed.push('Reflect.construct');
  }
  function findProperty(target, key) {
    for (var o = target; o !== null && o !== undefined; o = Object.getPrototypeOf(o)) {
      var d = Object.getOwnPropertyDescriptor(o, key);
      if (d) { return d; }
    }
    return undefined;
  }
  if (fails(function () { nativeGet({}, 'x', {}); })) {
    R.get = function (target, key, receiver) {
      if (arguments.length < 3) { return nativeGet(target, key); }
      var d = findProperty(target, key);
      if (!d) { return undefined; }
      return d.get ? d.get.call(receiver) : d.value;
    };
    g.__jsml.installed.push('Reflect.get');
  }
  if (typeof nativeSet === 'function' && fails(function () { nativeSet({}, 'x', 1, {}); })) {
    R.set = function (target, key, value, receiver) {
      if (arguments.length < 4) { return nativeSet(target, key, value); }
      var d = findProperty(target, key);
      if (d && d.set) { d.set.call(receiver, value); return true; }
      if (d && d.writable === false) { return false; }
      receiver[key] = value;
      return true;
    };
    g.__jsml.installed.push('Reflect.set');
  }
})(Function('return this')());
