"""The kernel ABI: what the plan compiler emits and what both kernel sets implement.

Two kernel sets implement every kernel below with the same name, arguments and memory layout:

* ``kernels.wasm``: C with 128-bit WebAssembly SIMD (``jsengine_ml/compiled/wasm/``), for engines
  with WebAssembly (V8);
* ``kernels_es5.js``: ES5 over typed arrays, shaped for interpreters (QuickJS, Duktape), and the
  fallback wherever ``WebAssembly`` is missing.

Memory: one linear memory per model (a ``WebAssembly.Memory`` or an ``ArrayBuffer``). Every pointer
argument is a byte address into it, 16-byte aligned; every value is little-endian float32, except
token ids (int32). Every kernel returns an int32 status: 0 for success, otherwise a kernel-specific
code (see the kernel's doc) that the executor turns into an error. Arguments named ``f:...`` are
float32 (``lo``/``hi`` may be ±Infinity); all others are int32. Address 0 means "absent" for
optional pointers.

Packed dense weights (``pack_dense``): the output columns are cut into panels of ``NR`` (8)
columns; each panel holds its 8 bias values, then, for each of the ``k`` input rows, the 8 weights
of that row (XNNPACK's GOI-packed layout: bias first, then 8-wide panels). Columns past ``n`` are
zero. Size: ``ceil(n / 8) * 8 * (k + 1)`` floats.
"""

from __future__ import annotations

import math

import numpy as np

from .._types import Array

#: Output columns per packed panel.
NR = 8

#: Element-wise functions of ``unary`` (and of ``rnn``'s ``act`` / ``rec_act``), by code = index.
#: ``a`` and ``b`` are the kernel's float parameters.
UNARY = (
    "linear",  # y = x
    "relu",  # max(x, 0), NaN propagates
    "relu6",  # min(max(x, 0), 6)
    "elu",  # x > 0 ? x : a * (exp(x) - 1)
    "selu",  # 1.0507009873554805 * (x > 0 ? x : 1.6732632423543772 * (exp(x) - 1))
    "sigmoid",  # 1 / (1 + exp(-x))
    "hard_sigmoid",  # clamp(0.2 * x + 0.5, 0, 1): Keras 2 and tfjs
    "hard_sigmoid_k3",  # clamp(x / 6 + 0.5, 0, 1): Keras 3
    "tanh",
    "softplus",  # log(1 + exp(x)), computed without overflow
    "softsign",  # x / (1 + |x|)
    "swish",  # x * sigmoid(x) (Keras silu)
    "gelu",  # 0.5 * x * (1 + erf(x / sqrt(2)))
    "gelu_tanh",  # 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))) (tfjs gelu_new)
    "mish",  # x * tanh(softplus(x))
    "leaky_relu",  # x >= 0 ? x : a * x
    "relu_clip",  # min(x >= 0 ? x : a * x, b): Keras ReLU(max_value=b, negative_slope=a)
    "scale",  # a * x + b
    "thresholded_relu",  # x > a ? x : 0
)
UNARY_CODES = {name: code for code, name in enumerate(UNARY)}

#: ``binary`` operations by code.
BINARY = ("add", "sub", "mul", "max", "min")
BINARY_CODES = {name: code for code, name in enumerate(BINARY)}

#: ``pool2d`` / ``global_pool`` modes by code.
POOL = ("max", "avg")
POOL_CODES = {name: code for code, name in enumerate(POOL)}

#: ``rnn`` cells by code, and the number of gates of each.
CELLS = ("simple", "lstm", "gru")
CELL_CODES = {name: code for code, name in enumerate(CELLS)}
GATES = {"simple": 1, "lstm": 4, "gru": 3}

#: ``rnn`` flag bits.
RNN_RETURN_SEQUENCES = 1
RNN_GO_BACKWARDS = 2
RNN_RESET_AFTER = 4

#: Kernel name -> argument names. The doc of each kernel is in docs/compiled-runtime.md.
KERNELS: dict[str, tuple[str, ...]] = {
    "dense": ("x", "w", "y", "m", "k", "n", "f:lo", "f:hi"),
    "conv2d": (
        "x", "w", "y", "scratch", "batch", "in_h", "in_w", "in_c", "k_h", "k_w", "out_c",
        "stride_h", "stride_w", "dil_h", "dil_w", "pad_top", "pad_left", "out_h", "out_w", "f:lo", "f:hi",
    ),
    "depthwise2d": (
        "x", "w", "y", "batch", "in_h", "in_w", "in_c", "k_h", "k_w", "mult",
        "stride_h", "stride_w", "dil_h", "dil_w", "pad_top", "pad_left", "out_h", "out_w", "f:lo", "f:hi",
    ),
    "pool2d": (
        "x", "y", "batch", "in_h", "in_w", "c", "k_h", "k_w", "stride_h", "stride_w", "pad_top", "pad_left",
        "out_h", "out_w", "mode",
    ),
    "global_pool": ("x", "y", "batch", "s", "c", "mode"),
    "unary": ("x", "y", "count", "kind", "f:a", "f:b"),
    "softmax": ("x", "y", "outer", "axis_len", "inner", "log"),
    "prelu": ("x", "y", "alpha", "rows", "size"),
    "affine": ("x", "y", "scale", "shift", "outer", "c", "inner"),
    "layernorm": ("x", "y", "gamma", "beta", "rows", "size", "f:eps"),
    "binary": ("a", "b", "y", "count", "op"),
    "copy": ("src", "dst", "outer", "mid", "inner", "src_outer", "src_mid", "dst_outer", "dst_mid"),
    "permute": ("x", "y", "batch", "d0", "d1", "d2", "d3", "s0", "s1", "s2", "s3"),
    "embedding": ("ids", "table", "y", "count", "vocab", "dim"),
    "rnn": (
        "cell", "x", "wk", "wr", "y", "scratch", "batch", "steps", "in_dim", "units", "flags", "act", "rec_act",
    ),
}


def dense_packed_size(k: int, n: int) -> int:
    """Floats taken by :func:`pack_dense` of a (k, n) kernel."""
    return math.ceil(n / NR) * NR * (k + 1)


def pack_dense(kernel: Array, bias: Array | None = None) -> Array:
    """Pack a (k, n) kernel and its (n,) bias (zeros when None) into NR-column panels."""
    kernel = np.asarray(kernel, dtype=np.float32)
    k, n = kernel.shape
    panels = math.ceil(n / NR)
    padded = np.zeros((k + 1, panels * NR), dtype=np.float32)
    if bias is not None:
        padded[0, :n] = np.asarray(bias, dtype=np.float32).reshape(n)
    padded[1:, :n] = kernel
    # (k+1, panels, NR) -> (panels, k+1, NR): each panel is bias row then k weight rows.
    return np.ascontiguousarray(padded.reshape(k + 1, panels, NR).transpose(1, 0, 2)).reshape(-1)


def rnn_scratch_per_row(cell: str, steps: int, units: int) -> int:
    """Floats of ``rnn`` scratch per batch row: x·W for every step, h·U, h, c and r⊙h."""
    gates = GATES[cell]
    return steps * gates * units + gates * units + 3 * units


def header() -> str:
    """The C header (``wasm/abi.h``) of this ABI: codes and prototypes. Written by scripts/build_wasm.py."""
    lines = [
        "/* Generated from jsengine_ml/compiled/abi.py by scripts/build_wasm.py: do not edit. */",
        "#ifndef JSML_ABI_H",
        "#define JSML_ABI_H",
        "#include <stdint.h>",
        f"#define JSML_NR {NR}",
    ]
    for prefix, names in (("UNARY", UNARY), ("BINARY", BINARY), ("POOL", POOL), ("CELL", CELLS)):
        lines += [f"#define JSML_{prefix}_{name.upper()} {code}" for code, name in enumerate(names)]
    lines += [
        f"#define JSML_RNN_RETURN_SEQUENCES {RNN_RETURN_SEQUENCES}",
        f"#define JSML_RNN_GO_BACKWARDS {RNN_GO_BACKWARDS}",
        f"#define JSML_RNN_RESET_AFTER {RNN_RESET_AFTER}",
    ]
    for name, args in KERNELS.items():
        params = ", ".join(f"float {a[2:]}" if a.startswith("f:") else f"int32_t {a}" for a in args)
        lines.append(f'__attribute__((export_name("{name}"))) int32_t {name}({params});')
    lines.append("#endif")
    return "\n".join(lines) + "\n"
