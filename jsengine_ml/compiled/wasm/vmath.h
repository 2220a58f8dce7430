/* Vector (f32x4) elementary functions for the kernels: no libc, WebAssembly 128-bit SIMD only.
 *
 * exp: Cody-Waite range reduction x = n*ln2 + t (|t| <= ln2/2, n from the magic-bias rounding
 * trick as in XNNPACK), e^t - 1 = t + t^2*P(t) with a degree-4 P fitted for minimal relative error
 * (Lawson-weighted least squares: 1.2e-7 on P, ~1.5e-8 on e^t), times 2^n. Three variants:
 *   f32x4_exp(_k)        full range: 2^n applied as two factors, so overflow gives +inf and
 *                        underflow subnormals, then 0 (softmax, softplus, gelu, mish);
 *   f32x4_expm1_clamped  e^x - 1 with full relative precision near 0 (tanh, elu, selu);
 *   f32x4_exp_clamped    one factor, for sigmoid, where results under 2^-126 do not matter.
 * Measured against float64 over [-120, 120] (tests/test_kernels_wasm.py runs the same comparison
 * with tolerances), where the result is above 1e-6 in magnitude: elu, selu, sigmoid, softplus,
 * swish within 2.2 ulp of the exact value, tanh 2.5, mish 3.7, gelu and gelu_tanh 2.1 for x > 0.
 * The negative tail of gelu / gelu_tanh is x * (a tiny factor e^(-u^2)...): the rounding of the
 * exponent's argument (u^2 ~ 8 at x = -4) gives relative errors up to ~2e-5 there, absolute
 * errors below 1.1e-7 everywhere. NaN and +-inf inputs give what the numpy oracle gives.
 * kernels_relaxed.wasm evaluates P with fused multiply-adds (VMADD): the same maxima (elu 0.9 ulp
 * instead of 1.0). The _k variants take the constants from an exp_consts loaded once per kernel
 * call (hoisted out of its loops).
 */
#ifndef JSML_VMATH_H
#define JSML_VMATH_H

#include <stdint.h>
#include <wasm_simd128.h>

#define JSML_INLINE static inline __attribute__((always_inline))

#define VSPLAT(c) wasm_f32x4_splat(c)
/* A constant f32x4 read from memory: V8 materializes a v128.const with several instructions at
 * every use, while a load is one (volatile keeps clang from folding it back into a v128.const). */
#define VCONST(c)                                            \
  ({                                                         \
    static volatile __f32x4 k_ = {(c), (c), (c), (c)};       \
    (v128_t)k_;                                              \
  })
#define VADD wasm_f32x4_add
#define VSUB wasm_f32x4_sub
#define VMUL wasm_f32x4_mul
#define VDIV wasm_f32x4_div
/* f32x4.max / f32x4.min propagate a NaN from either operand (several instructions on x64). */
#define VMAX wasm_f32x4_max
#define VMIN wasm_f32x4_min
/* Clamps that keep a NaN of x (one instruction on x64): pmax(x, lo) = x < lo ? lo : x,
 * pmin(x, hi) = hi < x ? hi : x. Only for a bound that is never NaN, and x first. */
#define VCLAMP_LO(x, lo) wasm_f32x4_pmax((x), (lo))
#define VCLAMP_HI(x, hi) wasm_f32x4_pmin((x), (hi))
#define VSEL(if_true, if_false, mask) wasm_v128_bitselect((if_true), (if_false), (mask))
/* a * b + c: one fused multiply-add (relaxed SIMD, kernels_relaxed.wasm: x64 FMA3 where the CPU has
 * it, else mul + add) or an exact mul then add (kernels.wasm). */
#ifdef JSML_RELAXED_SIMD
#define VMADD(a, b, c) wasm_f32x4_relaxed_madd((a), (b), (c))
#else
#define VMADD(a, b, c) VADD(VMUL((a), (b)), (c))
#endif

/* (e^t - 1 - t) / t^2 on |t| <= ln2/2, degree 4. */
#define EXP_C0 0x1.000000p-1f
#define EXP_C1 0x1.5554DEp-3f
#define EXP_C2 0x1.5555BAp-5f
#define EXP_C3 0x1.120B1Cp-7f
#define EXP_C4 0x1.6C69F2p-10f

/* The constants of exp, held in values (registers or native stack slots) by a kernel that loads
 * them once, before its loop: inside a loop each VCONST is a load from linear memory (with a
 * bounds check where the engine has no trap handler) at every use. */
typedef struct {
  v128_t lo, hi, log2e, magic, ln2_hi, ln2_lo, c0, c1, c2, c3, c4, one, two;
  v128_t magic_s, m1_lo, m1_hi, s_lo; /* the one-factor variants: expm1_clamped, exp_clamped */
} exp_consts;

JSML_INLINE exp_consts exp_consts_load(void) {
  exp_consts k;
  k.lo = VCONST(-104.0f);
  k.hi = VCONST(89.0f);
  k.log2e = VCONST(0x1.715476p+0f);
  k.magic = VCONST(0x1.8p23f);
  k.ln2_hi = VCONST(0x1.62E400p-1f); /* 15 significant bits: n * ln2_hi is exact */
  k.ln2_lo = VCONST(0x1.7F7D1Cp-20f);
  k.c0 = VCONST(EXP_C0);
  k.c1 = VCONST(EXP_C1);
  k.c2 = VCONST(EXP_C2);
  k.c3 = VCONST(EXP_C3);
  k.c4 = VCONST(EXP_C4);
  k.one = VCONST(1.0f);
  k.two = VCONST(2.0f);
  k.magic_s = VCONST(0x1.8000FEp23f); /* its low mantissa bits hold 127 + n */
  k.m1_lo = VCONST(-17.5f);
  k.m1_hi = VCONST(88.0f);
  k.s_lo = VCONST(-0x1.5D589Ep+6f);
  return k;
}

/* e^t - 1 for |t| <= ~ln2/2, to full relative precision near 0. */
JSML_INLINE v128_t f32x4_expm1_reduced_k(v128_t vt, const exp_consts* k) {
  v128_t vp = VMADD(k->c4, vt, k->c3); /* Horner, fused in kernels_relaxed.wasm */
  vp = VMADD(vp, vt, k->c2);
  vp = VMADD(vp, vt, k->c1);
  vp = VMADD(vp, vt, k->c0);
  return VMADD(VMUL(vt, vt), vp, vt);
}

JSML_INLINE v128_t f32x4_pow2i(v128_t vn) { /* 2^n for int32 lanes n in [-126, 127] */
  return wasm_i32x4_shl(wasm_i32x4_add(vn, wasm_i32x4_splat(127)), 23);
}

/* e^x: +inf for x > 88.73, 0 for x < -103.98 (subnormals between), NaN for NaN. Cody-Waite
 * reduction x = n ln2 + t; 2^n applied as two factors 2^n1 2^n2 (n1, n2 in [-75, 65]: both
 * normal), so that overflow gives +inf and underflow subnormals, then 0. */
JSML_INLINE v128_t f32x4_exp_k(v128_t vx, const exp_consts* k) {
  vx = VCLAMP_HI(VCLAMP_LO(vx, k->lo), k->hi); /* n in [-150, 129] */
  v128_t vn = VADD(VMUL(vx, k->log2e), k->magic);
  const v128_t vni = wasm_i32x4_sub(vn, k->magic); /* bits(magic + n) - bits(magic) = n */
  vn = VSUB(vn, k->magic);
  v128_t vt = VSUB(vx, VMUL(vn, k->ln2_hi));
  vt = VSUB(vt, VMUL(vn, k->ln2_lo));
  const v128_t vn1 = wasm_i32x4_shr(vni, 1);
  const v128_t vn2 = wasm_i32x4_sub(vni, vn1);
  const v128_t vp = VADD(f32x4_expm1_reduced_k(vt, k), k->one);
  return VMUL(VMUL(vp, f32x4_pow2i(vn1)), f32x4_pow2i(vn2));
}

JSML_INLINE v128_t f32x4_exp(v128_t vx) {
  const exp_consts k = exp_consts_load();
  return f32x4_exp_k(vx, &k);
}

/* e^x - 1 for x in [-17.5, 88] (clamped: -1 below, finite above), NaN for NaN; full relative
 * precision near 0: e^x - 1 = s (e^t - 1) + (s - 1) with s = 2^n, s - 1 exact. */
JSML_INLINE v128_t f32x4_expm1_clamped_k(v128_t vx, const exp_consts* k) {
  vx = VCLAMP_HI(VCLAMP_LO(vx, k->m1_lo), k->m1_hi);
  v128_t vn = VADD(VMUL(vx, k->log2e), k->magic_s);
  const v128_t vs = wasm_i32x4_shl(vn, 23); /* 2^n, n in [-25, 127] */
  vn = VSUB(vn, k->magic_s);
  v128_t vt = VSUB(vx, VMUL(vn, k->ln2_hi));
  vt = VSUB(vt, VMUL(vn, k->ln2_lo));
  return VADD(VMUL(vs, f32x4_expm1_reduced_k(vt, k)), VSUB(vs, k->one));
}

JSML_INLINE v128_t f32x4_expm1_clamped(v128_t vx) {
  const exp_consts k = exp_consts_load();
  return f32x4_expm1_clamped_k(vx, &k);
}

/* e^x for a result that only matters when it is not tiny: x clamped to [-87.33, 89], so results
 * below 2^-126 come out as ~2^-126, and above FLT_MAX as +inf (2^128 is inf's bit pattern). */
JSML_INLINE v128_t f32x4_exp_clamped_k(v128_t vx, const exp_consts* k) {
  vx = VCLAMP_HI(VCLAMP_LO(vx, k->s_lo), k->hi);
  v128_t vn = VADD(VMUL(vx, k->log2e), k->magic_s);
  const v128_t vs = wasm_i32x4_shl(vn, 23); /* 2^n, n in [-126, 128] */
  vn = VSUB(vn, k->magic_s);
  v128_t vt = VSUB(vx, VMUL(vn, k->ln2_hi));
  vt = VSUB(vt, VMUL(vn, k->ln2_lo));
  return VMUL(vs, VADD(f32x4_expm1_reduced_k(vt, k), k->one)); /* s = inf: inf, not inf - inf */
}

/* log(x) (musl's logf reduction and polynomial, vectorized): -inf at 0, NaN below 0 and for NaN,
 * +inf at +inf, subnormals handled. */
JSML_INLINE v128_t f32x4_log(v128_t vx) {
  const v128_t vsub = wasm_f32x4_lt(vx, VCONST(0x1p-126f));
  v128_t vxs = VSEL(VMUL(vx, VCONST(0x1p23f)), vx, vsub);
  v128_t vi = wasm_i32x4_add(vxs, wasm_i32x4_splat(0x3f800000 - 0x3f3504f3));
  v128_t vk = wasm_i32x4_sub(wasm_i32x4_shr(vi, 23), wasm_i32x4_splat(0x7f));
  vk = wasm_i32x4_sub(vk, wasm_v128_and(vsub, wasm_i32x4_splat(23)));
  vi = wasm_i32x4_add(wasm_v128_and(vi, wasm_i32x4_splat(0x007fffff)), wasm_i32x4_splat(0x3f3504f3));
  v128_t vf = VSUB(vi, VCONST(1.0f)); /* m - 1, m in [sqrt(1/2), sqrt(2)) */
  v128_t vs = VDIV(vf, VADD(vf, VCONST(2.0f)));
  v128_t vz = VMUL(vs, vs);
  v128_t vw = VMUL(vz, vz);
  v128_t vt1 = VMUL(vw, VADD(VCONST(0xccce13.0p-25f), VMUL(vw, VCONST(0xf89e26.0p-26f))));
  v128_t vt2 = VMUL(vz, VADD(VCONST(0xaaaaaa.0p-24f), VMUL(vw, VCONST(0x91e9ee.0p-25f))));
  v128_t vr = VADD(vt2, vt1);
  v128_t vhfsq = VMUL(VMUL(VCONST(0.5f), vf), vf);
  v128_t vdk = wasm_f32x4_convert_i32x4(vk);
  v128_t vy = VADD(VMUL(vs, VADD(vhfsq, vr)), VMUL(vdk, VCONST(9.0580006145e-06f)));
  vy = VADD(VADD(VSUB(vy, vhfsq), vf), VMUL(vdk, VCONST(6.9313812256e-01f)));
  vy = VSEL(VCONST(-__builtin_inff()), vy, wasm_f32x4_eq(vx, VCONST(0.0f)));
  vy = VSEL(VCONST(__builtin_nanf("")), vy, wasm_f32x4_lt(vx, VCONST(0.0f)));
  /* +inf and NaN: the input itself */
  return VSEL(vx, vy, wasm_v128_not(wasm_f32x4_lt(vx, VCONST(__builtin_inff()))));
}

/* log(1 + u) for u >= 0: log(v) + (u - (v - 1)) / v with v = 1 + u rounded. */
JSML_INLINE v128_t f32x4_log1p_nonneg(v128_t vu) {
  v128_t vv = VADD(vu, VCONST(1.0f));
  v128_t vcorr = VDIV(VSUB(vu, VSUB(vv, VCONST(1.0f))), vv);
  return VADD(f32x4_log(vv), vcorr);
}

/* 1 / (1 + e^-x): relative precision everywhere (no cancellation on either side); e^-x overflows to
 * inf for x < -88.7 (result 0) and is irrelevant below 2^-126 (result 1). */
JSML_INLINE v128_t f32x4_sigmoid_k(v128_t vx, const exp_consts* k) {
  return VDIV(k->one, VADD(k->one, f32x4_exp_clamped_k(wasm_f32x4_neg(vx), k)));
}

/* tanh(x) = m / (m + 2), m = e^(2x) - 1: full relative precision near 0, -1 and 1 at the ends. */
JSML_INLINE v128_t f32x4_tanh_k(v128_t vx, const exp_consts* k) {
  const v128_t vm = f32x4_expm1_clamped_k(VADD(vx, vx), k);
  return VDIV(vm, VADD(vm, k->two));
}

/* log(1 + e^x) = max(x, 0) + log1p(e^-|x|) */
JSML_INLINE v128_t f32x4_softplus(v128_t vx) {
  v128_t ve = f32x4_exp(wasm_f32x4_neg(wasm_f32x4_abs(vx)));
  return VADD(VCLAMP_LO(vx, VCONST(0.0f)), f32x4_log1p_nonneg(ve));
}

/* x * tanh(softplus(x)) = x * q / (q + 2), q = e^x (e^x + 2); tanh(softplus(x)) is 1 in float
 * for x >= 20. */
JSML_INLINE v128_t f32x4_mish(v128_t vx) {
  v128_t vn = f32x4_exp(VCLAMP_HI(vx, VCONST(20.0f)));
  v128_t vq = VMUL(vn, VADD(vn, VCONST(2.0f)));
  return VMUL(vx, VDIV(vq, VADD(vq, VCONST(2.0f))));
}

/* 0.5 x (1 + erf(x / sqrt 2)). u = x / sqrt 2: |u| < 1: erf(u) = u * P(u^2) (degree 6 in u^2,
 * relative error 1.2e-9); else erfc(|u|) = t exp(-u^2 + Q(t)), t = 1 / (1 + |u|/2) (the
 * Numerical Recipes erfcc fit, relative error 1.1e-7), and gelu = x (1 - erfc/2) for x > 0,
 * x erfc / 2 for x < 0 (no cancellation on the negative side). */
JSML_INLINE v128_t f32x4_gelu(v128_t vx) {
  v128_t vu = VMUL(vx, VCONST(0x1.6A09E6p-1f));
  v128_t va = wasm_f32x4_abs(vu);
  v128_t vu2 = VMUL(vu, vu);
  v128_t vp = VADD(VMUL(VCONST(0x1.496A9Cp-14f), vu2), VCONST(-0x1.A3F72Cp-11f));
  vp = VADD(VMUL(vp, vu2), VCONST(0x1.5405B8p-8f));
  vp = VADD(VMUL(vp, vu2), VCONST(-0x1.B7F90Ep-6f));
  vp = VADD(VMUL(vp, vu2), VCONST(0x1.CE2CF8p-4f));
  vp = VADD(VMUL(vp, vu2), VCONST(-0x1.81273Ep-2f));
  vp = VADD(VMUL(vp, vu2), VCONST(0x1.20DD74p+0f));
  v128_t vsmall = VMUL(VMUL(VCONST(0.5f), vx), VADD(VCONST(1.0f), VMUL(vu, vp)));
  v128_t vt = VDIV(VCONST(1.0f), VADD(VCONST(1.0f), VMUL(VCONST(0.5f), va)));
  v128_t vq = VADD(VMUL(VCONST(0.17087277f), vt), VCONST(-0.82215223f));
  vq = VADD(VMUL(vq, vt), VCONST(1.48851587f));
  vq = VADD(VMUL(vq, vt), VCONST(-1.13520398f));
  vq = VADD(VMUL(vq, vt), VCONST(0.27886807f));
  vq = VADD(VMUL(vq, vt), VCONST(-0.18628806f));
  vq = VADD(VMUL(vq, vt), VCONST(0.09678418f));
  vq = VADD(VMUL(vq, vt), VCONST(0.37409196f));
  vq = VADD(VMUL(vq, vt), VCONST(1.00002368f));
  vq = VADD(VMUL(vq, vt), VCONST(-1.26551223f));
  v128_t vhalf_erfc = VMUL(VMUL(VCONST(0.5f), vt), f32x4_exp(VSUB(vq, VMUL(va, va))));
  v128_t vlarge = VMUL(vx, VSEL(VSUB(VCONST(1.0f), vhalf_erfc), vhalf_erfc, wasm_f32x4_gt(vx, VCONST(0.0f))));
  return VSEL(vsmall, vlarge, wasm_f32x4_lt(va, VCONST(1.0f)));
}

#endif
