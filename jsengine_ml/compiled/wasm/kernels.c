/* jsengine-ml compiled runtime: the WebAssembly kernel set (C -> wasm32, 128-bit SIMD).
 *
 * Every kernel of jsengine_ml/compiled/abi.py, with the semantics of docs/compiled-runtime.md.
 * Built by scripts/build_wasm.py (no libc: the elementary functions are in vmath.h). Arguments
 * are byte addresses into the imported linear memory; every kernel returns 0 on success.
 *
 * The dense micro-kernels follow XNNPACK's f32-gemm-4x8 / 1x8 wasmsimd kernels over the GOI-packed
 * panels of abi.pack_dense (8 bias values, then k rows of 8 weights). conv2d runs them on an
 * im2col of one sample; rnn on blocks of batch rows, one step at a time.
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

/* Rows per tile. 4 measured best in V8 (TurboFan, x64): 5, 6 and 8 rows ran slower (register
 * spills), and the "splat" variant (4 k steps per f32x4 load of A + lane shuffles) was not faster
 * than load32_splat on the 13 -> 64 dense case. */
#ifndef GEMM_MR
#define GEMM_MR 4
#endif

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
    for (size_t k = 0; k < kc; k++) {
      vb0123 = wasm_v128_load(w);
      vb4567 = wasm_v128_load(w + 4);
      w += 8;
#pragma clang loop unroll(full)
      for (size_t r = 0; r < MR; r++) {
        const v128_t va = wasm_v128_load32_splat(ap[r] + k);
        vacc0123[r] = VADD(vacc0123[r], VMUL(va, vb0123));
        vacc4567[r] = VADD(vacc4567[r], VMUL(va, vb4567));
      }
    }
    if (dual) {
      for (size_t k = 0; k < kc2; k++) {
        vb0123 = wasm_v128_load(w2);
        vb4567 = wasm_v128_load(w2 + 4);
        w2 += 8;
#pragma clang loop unroll(full)
        for (size_t r = 0; r < MR; r++) {
          const v128_t va = wasm_v128_load32_splat(bp[r] + k);
          vacc0123[r] = VADD(vacc0123[r], VMUL(va, vb0123));
          vacc4567[r] = VADD(vacc4567[r], VMUL(va, vb4567));
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

/* The same tile over a transposed A (at[k][m], row stride at_stride >= 4): one f32x4 load gives
 * the 4 rows' values of a k step, then a lane splat per row (XNNPACK's "splat" broadcast). Used by
 * conv2d's transposed im2col for inputs with few channels. */
static __attribute__((noinline)) void f32_gemm_4x8t__wasmsimd_splat(
    size_t nc, size_t kc, const float* at, size_t at_stride, const float* w, float* c, size_t cm_stride,
    v128_t vmin, v128_t vmax) {
  float* c0 = c;
  float* c1 = c0 + cm_stride;
  float* c2 = c1 + cm_stride;
  float* c3 = c2 + cm_stride;
  do {
    v128_t vacc0x0123 = wasm_v128_load(w), vacc0x4567 = wasm_v128_load(w + 4);
    w += 8;
    v128_t vacc1x0123 = vacc0x0123, vacc1x4567 = vacc0x4567;
    v128_t vacc2x0123 = vacc0x0123, vacc2x4567 = vacc0x4567;
    v128_t vacc3x0123 = vacc0x0123, vacc3x4567 = vacc0x4567;
    const float* ak = at;
    for (size_t k = 0; k < kc; k++, ak += at_stride) {
      const v128_t va = wasm_v128_load(ak);
      const v128_t vb0123 = wasm_v128_load(w), vb4567 = wasm_v128_load(w + 4);
      w += 8;
      const v128_t va0 = wasm_i32x4_shuffle(va, va, 0, 0, 0, 0);
      const v128_t va1 = wasm_i32x4_shuffle(va, va, 1, 1, 1, 1);
      const v128_t va2 = wasm_i32x4_shuffle(va, va, 2, 2, 2, 2);
      const v128_t va3 = wasm_i32x4_shuffle(va, va, 3, 3, 3, 3);
      vacc0x0123 = VADD(vacc0x0123, VMUL(va0, vb0123));
      vacc0x4567 = VADD(vacc0x4567, VMUL(va0, vb4567));
      vacc1x0123 = VADD(vacc1x0123, VMUL(va1, vb0123));
      vacc1x4567 = VADD(vacc1x4567, VMUL(va1, vb4567));
      vacc2x0123 = VADD(vacc2x0123, VMUL(va2, vb0123));
      vacc2x4567 = VADD(vacc2x4567, VMUL(va2, vb4567));
      vacc3x0123 = VADD(vacc3x0123, VMUL(va3, vb0123));
      vacc3x4567 = VADD(vacc3x4567, VMUL(va3, vb4567));
    }
    v128_t vacc[8] = {vacc0x0123, vacc0x4567, vacc1x0123, vacc1x4567,
                      vacc2x0123, vacc2x4567, vacc3x0123, vacc3x4567};
    float* cp[4] = {c0, c1, c2, c3};
#pragma clang loop unroll(full)
    for (size_t r = 0; r < 4; r++) {
      v128_t v0 = VCLAMP_HI(VCLAMP_LO(vacc[2 * r], vmin), vmax);
      const v128_t v1 = VCLAMP_HI(VCLAMP_LO(vacc[2 * r + 1], vmin), vmax);
      float* cr = cp[r];
      if (nc >= 8) {
        wasm_v128_store(cr, v0);
        wasm_v128_store(cr + 4, v1);
        continue;
      }
      if (nc & 4) {
        wasm_v128_store(cr, v0);
        v0 = v1;
        cr += 4;
      }
      if (nc & 2) {
        wasm_v128_store64_lane(cr, v0, 0);
        v0 = wasm_i64x2_shuffle(v0, v0, 1, 1);
        cr += 2;
      }
      if (nc & 1) wasm_v128_store32_lane(cr, v0, 0);
    }
    c0 += 8;
    c1 += 8;
    c2 += 8;
    c3 += 8;
    nc = nc >= 8 ? nc - 8 : 0;
  } while (nc != 0);
}

/* Weights of one block of panels are kept around this size (bytes) so that they stay in cache
 * while every row tile passes over them. */
#define GEMM_BLOCK_BYTES (96 * 1024)

/* c[m x n] (row stride ldc) = clamp(a[m x k] (row stride lda) . packed w, lo, hi). */
static void f32_gemm(size_t m, size_t n, size_t k, const float* a, size_t lda, const float* w, float* c,
                     size_t ldc, v128_t vmin, v128_t vmax) {
  if (m == 0 || n == 0) return;
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

/* c[m x n] = clamp(at^T . packed w) for a transposed A at[k][m] (row stride m), m % 4 == 0. */
static void f32_gemm_t(size_t m, size_t n, size_t k, const float* at, const float* w, float* c, size_t ldc,
                       v128_t vmin, v128_t vmax) {
  if (m == 0 || n == 0) return;
  const size_t panel = JSML_NR * (k + 1);
  size_t block_panels = GEMM_BLOCK_BYTES / (4 * panel);
  if (block_panels == 0) block_panels = 1;
  for (size_t n0 = 0; n0 < n; n0 += block_panels * JSML_NR) {
    const size_t nb = MIN(block_panels * JSML_NR, n - n0);
    const float* wb = w + (n0 / JSML_NR) * panel;
    for (size_t i = 0; i < m; i += 4) {
      f32_gemm_4x8t__wasmsimd_splat(nb, k, at + i, m, wb, c + i * ldc + n0, ldc, vmin, vmax);
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

/* Copy n floats from src to dst for each of `count` positions: dst advances by dst_stride, src by
 * src_stride (floats). */
JSML_INLINE void copy_runs(float* dst, size_t dst_stride, const float* src, size_t src_stride, size_t n,
                           size_t count) {
  if (n == 1) {
    for (size_t i = 0; i < count; i++, dst += dst_stride, src += src_stride) *(uint32_t*)dst = *(const uint32_t*)src;
  } else if (n % 4 == 0) {
    for (size_t i = 0; i < count; i++, dst += dst_stride, src += src_stride) {
      for (size_t j = 0; j < n; j += 4) wasm_v128_store(dst + j, wasm_v128_load(src + j));
    }
  } else {
    for (size_t i = 0; i < count; i++, dst += dst_stride, src += src_stride) {
      copy_words((uint32_t*)dst, (const uint32_t*)src, n);
    }
  }
}

JSML_INLINE void zero_runs(float* dst, size_t dst_stride, size_t n, size_t count) {
  if (n == 1) {
    for (size_t i = 0; i < count; i++, dst += dst_stride) *dst = 0.0f;
  } else {
    for (size_t i = 0; i < count; i++, dst += dst_stride) zero_floats(dst, n);
  }
}

/* im2col of one sample: row (oy, ox), column (ky, kx, c); zeros outside the input.
 *
 * For few channels (c < 4), one tap (ky, kx) at a time: the in-bounds range of ox is computed once
 * per tap and the inner loop is a plain strided copy of c floats. */
static void f32_im2col_taps(const float* x, float* s, int32_t in_h, int32_t in_w, int32_t in_c, int32_t k_h,
                            int32_t k_w, int32_t stride_h, int32_t stride_w, int32_t dil_h, int32_t dil_w,
                            int32_t pad_top, int32_t pad_left, int32_t out_h, int32_t out_w) {
  const size_t c = (size_t)in_c;
  const size_t kk = (size_t)k_h * (size_t)k_w * c;
  const size_t row_stride = (size_t)out_w * kk;
  for (int32_t ky = 0; ky < k_h; ky++) {
    for (int32_t kx = 0; kx < k_w; kx++) {
      float* s_tap = s + ((size_t)ky * (size_t)k_w + (size_t)kx) * c;
      /* in-bounds output columns: 0 <= ox*stride_w + dx < in_w */
      const int32_t dx = kx * dil_w - pad_left;
      int32_t ox0 = dx >= 0 ? 0 : (-dx + stride_w - 1) / stride_w;
      int32_t ox1 = in_w - 1 - dx >= 0 ? (in_w - 1 - dx) / stride_w + 1 : 0;
      if (ox0 > out_w) ox0 = out_w;
      if (ox1 > out_w) ox1 = out_w;
      if (ox1 < ox0) ox1 = ox0;
      for (int32_t oy = 0; oy < out_h; oy++) {
        float* srow = s_tap + (size_t)oy * row_stride;
        const int32_t iy = oy * stride_h - pad_top + ky * dil_h;
        if (iy < 0 || iy >= in_h) {
          zero_runs(srow, kk, c, (size_t)out_w);
          continue;
        }
        zero_runs(srow, kk, c, (size_t)ox0);
        const float* xp = x + ((size_t)iy * (size_t)in_w + (size_t)(ox0 * stride_w + dx)) * c;
        copy_runs(srow + (size_t)ox0 * kk, kk, xp, (size_t)stride_w * c, c, (size_t)(ox1 - ox0));
        zero_runs(srow + (size_t)ox1 * kk, kk, c, (size_t)(out_w - ox1));
      }
    }
  }
}

/* Transposed im2col of one sample: at[(ky, kx, c)][oy*out_w + ox], zeros outside the input. For
 * stride_w == 1 and c == 1 the in-bounds part of each output row is one contiguous run of x. */
static void f32_im2col_t(const float* x, float* at, int32_t in_h, int32_t in_w, int32_t in_c, int32_t k_h,
                         int32_t k_w, int32_t stride_h, int32_t stride_w, int32_t dil_h, int32_t dil_w,
                         int32_t pad_top, int32_t pad_left, int32_t out_h, int32_t out_w) {
  const size_t c = (size_t)in_c;
  const size_t rows = (size_t)out_h * (size_t)out_w;
  for (int32_t ky = 0; ky < k_h; ky++) {
    for (int32_t kx = 0; kx < k_w; kx++) {
      const int32_t dx = kx * dil_w - pad_left;
      int32_t ox0 = dx >= 0 ? 0 : (-dx + stride_w - 1) / stride_w;
      int32_t ox1 = in_w - 1 - dx >= 0 ? (in_w - 1 - dx) / stride_w + 1 : 0;
      if (ox0 > out_w) ox0 = out_w;
      if (ox1 > out_w) ox1 = out_w;
      if (ox1 < ox0) ox1 = ox0;
      for (size_t ci = 0; ci < c; ci++) {
        float* arow = at + (((size_t)ky * (size_t)k_w + (size_t)kx) * c + ci) * rows;
        for (int32_t oy = 0; oy < out_h; oy++, arow += out_w) {
          const int32_t iy = oy * stride_h - pad_top + ky * dil_h;
          if (iy < 0 || iy >= in_h) {
            zero_floats(arow, (size_t)out_w);
            continue;
          }
          zero_floats(arow, (size_t)ox0);
          const float* xp = x + ((size_t)iy * (size_t)in_w + (size_t)(ox0 * stride_w + dx)) * c + ci;
          if (stride_w == 1 && c == 1) {
            copy_words((uint32_t*)arow + ox0, (const uint32_t*)xp, (size_t)(ox1 - ox0));
          } else {
            const size_t step = (size_t)stride_w * c;
            for (int32_t ox = ox0; ox < ox1; ox++, xp += step) arow[ox] = *xp;
          }
          zero_floats(arow + ox1, (size_t)(out_w - ox1));
        }
      }
    }
  }
}

/* For more channels, one output pixel at a time: with dil_w == 1 the in-bounds kx of a kernel row
 * are one contiguous run of the input row. */
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
  const size_t in_size = (size_t)in_h * (size_t)in_w * (size_t)in_c;
  if (in_c < 4 && rows % 4 == 0) { /* few channels: transposed im2col, 4 output pixels per f32x4 */
    for (int32_t b = 0; b < batch; b++) {
      f32_im2col_t(F32(x) + (size_t)b * in_size, F32(scratch), in_h, in_w, in_c, k_h, k_w, stride_h, stride_w,
                   dil_h, dil_w, pad_top, pad_left, out_h, out_w);
      f32_gemm_t(rows, (size_t)out_c, kk, F32(scratch), F32(w), F32(y) + (size_t)b * rows * (size_t)out_c,
                 (size_t)out_c, vmin, vmax);
    }
    return 0;
  }
  for (int32_t b = 0; b < batch; b++) {
    (in_c < 4 ? f32_im2col_taps : f32_im2col_pixels)(F32(x) + (size_t)b * in_size, F32(scratch), in_h, in_w,
                                                      in_c, k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top,
                                                      pad_left, out_h, out_w);
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
                vacc = VADD(vacc, VMUL(vx, wasm_v128_load(wrow + (size_t)kx * cout)));
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

/* One output pixel of pool2d over the in-bounds window [y0, y1) x [x0, x1), channels j..j+lanes. */
JSML_INLINE void f32_pool_pixel(const float* xb, float* yp, size_t cc, int32_t in_w, int32_t y0, int32_t y1,
                                int32_t x0, int32_t x1, float count, int32_t mode, size_t lanes_all) {
  for (size_t j = 0; j < cc; j += 4) {
    const size_t lanes = lanes_all ? 4 : MIN((size_t)4, cc - j);
    if (mode == JSML_POOL_MAX) {
      v128_t vacc = VSPLAT(-__builtin_inff()), vnan = wasm_i32x4_splat(0);
      for (int32_t iy = y0; iy < y1; iy++) {
        const float* xrow = xb + (size_t)iy * (size_t)in_w * cc + j;
        for (int32_t ix = x0; ix < x1; ix++) {
          const v128_t vx = load_partial(xrow + (size_t)ix * cc, lanes);
          vacc = wasm_f32x4_pmax(vacc, vx); /* keeps acc where x is NaN: NaN is tracked apart */
          vnan = wasm_v128_or(vnan, wasm_f32x4_ne(vx, vx));
        }
      }
      store_partial(yp + j, wasm_v128_or(vacc, vnan), lanes); /* all-ones lanes are NaN */
    } else {
      v128_t vacc = VSPLAT(0.0f);
      for (int32_t iy = y0; iy < y1; iy++) {
        const float* xrow = xb + (size_t)iy * (size_t)in_w * cc + j;
        for (int32_t ix = x0; ix < x1; ix++) vacc = VADD(vacc, load_partial(xrow + (size_t)ix * cc, lanes));
      }
      store_partial(yp + j, VDIV(vacc, VSPLAT(count)), lanes); /* as TensorFlow; no window: 0/0 */
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
  const size_t cc = (size_t)c;
  float* yp = F32(y);
  for (int32_t b = 0; b < batch; b++) {
    const float* xb = F32(x) + (size_t)b * (size_t)in_h * (size_t)in_w * cc;
    for (int32_t oy = 0; oy < out_h; oy++) {
      int32_t y0 = oy * stride_h - pad_top, y1 = y0 + k_h;
      if (y0 < 0) y0 = 0;
      if (y1 > in_h) y1 = in_h;
      for (int32_t ox = 0; ox < out_w; ox++, yp += cc) {
        int32_t x0 = ox * stride_w - pad_left, x1 = x0 + k_w;
        if (x0 < 0) x0 = 0;
        if (x1 > in_w) x1 = in_w;
        const int32_t count = (y1 > y0 && x1 > x0) ? (y1 - y0) * (x1 - x0) : 0;
        if (cc % 4 == 0) {
          f32_pool_pixel(xb, yp, cc, in_w, y0, y1, x0, x1, (float)count, mode, 1);
        } else {
          f32_pool_pixel(xb, yp, cc, in_w, y0, y1, x0, x1, (float)count, mode, 0);
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
      VUNARY_LOOP(VSEL(vx, VMUL(va, f32x4_expm1_clamped(VCLAMP_HI(vx, vzero))), wasm_f32x4_gt(vx, vzero)))
      return 0;
    case JSML_UNARY_SELU: {
      const v128_t vscale = VSPLAT(1.0507009873554805f), valpha = VSPLAT(1.6732632423543772f);
      VUNARY_LOOP(VMUL(vscale, VSEL(vx, VMUL(valpha, f32x4_expm1_clamped(VCLAMP_HI(vx, vzero))),
                                    wasm_f32x4_gt(vx, vzero))))
      return 0;
    }
    case JSML_UNARY_SIGMOID:
      VUNARY_LOOP(f32x4_sigmoid(vx))
      return 0;
    case JSML_UNARY_HARD_SIGMOID:
      VUNARY_LOOP(VCLAMP_HI(VCLAMP_LO(VADD(VMUL(vx, VSPLAT(0.2f)), VSPLAT(0.5f)), vzero), vone))
      return 0;
    case JSML_UNARY_HARD_SIGMOID_K3:
      VUNARY_LOOP(VCLAMP_HI(VCLAMP_LO(VADD(VDIV(vx, VSPLAT(6.0f)), VSPLAT(0.5f)), vzero), vone))
      return 0;
    case JSML_UNARY_TANH:
      VUNARY_LOOP(f32x4_tanh(vx))
      return 0;
    case JSML_UNARY_SOFTPLUS:
      VUNARY_LOOP(f32x4_softplus(vx))
      return 0;
    case JSML_UNARY_SOFTSIGN:
      VUNARY_LOOP(VDIV(vx, VADD(vone, wasm_f32x4_abs(vx))))
      return 0;
    case JSML_UNARY_SWISH:
      VUNARY_LOOP(VMUL(vx, f32x4_sigmoid(vx)))
      return 0;
    case JSML_UNARY_GELU:
      VUNARY_LOOP(f32x4_gelu(vx))
      return 0;
    case JSML_UNARY_GELU_TANH: {
      /* 0.5 x (1 + tanh(u)) = x sigmoid(2u): no cancellation for x < 0 */
      const v128_t vc = VSPLAT(2.0f * 0.7978845608028654f), vc3 = VSPLAT(0.044715f);
      VUNARY_LOOP(VMUL(vx, f32x4_sigmoid(VMUL(vc, VADD(vx, VMUL(vc3, VMUL(vx, VMUL(vx, vx))))))))
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
#define SOFTMAX_SHORT_ROW 16

/* Softmax along contiguous rows (inner == 1). */
static void f32_softmax_rows(const float* x, float* y, size_t rows, size_t len, int32_t log) {
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
      const v128_t ve = f32x4_exp(VSUB(wasm_v128_load(x + i), vm));
      if (!log) wasm_v128_store(y + i, ve);
      vsum = VADD(vsum, ve);
    }
    if (i < len) {
      float e[4];
      wasm_v128_store(e, f32x4_exp(VSUB(load_partial(x + i, len - i), vm)));
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

/* Softmax of short contiguous rows, four rows at a time (lane l = row l): a classifier's output. */
static void f32_softmax_rows4(const float* x, float* y, size_t groups, size_t len, int32_t log) {
  v128_t v[SOFTMAX_SHORT_ROW];
  for (size_t r = 0; r < groups; r++, x += 4 * len, y += 4 * len) {
    v128_t vmax = VSPLAT(-__builtin_inff());
    for (size_t j = 0; j < len; j++) {
      v[j] = wasm_f32x4_make(x[j], x[len + j], x[2 * len + j], x[3 * len + j]);
      vmax = VMAX(vmax, v[j]);
    }
    v128_t vsum = VSPLAT(0.0f);
    for (size_t j = 0; j < len; j++) {
      v[j] = VSUB(v[j], vmax);
      const v128_t ve = f32x4_exp(v[j]);
      vsum = VADD(vsum, ve);
      if (!log) v[j] = ve;
    }
    const v128_t vls = log ? f32x4_log(vsum) : vsum;
    for (size_t j = 0; j < len; j++) {
      const v128_t vy = log ? VSUB(v[j], vls) : VDIV(v[j], vsum);
      y[j] = wasm_f32x4_extract_lane(vy, 0);
      y[len + j] = wasm_f32x4_extract_lane(vy, 1);
      y[2 * len + j] = wasm_f32x4_extract_lane(vy, 2);
      y[3 * len + j] = wasm_f32x4_extract_lane(vy, 3);
    }
  }
}

int32_t softmax(int32_t x, int32_t y, int32_t outer, int32_t axis_len, int32_t inner, int32_t log) {
  if (outer < 0 || axis_len < 0 || inner < 0) return STATUS_BAD_ARGUMENT;
  const size_t len = (size_t)axis_len, in = (size_t)inner;
  if (in == 1) {
    size_t done = 0;
    if (len <= SOFTMAX_SHORT_ROW) {
      done = (size_t)outer / 4 * 4;
      f32_softmax_rows4(F32(x), F32(y), done / 4, len, log);
    }
    f32_softmax_rows(F32(x) + done * len, F32(y) + done * len, (size_t)outer - done, len, log);
    return 0;
  }
  /* inner > 1: four columns of the [axis_len, inner] slab at a time */
  for (size_t o = 0; o < (size_t)outer; o++) {
    const float* xo = F32(x) + o * len * in;
    float* yo = F32(y) + o * len * in;
    for (size_t c = 0; c < in; c += 4) {
      const size_t lanes = MIN((size_t)4, in - c);
      v128_t vmax = VSPLAT(-__builtin_inff());
      for (size_t i = 0; i < len; i++) vmax = VMAX(vmax, load_partial(xo + i * in + c, lanes));
      v128_t vsum = VSPLAT(0.0f);
      for (size_t i = 0; i < len; i++) {
        const v128_t ve = f32x4_exp(VSUB(load_partial(xo + i * in + c, lanes), vmax));
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

JSML_INLINE v128_t f32x4_identity(v128_t vx) { return vx; }

JSML_INLINE v128_t f32x4_hard_sigmoid(v128_t vx) {
  return VCLAMP_HI(VCLAMP_LO(VADD(VMUL(vx, VSPLAT(0.2f)), VSPLAT(0.5f)), VSPLAT(0.0f)), VSPLAT(1.0f));
}

/* LSTM gates, fused: c = rec(f)*c + rec(i)*act(g); h = rec(o)*act(c) over n contiguous values. */
#define DEFINE_LSTM_GATES(NAME, REC, ACT)                                                              \
  static void NAME(const float* pi, const float* pf, const float* pg, const float* po, float* c, float* h, \
                   size_t n) {                                                                         \
    for (size_t i = 0; i < n; i += 4) {                                                                \
      const size_t lanes = MIN((size_t)4, n - i);                                                      \
      const v128_t vi = REC(load_partial(pi + i, lanes));                                              \
      const v128_t vf = REC(load_partial(pf + i, lanes));                                              \
      const v128_t vg = ACT(load_partial(pg + i, lanes));                                              \
      const v128_t vo = REC(load_partial(po + i, lanes));                                              \
      const v128_t vc = VADD(VMUL(vf, load_partial(c + i, lanes)), VMUL(vi, vg));                      \
      store_partial(c + i, vc, lanes);                                                                 \
      store_partial(h + i, VMUL(vo, ACT(vc)), lanes);                                                  \
    }                                                                                                  \
  }
DEFINE_LSTM_GATES(f32_lstm_gates_sigmoid_tanh, f32x4_sigmoid, f32x4_tanh)
DEFINE_LSTM_GATES(f32_lstm_gates_hard_sigmoid_tanh, f32x4_hard_sigmoid, f32x4_tanh)

/* GRU, first pass: z = rec(pz), r = rec(pr) in place; then reset before: t = r*h; reset after:
 * ph += r*t (t = h U_h + br_h). */
#define DEFINE_GRU_RESET(NAME, REC)                                                                    \
  static void NAME(float* pz, float* pr, float* ph, float* t, const float* h, size_t n, int reset_after) { \
    for (size_t i = 0; i < n; i += 4) {                                                                \
      const size_t lanes = MIN((size_t)4, n - i);                                                      \
      store_partial(pz + i, REC(load_partial(pz + i, lanes)), lanes);                                  \
      const v128_t vr = REC(load_partial(pr + i, lanes));                                              \
      if (reset_after) {                                                                               \
        store_partial(ph + i, VADD(load_partial(ph + i, lanes), VMUL(vr, load_partial(t + i, lanes))), lanes); \
      } else {                                                                                         \
        store_partial(t + i, VMUL(vr, load_partial(h + i, lanes)), lanes);                             \
      }                                                                                                \
    }                                                                                                  \
  }
DEFINE_GRU_RESET(f32_gru_reset_sigmoid, f32x4_sigmoid)
DEFINE_GRU_RESET(f32_gru_reset_hard_sigmoid, f32x4_hard_sigmoid)
DEFINE_GRU_RESET(f32_gru_reset_identity, f32x4_identity)

/* GRU, second pass: h = z*h + (1 - z)*act(ph). */
#define DEFINE_GRU_UPDATE(NAME, ACT)                                                                   \
  static void NAME(const float* pz, const float* ph, float* h, size_t n) {                             \
    const v128_t vone = VSPLAT(1.0f);                                                                  \
    for (size_t i = 0; i < n; i += 4) {                                                                \
      const size_t lanes = MIN((size_t)4, n - i);                                                      \
      const v128_t vz = load_partial(pz + i, lanes);                                                   \
      const v128_t vhh = ACT(load_partial(ph + i, lanes));                                             \
      store_partial(h + i, VADD(VMUL(vz, load_partial(h + i, lanes)), VMUL(VSUB(vone, vz), vhh)), lanes); \
    }                                                                                                  \
  }
DEFINE_GRU_UPDATE(f32_gru_update_tanh, f32x4_tanh)
DEFINE_GRU_UPDATE(f32_gru_update_identity, f32x4_identity)

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
