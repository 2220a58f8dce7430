/*
 * jsengine-ml model runtime: the JS half of DenseMatrixModel.  ES5.
 *
 * One call per batch: predict(data, shape, id) takes the flat input typed array and its shape
 * [n, features] and returns {data, shape} for an (n, k) output. TF.js Layers models run under
 * tf.tidy and every tensor is disposed; bundle entry points get rows (nested arrays) unless they
 * declare `jsengineMl = 'matrix'` (then (data, shape)), and may return nested arrays, typed arrays,
 * {data, shape}, a tensor, or a promise of any of these.
 */
(function (g) {
  var ns = g.__jsml;
  var models = {};

  function rows(data, n, width) {
    var out = new Array(n);
    for (var i = 0; i < n; i++) { out[i] = Array.prototype.slice.call(data, i * width, (i + 1) * width); }
    return out;
  }
  function product(shape, from) {
    var p = 1;
    for (var i = from; i < shape.length; i++) { p *= shape[i]; }
    return p;
  }
  function fromTensor(t) {
    var data = t.dataSync(), shape = t.shape.slice();
    t.dispose();
    return { data: data, shape: shape };
  }
  function asMatrix(result, n) {
    if (result && typeof result.dataSync === 'function' && result.shape) { result = fromTensor(result); }
    var r = ns.io.normalize(result);
    if (r.shape.length === 1 && n === 1 && r.data.length > 0) { r.shape = [1, r.data.length]; }
    if (r.shape.length > 2 && r.shape[0] === n) { r.shape = [n, product(r.shape, 1)]; }
    // Checked before anything is packed for the host: a runaway result costs no copy.
    if (r.shape[0] !== n) {
      throw new RangeError('jsengine-ml: the model returned ' + r.shape[0] + ' rows for ' + n + ' input rows');
    }
    return { data: r.data, shape: r.shape };
  }

  ns.models = {
    layersUrl: function (id, url) {
      var tf = g.tf;
      return tf.loadLayersModel(tf.io.http(url)).then(function (model) {
        function args(tensors, names) {
          var out = [];
          for (var i = 0; i < tensors.length; i++) {
            // Sequential models leave inputNames/outputNames empty: the tensor is named "<layer>/..."
            var name = names && names[i] ? names[i] : String(tensors[i].name).split('/')[0];
            out.push({ name: name, shape: tensors[i].shape, dtype: tensors[i].dtype });
          }
          return out;
        }
        models[id] = { kind: 'layers', model: model, inputShape: model.inputs[0].shape,
          inputDtype: model.inputs[0].dtype, inputs: args(model.inputs, model.inputNames) };
        return JSON.stringify({
          inputShape: model.inputs[0].shape, outputShape: model.outputs[0].shape,
          inputDtype: model.inputs[0].dtype, outputDtype: model.outputs[0].dtype, name: model.name,
          tfjs: tf.version.tfjs, backend: tf.getBackend(),
          inputs: models[id].inputs, outputs: args(model.outputs, model.outputNames)
        });
      });
    },
    // A graph model (tfjs-converter): `signatureJson` names its inputs and outputs (see model.py).
    graphUrl: function (id, url, signatureJson) {
      var tf = g.tf, sig = JSON.parse(signatureJson);
      return tf.loadGraphModel(tf.io.http(url)).then(function (model) {
        models[id] = { kind: 'graph', model: model, inputs: sig.inputs, outputs: sig.outputs,
          inputShape: sig.inputs[0].shape, inputDtype: sig.inputs[0].dtype };
        return JSON.stringify({ tfjs: tf.version.tfjs, backend: tf.getBackend() });
      });
    },
    // Adopt the entry found by the export discovery shim; return what the bundle declares about itself.
    bundle: function (id) {
      var entry = g.__jsml_entry, target = entry.target || entry;
      models[id] = { kind: 'bundle', fn: entry, matrix: target.jsengineMl === 'matrix' };
      return target.jsengineMlInfo ? JSON.stringify(target.jsengineMlInfo) : null;
    },
    predict: function (data, shape, id) {
      var m = models[id];
      if (!m) { throw new Error('jsengine-ml: model ' + id + ' is not loaded (closed?)'); }
      var n = shape[0];
      if (m.kind === 'graph') {
        return { data: ns.models.runPacked(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), [], id, n),
          shape: [n, product(m.outputs[0].shape, 1)] };
      }
      if (m.kind === 'layers') {
        var tf = g.tf;
        var out = tf.tidy(function () {
          var inShape = [n].concat(m.inputShape.slice(1));
          var x = tf.tensor(data, inShape, m.inputDtype === 'int32' ? 'int32' : 'float32');
          var y = m.model.predict(x);
          return tf.reshape(y, [n, y.size / Math.max(n, 1) || product(y.shape, 1)]);
        });
        return fromTensor(out);
      }
      var result = m.matrix ? m.fn(data, shape) : m.fn(rows(data, n, product(shape, 1)));
      if (result && typeof result.then === 'function') {
        return result.then(function (r) { return asMatrix(r, n); });
      }
      return asMatrix(result, n);
    },
    // Several inputs or outputs: `bytes` holds each input's n rows back to back (4-byte values);
    // the outputs come back the same way, as float32.
    runPacked: function (bytes, shape, id, n) {
      var m = models[id];
      if (!m || m.kind === 'bundle') { throw new Error('jsengine-ml: model ' + id + ' takes one input (use predict)'); }
      var tf = g.tf;
      var outs = tf.tidy(function () {
        var xs = [], feeds = {}, at = 0;
        for (var i = 0; i < m.inputs.length; i++) {
          var inShape = [n].concat(m.inputs[i].shape.slice(1)), count = product(inShape, 0);
          var int = m.inputs[i].dtype === 'int32';
          xs.push(tf.tensor(ns.io.view(bytes.subarray(at, at + 4 * count), int ? 2 : 1, count), inShape,
            int ? 'int32' : 'float32'));
          feeds[m.inputs[i].name] = xs[i];
          at += 4 * count;
        }
        var ys;
        if (m.kind === 'graph') {  // by name: the converter's positional order is not the signature's
          var names = [];
          for (var k = 0; k < m.outputs.length; k++) { names.push(m.outputs[k].name); }
          ys = m.model.execute(feeds, names);
        } else {
          ys = m.model.predict(xs.length === 1 ? xs[0] : xs);
        }
        return ys.length === undefined ? [ys] : ys;
      });
      var total = 0, j, values = [];
      for (j = 0; j < outs.length; j++) { values.push(outs[j].dataSync()); total += values[j].length; outs[j].dispose(); }
      var flat = new Float32Array(total), o = 0;
      for (j = 0; j < values.length; j++) { flat.set(values[j], o); o += values[j].length; }
      return flat;
    },
    dispose: function (id) {
      var m = models[id];
      delete models[id];
      if (m && m.kind !== 'bundle') { m.model.dispose(); }
      return g.tf ? g.tf.memory().numTensors : 0;
    },
    numTensors: function () { return g.tf ? g.tf.memory().numTensors : 0; }
  };
})(Function('return this')());
