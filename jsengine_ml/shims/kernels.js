/*
 * jsengine-ml kernels runtime: plain-JS Float32Array kernels for Dense-only models.  ES5.
 *
 * Why: tfjs pays ~0.3-1 ms of per-call overhead (tensor bookkeeping, tidy, dataSync) whatever the
 * batch size, which dominates per-record scoring; QuickJS and Duktape interpret it slowly too.
 * Models made only of Dense / Activation / Dropout / BatchNormalization layers are run here by a
 * tiny interpreter over typed arrays: no tfjs load, ~1 KB of code, the same float32 results to
 * ~1e-7. Used when a model is loaded with runtime="kernels" (or "auto" and every layer fits).
 * On interpreters (QuickJS, Duktape) a Dense layer of up to UNROLL_MAX weights is compiled once
 * into straight-line code with its weights as literals (measured on 10,000 rows x 13 -> 64:
 * QuickJS 489 -> 139 ms, Duktape 1082 -> 104 ms; V8 was 3x slower that way, so it keeps loops).
 */
(function (g) {
  var ns = g.__jsml;
  var models = {};
  var ACT = {
    linear: null,
    relu: function (v) { return v > 0 ? v : 0; },
    relu6: function (v) { return v < 0 ? 0 : (v > 6 ? 6 : v); },
    sigmoid: function (v) { return 1 / (1 + Math.exp(-v)); },
    tanh: function (v) { var e = Math.exp(2 * v); return isFinite(e) ? (e - 1) / (e + 1) : 1; },
    elu: function (v) { return v > 0 ? v : Math.exp(v) - 1; },
    selu: function (v) { return 1.0507009873554805 * (v > 0 ? v : 1.6732632423543772 * (Math.exp(v) - 1)); },
    softplus: function (v) { return Math.log(1 + Math.exp(v)); },
    softsign: function (v) { return v / (1 + Math.abs(v)); },
    swish: function (v) { return v / (1 + Math.exp(-v)); }
  };

  function activate(x, n, width, name) {
    if (name === 'softmax') {
      for (var r = 0; r < n; r++) {
        var o = r * width, max = -Infinity, sum = 0, j;
        for (j = 0; j < width; j++) { if (x[o + j] > max) { max = x[o + j]; } }
        for (j = 0; j < width; j++) { x[o + j] = Math.exp(x[o + j] - max); sum += x[o + j]; }
        for (j = 0; j < width; j++) { x[o + j] = x[o + j] / sum; }
      }
      return x;
    }
    var f = ACT[name];
    if (f === undefined) { throw new Error('jsengine-ml kernels: unknown activation ' + name); }
    if (f) { for (var i = 0; i < x.length; i++) { x[i] = f(x[i]); } }
    return x;
  }
  function dense(x, n, nin, nout, w, b) {
    var out = new Float32Array(n * nout), acc = new Float64Array(nout);
    for (var r = 0; r < n; r++) {
      var xo = r * nin, j, k;
      for (j = 0; j < nout; j++) { acc[j] = 0; }
      for (k = 0; k < nin; k++) {
        var v = x[xo + k];
        if (v === 0) { continue; }
        var wo = k * nout;
        for (j = 0; j < nout; j++) { acc[j] += v * w[wo + j]; }
      }
      var oo = r * nout;
      // Round the product to float32, then add the bias in float32, as tfjs's matMul + add do.
      for (j = 0; j < nout; j++) { out[oo + j] = acc[j]; }
      if (b) { for (j = 0; j < nout; j++) { out[oo + j] += b[j]; } }
    }
    return out;
  }
  var UNROLL_MAX = 16384;
  // Compile dense(x, n) for one layer: per row, load the inputs into locals, then one expression
  // per output with the weights as literals (String(float32) round-trips exactly).
  function unrolledDense(nin, nout, w, b) {
    var body = ['var out = new Float32Array(n * ' + nout + ');',
      'for (var r = 0; r < n; r++) {', 'var o = r * ' + nin + ', p = r * ' + nout + ';'];
    var loads = [];
    for (var k = 0; k < nin; k++) { loads.push('x' + k + ' = x[o + ' + k + ']'); }
    body.push('var ' + loads.join(', ') + ';');
    for (var j = 0; j < nout; j++) {
      var terms = [];
      for (k = 0; k < nin; k++) {
        var v = w[k * nout + j];
        if (v !== 0) { terms.push('x' + k + ' * ' + (v < 0 ? '(' + String(v) + ')' : String(v))); }
      }
      body.push('out[p + ' + j + '] = ' + (terms.length ? terms.join(' + ') : '0') + ';');
      if (b && b[j] !== 0) { body.push('out[p + ' + j + '] += ' + (b[j] < 0 ? '(' + String(b[j]) + ')' : String(b[j])) + ';'); }
    }
    body.push('}', 'return out;');
    return new Function('x', 'n', body.join('\n'));
  }

  function batchnorm(x, width, op, w) {
    var gamma = op.gamma ? w[op.gamma] : null, beta = op.beta ? w[op.beta] : null;
    var mean = w[op.mean], variance = w[op.variance], eps = op.epsilon;
    var scale = new Float32Array(width), shift = new Float32Array(width);
    for (var j = 0; j < width; j++) {
      scale[j] = (gamma ? gamma[j] : 1) / Math.sqrt(variance[j] + eps);
      shift[j] = (beta ? beta[j] : 0) - mean[j] * scale[j];
    }
    var out = new Float32Array(x.length);
    for (var i = 0; i < x.length; i++) { var c = i % width; out[i] = x[i] * scale[c] + shift[c]; }
    return out;
  }

  ns.kernels = {
    // ops: [{op: 'dense', kernel, bias, nin, nout, activation} | {op: 'activation', activation}
    //       | {op: 'batchnorm', gamma, beta, mean, variance, epsilon}]; weights: {name: global name}
    define: function (id, opsJson, weightGlobals, unroll) {
      var w = {};
      for (var name in weightGlobals) {
        if (weightGlobals.hasOwnProperty(name)) { w[name] = g[weightGlobals[name]]; delete g[weightGlobals[name]]; }
      }
      var ops = JSON.parse(opsJson);
      for (var i = 0; i < ops.length; i++) {
        var op = ops[i];
        if (unroll && op.op === 'dense' && op.nin * op.nout <= UNROLL_MAX) {
          op.compiled = unrolledDense(op.nin, op.nout, w[op.kernel], op.bias ? w[op.bias] : null);
        }
      }
      models[id] = { ops: ops, weights: w };
      return id;
    },
    predict: function (data, shape, id) {
      var m = models[id];
      if (!m) { throw new Error('jsengine-ml: kernels model ' + id + ' is not loaded (closed?)'); }
      var n = shape[0], width = n ? data.length / n : shape[1], x = data;
      for (var i = 0; i < m.ops.length; i++) {
        var op = m.ops[i];
        if (op.op === 'dense') {
          x = op.compiled ? op.compiled(x, n)
            : dense(x, n, op.nin, op.nout, m.weights[op.kernel], op.bias ? m.weights[op.bias] : null);
          width = op.nout;
          activate(x, n, width, op.activation);
        } else if (op.op === 'activation') {
          if (x === data) { x = new Float32Array(data); }
          activate(x, n, width, op.activation);
        } else if (op.op === 'batchnorm') {
          x = batchnorm(x, width, op, m.weights);
        }
      }
      return { data: x === data ? new Float32Array(data) : x, shape: [n, width] };
    },
    dispose: function (id) { delete models[id]; return 0; }
  };
})(Function('return this')());
