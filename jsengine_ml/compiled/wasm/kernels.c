/* jsengine-ml compiled runtime: the WebAssembly kernel set (C -> wasm32, 128-bit SIMD).
 *
 * Every kernel of jsengine_ml/compiled/abi.py, with the semantics of docs/compiled-runtime.md.
 * Built by scripts/build_wasm.py (no libc: the elementary functions are in vmath.h). Arguments
 * are byte addresses into the imported linear memory; every kernel returns 0 on success.
 *
 * The dense micro-kernels follow XNNPACK's f32-gemm-4x8 / 1x8 wasmsimd kernels over the GOI-packed
 * panels of abi.pack_dense (8 bias values, then k rows of 8 weights); a last panel of at most 4
 * columns (64 -> 3, 256 -> 10) goes through dot products along k instead. conv2d runs the same tile
 * directly on the input (no im2col): its rows are one output pixel of 4 samples, its k steps the
 * in-bounds taps; rnn runs the GEMM on blocks of batch rows, one step at a time.
 *
 * Built twice (scripts/build_wasm.py): kernels.wasm, and kernels_relaxed.wasm with
 * JSML_RELAXED_SIMD, where the multiply-adds of the tiles (VMADD) are relaxed-SIMD fused
 * multiply-adds (one FMA instruction on x64 with FMA3: 10-20% faster GEMM tiles in V8).
 *
 * Measured in V8 14 (TurboFan, x64, mini-racer): every linear-memory access carries an explicit
 * bounds check there (mini-racer does not enable V8's trap handler), except at constant addresses,
 * so the tiles are limited by their loads, not their multiply-adds. Hence: A read as f32x4 for 4 k
 * steps and broadcast by lane shuffles (TILE_KSTEP4, with TILE_HOLD keeping the steps in order),
 * and for k <= 16 one tile per k reading a static copy of A at constant addresses. Tried and
 * slower: 5, 6 or 8 rows per tile, 4 x 16 tiles (two panels: register spills), the k loop unrolled
 * by 2, the 4-step loop in tiles whose runs are shorter than 4 (first convolution layers).
 *
 * Internal names follow XNNPACK's: f32_gemm_4x8__wasmsimd_loadsplat is "f32, GEMM, 4 rows x 8
 * columns, 128-bit WebAssembly SIMD, A elements broadcast with load32_splat".
 */
#include <stddef.h>
#include <stdint.h>
#include <wasm_simd128.h>

#include "abi.h"
#include "vmath.h"

#define F32(addr) ((float*)(uintptr_t)(uint32_t)(addr))
#define I32(addr) ((int32_t*)(uintptr_t)(uint32_t)(addr))
#define MIN(a, b) ((a) < (b) ? (a) : (b))

/* Status for an argument the doc does not allow (unknown code, negative size). */
#define STATUS_BAD_ARGUMENT (-1)

/* NaN-propagating scalar max / min (f32.max / f32.min), unlike fmaxf and `a > b ? a : b`. */
#define SMAX(a, b) __builtin_wasm_max_f32((a), (b))
#define SMIN(a, b) __builtin_wasm_min_f32((a), (b))

/* ------------------------------------------------------------------------------------------------
 * Small helpers: partial loads / stores of 1..4 lanes, copies by 32-bit words.
 */

JSML_INLINE v128_t load_partial(const float* p, size_t n) {
  if (n >= 4) return wasm_v128_load(p);
  float buf[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (size_t i = 0; i < n; i++) buf[i] = p[i];
  return wasm_v128_load(buf);
}

JSML_INLINE void store_partial(float* p, v128_t v, size_t n) {
  if (n >= 4) {
    wasm_v128_store(p, v);
    return;
  }
  if (n & 2) {
    wasm_v128_store64_lane(p, v, 0);
    v = wasm_i64x2_shuffle(v, v, 1, 1);
    p += 2;
  }
  if (n & 1) wasm_v128_store32_lane(p, v, 0);
}

JSML_INLINE float hmax(v128_t v) {
  v = VMAX(v, wasm_i64x2_shuffle(v, v, 1, 1));
  v = VMAX(v, wasm_i32x4_shuffle(v, v, 1, 1, 1, 1));
  return wasm_f32x4_extract_lane(v, 0);
}

JSML_INLINE float hsum(v128_t v) {
  v = VADD(v, wasm_i64x2_shuffle(v, v, 1, 1));
  v = VADD(v, wasm_i32x4_shuffle(v, v, 1, 1, 1, 1));
  return wasm_f32x4_extract_lane(v, 0);
}

/* Copy n 32-bit words (bit-exact: no float canonicalization), non-overlapping. */
static void copy_words(uint32_t* restrict dst, const uint32_t* restrict src, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const v128_t v0 = wasm_v128_load(src + i);
    const v128_t v1 = wasm_v128_load(src + i + 4);
    wasm_v128_store(dst + i, v0);
    wasm_v128_store(dst + i + 4, v1);
  }
  if (i + 4 <= n) {
    wasm_v128_store(dst + i, wasm_v128_load(src + i));
    i += 4;
  }
  for (; i < n; i++) dst[i] = src[i];
}

static void zero_floats(float* dst, size_t n) {
  const v128_t vzero = wasm_f32x4_const_splat(0.0f);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(dst + i, vzero);
  for (; i < n; i++) dst[i] = 0.0f;
}

/* ------------------------------------------------------------------------------------------------
 * GEMM micro-kernels: c[mr x nc] = clamp(a[mr x kc] . W + bias (+ b[mr x kc2] . W2 + bias2)).
 *
 * XNNPACK's f32-gemm-MRx8-wasmsimd-loadsplat: per k step, one broadcast load of a[r][k] per row and
 * two f32x4 loads of the panel's 8 weights; MR x 2 f32x4 accumulators (mul + add, no FMA). Rows
 * past mr alias the previous row (computed twice, stored to the same place), as XNNPACK does. The
 * clamp is fused; a partial last panel stores only nc % 8 columns. The optional second operand
 * pair (dual) serves the recurrent step of `rnn`: x_t . W + h . U in one pass.
 */

/* Rows per tile. 4 measured best in V8 (TurboFan, x64), with and without FMA: 5, 6 and 8 rows ran
 * slower (register spills). */
#ifndef GEMM_MR
#define GEMM_MR 4
#endif

/* Holds the accumulators of a tile after a k step: an empty asm statement that "changes" them.
 * Without it, the WebAssembly backend turns unrolled k steps into one expression tree per
 * accumulator (all the step's A and W values live at once) and V8 spills; with it the steps stay
 * in order. */
#define TILE_HOLD(MR, ACC0, ACC1)                                 \
  _Pragma("clang loop unroll(full)") for (size_t r_ = 0; r_ < (MR); r_++) \
      __asm__ volatile("" : "+r"(ACC0[r_]), "+r"(ACC1[r_]));

/* One k step of an MR x 8 tile: A values in lane L of VA4[r], weights at W. */
#define TILE_KSTEP_LANE(MR, VA4, L, W, ACC0, ACC1)                                  \
  {                                                                                 \
    const v128_t vb0123_ = wasm_v128_load(W), vb4567_ = wasm_v128_load((W) + 4);    \
    _Pragma("clang loop unroll(full)") for (size_t r_ = 0; r_ < (MR); r_++) {       \
      const v128_t va_ = wasm_i32x4_shuffle(VA4[r_], VA4[r_], L, L, L, L);          \
      ACC0[r_] = VMADD(va_, vb0123_, ACC0[r_]);                                     \
      ACC1[r_] = VMADD(va_, vb4567_, ACC1[r_]);                                     \
    }                                                                               \
    TILE_HOLD(MR, ACC0, ACC1)                                                       \
  }

/* k steps K..K+3 of an MR x 8 tile (rows at AP[r], panel rows from W): one f32x4 load of A per
 * row and lane shuffles instead of 4 broadcast loads (loads cost a bounds check each in V8). */
#define TILE_KSTEP4(MR, AP, K, W, ACC0, ACC1)                                                  \
  {                                                                                            \
    v128_t va4_[8];                                                                            \
    _Pragma("clang loop unroll(full)") for (size_t r_ = 0; r_ < (MR); r_++) va4_[r_] = wasm_v128_load(AP[r_] + (K)); \
    TILE_KSTEP_LANE(MR, va4_, 0, (W), ACC0, ACC1)                                              \
    TILE_KSTEP_LANE(MR, va4_, 1, (W) + 8, ACC0, ACC1)                                          \
    TILE_KSTEP_LANE(MR, va4_, 2, (W) + 16, ACC0, ACC1)                                         \
    TILE_KSTEP_LANE(MR, va4_, 3, (W) + 24, ACC0, ACC1)                                         \
  }

JSML_INLINE void f32_gemm_MRx8__wasmsimd_loadsplat_impl(
    const size_t MR, size_t mr, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w,
    float* c, size_t cm_stride, v128_t vmin, v128_t vmax,
    const int dual, size_t kc2, const float* b, size_t b_stride, const float* w2) {
  const float* ap[8];
  const float* bp[8];
  float* cp[8];
  ap[0] = a;
  bp[0] = b;
  cp[0] = c;
#pragma clang loop unroll(full)
  for (size_t r = 1; r < MR; r++) {
    ap[r] = r < mr ? ap[r - 1] + a_stride : ap[r - 1];
    bp[r] = r < mr ? bp[r - 1] + b_stride : bp[r - 1];
    cp[r] = r < mr ? cp[r - 1] + cm_stride : cp[r - 1];
  }
  do {
    v128_t vacc0123[8], vacc4567[8];
    v128_t vb0123 = wasm_v128_load(w);
    v128_t vb4567 = wasm_v128_load(w + 4);
    w += 8;
    if (dual) {
      vb0123 = VADD(vb0123, wasm_v128_load(w2));
      vb4567 = VADD(vb4567, wasm_v128_load(w2 + 4));
      w2 += 8;
    }
#pragma clang loop unroll(full)
    for (size_t r = 0; r < MR; r++) {
      vacc0123[r] = vb0123;
      vacc4567[r] = vb4567;
    }
    size_t k = 0;
    for (; k + 4 <= kc; k += 4, w += 32) TILE_KSTEP4(MR, ap, k, w, vacc0123, vacc4567)
    for (; k < kc; k++) {
      vb0123 = wasm_v128_load(w);
      vb4567 = wasm_v128_load(w + 4);
      w += 8;
#pragma clang loop unroll(full)
      for (size_t r = 0; r < MR; r++) {
        const v128_t va = wasm_v128_load32_splat(ap[r] + k);
        vacc0123[r] = VMADD(va, vb0123, vacc0123[r]);
        vacc4567[r] = VMADD(va, vb4567, vacc4567[r]);
      }
    }
    if (dual) {
      size_t k2 = 0;
      for (; k2 + 4 <= kc2; k2 += 4, w2 += 32) TILE_KSTEP4(MR, bp, k2, w2, vacc0123, vacc4567)
      for (size_t k = k2; k < kc2; k++) {
        vb0123 = wasm_v128_load(w2);
        vb4567 = wasm_v128_load(w2 + 4);
        w2 += 8;
#pragma clang loop unroll(full)
        for (size_t r = 0; r < MR; r++) {
          const v128_t va = wasm_v128_load32_splat(bp[r] + k);
          vacc0123[r] = VMADD(va, vb0123, vacc0123[r]);
          vacc4567[r] = VMADD(va, vb4567, vacc4567[r]);
        }
      }
    }
#pragma clang loop unroll(full)
    for (size_t r = 0; r < MR; r++) {
      vacc0123[r] = VCLAMP_HI(VCLAMP_LO(vacc0123[r], vmin), vmax);
      vacc4567[r] = VCLAMP_HI(VCLAMP_LO(vacc4567[r], vmin), vmax);
    }
    if (nc >= 8) {
#pragma clang loop unroll(full)
      for (size_t r = MR; r-- > 0;) {
        wasm_v128_store(cp[r], vacc0123[r]);
        wasm_v128_store(cp[r] + 4, vacc4567[r]);
        cp[r] += 8;
      }
      nc -= 8;
    } else {
#pragma clang loop unroll(full)
      for (size_t r = MR; r-- > 0;) {
        float* cr = cp[r];
        v128_t v = vacc0123[r];
        if (nc & 4) {
          wasm_v128_store(cr, v);
          v = vacc4567[r];
          cr += 4;
        }
        if (nc & 2) {
          wasm_v128_store64_lane(cr, v, 0);
          v = wasm_i64x2_shuffle(v, v, 1, 1);
          cr += 2;
        }
        if (nc & 1) wasm_v128_store32_lane(cr, v, 0);
      }
      nc = 0;
    }
  } while (nc != 0);
}

#define GEMM_PASTE3(a, b, c) a##b##c
#define GEMM_NAME(prefix, mr, suffix) GEMM_PASTE3(prefix, mr, suffix)
#define f32_gemm_MRx8 GEMM_NAME(f32_gemm_, GEMM_MR, x8__wasmsimd_loadsplat)
#define f32_gemm2_MRx8 GEMM_NAME(f32_gemm2_, GEMM_MR, x8__wasmsimd_loadsplat)

static __attribute__((noinline)) void f32_gemm_MRx8(
    size_t mr, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w,
    float* c, size_t cm_stride, v128_t vmin, v128_t vmax) {
  f32_gemm_MRx8__wasmsimd_loadsplat_impl(GEMM_MR, mr, nc, kc, a, a_stride, w, c, cm_stride, vmin, vmax,
                                         0, 0, a, 0, w);
}

static __attribute__((noinline)) void f32_gemm_1x8__wasmsimd_loadsplat(
    size_t nc, size_t kc, const float* a, const float* w, float* c, v128_t vmin, v128_t vmax) {
  f32_gemm_MRx8__wasmsimd_loadsplat_impl(1, 1, nc, kc, a, 0, w, c, 0, vmin, vmax, 0, 0, a, 0, w);
}

static __attribute__((noinline)) void f32_gemm2_MRx8(
    size_t mr, size_t nc, size_t kc, const float* a, size_t a_stride, const float* w,
    size_t kc2, const float* b, size_t b_stride, const float* w2, float* c, size_t cm_stride) {
  const v128_t vinf = VSPLAT(__builtin_inff());
  f32_gemm_MRx8__wasmsimd_loadsplat_impl(GEMM_MR, mr, nc, kc, a, a_stride, w, c, cm_stride, wasm_f32x4_neg(vinf),
                                         vinf, 1, kc2, b, b_stride, w2);
}

static __attribute__((noinline)) void f32_gemm2_1x8__wasmsimd_loadsplat(
    size_t nc, size_t kc, const float* a, const float* w, size_t kc2, const float* b, const float* w2,
    float* c) {
  const v128_t vinf = VSPLAT(__builtin_inff());
  f32_gemm_MRx8__wasmsimd_loadsplat_impl(1, 1, nc, kc, a, 0, w, c, 0, wasm_f32x4_neg(vinf), vinf, 1, kc2, b, 0, w2);
}

/* Weights of one block of panels are kept around this size (bytes) so that they stay in cache
 * while every row tile passes over them. */
#define GEMM_BLOCK_BYTES (96 * 1024)

/* ------------------------------------------------------------------------------------------------
 * Narrow outputs (a last panel with at most 4 columns, 64 -> 3, 256 -> 10): dot products along k.
 *
 * A panel kernel spends 8 lanes of multiply-adds per k step whatever the number of columns; here R
 * rows x C columns (C <= 4) accumulate f32x4 partial sums over 4 k values at a time (the row of A
 * is contiguous; the columns' weights are copied once per call into wt[C][k4], transposed from the
 * panel), then one horizontal reduction per row gives its C outputs. The k % 4 last k steps go
 * through the panel's row layout: x broadcast times the row's first 4 weights.
 */

/* [sum(a), sum(b), sum(c), sum(d)] */
JSML_INLINE v128_t hsum4(v128_t va, v128_t vb, v128_t vc, v128_t vd) {
  const v128_t vab = VADD(wasm_i32x4_shuffle(va, vb, 0, 4, 1, 5), wasm_i32x4_shuffle(va, vb, 2, 6, 3, 7));
  const v128_t vcd = VADD(wasm_i32x4_shuffle(vc, vd, 0, 4, 1, 5), wasm_i32x4_shuffle(vc, vd, 2, 6, 3, 7));
  return VADD(wasm_i32x4_shuffle(vab, vcd, 0, 1, 4, 5), wasm_i32x4_shuffle(vab, vcd, 2, 3, 6, 7));
}

/* Transposed weights of one narrow panel on the stack: at most this many floats (C * k4). */
#define DOT_MAX_WT 4096

JSML_INLINE void f32_gemm_dot_RxC_impl(const size_t R, const size_t C, size_t mr, size_t k4, size_t k,
                                       const float* a, size_t lda, const float* wt, const float* w, float* c,
                                       size_t ldc, v128_t vmin, v128_t vmax) {
  const float* ap[4];
  float* cp[4];
  ap[0] = a;
  cp[0] = c;
#pragma clang loop unroll(full)
  for (size_t r = 1; r < R; r++) {
    ap[r] = r < mr ? ap[r - 1] + lda : ap[r - 1];
    cp[r] = r < mr ? cp[r - 1] + ldc : cp[r - 1];
  }
  v128_t vacc[4][4];
#pragma clang loop unroll(full)
  for (size_t r = 0; r < R; r++) {
#pragma clang loop unroll(full)
    for (size_t j = 0; j < C; j++) vacc[r][j] = wasm_f32x4_const_splat(0.0f);
  }
  for (size_t kk = 0; kk < k4; kk += 4) {
    v128_t vw[4];
#pragma clang loop unroll(full)
    for (size_t j = 0; j < C; j++) vw[j] = wasm_v128_load(wt + j * k4 + kk);
#pragma clang loop unroll(full)
    for (size_t r = 0; r < R; r++) {
      const v128_t vx = wasm_v128_load(ap[r] + kk);
#pragma clang loop unroll(full)
      for (size_t j = 0; j < C; j++) vacc[r][j] = VMADD(vx, vw[j], vacc[r][j]);
    }
  }
  const v128_t vbias = wasm_v128_load(w);
  const v128_t vzero = wasm_f32x4_const_splat(0.0f);
#pragma clang loop unroll(full)
  for (size_t r = 0; r < R; r++) {
    v128_t vy = hsum4(vacc[r][0], C > 1 ? vacc[r][1] : vzero, C > 2 ? vacc[r][2] : vzero,
                      C > 3 ? vacc[r][3] : vzero);
    vy = VADD(vy, vbias);
    for (size_t kk = k4; kk < k; kk++) { /* the panel row kk: its first 4 weights */
      vy = VMADD(wasm_v128_load32_splat(ap[r] + kk), wasm_v128_load(w + JSML_NR * (1 + kk)), vy);
    }
    vacc[r][0] = VCLAMP_HI(VCLAMP_LO(vy, vmin), vmax);
  }
#pragma clang loop unroll(full)
  for (size_t r = R; r-- > 0;) {
    float* cr = cp[r];
    v128_t v = vacc[r][0];
    if (C == 4) {
      wasm_v128_store(cr, v);
    } else {
      if (C >= 2) {
        wasm_v128_store64_lane(cr, v, 0);
        v = wasm_i64x2_shuffle(v, v, 1, 1);
        cr += 2;
      }
      if (C & 1) wasm_v128_store32_lane(cr, v, 0);
    }
  }
}

#define DEFINE_GEMM_DOT(R, C)                                                                             \
  static __attribute__((noinline)) void f32_gemm_dot_##R##x##C(size_t m, size_t k4, size_t k, const float* a, \
                                                               size_t lda, const float* wt, const float* w,  \
                                                               float* c, size_t ldc, v128_t vmin, v128_t vmax) { \
    size_t i = 0;                                                                                         \
    for (; i + R <= m; i += R) {                                                                          \
      f32_gemm_dot_RxC_impl(R, C, R, k4, k, a + i * lda, lda, wt, w, c + i * ldc, ldc, vmin, vmax);        \
    }                                                                                                     \
    if (i < m) f32_gemm_dot_RxC_impl(R, C, m - i, k4, k, a + i * lda, lda, wt, w, c + i * ldc, ldc, vmin, vmax); \
  }
DEFINE_GEMM_DOT(4, 1)
DEFINE_GEMM_DOT(4, 2)
DEFINE_GEMM_DOT(3, 3)
DEFINE_GEMM_DOT(2, 4)

/* Whether columns [n - nc, n) of a (k, n) packed matrix (nc = n % 8) go through the dot kernels. */
static int gemm_dot_tail(size_t n, size_t k) {
  const size_t nc = n % JSML_NR;
  return nc != 0 && nc <= 4 && k >= 8 && nc * (k & ~(size_t)3) <= DOT_MAX_WT;
}

/* wt[j][kk] = w[kk][j] for the first nc columns of the packed panel w, kk < k4. */
static void dot_transpose(float* wt, const float* w, size_t nc, size_t k4) {
  for (size_t j = 0; j < nc; j++) {
    for (size_t kk = 0; kk < k4; kk++) wt[j * k4 + kk] = w[JSML_NR * (1 + kk) + j];
  }
}

/* c[m x nc] = clamp(a[m x k] . the first nc (<= 4) columns of the packed panel w); wt from
 * dot_transpose. */
static void f32_gemm_dot(size_t m, size_t nc, size_t k, const float* a, size_t lda, const float* wt, const float* w,
                         float* c, size_t ldc, v128_t vmin, v128_t vmax) {
  const size_t k4 = k & ~(size_t)3;
  switch (nc) {
    case 1: f32_gemm_dot_4x1(m, k4, k, a, lda, wt, w, c, ldc, vmin, vmax); break;
    case 2: f32_gemm_dot_4x2(m, k4, k, a, lda, wt, w, c, ldc, vmin, vmax); break;
    case 3: f32_gemm_dot_3x3(m, k4, k, a, lda, wt, w, c, ldc, vmin, vmax); break;
    default: f32_gemm_dot_2x4(m, k4, k, a, lda, wt, w, c, ldc, vmin, vmax); break;
  }
}

/* c[m x n] (row stride ldc) = clamp(a[m x k] (row stride lda) . packed w, lo, hi). */
/* ------------------------------------------------------------------------------------------------
 * Small k (k <= GEMM_SMALL_K, 13 -> 64): the 4 rows of A of a tile are first copied to a static
 * buffer, then the tile's broadcasts read them at constant addresses. In V8 a linear-memory access
 * at a constant address below the module's initial memory carries no bounds check, while every
 * other access (without the trap handler: mini-racer) does; with k a compile-time constant (one
 * copy of the tile per k) the 4 broadcasts of a k step cost 4 instructions instead of 16, and the
 * copy (k/4 f32x4 loads a row) is shared by all the panels of the tile.
 */
#ifndef GEMM_SMALL_K
#define GEMM_SMALL_K 16
#endif

static float g_atile[4 * GEMM_SMALL_K] __attribute__((aligned(16)));

/* g_atile[r][0..K) = row r of A, for the 4 rows of a tile (K a constant). */
JSML_INLINE void gemm_copy_tile(const size_t K, const float* a, size_t lda) {
#pragma clang loop unroll(full)
  for (size_t r = 0; r < 4; r++) {
    const float* ar = a + r * lda;
    float* tr = g_atile + r * K;
    if (K >= 4) {
#pragma clang loop unroll(full)
      for (size_t q = 0; q + 4 <= K; q += 4) wasm_v128_store(tr + q, wasm_v128_load(ar + q));
      if (K % 4) wasm_v128_store(tr + K - 4, wasm_v128_load(ar + K - 4)); /* overlaps the last one */
    } else {
#pragma clang loop unroll(full)
      for (size_t q = 0; q < K; q++) tr[q] = ar[q];
    }
  }
}

JSML_INLINE void f32_gemm_4x8_smallk_impl(const size_t K, size_t m, size_t n, const float* a, size_t lda,
                                          const float* w, float* c, size_t ldc, v128_t vmin, v128_t vmax) {
  for (size_t i = 0; i + 4 <= m; i += 4, a += 4 * lda, c += 4 * ldc) {
    gemm_copy_tile(K, a, lda);
    const float* wp = w;
    float* cp[4] = {c, c + ldc, c + 2 * ldc, c + 3 * ldc};
    size_t nc = n;
    do {
      /* keeps the loads of g_atile in the loop (hoisted, they would not fit in registers) */
      __asm__ volatile("" ::: "memory");
      v128_t vacc0123[4], vacc4567[4];
      const v128_t vbias0123 = wasm_v128_load(wp), vbias4567 = wasm_v128_load(wp + 4);
#pragma clang loop unroll(full)
      for (size_t r = 0; r < 4; r++) {
        vacc0123[r] = vbias0123;
        vacc4567[r] = vbias4567;
      }
#pragma clang loop unroll(full)
      for (size_t k = 0; k < K; k++) {
        const v128_t vb0123 = wasm_v128_load(wp + 8 + 8 * k), vb4567 = wasm_v128_load(wp + 12 + 8 * k);
#pragma clang loop unroll(full)
        for (size_t r = 0; r < 4; r++) {
          const v128_t va = wasm_v128_load32_splat(g_atile + r * K + k);
          vacc0123[r] = VMADD(va, vb0123, vacc0123[r]);
          vacc4567[r] = VMADD(va, vb4567, vacc4567[r]);
        }
        TILE_HOLD(4, vacc0123, vacc4567)
      }
      wp += JSML_NR * (K + 1);
#pragma clang loop unroll(full)
      for (size_t r = 0; r < 4; r++) {
        vacc0123[r] = VCLAMP_HI(VCLAMP_LO(vacc0123[r], vmin), vmax);
        vacc4567[r] = VCLAMP_HI(VCLAMP_LO(vacc4567[r], vmin), vmax);
      }
      if (nc >= 8) {
#pragma clang loop unroll(full)
        for (size_t r = 0; r < 4; r++) {
          wasm_v128_store(cp[r], vacc0123[r]);
          wasm_v128_store(cp[r] + 4, vacc4567[r]);
          cp[r] += 8;
        }
        nc -= 8;
      } else {
#pragma clang loop unroll(full)
        for (size_t r = 0; r < 4; r++) {
          float* cr = cp[r];
          v128_t v = vacc0123[r];
          if (nc & 4) {
            wasm_v128_store(cr, v);
            v = vacc4567[r];
            cr += 4;
          }
          if (nc & 2) {
            wasm_v128_store64_lane(cr, v, 0);
            v = wasm_i64x2_shuffle(v, v, 1, 1);
            cr += 2;
          }
          if (nc & 1) wasm_v128_store32_lane(cr, v, 0);
        }
        nc = 0;
      }
    } while (nc != 0);
  }
}

#define DEFINE_GEMM_SMALL_K(K)                                                                          \
  static __attribute__((noinline)) void f32_gemm_4x8_k##K(size_t m, size_t n, const float* a, size_t lda,  \
                                                          const float* w, float* c, size_t ldc, v128_t vmin, \
                                                          v128_t vmax) {                                  \
    f32_gemm_4x8_smallk_impl(K, m, n, a, lda, w, c, ldc, vmin, vmax);                                     \
  }
DEFINE_GEMM_SMALL_K(1)
DEFINE_GEMM_SMALL_K(2)
DEFINE_GEMM_SMALL_K(3)
DEFINE_GEMM_SMALL_K(4)
DEFINE_GEMM_SMALL_K(5)
DEFINE_GEMM_SMALL_K(6)
DEFINE_GEMM_SMALL_K(7)
DEFINE_GEMM_SMALL_K(8)
DEFINE_GEMM_SMALL_K(9)
DEFINE_GEMM_SMALL_K(10)
DEFINE_GEMM_SMALL_K(11)
DEFINE_GEMM_SMALL_K(12)
DEFINE_GEMM_SMALL_K(13)
DEFINE_GEMM_SMALL_K(14)
DEFINE_GEMM_SMALL_K(15)
DEFINE_GEMM_SMALL_K(16)

/* The rows m - m % 4 of c[m x n] for 1 <= k <= GEMM_SMALL_K; returns them. */
static size_t f32_gemm_small_k(size_t m, size_t n, size_t k, const float* a, size_t lda, const float* w, float* c,
                               size_t ldc, v128_t vmin, v128_t vmax) {
  typedef void (*tile_fn)(size_t, size_t, const float*, size_t, const float*, float*, size_t, v128_t, v128_t);
  static const tile_fn fns[GEMM_SMALL_K] = {
      f32_gemm_4x8_k1,  f32_gemm_4x8_k2,  f32_gemm_4x8_k3,  f32_gemm_4x8_k4,  f32_gemm_4x8_k5,  f32_gemm_4x8_k6,
      f32_gemm_4x8_k7,  f32_gemm_4x8_k8,  f32_gemm_4x8_k9,  f32_gemm_4x8_k10, f32_gemm_4x8_k11, f32_gemm_4x8_k12,
      f32_gemm_4x8_k13, f32_gemm_4x8_k14, f32_gemm_4x8_k15, f32_gemm_4x8_k16,
  };
  const size_t m4 = m - m % 4;
  if (m4) fns[k - 1](m4, n, a, lda, w, c, ldc, vmin, vmax);
  return m4;
}

static void f32_gemm_panels(size_t m, size_t n, size_t k, const float* a, size_t lda, const float* w, float* c,
                            size_t ldc, v128_t vmin, v128_t vmax);

/* Rows of A per pass when a narrow last panel goes through the dot kernels: about this many bytes,
 * so that the rows are still in cache for the dot pass. */
#ifndef GEMM_ROWS_BYTES
#define GEMM_ROWS_BYTES (16 * 1024)
#endif

static void f32_gemm(size_t m, size_t n, size_t k, const float* a, size_t lda, const float* w, float* c,
                     size_t ldc, v128_t vmin, v128_t vmax) {
  if (m == 0 || n == 0) return;
#ifndef NO_SMALL_K
  if (k >= 1 && k <= GEMM_SMALL_K && !gemm_dot_tail(n, k)) {
    const size_t done = f32_gemm_small_k(m, n, k, a, lda, w, c, ldc, vmin, vmax);
    a += done * lda;
    c += done * ldc;
    m -= done;
    if (m == 0) return;
  }
#endif
  if (!gemm_dot_tail(n, k)) {
    f32_gemm_panels(m, n, k, a, lda, w, c, ldc, vmin, vmax);
    return;
  }
  const size_t n_main = n - n % JSML_NR;
  const float* w_tail = w + n_main / JSML_NR * (JSML_NR * (k + 1));
  float wt[DOT_MAX_WT];
  dot_transpose(wt, w_tail, n - n_main, k & ~(size_t)3);
  if (n_main == 0) {
    f32_gemm_dot(m, n, k, a, lda, wt, w_tail, c, ldc, vmin, vmax);
    return;
  }
  size_t rows = GEMM_ROWS_BYTES / (4 * k) / GEMM_MR * GEMM_MR;
  if (rows < GEMM_MR) rows = GEMM_MR;
  for (size_t i = 0; i < m; i += rows) {
    const size_t mb = MIN(rows, m - i);
    f32_gemm_panels(mb, n_main, k, a + i * lda, lda, w, c + i * ldc, ldc, vmin, vmax);
    f32_gemm_dot(mb, n - n_main, k, a + i * lda, lda, wt, w_tail, c + i * ldc + n_main, ldc, vmin, vmax);
  }
}

static void f32_gemm_panels(size_t m, size_t n, size_t k, const float* a, size_t lda, const float* w, float* c,
                            size_t ldc, v128_t vmin, v128_t vmax) {
  const size_t panel = JSML_NR * (k + 1);
  size_t block_panels = GEMM_BLOCK_BYTES / (4 * panel);
  if (block_panels == 0) block_panels = 1;
  for (size_t n0 = 0; n0 < n; n0 += block_panels * JSML_NR) {
    const size_t nb = MIN(block_panels * JSML_NR, n - n0);
    const float* wb = w + (n0 / JSML_NR) * panel;
    size_t i = 0;
    for (; i + GEMM_MR <= m; i += GEMM_MR) {
      f32_gemm_MRx8(GEMM_MR, nb, k, a + i * lda, lda, wb, c + i * ldc + n0, ldc, vmin, vmax);
    }
    if (m - i >= 2) {
      f32_gemm_MRx8(m - i, nb, k, a + i * lda, lda, wb, c + i * ldc + n0, ldc, vmin, vmax);
    } else if (m - i == 1) {
      f32_gemm_1x8__wasmsimd_loadsplat(nb, k, a + i * lda, wb, c + i * ldc + n0, vmin, vmax);
    }
  }
}

/* c[m x n] = a[m x k] . w + b[m x k2] . w2 (both packed, both biases added), no clamp. */
static void f32_gemm2(size_t m, size_t n, size_t k, const float* a, size_t lda, const float* w,
                      size_t k2, const float* b, size_t ldb, const float* w2, float* c, size_t ldc) {
  if (m == 0 || n == 0) return;
  const size_t panel = JSML_NR * (k + 1), panel2 = JSML_NR * (k2 + 1);
  size_t block_panels = GEMM_BLOCK_BYTES / (4 * (panel + panel2));
  if (block_panels == 0) block_panels = 1;
  for (size_t n0 = 0; n0 < n; n0 += block_panels * JSML_NR) {
    const size_t nb = MIN(block_panels * JSML_NR, n - n0);
    const float* wb = w + (n0 / JSML_NR) * panel;
    const float* w2b = w2 + (n0 / JSML_NR) * panel2;
    size_t i = 0;
    for (; i + GEMM_MR <= m; i += GEMM_MR) {
      f32_gemm2_MRx8(GEMM_MR, nb, k, a + i * lda, lda, wb, k2, b + i * ldb, ldb, w2b, c + i * ldc + n0, ldc);
    }
    if (m - i >= 2) {
      f32_gemm2_MRx8(m - i, nb, k, a + i * lda, lda, wb, k2, b + i * ldb, ldb, w2b, c + i * ldc + n0, ldc);
    } else if (m - i == 1) {
      f32_gemm2_1x8__wasmsimd_loadsplat(nb, k, a + i * lda, wb, k2, b + i * ldb, w2b, c + i * ldc + n0);
    }
  }
}

/* ------------------------------------------------------------------------------------------------
 * dense, conv2d, depthwise2d
 */

int32_t dense(int32_t x, int32_t w, int32_t y, int32_t m, int32_t k, int32_t n, float lo, float hi) {
  if (m < 0 || k < 0 || n < 0) return STATUS_BAD_ARGUMENT;
  f32_gemm((size_t)m, (size_t)n, (size_t)k, F32(x), (size_t)k, F32(w), F32(y), (size_t)n, VSPLAT(lo), VSPLAT(hi));
  return 0;
}

/* im2col of one sample (the fallback of conv2d for kernels with more taps than the direct
 * convolution keeps): row (oy, ox), column (ky, kx, c), zeros outside the input; with dil_w == 1
 * the in-bounds kx of a kernel row are one contiguous run of the input row. */
static void f32_im2col_pixels(const float* x, float* s, int32_t in_h, int32_t in_w, int32_t in_c, int32_t k_h,
                              int32_t k_w, int32_t stride_h, int32_t stride_w, int32_t dil_h, int32_t dil_w,
                              int32_t pad_top, int32_t pad_left, int32_t out_h, int32_t out_w) {
  const size_t c = (size_t)in_c;
  const size_t run = (size_t)k_w * c;
  for (int32_t oy = 0; oy < out_h; oy++) {
    for (int32_t ox = 0; ox < out_w; ox++) {
      const int32_t ix0 = ox * stride_w - pad_left;
      int32_t kx0 = ix0 < 0 ? -ix0 : 0, kx1 = in_w - ix0;
      if (kx0 > k_w) kx0 = k_w;
      if (kx1 > k_w) kx1 = k_w;
      if (kx1 < kx0) kx1 = kx0;
      for (int32_t ky = 0; ky < k_h; ky++, s += run) {
        const int32_t iy = oy * stride_h - pad_top + ky * dil_h;
        if (iy < 0 || iy >= in_h) {
          zero_floats(s, run);
          continue;
        }
        const float* xrow = x + (size_t)iy * (size_t)in_w * c;
        if (dil_w == 1) {
          zero_floats(s, (size_t)kx0 * c);
          copy_words((uint32_t*)s + (size_t)kx0 * c, (const uint32_t*)(xrow + (size_t)(ix0 + kx0) * c),
                     (size_t)(kx1 - kx0) * c);
          zero_floats(s + (size_t)kx1 * c, (size_t)(k_w - kx1) * c);
          continue;
        }
        for (int32_t kx = 0; kx < k_w; kx++) {
          const int32_t ix = ix0 + kx * dil_w;
          if (ix < 0 || ix >= in_w) {
            zero_floats(s + (size_t)kx * c, c);
          } else {
            copy_words((uint32_t*)s + (size_t)kx * c, (const uint32_t*)(xrow + (size_t)ix * c), c);
          }
        }
      }
    }
  }
}

/* Direct convolution (no im2col): the GEMM tile runs over the in-bounds taps of one output pixel,
 * for CONV_MR samples at a time (rows of the tile = the same pixel of consecutive samples, so every
 * row has the same in-bounds taps and padding costs nothing). The taps are described by segments:
 * `len` consecutive k rows of the packed weights from k row `k0` multiply `len` consecutive input
 * floats at `x_off` (floats from the sample's origin): with dil_w == 1 the in-bounds kx of one
 * kernel row are one segment ((kx1 - kx0) * in_c floats of the input row), else one per tap. */
typedef struct {
  uint32_t x_off, k0, len;
} conv_seg;

/* Segments kept on the stack for a run of consecutive output pixels; a convolution that needs more
 * for one pixel goes through im2col. */
#define CONV_MAX_SEGS 256

#ifndef CONV_MR
#define CONV_MR GEMM_MR
#endif

/* y[r][p] = clamp(bias + sum over the segments of pixel p) for the mr samples r of a tile (rows past
 * mr alias the last one) and npix consecutive output pixels p (segments of pixel p: nseg[p] of
 * them, in order in seg; output pixels nc floats apart, samples y_stride). */
JSML_INLINE void f32_dconv_MRx8__wasmsimd_loadsplat_impl(
    const size_t MR, const int K4, size_t mr, size_t nc, const float* x, size_t x_stride, const conv_seg* seg,
    const uint16_t* nseg, size_t npix, const float* w, size_t panel_stride, float* y, size_t y_stride,
    v128_t vmin, v128_t vmax) {
  size_t xo[8], yo[8];
  xo[0] = 0;
  yo[0] = 0;
#pragma clang loop unroll(full)
  for (size_t r = 1; r < MR; r++) {
    xo[r] = r < mr ? xo[r - 1] + x_stride : xo[r - 1];
    yo[r] = r < mr ? yo[r - 1] + y_stride : yo[r - 1];
  }
  for (size_t p = 0; p < npix; p++) {
    const conv_seg* seg_end = seg + nseg[p];
    const float* wp = w;
    size_t ncp = nc;
    float* cp[8];
#pragma clang loop unroll(full)
    for (size_t r = 0; r < MR; r++) cp[r] = y + yo[r];
    y += nc;
    do {
      v128_t vacc0123[8], vacc4567[8];
      const v128_t vbias0123 = wasm_v128_load(wp), vbias4567 = wasm_v128_load(wp + 4);
#pragma clang loop unroll(full)
      for (size_t r = 0; r < MR; r++) {
        vacc0123[r] = vbias0123;
        vacc4567[r] = vbias4567;
      }
      for (const conv_seg* sg = seg; sg != seg_end; sg++) {
        const float* a = x + sg->x_off;
        const float* ap[8];
#pragma clang loop unroll(full)
        for (size_t r = 0; r < MR; r++) ap[r] = a + xo[r];
        const float* wk = wp + JSML_NR * (1 + (size_t)sg->k0);
        const size_t len = sg->len;
        size_t k = 0;
        if (K4) {
          for (; k + 4 <= len; k += 4, wk += 32) TILE_KSTEP4(MR, ap, k, wk, vacc0123, vacc4567)
        }
        for (; k < len; k++) {
          const v128_t vb0123 = wasm_v128_load(wk), vb4567 = wasm_v128_load(wk + 4);
          wk += 8;
#pragma clang loop unroll(full)
          for (size_t r = 0; r < MR; r++) {
            const v128_t va = wasm_v128_load32_splat(ap[r] + k);
            vacc0123[r] = VMADD(va, vb0123, vacc0123[r]);
            vacc4567[r] = VMADD(va, vb4567, vacc4567[r]);
          }
        }
      }
#pragma clang loop unroll(full)
      for (size_t r = 0; r < MR; r++) {
        vacc0123[r] = VCLAMP_HI(VCLAMP_LO(vacc0123[r], vmin), vmax);
        vacc4567[r] = VCLAMP_HI(VCLAMP_LO(vacc4567[r], vmin), vmax);
      }
      if (ncp >= 8) {
#pragma clang loop unroll(full)
        for (size_t r = MR; r-- > 0;) {
          wasm_v128_store(cp[r], vacc0123[r]);
          wasm_v128_store(cp[r] + 4, vacc4567[r]);
          cp[r] += 8;
        }
        ncp -= 8;
      } else {
#pragma clang loop unroll(full)
        for (size_t r = MR; r-- > 0;) {
          float* cr = cp[r];
          v128_t v = vacc0123[r];
          if (ncp & 4) {
            wasm_v128_store(cr, v);
            v = vacc4567[r];
            cr += 4;
          }
          if (ncp & 2) {
            wasm_v128_store64_lane(cr, v, 0);
            v = wasm_i64x2_shuffle(v, v, 1, 1);
            cr += 2;
          }
          if (ncp & 1) wasm_v128_store32_lane(cr, v, 0);
        }
        ncp = 0;
      }
      wp += panel_stride;
    } while (ncp != 0);
    seg = seg_end;
  }
}

#define f32_dconv_MRx8 GEMM_NAME(f32_dconv_, CONV_MR, x8__wasmsimd_loadsplat)
#define f32_dconv_MRx8_short GEMM_NAME(f32_dconv_, CONV_MR, x8__wasmsimd_loadsplat_short)

typedef void (*dconv_tile_fn)(size_t mr, size_t nc, const float* x, size_t x_stride, const conv_seg* seg,
                              const uint16_t* nseg, size_t npix, const float* w, size_t panel_stride, float* y,
                              size_t y_stride, v128_t vmin, v128_t vmax);

/* Segments of 4 floats or more (in_c >= 4): 4 k steps per f32x4 load of A (TILE_KSTEP4). */
static __attribute__((noinline)) void f32_dconv_MRx8(
    size_t mr, size_t nc, const float* x, size_t x_stride, const conv_seg* seg, const uint16_t* nseg, size_t npix,
    const float* w, size_t panel_stride, float* y, size_t y_stride, v128_t vmin, v128_t vmax) {
  f32_dconv_MRx8__wasmsimd_loadsplat_impl(CONV_MR, 1, mr, nc, x, x_stride, seg, nseg, npix, w, panel_stride, y,
                                          y_stride, vmin, vmax);
}

/* Short segments (in_c < 4, as a first layer on 1 or 3 channels): broadcast loads only (the
 * 4-step loop, never entered, still cost ~15% there). */
static __attribute__((noinline)) void f32_dconv_MRx8_short(
    size_t mr, size_t nc, const float* x, size_t x_stride, const conv_seg* seg, const uint16_t* nseg, size_t npix,
    const float* w, size_t panel_stride, float* y, size_t y_stride, v128_t vmin, v128_t vmax) {
  f32_dconv_MRx8__wasmsimd_loadsplat_impl(CONV_MR, 0, mr, nc, x, x_stride, seg, nseg, npix, w, panel_stride, y,
                                          y_stride, vmin, vmax);
}

static __attribute__((noinline)) void f32_dconv_1x8__wasmsimd_loadsplat(
    size_t nc, const float* x, const conv_seg* seg, const uint16_t* nseg, size_t npix, const float* w,
    size_t panel_stride, float* y, v128_t vmin, v128_t vmax) {
  f32_dconv_MRx8__wasmsimd_loadsplat_impl(1, 1, 1, nc, x, 0, seg, nseg, npix, w, panel_stride, y, 0, vmin, vmax);
}

/* Input bytes of one block of samples: the samples of a block stay in cache while every output
 * pixel of the block is computed. */
#ifndef CONV_BLOCK_BYTES
#define CONV_BLOCK_BYTES (16 * 1024)
#endif

/* The most segments one output pixel can have (all taps in bounds). */
static size_t conv_max_segments(int32_t k_h, int32_t k_w, int32_t dil_w) {
  return dil_w == 1 ? (size_t)k_h : (size_t)k_h * (size_t)k_w;
}

/* Writes the segments of output pixel (oy, ox) to seg; returns their number. */
static size_t conv_segments(conv_seg* seg, int32_t oy, int32_t ox, int32_t in_h, int32_t in_w, int32_t in_c,
                            int32_t k_h, int32_t k_w, int32_t stride_h, int32_t stride_w, int32_t dil_h,
                            int32_t dil_w, int32_t pad_top, int32_t pad_left) {
  size_t n = 0;
  const int32_t ix0 = ox * stride_w - pad_left;
  for (int32_t ky = 0; ky < k_h; ky++) {
    const int32_t iy = oy * stride_h - pad_top + ky * dil_h;
    if (iy < 0 || iy >= in_h) continue;
    if (dil_w == 1) {
      int32_t kx0 = ix0 < 0 ? -ix0 : 0, kx1 = in_w - ix0;
      if (kx1 > k_w) kx1 = k_w;
      if (kx1 <= kx0) continue;
      seg[n].x_off = (uint32_t)(((size_t)iy * (size_t)in_w + (size_t)(ix0 + kx0)) * (size_t)in_c);
      seg[n].k0 = (uint32_t)(((size_t)ky * (size_t)k_w + (size_t)kx0) * (size_t)in_c);
      seg[n].len = (uint32_t)((size_t)(kx1 - kx0) * (size_t)in_c);
      n++;
      continue;
    }
    for (int32_t kx = 0; kx < k_w; kx++) {
      const int32_t ix = ix0 + kx * dil_w;
      if (ix < 0 || ix >= in_w) continue;
      seg[n].x_off = (uint32_t)(((size_t)iy * (size_t)in_w + (size_t)ix) * (size_t)in_c);
      seg[n].k0 = (uint32_t)(((size_t)ky * (size_t)k_w + (size_t)kx) * (size_t)in_c);
      seg[n].len = (uint32_t)in_c;
      n++;
    }
  }
  return n;
}

/* Output pixels per run (their segments also fit in CONV_MAX_SEGS). */
#define CONV_MAX_PIXELS 255

static void f32_conv2d_direct(const float* x, const float* w, float* y, int32_t batch, int32_t in_h, int32_t in_w,
                              int32_t in_c, int32_t k_h, int32_t k_w, int32_t out_c, int32_t stride_h,
                              int32_t stride_w, int32_t dil_h, int32_t dil_w, int32_t pad_top, int32_t pad_left,
                              int32_t out_h, int32_t out_w, v128_t vmin, v128_t vmax) {
  conv_seg seg[CONV_MAX_SEGS];
  uint16_t nseg[CONV_MAX_PIXELS];
  const size_t in_size = (size_t)in_h * (size_t)in_w * (size_t)in_c;
  const size_t oc = (size_t)out_c, out_pix = (size_t)out_h * (size_t)out_w, out_size = out_pix * oc;
  const size_t panel_stride = JSML_NR * ((size_t)k_h * (size_t)k_w * (size_t)in_c + 1);
  const size_t most = conv_max_segments(k_h, k_w, dil_w);
  const dconv_tile_fn tile = in_c >= 4 ? f32_dconv_MRx8 : f32_dconv_MRx8_short;
  size_t block = in_size ? CONV_BLOCK_BYTES / (4 * in_size) / CONV_MR * CONV_MR : CONV_MR;
  if (block < CONV_MR) block = CONV_MR;
  for (size_t b0 = 0; b0 < (size_t)batch; b0 += block) {
    const size_t nb = MIN(block, (size_t)batch - b0);
    const float* xb = x + b0 * in_size;
    for (size_t p0 = 0; p0 < out_pix;) {
      /* a run of pixels p0..p1 whose segments fit */
      size_t p1 = p0, used = 0;
      while (p1 < out_pix && p1 - p0 < CONV_MAX_PIXELS && used + most <= CONV_MAX_SEGS) {
        const size_t n = conv_segments(seg + used, (int32_t)(p1 / (size_t)out_w), (int32_t)(p1 % (size_t)out_w),
                                       in_h, in_w, in_c, k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top,
                                       pad_left);
        nseg[p1 - p0] = (uint16_t)n;
        used += n;
        p1++;
      }
      float* yb = y + b0 * out_size + p0 * oc;
      size_t i = 0;
      for (; i + CONV_MR <= nb; i += CONV_MR) {
        tile(CONV_MR, oc, xb + i * in_size, in_size, seg, nseg, p1 - p0, w, panel_stride, yb + i * out_size,
             out_size, vmin, vmax);
      }
      if (nb - i >= 2) {
        tile(nb - i, oc, xb + i * in_size, in_size, seg, nseg, p1 - p0, w, panel_stride, yb + i * out_size,
             out_size, vmin, vmax);
      } else if (nb - i == 1) {
        f32_dconv_1x8__wasmsimd_loadsplat(oc, xb + i * in_size, seg, nseg, p1 - p0, w, panel_stride,
                                          yb + i * out_size, vmin, vmax);
      }
      p0 = p1;
    }
  }
}

int32_t conv2d(int32_t x, int32_t w, int32_t y, int32_t scratch, int32_t batch, int32_t in_h, int32_t in_w,
               int32_t in_c, int32_t k_h, int32_t k_w, int32_t out_c, int32_t stride_h, int32_t stride_w,
               int32_t dil_h, int32_t dil_w, int32_t pad_top, int32_t pad_left, int32_t out_h, int32_t out_w,
               float lo, float hi) {
  if (batch < 0 || in_h < 0 || in_w < 0 || in_c < 0 || k_h < 0 || k_w < 0 || out_c < 0 || out_h < 0 ||
      out_w < 0 || stride_h < 1 || stride_w < 1 || dil_h < 1 || dil_w < 1) {
    return STATUS_BAD_ARGUMENT;
  }
  const v128_t vmin = VSPLAT(lo), vmax = VSPLAT(hi);
  const size_t rows = (size_t)out_h * (size_t)out_w;
  const size_t kk = (size_t)k_h * (size_t)k_w * (size_t)in_c;
  if (k_h == 1 && k_w == 1 && stride_h == 1 && stride_w == 1 && pad_top == 0 && pad_left == 0 &&
      out_h == in_h && out_w == in_w) {
    /* pointwise: the input already is the [batch*h*w, c] matrix */
    f32_gemm((size_t)batch * rows, (size_t)out_c, kk, F32(x), kk, F32(w), F32(y), (size_t)out_c, vmin, vmax);
    return 0;
  }
  if (out_c == 0) return 0;
  if (conv_max_segments(k_h, k_w, dil_w) <= CONV_MAX_SEGS) {
    f32_conv2d_direct(F32(x), F32(w), F32(y), batch, in_h, in_w, in_c, k_h, k_w, out_c, stride_h, stride_w, dil_h,
                      dil_w, pad_top, pad_left, out_h, out_w, vmin, vmax);
    return 0;
  }
  const size_t in_size = (size_t)in_h * (size_t)in_w * (size_t)in_c;
  for (int32_t b = 0; b < batch; b++) {
    f32_im2col_pixels(F32(x) + (size_t)b * in_size, F32(scratch), in_h, in_w, in_c, k_h, k_w, stride_h, stride_w,
                      dil_h, dil_w, pad_top, pad_left, out_h, out_w);
    f32_gemm(rows, (size_t)out_c, kk, F32(scratch), kk, F32(w), F32(y) + (size_t)b * rows * (size_t)out_c,
             (size_t)out_c, vmin, vmax);
  }
  return 0;
}

int32_t depthwise2d(int32_t x, int32_t w, int32_t y, int32_t batch, int32_t in_h, int32_t in_w, int32_t in_c,
                    int32_t k_h, int32_t k_w, int32_t mult, int32_t stride_h, int32_t stride_w, int32_t dil_h,
                    int32_t dil_w, int32_t pad_top, int32_t pad_left, int32_t out_h, int32_t out_w, float lo,
                    float hi) {
  if (batch < 0 || in_h < 0 || in_w < 0 || in_c < 0 || k_h < 0 || k_w < 0 || mult < 0 || out_h < 0 ||
      out_w < 0 || stride_h < 1 || stride_w < 1 || dil_h < 1 || dil_w < 1) {
    return STATUS_BAD_ARGUMENT;
  }
  const v128_t vmin = VSPLAT(lo), vmax = VSPLAT(hi);
  const size_t cin = (size_t)in_c, cm = (size_t)mult, cout = cin * cm;
  const float* bias = F32(w);
  const float* kernel = bias + cout;
  float* yp = F32(y);
  for (int32_t b = 0; b < batch; b++) {
    const float* xb = F32(x) + (size_t)b * (size_t)in_h * (size_t)in_w * cin;
    for (int32_t oy = 0; oy < out_h; oy++) {
      const int32_t iy0 = oy * stride_h - pad_top;
      for (int32_t ox = 0; ox < out_w; ox++, yp += cout) {
        const int32_t ix0 = ox * stride_w - pad_left;
        size_t j = 0;
        /* 4 output channels at a time: mult == 1 (4 input channels) or mult % 4 == 0 (one) */
        if (cm == 1 || cm % 4 == 0) {
          for (; j + 4 <= cout; j += 4) {
            v128_t vacc = wasm_v128_load(bias + j);
            const size_t ci = j / cm;
            for (int32_t ky = 0; ky < k_h; ky++) {
              const int32_t iy = iy0 + ky * dil_h;
              if (iy < 0 || iy >= in_h) continue;
              const float* xrow = xb + (size_t)iy * (size_t)in_w * cin + ci;
              const float* wrow = kernel + (size_t)ky * (size_t)k_w * cout + j;
              for (int32_t kx = 0; kx < k_w; kx++) {
                const int32_t ix = ix0 + kx * dil_w;
                if (ix < 0 || ix >= in_w) continue;
                const v128_t vx = cm == 1 ? wasm_v128_load(xrow + (size_t)ix * cin)
                                          : wasm_v128_load32_splat(xrow + (size_t)ix * cin);
                vacc = VMADD(vx, wasm_v128_load(wrow + (size_t)kx * cout), vacc);
              }
            }
            wasm_v128_store(yp + j, VCLAMP_HI(VCLAMP_LO(vacc, vmin), vmax));
          }
        }
        for (; j < cout; j++) {
          float acc = bias[j];
          const size_t ci = j / cm;
          for (int32_t ky = 0; ky < k_h; ky++) {
            const int32_t iy = iy0 + ky * dil_h;
            if (iy < 0 || iy >= in_h) continue;
            for (int32_t kx = 0; kx < k_w; kx++) {
              const int32_t ix = ix0 + kx * dil_w;
              if (ix < 0 || ix >= in_w) continue;
              acc += xb[((size_t)iy * (size_t)in_w + (size_t)ix) * cin + ci] *
                     kernel[((size_t)ky * (size_t)k_w + (size_t)kx) * cout + j];
            }
          }
          yp[j] = SMIN(SMAX(acc, lo), hi);
        }
      }
    }
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------------
 * pooling
 */

/* Max (NaN-propagating) or sum of the nh x nw window at p (rows row floats apart, pixels cc apart)
 * for channels j..j+lanes. pmax keeps the accumulator where x is NaN, so NaN is tracked apart: an
 * all-ones lane is a NaN. */
JSML_INLINE v128_t f32_pool_max_window(const float* p, size_t cc, size_t row, int32_t nh, int32_t nw, size_t lanes) {
  v128_t vacc = VSPLAT(-__builtin_inff()), vnan = wasm_i32x4_splat(0);
  for (int32_t dy = 0; dy < nh; dy++, p += row) {
    const float* q = p;
    for (int32_t dx = 0; dx < nw; dx++, q += cc) {
      const v128_t vx = load_partial(q, lanes);
      vacc = wasm_f32x4_pmax(vacc, vx);
      vnan = wasm_v128_or(vnan, wasm_f32x4_ne(vx, vx));
    }
  }
  return wasm_v128_or(vacc, vnan);
}

JSML_INLINE v128_t f32_pool_sum_window(const float* p, size_t cc, size_t row, int32_t nh, int32_t nw, size_t lanes) {
  v128_t vacc = VSPLAT(0.0f);
  for (int32_t dy = 0; dy < nh; dy++, p += row) {
    const float* q = p;
    for (int32_t dx = 0; dx < nw; dx++, q += cc) vacc = VADD(vacc, load_partial(q, lanes));
  }
  return vacc;
}

/* The 2 x 2 window, 4 full lanes. */
JSML_INLINE v128_t f32_pool_max_2x2(const float* p, size_t cc, size_t row) {
  const v128_t va = wasm_v128_load(p), vb = wasm_v128_load(p + cc);
  const v128_t vc = wasm_v128_load(p + row), vd = wasm_v128_load(p + row + cc);
  const v128_t vnan = wasm_v128_or(wasm_v128_or(wasm_f32x4_ne(va, va), wasm_f32x4_ne(vb, vb)),
                                   wasm_v128_or(wasm_f32x4_ne(vc, vc), wasm_f32x4_ne(vd, vd)));
  const v128_t vmax = wasm_f32x4_pmax(wasm_f32x4_pmax(va, vb), wasm_f32x4_pmax(vc, vd));
  return wasm_v128_or(vmax, vnan);
}

/* rows x n output pixels whose 2 x 2 windows are in bounds, cc % 4 == 0 channels: window starts
 * step floats apart in a row, rows of windows row_step apart (input rows: row floats apart). */
static __attribute__((noinline)) void f32_maxpool_2x2_rows(const float* x, float* yp, size_t rows, size_t n,
                                                           size_t cc, size_t row, size_t step, size_t row_step) {
  for (size_t r = 0; r < rows; r++, x += row_step) {
    const float* p = x;
    for (size_t i = 0; i < n; i++, p += step, yp += cc) {
      for (size_t j = 0; j < cc; j += 4) wasm_v128_store(yp + j, f32_pool_max_2x2(p + j, cc, row));
    }
  }
}

int32_t pool2d(int32_t x, int32_t y, int32_t batch, int32_t in_h, int32_t in_w, int32_t c, int32_t k_h,
               int32_t k_w, int32_t stride_h, int32_t stride_w, int32_t pad_top, int32_t pad_left, int32_t out_h,
               int32_t out_w, int32_t mode) {
  if (mode != JSML_POOL_MAX && mode != JSML_POOL_AVG) return STATUS_BAD_ARGUMENT;
  if (batch < 0 || in_h < 0 || in_w < 0 || c < 0 || out_h < 0 || out_w < 0 || stride_h < 1 || stride_w < 1) {
    return STATUS_BAD_ARGUMENT;
  }
  const size_t cc = (size_t)c, row = (size_t)in_w * cc;
  const int max = mode == JSML_POOL_MAX;
  float* yp = F32(y);
  if (max && k_h == 2 && k_w == 2 && pad_top == 0 && pad_left == 0 && cc % 4 == 0 && out_h * stride_h == in_h &&
      (out_w - 1) * stride_w + 2 <= in_w && stride_h >= 2) {
    /* every window in bounds, and the rows of windows of all samples follow each other */
    f32_maxpool_2x2_rows(F32(x), yp, (size_t)batch * (size_t)out_h, (size_t)out_w, cc, row, (size_t)stride_w * cc,
                         (size_t)stride_h * row);
    return 0;
  }
  for (int32_t b = 0; b < batch; b++) {
    const float* xb = F32(x) + (size_t)b * (size_t)in_h * row;
    for (int32_t oy = 0; oy < out_h; oy++) {
      int32_t y0 = oy * stride_h - pad_top, y1 = y0 + k_h;
      if (y0 < 0) y0 = 0;
      if (y1 > in_h) y1 = in_h;
      /* output pixels ox_lo..ox_hi have their whole window in bounds */
      int32_t ox_lo = (pad_left + stride_w - 1) / stride_w, ox_hi = (in_w - k_w + pad_left) / stride_w + 1;
      if (in_w - k_w + pad_left < 0) ox_hi = 0;
      if (ox_hi > out_w) ox_hi = out_w;
      const int fast = max && k_h == 2 && k_w == 2 && y1 - y0 == 2 && cc % 4 == 0 && ox_lo < ox_hi;
      for (int32_t ox = 0; ox < out_w; ox++, yp += cc) {
        if (fast && ox == ox_lo) {
          const size_t n = (size_t)(ox_hi - ox_lo);
          f32_maxpool_2x2_rows(xb + ((size_t)y0 * (size_t)in_w + (size_t)(ox * stride_w - pad_left)) * cc, yp, 1, n,
                               cc, row, (size_t)stride_w * cc, 0);
          yp += (n - 1) * cc;
          ox = ox_hi - 1;
          continue;
        }
        int32_t x0 = ox * stride_w - pad_left, x1 = x0 + k_w;
        if (x0 < 0) x0 = 0;
        if (x1 > in_w) x1 = in_w;
        const int32_t nh = y1 > y0 ? y1 - y0 : 0, nw = x1 > x0 ? x1 - x0 : 0;
        const float* p = xb + ((size_t)y0 * (size_t)in_w + (size_t)x0) * cc;
        size_t j = 0;
        if (max) {
          if (nh == 2 && nw == 2) {
            for (; j + 4 <= cc; j += 4) wasm_v128_store(yp + j, f32_pool_max_2x2(p + j, cc, row));
          } else {
            for (; j + 4 <= cc; j += 4) wasm_v128_store(yp + j, f32_pool_max_window(p + j, cc, row, nh, nw, 4));
          }
          if (j < cc) store_partial(yp + j, f32_pool_max_window(p + j, cc, row, nh, nw, cc - j), cc - j);
        } else {
          const v128_t vcount = VSPLAT((float)(nh * nw)); /* as TensorFlow; no window: 0/0 */
          for (; j + 4 <= cc; j += 4) {
            wasm_v128_store(yp + j, VDIV(f32_pool_sum_window(p + j, cc, row, nh, nw, 4), vcount));
          }
          if (j < cc) {
            store_partial(yp + j, VDIV(f32_pool_sum_window(p + j, cc, row, nh, nw, cc - j), vcount), cc - j);
          }
        }
      }
    }
  }
  return 0;
}

int32_t global_pool(int32_t x, int32_t y, int32_t batch, int32_t s, int32_t c, int32_t mode) {
  if (mode != JSML_POOL_MAX && mode != JSML_POOL_AVG) return STATUS_BAD_ARGUMENT;
  if (batch < 0 || s < 0 || c < 0) return STATUS_BAD_ARGUMENT;
  const size_t cc = (size_t)c, ss = (size_t)s;
  for (int32_t b = 0; b < batch; b++) {
    const float* xb = F32(x) + (size_t)b * ss * cc;
    float* yb = F32(y) + (size_t)b * cc;
    for (size_t j = 0; j < cc; j += 4) {
      const size_t lanes = MIN((size_t)4, cc - j);
      v128_t vacc = mode == JSML_POOL_MAX ? VSPLAT(-__builtin_inff()) : VSPLAT(0.0f);
      if (mode == JSML_POOL_MAX) {
        v128_t vnan = wasm_i32x4_splat(0);
        for (size_t i = 0; i < ss; i++) {
          const v128_t vx = load_partial(xb + i * cc + j, lanes);
          vacc = wasm_f32x4_pmax(vacc, vx);
          vnan = wasm_v128_or(vnan, wasm_f32x4_ne(vx, vx));
        }
        vacc = wasm_v128_or(vacc, vnan);
      } else {
        for (size_t i = 0; i < ss; i++) vacc = VADD(vacc, load_partial(xb + i * cc + j, lanes));
        vacc = VDIV(vacc, VSPLAT((float)s));
      }
      store_partial(yb + j, vacc, lanes);
    }
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------------
 * element-wise
 */

#define VUNARY_LOOP(EXPR)                                                            \
  {                                                                                  \
    size_t i_ = 0;                                                                   \
    for (; i_ + 8 <= n; i_ += 8) {                                                   \
      v128_t vx = wasm_v128_load(x + i_);                                            \
      const v128_t vy0_ = (EXPR);                                                    \
      vx = wasm_v128_load(x + i_ + 4);                                               \
      const v128_t vy1_ = (EXPR);                                                    \
      wasm_v128_store(y + i_, vy0_);                                                 \
      wasm_v128_store(y + i_ + 4, vy1_);                                             \
    }                                                                                \
    for (; i_ < n; i_ += 4) {                                                        \
      const size_t lanes_ = MIN((size_t)4, n - i_);                                  \
      v128_t vx = load_partial(x + i_, lanes_);                                      \
      store_partial(y + i_, (EXPR), lanes_);                                         \
    }                                                                                \
  }

/* y[i] = f_kind(x[i]); x == y allowed. Returns 0, or STATUS_BAD_ARGUMENT for an unknown kind. */
static int32_t f32_vunary(const float* x, float* y, size_t n, int32_t kind, float a, float b) {
  const v128_t va = VSPLAT(a), vb = VSPLAT(b), vzero = VSPLAT(0.0f), vone = VSPLAT(1.0f);
  const exp_consts k = exp_consts_load();
  switch (kind) {
    case JSML_UNARY_LINEAR:
      if (x != y) VUNARY_LOOP(vx)
      return 0;
    case JSML_UNARY_RELU:
      VUNARY_LOOP(VCLAMP_LO(vx, vzero))
      return 0;
    case JSML_UNARY_RELU6:
      VUNARY_LOOP(VCLAMP_HI(VCLAMP_LO(vx, vzero), VSPLAT(6.0f)))
      return 0;
    case JSML_UNARY_ELU:
      VUNARY_LOOP(VSEL(vx, VMUL(va, f32x4_expm1_clamped_k(VCLAMP_HI(vx, vzero), &k)), wasm_f32x4_gt(vx, vzero)))
      return 0;
    case JSML_UNARY_SELU: {
      const v128_t vscale = VSPLAT(1.0507009873554805f), valpha = VSPLAT(1.6732632423543772f);
      VUNARY_LOOP(VMUL(vscale, VSEL(vx, VMUL(valpha, f32x4_expm1_clamped_k(VCLAMP_HI(vx, vzero), &k)),
                                    wasm_f32x4_gt(vx, vzero))))
      return 0;
    }
    case JSML_UNARY_SIGMOID:
      VUNARY_LOOP(f32x4_sigmoid_k(vx, &k))
      return 0;
    case JSML_UNARY_HARD_SIGMOID:
      VUNARY_LOOP(VCLAMP_HI(VCLAMP_LO(VADD(VMUL(vx, VSPLAT(0.2f)), VSPLAT(0.5f)), vzero), vone))
      return 0;
    case JSML_UNARY_HARD_SIGMOID_K3:
      VUNARY_LOOP(VCLAMP_HI(VCLAMP_LO(VADD(VDIV(vx, VSPLAT(6.0f)), VSPLAT(0.5f)), vzero), vone))
      return 0;
    case JSML_UNARY_TANH:
      VUNARY_LOOP(f32x4_tanh_k(vx, &k))
      return 0;
    case JSML_UNARY_SOFTPLUS:
      VUNARY_LOOP(f32x4_softplus(vx))
      return 0;
    case JSML_UNARY_SOFTSIGN:
      VUNARY_LOOP(VDIV(vx, VADD(vone, wasm_f32x4_abs(vx))))
      return 0;
    case JSML_UNARY_SWISH:
      VUNARY_LOOP(VMUL(vx, f32x4_sigmoid_k(vx, &k)))
      return 0;
    case JSML_UNARY_GELU:
      VUNARY_LOOP(f32x4_gelu(vx))
      return 0;
    case JSML_UNARY_GELU_TANH: {
      /* 0.5 x (1 + tanh(u)) = x sigmoid(2u): no cancellation for x < 0 */
      const v128_t vc = VSPLAT(2.0f * 0.7978845608028654f), vc3 = VSPLAT(0.044715f);
      VUNARY_LOOP(VMUL(vx, f32x4_sigmoid_k(VMUL(vc, VADD(vx, VMUL(vc3, VMUL(vx, VMUL(vx, vx))))), &k)))
      return 0;
    }
    case JSML_UNARY_MISH:
      VUNARY_LOOP(f32x4_mish(vx))
      return 0;
    case JSML_UNARY_LEAKY_RELU:
      VUNARY_LOOP(VSEL(vx, VMUL(va, vx), wasm_f32x4_ge(vx, vzero)))
      return 0;
    case JSML_UNARY_RELU_CLIP:
      VUNARY_LOOP(VCLAMP_HI(VSEL(vx, VMUL(va, vx), wasm_f32x4_ge(vx, vzero)), vb))
      return 0;
    case JSML_UNARY_SCALE:
      VUNARY_LOOP(VADD(VMUL(va, vx), vb))
      return 0;
    case JSML_UNARY_THRESHOLDED_RELU:
      VUNARY_LOOP(wasm_v128_and(vx, wasm_f32x4_gt(vx, va)))
      return 0;
    default:
      return STATUS_BAD_ARGUMENT;
  }
}

int32_t unary(int32_t x, int32_t y, int32_t count, int32_t kind, float a, float b) {
  if (count < 0) return STATUS_BAD_ARGUMENT;
  return f32_vunary(F32(x), F32(y), (size_t)count, kind, a, b);
}

JSML_INLINE float f32_log(float x) { return wasm_f32x4_extract_lane(f32x4_log(VSPLAT(x)), 0); }

/* Rows up to this long go four at a time through f32_softmax_rows4. */
#define SOFTMAX_SHORT_ROW 16 /* a multiple of 4 */

/* Softmax along contiguous rows (inner == 1). */
static void f32_softmax_rows(const float* x, float* y, size_t rows, size_t len, int32_t log) {
  const exp_consts k = exp_consts_load();
  for (size_t r = 0; r < rows; r++, x += len, y += len) {
    v128_t vmax = VSPLAT(-__builtin_inff());
    size_t i = 0;
    for (; i + 4 <= len; i += 4) vmax = VMAX(vmax, wasm_v128_load(x + i));
    float max = hmax(vmax);
    for (; i < len; i++) max = SMAX(max, x[i]);
    const v128_t vm = VSPLAT(max);
    v128_t vsum = VSPLAT(0.0f);
    float sum = 0.0f;
    for (i = 0; i + 4 <= len; i += 4) {
      const v128_t ve = f32x4_exp_k(VSUB(wasm_v128_load(x + i), vm), &k);
      if (!log) wasm_v128_store(y + i, ve);
      vsum = VADD(vsum, ve);
    }
    if (i < len) {
      float e[4];
      wasm_v128_store(e, f32x4_exp_k(VSUB(load_partial(x + i, len - i), vm), &k));
      for (size_t j = 0; i + j < len; j++) {
        if (!log) y[i + j] = e[j];
        sum += e[j];
      }
    }
    sum += hsum(vsum);
    if (log) {
      const v128_t vls = VSPLAT(f32_log(sum));
      for (i = 0; i < len; i += 4) {
        const size_t lanes = MIN((size_t)4, len - i);
        store_partial(y + i, VSUB(VSUB(load_partial(x + i, lanes), vm), vls), lanes);
      }
    } else {
      const v128_t vs = VSPLAT(sum);
      for (i = 0; i + 4 <= len; i += 4) wasm_v128_store(y + i, VDIV(wasm_v128_load(y + i), vs));
      for (; i < len; i++) y[i] /= sum;
    }
  }
}

/* 4 x 4 transpose of (a, b, c, d). */
JSML_INLINE void transpose4(v128_t* va, v128_t* vb, v128_t* vc, v128_t* vd) {
  const v128_t t0 = wasm_i32x4_shuffle(*va, *vb, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(*va, *vb, 2, 6, 3, 7);
  const v128_t t2 = wasm_i32x4_shuffle(*vc, *vd, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(*vc, *vd, 2, 6, 3, 7);
  *va = wasm_i32x4_shuffle(t0, t2, 0, 1, 4, 5);
  *vb = wasm_i32x4_shuffle(t0, t2, 2, 3, 6, 7);
  *vc = wasm_i32x4_shuffle(t1, t3, 0, 1, 4, 5);
  *vd = wasm_i32x4_shuffle(t1, t3, 2, 3, 6, 7);
}

/* Softmax of short contiguous rows, four rows at a time (lane l = row l): a classifier's output.
 * With `wide`, each row is read as f32x4 vectors and transposed (4 x 4 blocks), the last vector of
 * a row reaching up to 3 floats into the next row (so not for the last rows of the input), and
 * written back likewise (the last vector of a row partially); else lane by lane. */
JSML_INLINE void f32_softmax_rows4_impl(const float* x, float* y, size_t groups, size_t len, int32_t log, int wide) {
  v128_t v[SOFTMAX_SHORT_ROW];
  const size_t blocks = (len + 3) / 4, tail = len % 4;
  const exp_consts k = exp_consts_load();
  for (size_t r = 0; r < groups; r++, x += 4 * len, y += 4 * len) {
    if (wide) {
      for (size_t q = 0; q < blocks; q++) {
        v[4 * q] = wasm_v128_load(x + 4 * q);
        v[4 * q + 1] = wasm_v128_load(x + len + 4 * q);
        v[4 * q + 2] = wasm_v128_load(x + 2 * len + 4 * q);
        v[4 * q + 3] = wasm_v128_load(x + 3 * len + 4 * q);
        transpose4(&v[4 * q], &v[4 * q + 1], &v[4 * q + 2], &v[4 * q + 3]);
      }
    } else {
      for (size_t j = 0; j < len; j++) v[j] = wasm_f32x4_make(x[j], x[len + j], x[2 * len + j], x[3 * len + j]);
    }
    v128_t vmax = v[0];
    for (size_t j = 1; j < len; j++) vmax = VMAX(vmax, v[j]);
    v128_t vsum = VSPLAT(0.0f);
    for (size_t j = 0; j < len; j++) {
      v[j] = VSUB(v[j], vmax);
      const v128_t ve = f32x4_exp_k(v[j], &k);
      vsum = VADD(vsum, ve);
      if (!log) v[j] = ve;
    }
    const v128_t vls = log ? f32x4_log(vsum) : vsum;
    for (size_t j = 0; j < len; j++) v[j] = log ? VSUB(v[j], vls) : VDIV(v[j], vsum);
    if (wide) {
      for (size_t q = 0; q < blocks; q++) {
        transpose4(&v[4 * q], &v[4 * q + 1], &v[4 * q + 2], &v[4 * q + 3]);
        const size_t lanes = q + 1 < blocks || tail == 0 ? 4 : tail;
        store_partial(y + 4 * q, v[4 * q], lanes);
        store_partial(y + len + 4 * q, v[4 * q + 1], lanes);
        store_partial(y + 2 * len + 4 * q, v[4 * q + 2], lanes);
        store_partial(y + 3 * len + 4 * q, v[4 * q + 3], lanes);
      }
    } else {
      for (size_t j = 0; j < len; j++) {
        y[j] = wasm_f32x4_extract_lane(v[j], 0);
        y[len + j] = wasm_f32x4_extract_lane(v[j], 1);
        y[2 * len + j] = wasm_f32x4_extract_lane(v[j], 2);
        y[3 * len + j] = wasm_f32x4_extract_lane(v[j], 3);
      }
    }
  }
}

/* Row lengths of common classifiers get their own copy (softmax, not log-softmax), where the row
 * vectors stay in registers: about 15% faster for 3 and 10 columns. */
#define SOFTMAX_ROWS4_FIXED(L)                                                                                 \
  static __attribute__((noinline)) void f32_softmax_rows4_##L(const float* x, float* y, size_t groups, int wide) { \
    f32_softmax_rows4_impl(x, y, groups, L, 0, wide);                                                            \
  }
SOFTMAX_ROWS4_FIXED(2)
SOFTMAX_ROWS4_FIXED(3)
SOFTMAX_ROWS4_FIXED(10)

static __attribute__((noinline)) void f32_softmax_rows4_any(const float* x, float* y, size_t groups, size_t len,
                                                            int32_t log) {
  f32_softmax_rows4_impl(x, y, groups, len, log, 0);
}

static void f32_softmax_rows4(const float* x, float* y, size_t groups, size_t len, int32_t log, int wide) {
  if (!log && len == 2) {
    f32_softmax_rows4_2(x, y, groups, wide);
  } else if (!log && len == 3) {
    f32_softmax_rows4_3(x, y, groups, wide);
  } else if (!log && len == 10) {
    f32_softmax_rows4_10(x, y, groups, wide);
  } else {
    f32_softmax_rows4_any(x, y, groups, len, log);
  }
}

int32_t softmax(int32_t x, int32_t y, int32_t outer, int32_t axis_len, int32_t inner, int32_t log) {
  if (outer < 0 || axis_len < 0 || inner < 0) return STATUS_BAD_ARGUMENT;
  const size_t len = (size_t)axis_len, in = (size_t)inner;
  if (len == 0) return 0;
  if (in == 1) {
    size_t done = 0;
    if (len <= SOFTMAX_SHORT_ROW) {
      done = (size_t)outer / 4 * 4;
      /* the last group reads lane by lane when its rows end between vectors */
      const size_t wide = len % 4 == 0 || done == 0 ? done / 4 : done / 4 - 1;
      f32_softmax_rows4(F32(x), F32(y), wide, len, log, 1);
      f32_softmax_rows4(F32(x) + 4 * wide * len, F32(y) + 4 * wide * len, done / 4 - wide, len, log, 0);
    }
    f32_softmax_rows(F32(x) + done * len, F32(y) + done * len, (size_t)outer - done, len, log);
    return 0;
  }
  /* inner > 1: four columns of the [axis_len, inner] slab at a time */
  const exp_consts k = exp_consts_load();
  for (size_t o = 0; o < (size_t)outer; o++) {
    const float* xo = F32(x) + o * len * in;
    float* yo = F32(y) + o * len * in;
    for (size_t c = 0; c < in; c += 4) {
      const size_t lanes = MIN((size_t)4, in - c);
      v128_t vmax = VSPLAT(-__builtin_inff());
      for (size_t i = 0; i < len; i++) vmax = VMAX(vmax, load_partial(xo + i * in + c, lanes));
      v128_t vsum = VSPLAT(0.0f);
      for (size_t i = 0; i < len; i++) {
        const v128_t ve = f32x4_exp_k(VSUB(load_partial(xo + i * in + c, lanes), vmax), &k);
        if (!log) store_partial(yo + i * in + c, ve, lanes);
        vsum = VADD(vsum, ve);
      }
      if (log) {
        const v128_t vls = f32x4_log(vsum);
        for (size_t i = 0; i < len; i++) {
          store_partial(yo + i * in + c, VSUB(VSUB(load_partial(xo + i * in + c, lanes), vmax), vls), lanes);
        }
      } else {
        for (size_t i = 0; i < len; i++) {
          store_partial(yo + i * in + c, VDIV(load_partial(yo + i * in + c, lanes), vsum), lanes);
        }
      }
    }
  }
  return 0;
}

int32_t prelu(int32_t x, int32_t y, int32_t alpha, int32_t rows, int32_t size) {
  if (rows < 0 || size < 0) return STATUS_BAD_ARGUMENT;
  const size_t n = (size_t)size;
  const float* al = F32(alpha);
  const v128_t vzero = VSPLAT(0.0f);
  for (size_t r = 0; r < (size_t)rows; r++) {
    const float* xr = F32(x) + r * n;
    float* yr = F32(y) + r * n;
    for (size_t i = 0; i < n; i += 4) {
      const size_t lanes = MIN((size_t)4, n - i);
      const v128_t vx = load_partial(xr + i, lanes);
      store_partial(yr + i, VSEL(vx, VMUL(load_partial(al + i, lanes), vx), wasm_f32x4_ge(vx, vzero)), lanes);
    }
  }
  return 0;
}

int32_t affine(int32_t x, int32_t y, int32_t scale, int32_t shift, int32_t outer, int32_t c, int32_t inner) {
  if (outer < 0 || c < 0 || inner < 0) return STATUS_BAD_ARGUMENT;
  const size_t cc = (size_t)c, in = (size_t)inner;
  const float* sc = F32(scale);
  const float* sh = F32(shift);
  const float* xp = F32(x);
  float* yp = F32(y);
  for (size_t o = 0; o < (size_t)outer; o++) {
    if (in == 1) { /* channels last: vectorize over channels */
      for (size_t j = 0; j < cc; j += 4) {
        const size_t lanes = MIN((size_t)4, cc - j);
        const v128_t vx = load_partial(xp + j, lanes);
        store_partial(yp + j, VADD(VMUL(vx, load_partial(sc + j, lanes)), load_partial(sh + j, lanes)), lanes);
      }
      xp += cc;
      yp += cc;
      continue;
    }
    for (size_t j = 0; j < cc; j++, xp += in, yp += in) {
      const v128_t vs = VSPLAT(sc[j]), vt = VSPLAT(sh[j]);
      for (size_t i = 0; i < in; i += 4) {
        const size_t lanes = MIN((size_t)4, in - i);
        store_partial(yp + i, VADD(VMUL(load_partial(xp + i, lanes), vs), vt), lanes);
      }
    }
  }
  return 0;
}

int32_t layernorm(int32_t x, int32_t y, int32_t gamma, int32_t beta, int32_t rows, int32_t size, float eps) {
  if (rows < 0 || size < 0) return STATUS_BAD_ARGUMENT;
  const size_t n = (size_t)size;
  const float* g = gamma ? F32(gamma) : 0;
  const float* be = beta ? F32(beta) : 0;
  for (size_t r = 0; r < (size_t)rows; r++) {
    const float* xr = F32(x) + r * n;
    float* yr = F32(y) + r * n;
    /* mean and biased variance accumulated in f64x2 (two passes) */
    v128_t vs0 = wasm_f64x2_const_splat(0.0), vs1 = vs0;
    for (size_t i = 0; i < n; i += 4) {
      const v128_t vx = load_partial(xr + i, MIN((size_t)4, n - i));
      vs0 = wasm_f64x2_add(vs0, wasm_f64x2_promote_low_f32x4(vx));
      vs1 = wasm_f64x2_add(vs1, wasm_f64x2_promote_low_f32x4(wasm_i64x2_shuffle(vx, vx, 1, 1)));
    }
    vs0 = wasm_f64x2_add(vs0, vs1);
    const double mean = (wasm_f64x2_extract_lane(vs0, 0) + wasm_f64x2_extract_lane(vs0, 1)) / (double)n;
    const v128_t vmean = VSPLAT((float)mean);
    vs0 = vs1 = wasm_f64x2_const_splat(0.0);
    for (size_t i = 0; i < n; i += 4) {
      const size_t lanes = MIN((size_t)4, n - i);
      v128_t vd = VSUB(load_partial(xr + i, lanes), vmean);
      if (lanes < 4) vd = VSEL(vd, VSPLAT(0.0f), wasm_i32x4_gt(wasm_i32x4_splat((int32_t)lanes), wasm_i32x4_make(0, 1, 2, 3)));
      const v128_t vd0 = wasm_f64x2_promote_low_f32x4(vd);
      const v128_t vd1 = wasm_f64x2_promote_low_f32x4(wasm_i64x2_shuffle(vd, vd, 1, 1));
      vs0 = wasm_f64x2_add(vs0, wasm_f64x2_mul(vd0, vd0));
      vs1 = wasm_f64x2_add(vs1, wasm_f64x2_mul(vd1, vd1));
    }
    vs0 = wasm_f64x2_add(vs0, vs1);
    const double var = (wasm_f64x2_extract_lane(vs0, 0) + wasm_f64x2_extract_lane(vs0, 1)) / (double)n;
    const v128_t vinv = VSPLAT((float)(1.0 / __builtin_sqrt(var + (double)eps)));
    for (size_t i = 0; i < n; i += 4) {
      const size_t lanes = MIN((size_t)4, n - i);
      v128_t vy = VMUL(VSUB(load_partial(xr + i, lanes), vmean), vinv);
      if (g) vy = VMUL(vy, load_partial(g + i, lanes));
      if (be) vy = VADD(vy, load_partial(be + i, lanes));
      store_partial(yr + i, vy, lanes);
    }
  }
  return 0;
}

#define VBINARY_LOOP(OP)                                                             \
  {                                                                                  \
    size_t i_ = 0;                                                                   \
    for (; i_ + 8 <= n; i_ += 8) {                                                   \
      const v128_t v0_ = OP(wasm_v128_load(pa + i_), wasm_v128_load(pb + i_));       \
      const v128_t v1_ = OP(wasm_v128_load(pa + i_ + 4), wasm_v128_load(pb + i_ + 4)); \
      wasm_v128_store(py + i_, v0_);                                                 \
      wasm_v128_store(py + i_ + 4, v1_);                                             \
    }                                                                                \
    for (; i_ < n; i_ += 4) {                                                        \
      const size_t lanes_ = MIN((size_t)4, n - i_);                                  \
      store_partial(py + i_, OP(load_partial(pa + i_, lanes_), load_partial(pb + i_, lanes_)), lanes_); \
    }                                                                                \
  }

int32_t binary(int32_t a, int32_t b, int32_t y, int32_t count, int32_t op) {
  if (count < 0) return STATUS_BAD_ARGUMENT;
  const float* pa = F32(a);
  const float* pb = F32(b);
  float* py = F32(y);
  const size_t n = (size_t)count;
  switch (op) {
    case JSML_BINARY_ADD: VBINARY_LOOP(VADD) return 0;
    case JSML_BINARY_SUB: VBINARY_LOOP(VSUB) return 0;
    case JSML_BINARY_MUL: VBINARY_LOOP(VMUL) return 0;
    case JSML_BINARY_MAX: VBINARY_LOOP(VMAX) return 0;
    case JSML_BINARY_MIN: VBINARY_LOOP(VMIN) return 0;
    default: return STATUS_BAD_ARGUMENT;
  }
}

/* ------------------------------------------------------------------------------------------------
 * data movement
 */

int32_t copy(int32_t src, int32_t dst, int32_t outer, int32_t mid, int32_t inner, int32_t src_outer,
             int32_t src_mid, int32_t dst_outer, int32_t dst_mid) {
  if (outer < 0 || mid < 0 || inner < 0) return STATUS_BAD_ARGUMENT;
  if (src_mid == inner && dst_mid == inner) { /* the mid rows are contiguous on both sides */
    inner *= mid;
    mid = mid ? 1 : 0;
  }
  const uint32_t* s = (const uint32_t*)(uintptr_t)(uint32_t)src;
  uint32_t* d = (uint32_t*)(uintptr_t)(uint32_t)dst;
  for (int32_t o = 0; o < outer; o++) {
    for (int32_t j = 0; j < mid; j++) {
      const uint32_t* sp = s + (ptrdiff_t)o * src_outer + (ptrdiff_t)j * src_mid;
      uint32_t* dp = d + (ptrdiff_t)o * dst_outer + (ptrdiff_t)j * dst_mid;
      if (inner == 1) {
        *dp = *sp;
      } else {
        copy_words(dp, sp, (size_t)inner);
      }
    }
  }
  return 0;
}

int32_t permute(int32_t x, int32_t y, int32_t batch, int32_t d0, int32_t d1, int32_t d2, int32_t d3, int32_t s0,
                int32_t s1, int32_t s2, int32_t s3) {
  if (batch < 0 || d0 < 0 || d1 < 0 || d2 < 0 || d3 < 0) return STATUS_BAD_ARGUMENT;
  const ptrdiff_t r = (ptrdiff_t)d0 * d1 * d2 * d3;
  const uint32_t* xp = (const uint32_t*)(uintptr_t)(uint32_t)x;
  uint32_t* yp = (uint32_t*)(uintptr_t)(uint32_t)y;
  for (int32_t b = 0; b < batch; b++) {
    const uint32_t* xb = xp + (ptrdiff_t)b * r;
    for (int32_t i0 = 0; i0 < d0; i0++) {
      for (int32_t i1 = 0; i1 < d1; i1++) {
        for (int32_t i2 = 0; i2 < d2; i2++) {
          const uint32_t* base = xb + (ptrdiff_t)i0 * s0 + (ptrdiff_t)i1 * s1 + (ptrdiff_t)i2 * s2;
          if (s3 == 1) {
            copy_words(yp, base, (size_t)d3);
            yp += d3;
          } else {
            for (int32_t i3 = 0; i3 < d3; i3++) *yp++ = base[(ptrdiff_t)i3 * s3];
          }
        }
      }
    }
  }
  return 0;
}

int32_t embedding(int32_t ids, int32_t table, int32_t y, int32_t count, int32_t vocab, int32_t dim) {
  if (count < 0 || dim < 0) return STATUS_BAD_ARGUMENT;
  const int32_t* idp = I32(ids);
  const uint32_t* tp = (const uint32_t*)(uintptr_t)(uint32_t)table;
  uint32_t* yp = (uint32_t*)(uintptr_t)(uint32_t)y;
  const size_t dd = (size_t)dim;
  for (int32_t i = 0; i < count; i++) {
    const int32_t id = idp[i];
    if (id < 0 || id >= vocab) return 1 + i;
    copy_words(yp + (size_t)i * dd, tp + (size_t)id * dd, dd);
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------------
 * rnn
 *
 * Batch rows are independent, so the whole time loop runs on blocks of RNN_BLOCK rows whose state
 * stays in cache. Per step and gate, one dual GEMM computes x_t . W_g + b_g + h . U_g + br_g into
 * pre[g] (x_t is read in place, row stride steps*in_dim); the GRU's candidate gate takes r*h (reset
 * before) or keeps h . U_h + br_h apart (reset after). Scratch per block: pre[G][B][U], h, c, t
 * [B][U] each, which fits in abi.rnn_scratch_per_row(...) * batch.
 */

#ifndef RNN_BLOCK
#define RNN_BLOCK 64
#endif

/* The gate functions, with the exp constants loaded once by the caller (see exp_consts). */
JSML_INLINE v128_t f32x4_identity_k(v128_t vx, const exp_consts* k) {
  (void)k;
  return vx;
}

JSML_INLINE v128_t f32x4_hard_sigmoid_k(v128_t vx, const exp_consts* k) {
  (void)k;
  return VCLAMP_HI(VCLAMP_LO(VADD(VMUL(vx, VSPLAT(0.2f)), VSPLAT(0.5f)), VSPLAT(0.0f)), VSPLAT(1.0f));
}

/* LSTM gates, fused: c = rec(f)*c + rec(i)*act(g); h = rec(o)*act(c) over n contiguous values. */
#define DEFINE_LSTM_GATES(NAME, REC, ACT)                                                              \
  static void NAME(const float* pi, const float* pf, const float* pg, const float* po, float* c, float* h, \
                   size_t n) {                                                                         \
    const exp_consts k = exp_consts_load();                                                            \
    for (size_t i = 0; i < n; i += 4) {                                                                \
      const size_t lanes = MIN((size_t)4, n - i);                                                      \
      const v128_t vi = REC(load_partial(pi + i, lanes), &k);                                          \
      const v128_t vf = REC(load_partial(pf + i, lanes), &k);                                          \
      const v128_t vg = ACT(load_partial(pg + i, lanes), &k);                                          \
      const v128_t vo = REC(load_partial(po + i, lanes), &k);                                          \
      const v128_t vc = VADD(VMUL(vf, load_partial(c + i, lanes)), VMUL(vi, vg));                      \
      store_partial(c + i, vc, lanes);                                                                 \
      store_partial(h + i, VMUL(vo, ACT(vc, &k)), lanes);                                              \
    }                                                                                                  \
  }
DEFINE_LSTM_GATES(f32_lstm_gates_sigmoid_tanh, f32x4_sigmoid_k, f32x4_tanh_k)
DEFINE_LSTM_GATES(f32_lstm_gates_hard_sigmoid_tanh, f32x4_hard_sigmoid_k, f32x4_tanh_k)

/* GRU, first pass: z = rec(pz), r = rec(pr) in place; then reset before: t = r*h; reset after:
 * ph += r*t (t = h U_h + br_h). */
#define DEFINE_GRU_RESET(NAME, REC)                                                                    \
  static void NAME(float* pz, float* pr, float* ph, float* t, const float* h, size_t n, int reset_after) { \
    const exp_consts k = exp_consts_load();                                                            \
    for (size_t i = 0; i < n; i += 4) {                                                                \
      const size_t lanes = MIN((size_t)4, n - i);                                                      \
      store_partial(pz + i, REC(load_partial(pz + i, lanes), &k), lanes);                              \
      const v128_t vr = REC(load_partial(pr + i, lanes), &k);                                          \
      if (reset_after) {                                                                               \
        store_partial(ph + i, VADD(load_partial(ph + i, lanes), VMUL(vr, load_partial(t + i, lanes))), lanes); \
      } else {                                                                                         \
        store_partial(t + i, VMUL(vr, load_partial(h + i, lanes)), lanes);                             \
      }                                                                                                \
    }                                                                                                  \
  }
DEFINE_GRU_RESET(f32_gru_reset_sigmoid, f32x4_sigmoid_k)
DEFINE_GRU_RESET(f32_gru_reset_hard_sigmoid, f32x4_hard_sigmoid_k)
DEFINE_GRU_RESET(f32_gru_reset_identity, f32x4_identity_k)

/* GRU, second pass: h = z*h + (1 - z)*act(ph). */
#define DEFINE_GRU_UPDATE(NAME, ACT)                                                                   \
  static void NAME(const float* pz, const float* ph, float* h, size_t n) {                             \
    const v128_t vone = VSPLAT(1.0f);                                                                  \
    const exp_consts k = exp_consts_load();                                                            \
    for (size_t i = 0; i < n; i += 4) {                                                                \
      const size_t lanes = MIN((size_t)4, n - i);                                                      \
      const v128_t vz = load_partial(pz + i, lanes);                                                   \
      const v128_t vhh = ACT(load_partial(ph + i, lanes), &k);                                         \
      store_partial(h + i, VADD(VMUL(vz, load_partial(h + i, lanes)), VMUL(VSUB(vone, vz), vhh)), lanes); \
    }                                                                                                  \
  }
DEFINE_GRU_UPDATE(f32_gru_update_tanh, f32x4_tanh_k)
DEFINE_GRU_UPDATE(f32_gru_update_identity, f32x4_identity_k)

int32_t rnn(int32_t cell, int32_t x, int32_t wk, int32_t wr, int32_t y, int32_t scratch, int32_t batch,
            int32_t steps, int32_t in_dim, int32_t units, int32_t flags, int32_t act, int32_t rec_act) {
  if (cell != JSML_CELL_SIMPLE && cell != JSML_CELL_LSTM && cell != JSML_CELL_GRU) return STATUS_BAD_ARGUMENT;
  if (batch < 0 || steps < 0 || in_dim < 0 || units < 0) return STATUS_BAD_ARGUMENT;
  if ((uint32_t)act > JSML_UNARY_THRESHOLDED_RELU || (uint32_t)rec_act > JSML_UNARY_THRESHOLDED_RELU) {
    return STATUS_BAD_ARGUMENT;
  }
  const size_t gates = cell == JSML_CELL_LSTM ? 4 : cell == JSML_CELL_GRU ? 3 : 1;
  const size_t u = (size_t)units, k = (size_t)in_dim, t_len = (size_t)steps;
  const size_t panels = (u + JSML_NR - 1) / JSML_NR;
  const size_t wk_block = panels * JSML_NR * (k + 1), wr_block = panels * JSML_NR * (u + 1);
  const float* wkp = F32(wk);
  const float* wrp = F32(wr);
  const size_t lda = t_len * k;
  const int seq = (flags & JSML_RNN_RETURN_SEQUENCES) != 0;
  const int back = (flags & JSML_RNN_GO_BACKWARDS) != 0;
  const int reset_after = (flags & JSML_RNN_RESET_AFTER) != 0;
  const int act_tanh = act == JSML_UNARY_TANH;
  const int rec_sigmoid = rec_act == JSML_UNARY_SIGMOID, rec_hard = rec_act == JSML_UNARY_HARD_SIGMOID;
  const size_t block = MIN((size_t)RNN_BLOCK, (size_t)batch);
  float* pre = F32(scratch);
  float* h = pre + gates * block * u;
  float* c = h + block * u;
  float* tmp = c + block * u;
  const v128_t vinf = VSPLAT(__builtin_inff()), vminf = wasm_f32x4_neg(vinf);

  for (size_t b0 = 0; b0 < (size_t)batch; b0 += block) {
    const size_t nb = MIN(block, (size_t)batch - b0);
    const size_t cnt = nb * u;
    zero_floats(h, cnt);
    zero_floats(c, cnt);
    for (size_t s = 0; s < t_len; s++) {
      const size_t t = back ? t_len - 1 - s : s;
      const float* xt = F32(x) + b0 * lda + t * k;
      if (cell == JSML_CELL_SIMPLE) {
        f32_gemm2(nb, u, k, xt, lda, wkp, u, h, u, wrp, pre, u);
        f32_vunary(pre, h, cnt, act, 0.0f, 0.0f);
      } else if (cell == JSML_CELL_LSTM) {
        float* pi = pre;
        float* pf = pre + cnt;
        float* pg = pre + 2 * cnt;
        float* po = pre + 3 * cnt;
        for (size_t g = 0; g < 4; g++) {
          f32_gemm2(nb, u, k, xt, lda, wkp + g * wk_block, u, h, u, wrp + g * wr_block, pre + g * cnt, u);
        }
        if (act_tanh && rec_sigmoid) {
          f32_lstm_gates_sigmoid_tanh(pi, pf, pg, po, c, h, cnt);
        } else if (act_tanh && rec_hard) {
          f32_lstm_gates_hard_sigmoid_tanh(pi, pf, pg, po, c, h, cnt);
        } else {
          f32_vunary(pi, pi, cnt, rec_act, 0.0f, 0.0f);
          f32_vunary(pf, pf, cnt, rec_act, 0.0f, 0.0f);
          f32_vunary(pg, pg, cnt, act, 0.0f, 0.0f);
          f32_vunary(po, po, cnt, rec_act, 0.0f, 0.0f);
          for (size_t i = 0; i < cnt; i += 4) { /* c = f*c + i*g; pg = c */
            const size_t lanes = MIN((size_t)4, cnt - i);
            const v128_t vc = VADD(VMUL(load_partial(pf + i, lanes), load_partial(c + i, lanes)),
                                   VMUL(load_partial(pi + i, lanes), load_partial(pg + i, lanes)));
            store_partial(c + i, vc, lanes);
            store_partial(pg + i, vc, lanes);
          }
          f32_vunary(pg, pg, cnt, act, 0.0f, 0.0f);
          for (size_t i = 0; i < cnt; i += 4) { /* h = o * act(c) */
            const size_t lanes = MIN((size_t)4, cnt - i);
            store_partial(h + i, VMUL(load_partial(po + i, lanes), load_partial(pg + i, lanes)), lanes);
          }
        }
      } else {
        float* pz = pre;
        float* pr = pre + cnt;
        float* ph = pre + 2 * cnt;
        f32_gemm2(nb, u, k, xt, lda, wkp, u, h, u, wrp, pz, u);
        f32_gemm2(nb, u, k, xt, lda, wkp + wk_block, u, h, u, wrp + wr_block, pr, u);
        if (reset_after) { /* ph = x W_h + b_h; tmp = h U_h + br_h */
          f32_gemm(nb, u, k, xt, lda, wkp + 2 * wk_block, ph, u, vminf, vinf);
          f32_gemm(nb, u, u, h, u, wrp + 2 * wr_block, tmp, u, vminf, vinf);
        }
        if (rec_sigmoid) {
          f32_gru_reset_sigmoid(pz, pr, ph, tmp, h, cnt, reset_after);
        } else if (rec_hard) {
          f32_gru_reset_hard_sigmoid(pz, pr, ph, tmp, h, cnt, reset_after);
        } else {
          f32_vunary(pz, pz, cnt, rec_act, 0.0f, 0.0f);
          f32_vunary(pr, pr, cnt, rec_act, 0.0f, 0.0f);
          f32_gru_reset_identity(pz, pr, ph, tmp, h, cnt, reset_after);
        }
        if (!reset_after) f32_gemm2(nb, u, k, xt, lda, wkp + 2 * wk_block, u, tmp, u, wrp + 2 * wr_block, ph, u);
        if (act_tanh) {
          f32_gru_update_tanh(pz, ph, h, cnt);
        } else {
          f32_vunary(ph, ph, cnt, act, 0.0f, 0.0f);
          f32_gru_update_identity(pz, ph, h, cnt);
        }
      }
      if (seq) {
        for (size_t b = 0; b < nb; b++) {
          copy_words((uint32_t*)F32(y) + ((b0 + b) * t_len + s) * u, (const uint32_t*)h + b * u, u);
        }
      }
    }
    if (!seq) copy_words((uint32_t*)F32(y) + b0 * u, (const uint32_t*)h, cnt);
  }
  return 0;
}
