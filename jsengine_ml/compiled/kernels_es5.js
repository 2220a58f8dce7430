/*
 * jsengine-ml compiled runtime: the ES5 kernel set (strict ES5.1: runs on Duktape).
 *
 * Implements every kernel of jsengine_ml/compiled/abi.py with the semantics of
 * docs/compiled-runtime.md over one linear memory (an ArrayBuffer): pointers are byte addresses,
 * values float32 (token ids int32). Used on interpreters (QuickJS, Duktape) and wherever
 * WebAssembly is missing.
 *
 *   var ks = __jsml.es5Kernels.create(heapArrayBuffer);
 *   ks.dense(x, w, y, m, k, n, lo, hi);          // 0 on success
 *   ks.setHeap(biggerArrayBuffer);                // after the executor grew the memory
 *   var f = ks.specialize('dense', args);         // same signature, or null
 *
 * Generic kernels are tight loops over typed arrays, accumulating in JS numbers (float64) and
 * storing float32. specialize() generates, with new Function, code that holds a layer's weights
 * as numeric literals (String(float32) round-trips exactly), inner products fully unrolled over
 * locals, which removes the index arithmetic and the typed-array reads of the weights:
 *   dense        loop over rows; the row's inputs in locals (64 at a time), one expression per output;
 *   conv2d       a small image (<= 512 inputs) unrolled whole: inputs in locals, one expression per
 *                output over its in-bounds taps; otherwise loops over pixels, one code block per run
 *                of pixels whose window clips the same way (no bounds checks, no padding products);
 *   depthwise2d  the per-pixel form of conv2d;
 *   pool2d       the per-pixel form, channels and window unrolled;
 *   rnn          loop over steps; x, h and c in locals, each gate of each unit one expression.
 * Code size is capped (MAX_TERMS multiply-adds per function); above it specialize() returns null.
 * benchmarks/kernels_es5.py measured the specialized plans at 2.3-3.5x the generic kernels on
 * QuickJS and 3.8-9x on Duktape for the reference models (7-60x tfjs 4.22 on the same engines).
 * A specialized function keeps the signature of its kernel, ignores the weight addresses (weights
 * are literals) and reads the activation addresses and the batch size at call time; if any other
 * argument differs from the one it was specialized for, it calls the generic kernel instead.
 * On V8 (a JIT) it gains little or loses (the digits CNN): it is meant for interpreters.
 */
(function (root) {
  'use strict';
  var ns = root.__jsml;
  if (!ns) {
    ns = {};
    root.__jsml = ns;
  }

  var NR = 8;
  // Code-size cap of a specialized function: multiply-adds emitted (a weight used at several
  // pixel classes counts each time). Above it specialize() returns null (see benchmarks/).
  var MAX_TERMS = 16384;
  // Inputs held in locals at once by an unrolled dense (longer rows are done in chunks).
  var DENSE_CHUNK = 64;

  var mexp = Math.exp;
  var mlog = Math.log;
  var msqrt = Math.sqrt;
  var f32one = new Float32Array(1);

  // ------------------------------------------------------------------ ES5 math fallbacks
  function expm1Es5(x) {
    if (!(x > -1 && x < 1)) { return mexp(x) - 1; } // also NaN
    var u = mexp(x);
    if (u === 1) { return x; }
    var um1 = u - 1;
    if (um1 === -1) { return -1; }
    return um1 * x / mlog(u); // Kahan: exact to a few ulps
  }
  function log1pEs5(x) {
    if (!(x > -0.5 && x < 1)) { return mlog(1 + x); }
    var u = 1 + x;
    if (u === 1) { return x; }
    return mlog(u) * x / (u - 1);
  }
  function tanhEs5(x) {
    if (x !== x) { return x; }
    var ax = x < 0 ? -x : x;
    var t;
    if (ax > 22) {
      t = 1;
    } else if (ax < 0.55) {
      var e = expm1Es5(2 * ax);
      t = e / (e + 2);
    } else {
      t = 1 - 2 / (mexp(2 * ax) + 1);
    }
    return x < 0 ? -t : t;
  }
  var expm1 = typeof Math.expm1 === 'function' ? Math.expm1 : expm1Es5;
  var log1p = typeof Math.log1p === 'function' ? Math.log1p : log1pEs5;
  var tanh = typeof Math.tanh === 'function' ? Math.tanh : tanhEs5;
  var NATIVE_TANH = typeof Math.tanh === 'function';
  // Inputs a sample may have for a conv2d unrolled over the whole image (one local each).
  var SPATIAL_MAX_INPUTS = 512;

  // erf: FreeBSD/musl s_erf.c (Sun Microsystems 1993), error < 1 ulp in float64.
  var ERX = 8.45062911510467529297e-01;
  var EFX8 = 1.02703333676410069053e+00;
  var PP0 = 1.28379167095512558561e-01, PP1 = -3.25042107247001499370e-01,
    PP2 = -2.84817495755985104766e-02, PP3 = -5.77027029648944159157e-03,
    PP4 = -2.37630166566501626084e-05;
  var QQ1 = 3.97917223959155352819e-01, QQ2 = 6.50222499887672944485e-02,
    QQ3 = 5.08130628187576562776e-03, QQ4 = 1.32494738004321644526e-04,
    QQ5 = -3.96022827877536812320e-06;
  var PA0 = -2.36211856075265944077e-03, PA1 = 4.14856118683748331666e-01,
    PA2 = -3.72207876035701323847e-01, PA3 = 3.18346619901161753674e-01,
    PA4 = -1.10894694282396677476e-01, PA5 = 3.54783043256182359371e-02,
    PA6 = -2.16637559486879084300e-03;
  var QA1 = 1.06420880400844228286e-01, QA2 = 5.40397917702171048937e-01,
    QA3 = 7.18286544141962662868e-02, QA4 = 1.26171219808761642112e-01,
    QA5 = 1.36370839120290507362e-02, QA6 = 1.19844998467991074170e-02;
  var RA0 = -9.86494403484714822705e-03, RA1 = -6.93858572707181764372e-01,
    RA2 = -1.05586262253232909814e+01, RA3 = -6.23753324503260060396e+01,
    RA4 = -1.62396669462573470355e+02, RA5 = -1.84605092906711035994e+02,
    RA6 = -8.12874355063065934246e+01, RA7 = -9.81432934416914548592e+00;
  var SA1 = 1.96512716674392571292e+01, SA2 = 1.37657754143519042600e+02,
    SA3 = 4.34565877475229228821e+02, SA4 = 6.45387271733267880336e+02,
    SA5 = 4.29008140027567833386e+02, SA6 = 1.08635005541779435134e+02,
    SA7 = 6.57024977031928170135e+00, SA8 = -6.04244152148580987438e-02;
  var RB0 = -9.86494292470009928597e-03, RB1 = -7.99283237680523006574e-01,
    RB2 = -1.77579549177547519889e+01, RB3 = -1.60636384855821916062e+02,
    RB4 = -6.37566443368389627722e+02, RB5 = -1.02509513161107724954e+03,
    RB6 = -4.83519191608651397019e+02;
  var SB1 = 3.03380607434824582924e+01, SB2 = 3.25792512996573918826e+02,
    SB3 = 1.53672958608443695994e+03, SB4 = 3.19985821950859553908e+03,
    SB5 = 2.55305040643316442583e+03, SB6 = 4.74528541206955367215e+02,
    SB7 = -2.24409524465858183362e+01;

  function erf(x) {
    if (x !== x) { return x; }
    var ax = x < 0 ? -x : x;
    var y, z, r, s;
    if (ax < 0.84375) {
      if (ax < 3.725290298461914e-9) { return (8 * x + EFX8 * x) / 8; }
      z = x * x;
      r = PP0 + z * (PP1 + z * (PP2 + z * (PP3 + z * PP4)));
      s = 1 + z * (QQ1 + z * (QQ2 + z * (QQ3 + z * (QQ4 + z * QQ5))));
      return x + x * (r / s);
    }
    if (ax >= 6) {
      y = 1;
    } else if (ax < 1.25) {
      s = ax - 1;
      r = PA0 + s * (PA1 + s * (PA2 + s * (PA3 + s * (PA4 + s * (PA5 + s * PA6)))));
      z = 1 + s * (QA1 + s * (QA2 + s * (QA3 + s * (QA4 + s * (QA5 + s * QA6)))));
      y = ERX + r / z;
    } else {
      s = 1 / (ax * ax);
      if (ax < 1 / 0.35) {
        r = RA0 + s * (RA1 + s * (RA2 + s * (RA3 + s * (RA4 + s * (RA5 + s * (RA6 + s * RA7))))));
        z = 1 + s * (SA1 + s * (SA2 + s * (SA3 + s * (SA4 + s * (SA5 + s * (SA6 + s * (SA7 + s * SA8)))))));
      } else {
        r = RB0 + s * (RB1 + s * (RB2 + s * (RB3 + s * (RB4 + s * (RB5 + s * RB6)))));
        z = 1 + s * (SB1 + s * (SB2 + s * (SB3 + s * (SB4 + s * (SB5 + s * (SB6 + s * SB7))))));
      }
      f32one[0] = ax; // a short mantissa, so that t * t is exact (s_erf.c clears the low word)
      var t = f32one[0];
      y = 1 - mexp(-t * t - 0.5625) * mexp((t - ax) * (t + ax) + r / z) / ax;
    }
    return x < 0 ? -y : y;
  }

  function softplus(v) {
    return v > 0 ? v + log1p(mexp(-v)) : log1p(mexp(v));
  }

  // ------------------------------------------------------------------ element-wise functions
  var UNARY = ['linear', 'relu', 'relu6', 'elu', 'selu', 'sigmoid', 'hard_sigmoid', 'hard_sigmoid_k3',
    'tanh', 'softplus', 'softsign', 'swish', 'gelu', 'gelu_tanh', 'mish', 'leaky_relu', 'relu_clip', 'scale',
    'thresholded_relu'];
  var SELU_ALPHA = 1.6732632423543772;
  var SELU_SCALE = 1.0507009873554805;
  var SQRT1_2 = Math.SQRT1_2;
  var GELU_C = msqrt(2 / Math.PI);

  // One element; NaN propagates as in docs/compiled-runtime.md (comparisons with NaN are false).
  function scalar(kind, v, a, b) {
    var t;
    switch (kind) {
      case 0: return v;
      case 1: return v < 0 ? 0 : v;
      case 2: return v < 0 ? 0 : (v > 6 ? 6 : v);
      case 3: return v > 0 ? v : a * expm1(v);
      case 4: return SELU_SCALE * (v > 0 ? v : SELU_ALPHA * expm1(v));
      case 5: return 1 / (1 + mexp(-v));
      case 6: t = 0.2 * v + 0.5; return t < 0 ? 0 : (t > 1 ? 1 : t);
      case 7: t = v / 6 + 0.5; return t < 0 ? 0 : (t > 1 ? 1 : t);
      case 8: return tanh(v);
      case 9: return softplus(v);
      case 10: return v / (1 + (v < 0 ? -v : v));
      case 11: return v / (1 + mexp(-v));
      case 12: return 0.5 * v * (1 + erf(v * SQRT1_2));
      case 13: return 0.5 * v * (1 + tanh(GELU_C * (v + 0.044715 * (v * v * v))));
      case 14: return v * tanh(softplus(v));
      case 15: return v >= 0 ? v : a * v;
      case 16: t = v >= 0 ? v : a * v; return t > b ? b : t;
      case 17: return a * v + b;
      case 18: return v > a ? v : 0;
    }
    throw new Error('jsengine-ml es5 kernels: unknown unary kind ' + kind);
  }

  var GATES = [1, 4, 3];

  function packedSize(k, n) {
    return ((n + NR - 1) >> 3) * NR * (k + 1);
  }

  // ------------------------------------------------------------------ code generation helpers
  function lit(v) {
    // A float32 (or float64) value as a JS literal that reads back as exactly the same number.
    if (v !== v) { return 'NaN'; }
    if (v === Infinity) { return 'Infinity'; }
    if (v === -Infinity) { return '-Infinity'; }
    if (v === 0) { return '0'; } // -0 and 0 contribute the same to a sum that starts at the bias
    return String(v); // a negative one only ever follows '*', '+', '<', '>' or '!=='
  }

  // Statement(s) storing variable `v` to `dst` with clamp to [lo, hi] (NaN passes through).
  function storeClamped(dst, v, lo, hi) {
    if (lo === -Infinity && hi === Infinity) { return dst + ' = ' + v + ';'; }
    if (hi === Infinity) { return dst + ' = ' + v + ' < ' + lit(lo) + ' ? ' + lit(lo) + ' : ' + v + ';'; }
    if (lo === -Infinity) { return dst + ' = ' + v + ' > ' + lit(hi) + ' ? ' + lit(hi) + ' : ' + v + ';'; }
    return dst + ' = ' + v + ' < ' + lit(lo) + ' ? ' + lit(lo) + ' : (' + v + ' > ' + lit(hi) + ' ? ' +
      lit(hi) + ' : ' + v + ');';
  }

  // Code applying activation `kind` to variable v in place (parameter-free kinds only). Z, ONE,
  // TWO, SIX: float constants held in locals (build() defines them): QuickJS keeps integer literals
  // as ints, and int-float arithmetic takes its slow path.
  function activationCode(kind, v) {
    switch (kind) {
      case 0: return '';
      case 1: return v + ' = ' + v + ' < 0 ? Z : ' + v + ';';
      case 2: return v + ' = ' + v + ' < 0 ? Z : (' + v + ' > 6 ? SIX : ' + v + ');';
      case 5: return v + ' = ONE / (ONE + exp(-' + v + '));';
      case 6: return v + ' = 0.2 * ' + v + ' + 0.5; ' + v + ' = ' + v + ' < 0 ? Z : (' + v + ' > 1 ? ONE : ' + v + ');';
      case 7: return v + ' = ' + v + ' / SIX + 0.5; ' + v + ' = ' + v + ' < 0 ? Z : (' + v + ' > 1 ? ONE : ' + v + ');';
      case 8:
        // Without a native Math.tanh: 1 - 2 / (e^2v + 1), absolute error ~1e-16, inf-safe.
        return NATIVE_TANH ? v + ' = tanh(' + v + ');' : v + ' = ONE - TWO / (exp(TWO * ' + v + ') + ONE);';
      case 10: return v + ' = ' + v + ' / (ONE + (' + v + ' < 0 ? -' + v + ' : ' + v + '));';
      case 11: return v + ' = ' + v + ' / (ONE + exp(-' + v + '));';
    }
    return v + ' = U(' + kind + ', ' + v + ', 0, 0);';
  }

  var FLOAT_CONSTANTS = new Float64Array([0, 1, 2, 6]);

  // Build the function from generated body text. `fixed` lists [argument name, value] pairs the
  // code was specialized for: a call with other values goes to the generic kernel. Everything the
  // body uses from outside is copied into locals first (Duktape looks outer variables up by name).
  function build(name, params, fixed, body, state, generic) {
    var guard = [];
    for (var i = 0; i < fixed.length; i++) {
      guard.push(fixed[i][0] + ' !== ' + lit(fixed[i][1]));
    }
    var src = [
      '"use strict";',
      'return function ' + name + '_es5spec(' + params.join(', ') + ') {',
      guard.length ? 'if (' + guard.join(' || ') + ') { return $G(' + params.join(', ') + '); }' : '',
      'var F = $S.F, exp = $exp, tanh = $tanh, U = $U, Z = $K[0], ONE = $K[1], TWO = $K[2], SIX = $K[3];',
      body,
      'return 0;',
      '};'
    ].join('\n');
    /* jshint evil: true */
    var make = new Function('$S', '$G', '$exp', '$tanh', '$U', '$K', src);
    return make(state, generic, mexp, tanh, scalar, FLOAT_CONSTANTS);
  }

  function sumCode(init, terms) {
    // init + t0 + t1 + ...; terms: array of 'x3 * 0.25' strings. A zero init is left out (it
    // cannot change the sum) as QuickJS would add it as an int.
    if (!terms.length) { return init; }
    return init === '0' ? terms.join(' + ') : init + ' + ' + terms.join(' + ');
  }

  // Valid window offsets per output coordinate, grouped into runs of equal validity:
  // [{o0, o1, ks: [valid kernel indices]}].
  function segments(outLen, inLen, k, stride, dil, pad) {
    var segs = [];
    for (var o = 0; o < outLen; o++) {
      var ks = [];
      for (var kk = 0; kk < k; kk++) {
        var i = o * stride - pad + kk * dil;
        if (i >= 0 && i < inLen) { ks.push(kk); }
      }
      var key = ks.join(',');
      var last = segs.length ? segs[segs.length - 1] : null;
      if (last && last.key === key) {
        last.o1 = o + 1;
      } else {
        segs.push({ o0: o, o1: o + 1, ks: ks, key: key });
      }
    }
    return segs;
  }

  // ------------------------------------------------------------------ the kernel set
  // options (all optional, for measurements): maxTerms, denseChunk, spatial (false: never unroll a
  // conv2d over the whole image; the default unrolls small ones, faster on both interpreters than
  // per-pixel loops for the digits CNN).
  function create(heap, options) {
    var opt = options || {};
    var maxTerms = opt.maxTerms > 0 ? opt.maxTerms : MAX_TERMS;
    var denseChunk = opt.denseChunk > 0 ? opt.denseChunk : DENSE_CHUNK;
    var spatial = opt.spatial !== false;
    var S = { F: null, I: null, buffer: null };
    var ks = {};
    var tmpPool = [];

    function setHeap(buffer) {
      S.buffer = buffer;
      S.F = new Float32Array(buffer);
      S.I = new Int32Array(buffer);
      return 0;
    }
    setHeap(heap);

    // A cached Float64Array of at least n elements, one per slot (contents are garbage).
    function tmp(slot, n) {
      var t = tmpPool[slot];
      if (!t || t.length < n) {
        t = new Float64Array(n < 16 ? 16 : n);
        tmpPool[slot] = t;
      }
      return t;
    }

    // dst[dOff + j] = bias_j + sum_i src[sOff + i] * W[i, j] for j < n, W packed at word wb.
    function packedRow(F, wb, src, sOff, k, n, dst, dOff) {
      var panels = (n + 7) >> 3, pstride = 8 * (k + 1);
      for (var p = 0; p < panels; p++) {
        var wp = wb + p * pstride;
        var a0 = F[wp], a1 = F[wp + 1], a2 = F[wp + 2], a3 = F[wp + 3];
        var a4 = F[wp + 4], a5 = F[wp + 5], a6 = F[wp + 6], a7 = F[wp + 7];
        var wi = wp + 8;
        for (var i = 0; i < k; i++, wi += 8) {
          var v = src[sOff + i];
          a0 += v * F[wi]; a1 += v * F[wi + 1]; a2 += v * F[wi + 2]; a3 += v * F[wi + 3];
          a4 += v * F[wi + 4]; a5 += v * F[wi + 5]; a6 += v * F[wi + 6]; a7 += v * F[wi + 7];
        }
        var o = dOff + 8 * p, nc = n - 8 * p;
        dst[o] = a0;
        if (nc > 1) { dst[o + 1] = a1; }
        if (nc > 2) { dst[o + 2] = a2; }
        if (nc > 3) { dst[o + 3] = a3; }
        if (nc > 4) { dst[o + 4] = a4; }
        if (nc > 5) { dst[o + 5] = a5; }
        if (nc > 6) { dst[o + 6] = a6; }
        if (nc > 7) { dst[o + 7] = a7; }
      }
    }

    ks.dense = function (x, w, y, m, k, n, lo, hi) {
      var F = S.F, wb = w >> 2;
      var panels = (n + 7) >> 3, pstride = 8 * (k + 1);
      var xr = x >> 2, yr = y >> 2;
      for (var r = 0; r < m; r++, xr += k, yr += n) {
        for (var p = 0; p < panels; p++) {
          var wp = wb + p * pstride;
          var a0 = F[wp], a1 = F[wp + 1], a2 = F[wp + 2], a3 = F[wp + 3];
          var a4 = F[wp + 4], a5 = F[wp + 5], a6 = F[wp + 6], a7 = F[wp + 7];
          var wi = wp + 8;
          for (var i = 0; i < k; i++, wi += 8) {
            var v = F[xr + i];
            a0 += v * F[wi]; a1 += v * F[wi + 1]; a2 += v * F[wi + 2]; a3 += v * F[wi + 3];
            a4 += v * F[wi + 4]; a5 += v * F[wi + 5]; a6 += v * F[wi + 6]; a7 += v * F[wi + 7];
          }
          var o = yr + 8 * p, nc = n - 8 * p;
          F[o] = a0 < lo ? lo : (a0 > hi ? hi : a0);
          if (nc >= 8) {
            F[o + 1] = a1 < lo ? lo : (a1 > hi ? hi : a1);
            F[o + 2] = a2 < lo ? lo : (a2 > hi ? hi : a2);
            F[o + 3] = a3 < lo ? lo : (a3 > hi ? hi : a3);
            F[o + 4] = a4 < lo ? lo : (a4 > hi ? hi : a4);
            F[o + 5] = a5 < lo ? lo : (a5 > hi ? hi : a5);
            F[o + 6] = a6 < lo ? lo : (a6 > hi ? hi : a6);
            F[o + 7] = a7 < lo ? lo : (a7 > hi ? hi : a7);
          } else {
            if (nc > 1) { F[o + 1] = a1 < lo ? lo : (a1 > hi ? hi : a1); }
            if (nc > 2) { F[o + 2] = a2 < lo ? lo : (a2 > hi ? hi : a2); }
            if (nc > 3) { F[o + 3] = a3 < lo ? lo : (a3 > hi ? hi : a3); }
            if (nc > 4) { F[o + 4] = a4 < lo ? lo : (a4 > hi ? hi : a4); }
            if (nc > 5) { F[o + 5] = a5 < lo ? lo : (a5 > hi ? hi : a5); }
            if (nc > 6) { F[o + 6] = a6 < lo ? lo : (a6 > hi ? hi : a6); }
          }
        }
      }
      return 0;
    };

    ks.conv2d = function (x, w, y, scratch, batch, inH, inW, inC, kH, kW, outC, sH, sW, dH, dW, padT, padL,
      outH, outW, lo, hi) {
      var F = S.F, wb = w >> 2;
      var panels = (outC + 7) >> 3, pstride = 8 * (kH * kW * inC + 1);
      var xs = x >> 2, ys = y >> 2, inSample = inH * inW * inC, outSample = outH * outW * outC;
      for (var b = 0; b < batch; b++, xs += inSample, ys += outSample) {
        for (var oy = 0; oy < outH; oy++) {
          var iy0 = oy * sH - padT;
          for (var ox = 0; ox < outW; ox++) {
            var ix0 = ox * sW - padL, yo = ys + (oy * outW + ox) * outC;
            for (var p = 0; p < panels; p++) {
              var wp = wb + p * pstride;
              var a0 = F[wp], a1 = F[wp + 1], a2 = F[wp + 2], a3 = F[wp + 3];
              var a4 = F[wp + 4], a5 = F[wp + 5], a6 = F[wp + 6], a7 = F[wp + 7];
              for (var ky = 0; ky < kH; ky++) {
                var iy = iy0 + ky * dH;
                if (iy < 0 || iy >= inH) { continue; }
                for (var kx = 0; kx < kW; kx++) {
                  var ix = ix0 + kx * dW;
                  if (ix < 0 || ix >= inW) { continue; }
                  var xo = xs + (iy * inW + ix) * inC, wi = wp + 8 + 8 * (ky * kW + kx) * inC;
                  for (var c = 0; c < inC; c++, wi += 8) {
                    var v = F[xo + c];
                    a0 += v * F[wi]; a1 += v * F[wi + 1]; a2 += v * F[wi + 2]; a3 += v * F[wi + 3];
                    a4 += v * F[wi + 4]; a5 += v * F[wi + 5]; a6 += v * F[wi + 6]; a7 += v * F[wi + 7];
                  }
                }
              }
              var o = yo + 8 * p, nc = outC - 8 * p;
              F[o] = a0 < lo ? lo : (a0 > hi ? hi : a0);
              if (nc > 1) { F[o + 1] = a1 < lo ? lo : (a1 > hi ? hi : a1); }
              if (nc > 2) { F[o + 2] = a2 < lo ? lo : (a2 > hi ? hi : a2); }
              if (nc > 3) { F[o + 3] = a3 < lo ? lo : (a3 > hi ? hi : a3); }
              if (nc > 4) { F[o + 4] = a4 < lo ? lo : (a4 > hi ? hi : a4); }
              if (nc > 5) { F[o + 5] = a5 < lo ? lo : (a5 > hi ? hi : a5); }
              if (nc > 6) { F[o + 6] = a6 < lo ? lo : (a6 > hi ? hi : a6); }
              if (nc > 7) { F[o + 7] = a7 < lo ? lo : (a7 > hi ? hi : a7); }
            }
          }
        }
      }
      return 0;
    };

    ks.depthwise2d = function (x, w, y, batch, inH, inW, inC, kH, kW, mult, sH, sW, dH, dW, padT, padL,
      outH, outW, lo, hi) {
      var F = S.F, wb = w >> 2, cm = inC * mult;
      var acc = tmp(0, cm);
      var xs = x >> 2, ys = y >> 2, inSample = inH * inW * inC, outSample = outH * outW * cm;
      var j, c, mm;
      for (var b = 0; b < batch; b++, xs += inSample, ys += outSample) {
        for (var oy = 0; oy < outH; oy++) {
          var iy0 = oy * sH - padT;
          for (var ox = 0; ox < outW; ox++) {
            var ix0 = ox * sW - padL, yo = ys + (oy * outW + ox) * cm;
            for (j = 0; j < cm; j++) { acc[j] = F[wb + j]; }
            for (var ky = 0; ky < kH; ky++) {
              var iy = iy0 + ky * dH;
              if (iy < 0 || iy >= inH) { continue; }
              for (var kx = 0; kx < kW; kx++) {
                var ix = ix0 + kx * dW;
                if (ix < 0 || ix >= inW) { continue; }
                var xo = xs + (iy * inW + ix) * inC, wo = wb + cm + (ky * kW + kx) * cm;
                if (mult === 1) {
                  for (c = 0; c < inC; c++) { acc[c] += F[xo + c] * F[wo + c]; }
                } else {
                  for (c = 0, j = 0; c < inC; c++) {
                    var v = F[xo + c];
                    for (mm = 0; mm < mult; mm++, j++) { acc[j] += v * F[wo + j]; }
                  }
                }
              }
            }
            for (j = 0; j < cm; j++) {
              var a = acc[j];
              F[yo + j] = a < lo ? lo : (a > hi ? hi : a);
            }
          }
        }
      }
      return 0;
    };

    ks.pool2d = function (x, y, batch, inH, inW, c, kH, kW, sH, sW, padT, padL, outH, outW, mode) {
      var F = S.F, xs = x >> 2, yo = y >> 2, inSample = inH * inW * c;
      var acc = tmp(0, c), ch, v;
      for (var b = 0; b < batch; b++, xs += inSample) {
        for (var oy = 0; oy < outH; oy++) {
          var y0 = oy * sH - padT, y1 = y0 + kH;
          if (y0 < 0) { y0 = 0; }
          if (y1 > inH) { y1 = inH; }
          for (var ox = 0; ox < outW; ox++, yo += c) {
            var x0 = ox * sW - padL, x1 = x0 + kW;
            if (x0 < 0) { x0 = 0; }
            if (x1 > inW) { x1 = inW; }
            var init = mode === 0 ? -Infinity : 0;
            for (ch = 0; ch < c; ch++) { acc[ch] = init; }
            for (var iy = y0; iy < y1; iy++) {
              for (var ix = x0; ix < x1; ix++) {
                var xo = xs + (iy * inW + ix) * c;
                if (mode === 0) {
                  for (ch = 0; ch < c; ch++) {
                    v = F[xo + ch];
                    if (v > acc[ch] || v !== v) { acc[ch] = v; }
                  }
                } else {
                  for (ch = 0; ch < c; ch++) { acc[ch] += F[xo + ch]; }
                }
              }
            }
            if (mode === 0) {
              for (ch = 0; ch < c; ch++) { F[yo + ch] = acc[ch]; }
            } else {
              var cnt = (y1 > y0 ? y1 - y0 : 0) * (x1 > x0 ? x1 - x0 : 0);
              for (ch = 0; ch < c; ch++) { F[yo + ch] = acc[ch] / cnt; }
            }
          }
        }
      }
      return 0;
    };

    ks.global_pool = function (x, y, batch, s, c, mode) {
      var F = S.F, xs = x >> 2, yo = y >> 2, acc = tmp(0, c), ch, v;
      for (var b = 0; b < batch; b++, yo += c) {
        for (ch = 0; ch < c; ch++) { acc[ch] = mode === 0 ? -Infinity : 0; }
        for (var i = 0; i < s; i++, xs += c) {
          if (mode === 0) {
            for (ch = 0; ch < c; ch++) {
              v = F[xs + ch];
              if (v > acc[ch] || v !== v) { acc[ch] = v; }
            }
          } else {
            for (ch = 0; ch < c; ch++) { acc[ch] += F[xs + ch]; }
          }
        }
        if (mode === 0) {
          for (ch = 0; ch < c; ch++) { F[yo + ch] = acc[ch]; }
        } else {
          for (ch = 0; ch < c; ch++) { F[yo + ch] = acc[ch] / s; }
        }
      }
      return 0;
    };

    ks.unary = function (x, y, count, kind, a, b) {
      var F = S.F, xi = x >> 2, yi = y >> 2, i, v, t, exp = mexp, th = tanh, f = scalar;
      var end = xi + count;
      switch (kind) {
        case 0:
          if (xi !== yi) { for (; xi < end; xi++, yi++) { F[yi] = F[xi]; } }
          break;
        case 1:
          for (; xi < end; xi++, yi++) { v = F[xi]; F[yi] = v < 0 ? 0 : v; }
          break;
        case 2:
          for (; xi < end; xi++, yi++) { v = F[xi]; F[yi] = v < 0 ? 0 : (v > 6 ? 6 : v); }
          break;
        case 5:
          for (; xi < end; xi++, yi++) { F[yi] = 1 / (1 + exp(-F[xi])); }
          break;
        case 6:
          for (; xi < end; xi++, yi++) { t = 0.2 * F[xi] + 0.5; F[yi] = t < 0 ? 0 : (t > 1 ? 1 : t); }
          break;
        case 8:
          for (; xi < end; xi++, yi++) { F[yi] = th(F[xi]); }
          break;
        case 15:
          for (; xi < end; xi++, yi++) { v = F[xi]; F[yi] = v >= 0 ? v : a * v; }
          break;
        case 17:
          for (; xi < end; xi++, yi++) { F[yi] = a * F[xi] + b; }
          break;
        default:
          if (kind !== (kind | 0) || kind < 0 || kind >= UNARY.length) {
            throw new Error('jsengine-ml es5 kernels: unknown unary kind ' + kind);
          }
          for (i = 0; i < count; i++) { F[yi + i] = f(kind, F[xi + i], a, b); }
      }
      return 0;
    };

    ks.softmax = function (x, y, outer, axisLen, inner, log) {
      var F = S.F, e = tmp(0, axisLen), xb = x >> 2, yb = y >> 2, j, v, max, sum, exp = mexp;
      for (var o = 0; o < outer; o++) {
        for (var i = 0; i < inner; i++) {
          var xo = xb + o * axisLen * inner + i, yo = yb + o * axisLen * inner + i;
          max = -Infinity;
          for (j = 0; j < axisLen; j++) {
            v = F[xo + j * inner];
            if (v > max || v !== v) { max = v; }
          }
          sum = 0;
          for (j = 0; j < axisLen; j++) {
            v = F[xo + j * inner] - max;
            e[j] = v;
            sum += exp(v);
          }
          if (log) {
            sum = mlog(sum);
            for (j = 0; j < axisLen; j++) { F[yo + j * inner] = e[j] - sum; }
          } else {
            for (j = 0; j < axisLen; j++) { F[yo + j * inner] = exp(e[j]) / sum; }
          }
        }
      }
      return 0;
    };

    ks.prelu = function (x, y, alpha, rows, size) {
      var F = S.F, xi = x >> 2, yi = y >> 2, al = alpha >> 2, v;
      for (var r = 0; r < rows; r++) {
        for (var i = 0; i < size; i++, xi++, yi++) {
          v = F[xi];
          F[yi] = v >= 0 ? v : F[al + i] * v;
        }
      }
      return 0;
    };

    ks.affine = function (x, y, scale, shift, outer, c, inner) {
      var F = S.F, xi = x >> 2, yi = y >> 2, sc = scale >> 2, sh = shift >> 2;
      for (var o = 0; o < outer; o++) {
        for (var j = 0; j < c; j++) {
          var a = F[sc + j], b = F[sh + j];
          for (var i = 0; i < inner; i++, xi++, yi++) { F[yi] = F[xi] * a + b; }
        }
      }
      return 0;
    };

    ks.layernorm = function (x, y, gamma, beta, rows, size, eps) {
      var F = S.F, xi = x >> 2, yi = y >> 2, ga = gamma >> 2, be = beta >> 2, i, d;
      for (var r = 0; r < rows; r++, xi += size, yi += size) {
        var mean = 0, vr = 0;
        for (i = 0; i < size; i++) { mean += F[xi + i]; }
        mean /= size;
        for (i = 0; i < size; i++) { d = F[xi + i] - mean; vr += d * d; }
        var inv = 1 / msqrt(vr / size + eps);
        for (i = 0; i < size; i++) {
          d = (F[xi + i] - mean) * inv;
          if (gamma) { d *= F[ga + i]; }
          if (beta) { d += F[be + i]; }
          F[yi + i] = d;
        }
      }
      return 0;
    };

    ks.binary = function (a, b, y, count, op) {
      var F = S.F, ai = a >> 2, bi = b >> 2, yi = y >> 2, end = yi + count, u, v;
      switch (op) {
        case 0: for (; yi < end; ai++, bi++, yi++) { F[yi] = F[ai] + F[bi]; } break;
        case 1: for (; yi < end; ai++, bi++, yi++) { F[yi] = F[ai] - F[bi]; } break;
        case 2: for (; yi < end; ai++, bi++, yi++) { F[yi] = F[ai] * F[bi]; } break;
        case 3:
          for (; yi < end; ai++, bi++, yi++) { u = F[ai]; v = F[bi]; F[yi] = (u > v || u !== u) ? u : v; }
          break;
        case 4:
          for (; yi < end; ai++, bi++, yi++) { u = F[ai]; v = F[bi]; F[yi] = (u < v || u !== u) ? u : v; }
          break;
        default: throw new Error('jsengine-ml es5 kernels: unknown binary op ' + op);
      }
      return 0;
    };

    ks.copy = function (src, dst, outer, mid, inner, srcOuter, srcMid, dstOuter, dstMid) {
      var F = S.F, sb = src >> 2, db = dst >> 2;
      for (var o = 0; o < outer; o++) {
        for (var j = 0; j < mid; j++) {
          var s = sb + o * srcOuter + j * srcMid, d = db + o * dstOuter + j * dstMid;
          if (inner >= 64) {
            F.set(F.subarray(s, s + inner), d);
          } else {
            for (var i = 0; i < inner; i++) { F[d + i] = F[s + i]; }
          }
        }
      }
      return 0;
    };

    ks.permute = function (x, y, batch, d0, d1, d2, d3, s0, s1, s2, s3) {
      var F = S.F, xb = x >> 2, yi = y >> 2, R = d0 * d1 * d2 * d3;
      for (var b = 0; b < batch; b++, xb += R) {
        for (var i0 = 0; i0 < d0; i0++) {
          for (var i1 = 0; i1 < d1; i1++) {
            for (var i2 = 0; i2 < d2; i2++) {
              var s = xb + i0 * s0 + i1 * s1 + i2 * s2;
              for (var i3 = 0; i3 < d3; i3++, s += s3, yi++) { F[yi] = F[s]; }
            }
          }
        }
      }
      return 0;
    };

    ks.embedding = function (ids, table, y, count, vocab, dim) {
      var F = S.F, I = S.I, ii = ids >> 2, tb = table >> 2, yi = y >> 2;
      for (var i = 0; i < count; i++, yi += dim) {
        var id = I[ii + i];
        if (id < 0 || id >= vocab) { return 1 + i; }
        var s = tb + id * dim;
        for (var j = 0; j < dim; j++) { F[yi + j] = F[s + j]; }
      }
      return 0;
    };

    ks.rnn = function (cell, x, wk, wr, y, scratch, batch, steps, inDim, units, flags, act, recAct) {
      var F = S.F, G = GATES[cell], U = units, GU = G * U, j, v, f = scalar, row = packedRow;
      var bk = packedSize(inDim, U), br = packedSize(U, U), wkb = wk >> 2, wrb = wr >> 2;
      var seq = flags & 1, back = flags & 2, after = flags & 4;
      var xw = tmp(0, GU), hu = tmp(1, GU), h = tmp(2, U), c = tmp(3, U), rh = tmp(4, U);
      var xb = x >> 2, yb = y >> 2;
      for (var b = 0; b < batch; b++) {
        for (j = 0; j < U; j++) { h[j] = 0; c[j] = 0; }
        for (var s = 0; s < steps; s++) {
          var t = back ? steps - 1 - s : s, g;
          var xo = xb + (b * steps + t) * inDim;
          for (g = 0; g < G; g++) { row(F, wkb + g * bk, F, xo, inDim, U, xw, g * U); }
          if (cell === 2 && !after) {
            // GRU, reset after false: r applies to h before the recurrent product of gate h.
            row(F, wrb, h, 0, U, U, hu, 0);
            row(F, wrb + br, h, 0, U, U, hu, U);
            for (j = 0; j < U; j++) {
              xw[j] = f(recAct, xw[j] + hu[j], 0, 0);
              xw[U + j] = f(recAct, xw[U + j] + hu[U + j], 0, 0);
              rh[j] = xw[U + j] * h[j];
            }
            row(F, wrb + 2 * br, rh, 0, U, U, hu, 2 * U);
            for (j = 0; j < U; j++) {
              v = f(act, xw[2 * U + j] + hu[2 * U + j], 0, 0);
              h[j] = xw[j] * h[j] + (1 - xw[j]) * v;
            }
          } else {
            for (g = 0; g < G; g++) { row(F, wrb + g * br, h, 0, U, U, hu, g * U); }
            if (cell === 0) {
              for (j = 0; j < U; j++) { h[j] = f(act, xw[j] + hu[j], 0, 0); }
            } else if (cell === 1) {
              for (j = 0; j < U; j++) {
                var ig = f(recAct, xw[j] + hu[j], 0, 0);
                var fg = f(recAct, xw[U + j] + hu[U + j], 0, 0);
                var cg = f(act, xw[2 * U + j] + hu[2 * U + j], 0, 0);
                var og = f(recAct, xw[3 * U + j] + hu[3 * U + j], 0, 0);
                c[j] = fg * c[j] + ig * cg;
                h[j] = og * f(act, c[j], 0, 0);
              }
            } else if (cell === 2) {
              for (j = 0; j < U; j++) {
                var z = f(recAct, xw[j] + hu[j], 0, 0);
                var r = f(recAct, xw[U + j] + hu[U + j], 0, 0);
                v = f(act, xw[2 * U + j] + r * hu[2 * U + j], 0, 0);
                h[j] = z * h[j] + (1 - z) * v;
              }
            } else {
              throw new Error('jsengine-ml es5 kernels: unknown rnn cell ' + cell);
            }
          }
          if (seq) {
            var yo = yb + (b * steps + s) * U;
            for (j = 0; j < U; j++) { F[yo + j] = h[j]; }
          }
        }
        if (!seq) {
          for (j = 0; j < U; j++) { F[yb + b * U + j] = h[j]; }
        }
      }
      return 0;
    };

    // ---------------------------------------------------------------- specialization
    // Weight (i, j) of a packed (k, n) block at word wb; i = -1 is the bias.
    function packedAt(F, wb, k, i, j) {
      return F[wb + (j >> 3) * 8 * (k + 1) + 8 * (i + 1) + (j & 7)];
    }

    var PARAMS = {};
    (function () {
      var names = {
        dense: ['x', 'w', 'y', 'm', 'k', 'n', 'lo', 'hi'],
        conv2d: ['x', 'w', 'y', 'scratch', 'batch', 'in_h', 'in_w', 'in_c', 'k_h', 'k_w', 'out_c', 'stride_h',
          'stride_w', 'dil_h', 'dil_w', 'pad_top', 'pad_left', 'out_h', 'out_w', 'lo', 'hi'],
        depthwise2d: ['x', 'w', 'y', 'batch', 'in_h', 'in_w', 'in_c', 'k_h', 'k_w', 'mult', 'stride_h', 'stride_w',
          'dil_h', 'dil_w', 'pad_top', 'pad_left', 'out_h', 'out_w', 'lo', 'hi'],
        rnn: ['cell', 'x', 'wk', 'wr', 'y', 'scratch', 'batch', 'steps', 'in_dim', 'units', 'flags', 'act',
          'rec_act'],
        pool2d: ['x', 'y', 'batch', 'in_h', 'in_w', 'c', 'k_h', 'k_w', 'stride_h', 'stride_w', 'pad_top', 'pad_left',
          'out_h', 'out_w', 'mode']
      };
      for (var key in names) {
        if (names.hasOwnProperty(key)) { PARAMS[key] = names[key]; }
      }
    })();

    function fixedArgs(params, args, skip) {
      var out = [];
      for (var i = 0; i < params.length; i++) {
        if (skip.indexOf(params[i]) < 0) { out.push([params[i], args[i]]); }
      }
      return out;
    }

    function specDense(args) {
      var F = S.F, wb = args[1] >> 2, k = args[4], n = args[5], lo = args[6], hi = args[7];
      if (!(k >= 0 && n >= 1) || k * n > maxTerms) { return null; }
      var code = [], i, j, c0, c1;
      var nx = k < denseChunk ? k : denseChunk;
      var decl = ['xi = x >> 2', 'yi = y >> 2', 'r', 'v'];
      for (i = 0; i < nx; i++) { decl.push('x' + i); }
      var chunked = k > denseChunk;
      if (chunked) { for (j = 0; j < n; j++) { decl.push('s' + j); } }
      code.push('var ' + decl.join(', ') + ';');
      code.push('for (r = 0; r < m; r++, xi += ' + k + ', yi += ' + n + ') {');
      if (!chunked) {
        for (i = 0; i < k; i++) { code.push('x' + i + ' = F[xi + ' + i + '];'); }
        for (j = 0; j < n; j++) {
          var terms = [];
          for (i = 0; i < k; i++) { terms.push('x' + i + ' * ' + lit(packedAt(F, wb, k, i, j))); }
          code.push('v = ' + sumCode(lit(packedAt(F, wb, k, -1, j)), terms) + ';');
          code.push(storeClamped('F[yi + ' + j + ']', 'v', lo, hi));
        }
      } else {
        for (j = 0; j < n; j++) {
          var bias = lit(packedAt(F, wb, k, -1, j));
          code.push('s' + j + ' = ' + (bias === '0' ? 'Z' : bias) + ';');
        }
        for (c0 = 0; c0 < k; c0 = c1) {
          c1 = c0 + denseChunk < k ? c0 + denseChunk : k;
          for (i = c0; i < c1; i++) { code.push('x' + (i - c0) + ' = F[xi + ' + i + '];'); }
          for (j = 0; j < n; j++) {
            var t2 = [];
            for (i = c0; i < c1; i++) { t2.push('x' + (i - c0) + ' * ' + lit(packedAt(F, wb, k, i, j))); }
            code.push('s' + j + ' = ' + sumCode('s' + j, t2) + ';');
          }
        }
        for (j = 0; j < n; j++) { code.push(storeClamped('F[yi + ' + j + ']', 's' + j, lo, hi)); }
      }
      code.push('}');
      return build('dense', PARAMS.dense, fixedArgs(PARAMS.dense, args, ['x', 'w', 'y', 'm']), code.join('\n'), S,
        ks.dense);
    }

    // Shared by conv2d, depthwise2d and pool2d: loops over batch, row segments, column segments; `block`
    // returns the code of one output pixel given its valid kernel rows and columns, with `p` the
    // word index of the input pixel at window offset (0, 0) and `yo` that of the output pixel.
    function segmentCode(a, block, termsPerTap) {
      var segY = segments(a.outH, a.inH, a.kH, a.sH, a.dH, a.padT);
      var segX = segments(a.outW, a.inW, a.kW, a.sW, a.dW, a.padL);
      var total = 0, sy, sx;
      for (sy = 0; sy < segY.length; sy++) {
        for (sx = 0; sx < segX.length; sx++) {
          total += segY[sy].ks.length * segX[sx].ks.length * termsPerTap;
        }
      }
      if (total > maxTerms) { return null; }
      var rowWords = a.inW * a.inC, outC = a.outC;
      var code = [];
      code.push('for (b = 0; b < batch; b++, xs += ' + a.inH * rowWords + ', ys += ' +
        a.outH * a.outW * outC + ') {');
      for (sy = 0; sy < segY.length; sy++) {
        var ry = segY[sy];
        code.push('for (oy = ' + ry.o0 + '; oy < ' + ry.o1 + '; oy++) {');
        for (sx = 0; sx < segX.length; sx++) {
          var rx = segX[sx];
          code.push('p = xs + (oy * ' + a.sH + ' - ' + a.padT + ') * ' + rowWords + ' + ' +
            (rx.o0 * a.sW - a.padL) * a.inC + '; yo = ys + oy * ' + a.outW * outC + ' + ' + rx.o0 * outC + ';');
          code.push('for (ox = ' + rx.o0 + '; ox < ' + rx.o1 + '; ox++, p += ' + a.sW * a.inC + ', yo += ' +
            outC + ') {');
          code.push(block(ry.ks, rx.ks));
          code.push('}');
        }
        code.push('}');
      }
      code.push('}');
      return code.join('\n');
    }

    function specConv2d(args) {
      var F = S.F, wb = args[1] >> 2;
      var a = {
        inH: args[5], inW: args[6], inC: args[7], kH: args[8], kW: args[9], outC: args[10], sH: args[11],
        sW: args[12], dH: args[13], dW: args[14], padT: args[15], padL: args[16], outH: args[17], outW: args[18]
      };
      var lo = args[19], hi = args[20], K = a.kH * a.kW * a.inC;
      if (!(a.outC >= 1 && K >= 1) || K * a.outC > maxTerms) { return null; }
      var rowWords = a.inW * a.inC;
      var maxTaps = K;
      function block(kys, kxs) {
        var lines = [], taps = [], ti = 0, f, q, r, c;
        for (q = 0; q < kys.length; q++) {
          for (r = 0; r < kxs.length; r++) {
            var off = kys[q] * a.dH * rowWords + kxs[r] * a.dW * a.inC;
            for (c = 0; c < a.inC; c++) {
              var row = (kys[q] * a.kW + kxs[r]) * a.inC + c;
              taps.push(row);
              lines.push('t' + ti + ' = F[p + ' + (off + c) + '];');
              ti++;
            }
          }
        }
        for (f = 0; f < a.outC; f++) {
          var terms = [];
          for (q = 0; q < taps.length; q++) { terms.push('t' + q + ' * ' + lit(packedAt(F, wb, K, taps[q], f))); }
          lines.push('v = ' + sumCode(lit(packedAt(F, wb, K, -1, f)), terms) + ';');
          lines.push(storeClamped('F[yo + ' + f + ']', 'v', lo, hi));
        }
        return lines.join('\n');
      }
      var fixed = fixedArgs(PARAMS.conv2d, args, ['x', 'w', 'y', 'scratch', 'batch']);
      var whole = spatial ? wholeImageConv(a, F, wb, K, lo, hi) : null;
      if (whole !== null) { return build('conv2d', PARAMS.conv2d, fixed, whole, S, ks.conv2d); }
      var body = segmentCode(a, block, a.inC * a.outC);
      if (body === null) { return null; }
      var decl = ['xs = x >> 2', 'ys = y >> 2', 'b', 'oy', 'ox', 'p', 'yo', 'v'];
      for (var i = 0; i < maxTaps; i++) { decl.push('t' + i); }
      return build('conv2d', PARAMS.conv2d, fixedArgs(PARAMS.conv2d, args, ['x', 'w', 'y', 'scratch', 'batch']),
        'var ' + decl.join(', ') + ';\n' + body, S, ks.conv2d);
    }

    // conv2d unrolled over a whole (small) sample: every input value loaded once into a local, every
    // output an expression over the in-bounds taps. Null when the image or the code is too big.
    function wholeImageConv(a, F, wb, K, lo, hi) {
      var nIn = a.inH * a.inW * a.inC, rowWords = a.inW * a.inC, outSample = a.outH * a.outW * a.outC;
      if (nIn > SPATIAL_MAX_INPUTS) { return null; }
      var oy, ox, ky, kx, c, f, iy, ix, total = 0;
      for (oy = 0; oy < a.outH; oy++) {
        for (ky = 0; ky < a.kH; ky++) {
          iy = oy * a.sH - a.padT + ky * a.dH;
          if (iy < 0 || iy >= a.inH) { continue; }
          for (ox = 0; ox < a.outW; ox++) {
            for (kx = 0; kx < a.kW; kx++) {
              ix = ox * a.sW - a.padL + kx * a.dW;
              if (ix >= 0 && ix < a.inW) { total += a.inC * a.outC; }
            }
          }
        }
      }
      if (total > maxTerms) { return null; }
      var used = [], out = [], i;
      for (oy = 0; oy < a.outH; oy++) {
        for (ox = 0; ox < a.outW; ox++) {
          var taps = [], rows = [];
          for (ky = 0; ky < a.kH; ky++) {
            iy = oy * a.sH - a.padT + ky * a.dH;
            if (iy < 0 || iy >= a.inH) { continue; }
            for (kx = 0; kx < a.kW; kx++) {
              ix = ox * a.sW - a.padL + kx * a.dW;
              if (ix < 0 || ix >= a.inW) { continue; }
              for (c = 0; c < a.inC; c++) {
                taps.push(iy * rowWords + ix * a.inC + c);
                rows.push((ky * a.kW + kx) * a.inC + c);
                used[iy * rowWords + ix * a.inC + c] = true;
              }
            }
          }
          for (f = 0; f < a.outC; f++) {
            var terms = [];
            for (i = 0; i < taps.length; i++) { terms.push('i' + taps[i] + ' * ' + lit(packedAt(F, wb, K, rows[i], f))); }
            out.push('v = ' + sumCode(lit(packedAt(F, wb, K, -1, f)), terms) + ';');
            out.push(storeClamped('F[ys + ' + ((oy * a.outW + ox) * a.outC + f) + ']', 'v', lo, hi));
          }
        }
      }
      var decl = ['xs = x >> 2', 'ys = y >> 2', 'b', 'v'], loads = [];
      for (i = 0; i < nIn; i++) {
        if (used[i]) {
          decl.push('i' + i);
          loads.push('i' + i + ' = F[xs + ' + i + '];');
        }
      }
      return 'var ' + decl.join(', ') + ';\nfor (b = 0; b < batch; b++, xs += ' + nIn + ', ys += ' + outSample +
        ') {\n' + loads.join('\n') + '\n' + out.join('\n') + '\n}';
    }

    function specPool2d(args) {
      var a = {
        inH: args[3], inW: args[4], inC: args[5], kH: args[6], kW: args[7], sH: args[8], sW: args[9], dH: 1, dW: 1,
        padT: args[10], padL: args[11], outH: args[12], outW: args[13], outC: args[5]
      };
      var mode = args[14], rowWords = a.inW * a.inC;
      if ((mode !== 0 && mode !== 1) || !(a.inC >= 1 && a.kH >= 1 && a.kW >= 1)) { return null; }
      function block(kys, kxs) {
        var lines = [], c, q, r;
        for (c = 0; c < a.inC; c++) {
          var reads = [];
          for (q = 0; q < kys.length; q++) {
            for (r = 0; r < kxs.length; r++) { reads.push('F[p + ' + (kys[q] * rowWords + kxs[r] * a.inC + c) + ']'); }
          }
          if (!reads.length) {
            lines.push('F[yo + ' + c + '] = ' + (mode === 0 ? '-Infinity' : 'NaN') + ';');
          } else if (mode === 1) {
            lines.push('F[yo + ' + c + '] = (' + reads.join(' + ') + ') / ' + reads.length + ';');
          } else {
            lines.push('m = ' + reads[0] + ';');
            for (q = 1; q < reads.length; q++) { lines.push('u = ' + reads[q] + '; if (u > m || u !== u) { m = u; }'); }
            lines.push('F[yo + ' + c + '] = m;');
          }
        }
        return lines.join('\n');
      }
      var body = segmentCode(a, block, a.inC);
      if (body === null) { return null; }
      return build('pool2d', PARAMS.pool2d, fixedArgs(PARAMS.pool2d, args, ['x', 'y', 'batch']),
        'var xs = x >> 2, ys = y >> 2, b, oy, ox, p, yo, m, u;\n' + body, S, ks.pool2d);
    }

    function specDepthwise2d(args) {
      var F = S.F, wb = args[1] >> 2;
      var a = {
        inH: args[4], inW: args[5], inC: args[6], kH: args[7], kW: args[8], mult: args[9], sH: args[10],
        sW: args[11], dH: args[12], dW: args[13], padT: args[14], padL: args[15], outH: args[16], outW: args[17]
      };
      var lo = args[18], hi = args[19], CM = a.inC * a.mult;
      a.outC = CM;
      if (!(CM >= 1 && a.kH * a.kW >= 1) || a.kH * a.kW * CM > maxTerms) { return null; }
      var rowWords = a.inW * a.inC;
      function block(kys, kxs) {
        var lines = [], c, m, q, r;
        for (c = 0; c < a.inC; c++) {
          var taps = [];
          for (q = 0; q < kys.length; q++) {
            for (r = 0; r < kxs.length; r++) {
              var off = kys[q] * a.dH * rowWords + kxs[r] * a.dW * a.inC + c;
              lines.push('t' + taps.length + ' = F[p + ' + off + '];');
              taps.push(kys[q] * a.kW + kxs[r]);
            }
          }
          for (m = 0; m < a.mult; m++) {
            var oc = c * a.mult + m, terms = [];
            for (q = 0; q < taps.length; q++) { terms.push('t' + q + ' * ' + lit(F[wb + CM + taps[q] * CM + oc])); }
            lines.push('v = ' + sumCode(lit(F[wb + oc]), terms) + ';');
            lines.push(storeClamped('F[yo + ' + oc + ']', 'v', lo, hi));
          }
        }
        return lines.join('\n');
      }
      var body = segmentCode(a, block, CM);
      if (body === null) { return null; }
      var decl = ['xs = x >> 2', 'ys = y >> 2', 'b', 'oy', 'ox', 'p', 'yo', 'v'];
      for (var i = 0; i < a.kH * a.kW; i++) { decl.push('t' + i); }
      return build('depthwise2d', PARAMS.depthwise2d,
        fixedArgs(PARAMS.depthwise2d, args, ['x', 'w', 'y', 'batch']), 'var ' + decl.join(', ') + ';\n' + body, S,
        ks.depthwise2d);
    }

    function specRnn(args) {
      var F = S.F, cell = args[0], wkb = args[2] >> 2, wrb = args[3] >> 2;
      var D = args[8], U = args[9], flags = args[10], act = args[11], recAct = args[12];
      if (cell !== 0 && cell !== 1 && cell !== 2) { return null; }
      var G = GATES[cell];
      if (!(U >= 1 && D >= 0) || G * U * (D + U) > maxTerms) { return null; }
      var bk = packedSize(D, U), br = packedSize(U, U), after = (flags & 4) !== 0;
      var seq = (flags & 1) !== 0, back = (flags & 2) !== 0;
      var i, j, g, terms;
      function wx(g, i, j) { return packedAt(F, wkb + g * bk, D, i, j); }
      function wh(g, i, j) { return packedAt(F, wrb + g * br, U, i, j); }
      // Pre-activation of gate g, unit j: input bias (+ recurrent bias unless kept apart) + x.W (+ h.U).
      function xPart(g, j, withRec, addRecBias) {
        var bias = wx(g, -1, j) + (addRecBias ? wh(g, -1, j) : 0);
        var t = [];
        for (i = 0; i < D; i++) { t.push('x' + i + ' * ' + lit(wx(g, i, j))); }
        if (withRec) {
          for (i = 0; i < U; i++) { t.push('h' + i + ' * ' + lit(wh(g, i, j))); }
        }
        return sumCode(lit(bias), t);
      }
      function hPart(g, j, src) {
        var t = [];
        for (i = 0; i < U; i++) { t.push(src + i + ' * ' + lit(wh(g, i, j))); }
        return sumCode(lit(wh(g, -1, j)), t);
      }
      var decl = ['xb = x >> 2', 'yb = y >> 2', 'b', 's', 'xi', 'yo', 'v'];
      for (i = 0; i < D; i++) { decl.push('x' + i); }
      for (j = 0; j < U; j++) { decl.push('h' + j, 'c' + j, 'q' + j, 'z' + j, 'r' + j, 'g' + j, 'o' + j); }
      var code = ['var ' + decl.join(', ') + ';'];
      code.push('for (b = 0; b < batch; b++) {');
      for (j = 0; j < U; j++) { code.push('h' + j + ' = Z; c' + j + ' = Z;'); }
      code.push('for (s = 0; s < steps; s++) {');
      code.push(back ? 'xi = xb + (b * steps + steps - 1 - s) * ' + D + ';' : 'xi = xb + (b * steps + s) * ' + D + ';');
      for (i = 0; i < D; i++) { code.push('x' + i + ' = F[xi + ' + i + '];'); }
      if (cell === 0) {
        for (j = 0; j < U; j++) { code.push('q' + j + ' = ' + xPart(0, j, true, true) + ';', activationCode(act, 'q' + j)); }
        for (j = 0; j < U; j++) { code.push('h' + j + ' = q' + j + ';'); }
      } else if (cell === 1) {
        var names = ['z', 'r', 'g', 'o'];
        for (g = 0; g < 4; g++) {
          for (j = 0; j < U; j++) {
            code.push(names[g] + j + ' = ' + xPart(g, j, true, true) + ';',
              activationCode(g === 2 ? act : recAct, names[g] + j));
          }
        }
        for (j = 0; j < U; j++) {
          code.push('c' + j + ' = r' + j + ' * c' + j + ' + z' + j + ' * g' + j + ';');
          code.push('v = c' + j + ';', activationCode(act, 'v'), 'h' + j + ' = o' + j + ' * v;');
        }
      } else {
        for (j = 0; j < U; j++) {
          code.push('z' + j + ' = ' + xPart(0, j, true, true) + ';', activationCode(recAct, 'z' + j));
          code.push('r' + j + ' = ' + xPart(1, j, true, true) + ';', activationCode(recAct, 'r' + j));
        }
        if (after) {
          for (j = 0; j < U; j++) {
            code.push('g' + j + ' = ' + xPart(2, j, false, false) + ' + r' + j + ' * (' + hPart(2, j, 'h') + ');',
              activationCode(act, 'g' + j));
          }
        } else {
          for (j = 0; j < U; j++) { code.push('q' + j + ' = r' + j + ' * h' + j + ';'); }
          for (j = 0; j < U; j++) {
            terms = [];
            for (i = 0; i < U; i++) { terms.push('q' + i + ' * ' + lit(wh(2, i, j))); }
            code.push('g' + j + ' = ' + sumCode(xPart(2, j, false, true), terms) + ';', activationCode(act, 'g' + j));
          }
        }
        for (j = 0; j < U; j++) {
          code.push('h' + j + ' = z' + j + ' * h' + j + ' + (ONE - z' + j + ') * g' + j + ';');
        }
      }
      if (seq) {
        code.push('yo = yb + (b * steps + s) * ' + U + ';');
        for (j = 0; j < U; j++) { code.push('F[yo + ' + j + '] = h' + j + ';'); }
      }
      code.push('}');
      if (!seq) {
        code.push('yo = yb + b * ' + U + ';');
        for (j = 0; j < U; j++) { code.push('F[yo + ' + j + '] = h' + j + ';'); }
      }
      code.push('}');
      return build('rnn', PARAMS.rnn, fixedArgs(PARAMS.rnn, args, ['x', 'wk', 'wr', 'y', 'scratch', 'batch', 'steps']),
        code.join('\n'), S, ks.rnn);
    }

    var SPECIALIZERS = {
      dense: specDense, conv2d: specConv2d, depthwise2d: specDepthwise2d, pool2d: specPool2d, rnn: specRnn
    };

    ks.specialize = function (name, args) {
      var make = SPECIALIZERS.hasOwnProperty(name) ? SPECIALIZERS[name] : null;
      if (!make) { return null; }
      var list = [];
      for (var i = 0; i < args.length; i++) { list.push(+args[i]); }
      if (list.length !== PARAMS[name].length) {
        throw new Error('jsengine-ml es5 kernels: ' + name + ' takes ' + PARAMS[name].length + ' arguments');
      }
      return make(list);
    };
    ks.setHeap = setHeap;
    ks.maxTerms = maxTerms;
    return ks;
  }

  ns.es5Kernels = {
    create: create,
    NR: NR,
    // Scalar helpers, exposed for tests: the ES5 fallbacks run on every engine through these.
    erf: erf,
    unary: scalar,
    fallbacks: { expm1: expm1Es5, log1p: log1pEs5, tanh: tanhEs5 }
  };
})(typeof __jsml_scope === 'object' && __jsml_scope ? __jsml_scope :
  (typeof globalThis !== 'undefined' ? globalThis : Function('return this')()));
