/*
 * jsengine-ml shim: fetch served only from resources registered by Python.  ES5.
 *
 * Why: none of the embedded engines has fetch, and a sandboxed model must not reach the network.
 * tfjs loads model.json and weight shards through fetch (its platform's fetch, or the global one
 * in a sealed bundle). Python registers bytes or local files with Engine.add_resource(url, data);
 * fetch resolves a Response for those and rejects every other URL, naming it. Always installed,
 * so that an engine with a real fetch cannot reach the network either.
 */
(function (g) {
  var ns = g.__jsml;
  var store = {};

  function strip(url) {
    var u = String(url);
    var q = u.search(/[?#]/);
    if (q >= 0) { u = u.substring(0, q); }
    while (u.indexOf('./') === 0) { u = u.substring(2); }
    return u;
  }
  function basename(url) {
    var u = strip(url);
    return u.substring(u.lastIndexOf('/') + 1);
  }
  function lookup(url) {
    var u = String(url);
    if (store.hasOwnProperty(u)) { return store[u]; }
    var s = strip(u);
    if (store.hasOwnProperty(s)) { return store[s]; }
    var hits = [];
    for (var key in store) {
      if (store.hasOwnProperty(key) && (strip(key) === s || (key.indexOf('/') < 0 && key === basename(u)))) {
        hits.push(store[key]);
      }
    }
    return hits.length === 1 ? hits[0] : null;
  }

  function Headers(map) { this._map = map || {}; }
  Headers.prototype.get = function (name) {
    var v = this._map[String(name).toLowerCase()];
    return v === undefined ? null : v;
  };
  Headers.prototype.has = function (name) { return this.get(name) !== null; };

  function Response(bytes, url) {
    this.ok = true; this.status = 200; this.statusText = 'OK'; this.url = url;
    this.type = 'basic'; this.redirected = false; this.bodyUsed = false;
    this.headers = new Headers({ 'content-length': String(bytes.length) });
    this._bytes = bytes;
  }
  Response.prototype.arrayBuffer = function () {
    var b = this._bytes;
    var copy = new Uint8Array(b.length);
    copy.set(b);
    return Promise.resolve(copy.buffer);
  };
  Response.prototype.text = function () { return Promise.resolve(new TextDecoder('utf-8').decode(this._bytes)); };
  Response.prototype.json = function () {
    var self = this;
    return this.text().then(function (t) {
      try { return JSON.parse(t); }
      catch (e) { throw new SyntaxError('jsengine-ml fetch: resource ' + self.url + ' is not valid JSON: ' + e.message); }
    });
  };
  Response.prototype.clone = function () { return new Response(this._bytes, this.url); };

  function networkError(url) {
    var e = new TypeError('jsengine-ml: fetch(' + JSON.stringify(String(url)) + ') refused: the network is not ' +
      'available inside the engine and no resource is registered under this URL. Register it from Python ' +
      'with engine.add_resource(url, bytes_or_path). Registered: ' + (ns.resources.list().join(', ') || '(none)'));
    e.url = String(url);
    return e;
  }

  ns.resources = {
    add: function (url, bytes) { store[String(url)] = bytes; },
    list: function () { var out = []; for (var k in store) { if (store.hasOwnProperty(k)) { out.push(k); } } return out; },
    get: lookup
  };
  ns.fetch = function (input, init) {
    var url = input && typeof input === 'object' && input.url !== undefined ? input.url : String(input);
    var bytes = lookup(url);
    if (!bytes) { return Promise.reject(networkError(url)); }
    return Promise.resolve(new Response(bytes, url));
  };
  g.fetch = ns.fetch;
  if (typeof g.Response === 'undefined') { g.Response = Response; }
  if (typeof g.Headers === 'undefined') { g.Headers = Headers; }
})(Function('return this')());
