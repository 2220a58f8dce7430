/* Generated from jsengine_ml/compiled/abi.py by scripts/build_wasm.py: do not edit. */
#ifndef JSML_ABI_H
#define JSML_ABI_H
#include <stdint.h>
#define JSML_NR 8
#define JSML_UNARY_LINEAR 0
#define JSML_UNARY_RELU 1
#define JSML_UNARY_RELU6 2
#define JSML_UNARY_ELU 3
#define JSML_UNARY_SELU 4
#define JSML_UNARY_SIGMOID 5
#define JSML_UNARY_HARD_SIGMOID 6
#define JSML_UNARY_HARD_SIGMOID_K3 7
#define JSML_UNARY_TANH 8
#define JSML_UNARY_SOFTPLUS 9
#define JSML_UNARY_SOFTSIGN 10
#define JSML_UNARY_SWISH 11
#define JSML_UNARY_GELU 12
#define JSML_UNARY_GELU_TANH 13
#define JSML_UNARY_MISH 14
#define JSML_UNARY_LEAKY_RELU 15
#define JSML_UNARY_RELU_CLIP 16
#define JSML_UNARY_SCALE 17
#define JSML_UNARY_THRESHOLDED_RELU 18
#define JSML_BINARY_ADD 0
#define JSML_BINARY_SUB 1
#define JSML_BINARY_MUL 2
#define JSML_BINARY_MAX 3
#define JSML_BINARY_MIN 4
#define JSML_POOL_MAX 0
#define JSML_POOL_AVG 1
#define JSML_CELL_SIMPLE 0
#define JSML_CELL_LSTM 1
#define JSML_CELL_GRU 2
#define JSML_RNN_RETURN_SEQUENCES 1
#define JSML_RNN_GO_BACKWARDS 2
#define JSML_RNN_RESET_AFTER 4
__attribute__((export_name("dense"))) int32_t dense(int32_t x, int32_t w, int32_t y, int32_t m, int32_t k, int32_t n, float lo, float hi);
__attribute__((export_name("conv2d"))) int32_t conv2d(int32_t x, int32_t w, int32_t y, int32_t scratch, int32_t batch, int32_t in_h, int32_t in_w, int32_t in_c, int32_t k_h, int32_t k_w, int32_t out_c, int32_t stride_h, int32_t stride_w, int32_t dil_h, int32_t dil_w, int32_t pad_top, int32_t pad_left, int32_t out_h, int32_t out_w, float lo, float hi);
__attribute__((export_name("depthwise2d"))) int32_t depthwise2d(int32_t x, int32_t w, int32_t y, int32_t batch, int32_t in_h, int32_t in_w, int32_t in_c, int32_t k_h, int32_t k_w, int32_t mult, int32_t stride_h, int32_t stride_w, int32_t dil_h, int32_t dil_w, int32_t pad_top, int32_t pad_left, int32_t out_h, int32_t out_w, float lo, float hi);
__attribute__((export_name("pool2d"))) int32_t pool2d(int32_t x, int32_t y, int32_t batch, int32_t in_h, int32_t in_w, int32_t c, int32_t k_h, int32_t k_w, int32_t stride_h, int32_t stride_w, int32_t pad_top, int32_t pad_left, int32_t out_h, int32_t out_w, int32_t mode);
__attribute__((export_name("global_pool"))) int32_t global_pool(int32_t x, int32_t y, int32_t batch, int32_t s, int32_t c, int32_t mode);
__attribute__((export_name("unary"))) int32_t unary(int32_t x, int32_t y, int32_t count, int32_t kind, float a, float b);
__attribute__((export_name("softmax"))) int32_t softmax(int32_t x, int32_t y, int32_t outer, int32_t axis_len, int32_t inner, int32_t log);
__attribute__((export_name("prelu"))) int32_t prelu(int32_t x, int32_t y, int32_t alpha, int32_t rows, int32_t size);
__attribute__((export_name("affine"))) int32_t affine(int32_t x, int32_t y, int32_t scale, int32_t shift, int32_t outer, int32_t c, int32_t inner);
__attribute__((export_name("layernorm"))) int32_t layernorm(int32_t x, int32_t y, int32_t gamma, int32_t beta, int32_t rows, int32_t size, float eps);
__attribute__((export_name("binary"))) int32_t binary(int32_t a, int32_t b, int32_t y, int32_t count, int32_t op);
__attribute__((export_name("copy"))) int32_t copy(int32_t src, int32_t dst, int32_t outer, int32_t mid, int32_t inner, int32_t src_outer, int32_t src_mid, int32_t dst_outer, int32_t dst_mid);
__attribute__((export_name("permute"))) int32_t permute(int32_t x, int32_t y, int32_t batch, int32_t d0, int32_t d1, int32_t d2, int32_t d3, int32_t s0, int32_t s1, int32_t s2, int32_t s3);
__attribute__((export_name("embedding"))) int32_t embedding(int32_t ids, int32_t table, int32_t y, int32_t count, int32_t vocab, int32_t dim);
__attribute__((export_name("rnn"))) int32_t rnn(int32_t cell, int32_t x, int32_t wk, int32_t wr, int32_t y, int32_t scratch, int32_t batch, int32_t steps, int32_t in_dim, int32_t units, int32_t flags, int32_t act, int32_t rec_act);
#endif
