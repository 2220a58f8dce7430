"""Typed arrays in and out: put_array/get_array/transform, bit for bit, and what is refused."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ..._types import Array
from ...engine import Engine
from ...errors import (
    InputError,
    JSError,
)
from .fixtures import IDENTITY, EngineFixtures, assert_usable

#: float32 bit patterns that must survive every transfer unchanged.
SPECIAL_FLOAT32_BITS = {
    "+0": 0x00000000,
    "-0": 0x80000000,
    "+inf": 0x7F800000,
    "-inf": 0xFF800000,
    "smallest subnormal": 0x00000001,
    "largest subnormal": 0x007FFFFF,
    "smallest normal": 0x00800000,
    "float32 max": 0x7F7FFFFF,
    "float32 min (lowest)": 0xFF7FFFFF,
    "one": 0x3F800000,
    "minus one third": 0xBEAAAAAB,
}
#: NaNs: quiet, quiet with payload, signalling, negative quiet, signalling with all payload bits.
#: Measured on v8, quickjs and duktape: payloads and the sign were preserved bit for bit through
#: put_array/get_array and transform(identity) (the data path copies bytes, never numbers); the
#: suite only requires isnan, since IEEE 754 lets a number round trip canonicalize a NaN.
NAN_BITS = [0x7FC00000, 0x7FC00001, 0x7F800001, 0xFFC00000, 0x7FBFFFFF]


def _bits(array: Array) -> Array:
    return np.ascontiguousarray(array, dtype=np.float32).view(np.uint32)


def _special_float32() -> Array:
    rng = np.random.default_rng(1234)
    random_bits = rng.integers(0, 2**32, size=200, dtype=np.uint64).astype(np.uint32)
    random_values = random_bits.view(np.float32)
    random_values = random_values[~np.isnan(random_values)]
    bits = np.array(list(SPECIAL_FLOAT32_BITS.values()) + NAN_BITS, dtype=np.uint32)
    return np.concatenate([bits.view(np.float32), random_values])


def _assert_float32_identical(got: Array, want: Array) -> None:
    assert got.dtype == np.float32, got.dtype
    assert got.shape == want.shape, (got.shape, want.shape)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan), "NaN positions differ"
    differ = np.nonzero(_bits(got)[~nan] != _bits(want)[~nan])[0]
    assert differ.size == 0, (
        f"{differ.size} values changed bits, e.g. {want[~nan][differ[:5]]} -> {got[~nan][differ[:5]]}"
    )


class ArrayTests(EngineFixtures):
    """Typed arrays in and out: put_array/get_array/transform, bit for bit, and what is refused."""

    # ================================================================== arrays
    def test_float32_special_values_bit_exact_through_put_and_get_array(self, engine: Engine) -> None:
        values = _special_float32()
        engine.put_array("specials", values)
        _assert_float32_identical(engine.get_array("specials"), values)
        engine.put_array("specials2d", values[:-1].reshape(-1, 1) if values.size % 2 else values.reshape(-1, 2))
        want = values[:-1].reshape(-1, 1) if values.size % 2 else values.reshape(-1, 2)
        got = engine.get_array("{data: specials2d, shape: __jsml.io.shapes.specials2d}")
        _assert_float32_identical(got, want)

    def test_float32_special_values_bit_exact_through_transform(self, engine: Engine) -> None:
        values = _special_float32()
        _assert_float32_identical(engine.transform(f"({IDENTITY})", values), values)
        rows = np.resize(values, (values.size // 13 + 1) * 13).reshape(-1, 13)
        _assert_float32_identical(engine.transform(f"({IDENTITY})", rows), rows)

    def test_values_written_in_js_come_back_bit_exact(self, engine: Engine) -> None:
        got = engine.get_array(
            "new Float32Array([0, -0, Infinity, -Infinity, 1.401298464324817e-45, 3.4028234663852886e38,"
            " -3.4028234663852886e38, 1.1754942106924411e-38])"
        )
        want = np.array([0, -0.0, np.inf, -np.inf, 1.401298464324817e-45, 3.4028234663852886e38,
                         -3.4028234663852886e38, 1.1754942106924411e-38], dtype=np.float32)
        _assert_float32_identical(got, want)
        assert np.isnan(engine.get_array("new Float32Array([NaN])")).all()

    @pytest.mark.parametrize("shape", [(0, 13), (1, 13), (10_000, 13), (1_000_000, 3)],
                             ids=["0x13", "1x13", "10000x13", "1000000x3"])
    def test_float32_shapes_round_trip(self, engine: Engine, shape: tuple[int, int]) -> None:
        rng = np.random.default_rng(7)
        x = rng.standard_normal(shape).astype(np.float32)
        _assert_float32_identical(engine.transform(f"({IDENTITY})", x), x)
        engine.put_array("batch", x)
        _assert_float32_identical(engine.get_array("{data: batch, shape: __jsml.io.shapes.batch}"), x)
        assert engine.eval("batch.length") == x.size

    def test_int32_round_trip_including_extremes(self, engine: Engine) -> None:
        info = np.iinfo(np.int32)
        x = np.array([info.min, info.min + 1, -1, 0, 1, info.max - 1, info.max], dtype=np.int32)
        engine.put_array("ints", x)
        got = engine.get_array("ints")
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, x)
        assert engine.eval("ints[0] === -2147483648 && ints[6] === 2147483647")
        got = engine.transform(f"({IDENTITY})", x.reshape(7, 1))
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, x.reshape(7, 1))

    def test_uint8_round_trip(self, engine: Engine) -> None:
        x = np.arange(256, dtype=np.uint8)
        engine.put_array("bytes", x)
        got = engine.get_array("bytes")
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, x)
        np.testing.assert_array_equal(engine.transform(f"({IDENTITY})", x.reshape(16, 16)), x.reshape(16, 16))

    def test_nested_python_lists_are_converted(self, engine: Engine) -> None:
        """Nested lists of floats become float32 and of ints int32 (float64 ndarrays are refused)."""
        got = engine.transform(f"({IDENTITY})", [[0.5, 1.5], [2.5, -3.25]])
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, np.array([[0.5, 1.5], [2.5, -3.25]], np.float32))
        got = engine.transform(f"({IDENTITY})", [[1, 2], [3, 4]])
        assert got.dtype == np.int32
        assert engine.get_array("[[1, 2], [3, 4]]").tolist() == [[1, 2], [3, 4]]

    @pytest.mark.parametrize(("value", "mentions"), [
        (np.zeros((2, 3), dtype=np.float64), "astype"),
        (np.zeros(3, dtype=np.complex64), "complex64"),
        (np.array(["a", "b"]), "dtype"),
        (np.array([1, "a", None], dtype=object), "object"),
        ([[1.0, 2.0], [3.0]], "ragged"),
        (np.float32(1.5), "dimensions"),
        (np.zeros((1, 1, 1, 1, 1, 1), dtype=np.float32), "dimensions"),
    ], ids=["float64-ndarray", "complex", "strings", "object-dtype", "ragged-lists", "0-d-scalar", "6-dims"])
    def test_bad_input_is_refused_with_input_error(self, engine: Engine, value: Any, mentions: str) -> None:
        for use in (lambda: engine.put_array("bad", value), lambda: engine.transform(f"({IDENTITY})", value)):
            with pytest.raises(InputError) as info:
                use()
            assert mentions in str(info.value)
            assert "float32" in str(info.value) or "rectangular" in str(info.value) or "1 to" in str(info.value)
        assert engine.eval("typeof bad") == "undefined"
        assert_usable(engine)

    def test_ragged_js_result_raises_js_error(self, engine: Engine) -> None:
        with pytest.raises(JSError) as info:
            engine.transform("(function () { return [[1, 2], [3]]; })", np.zeros((2, 2), np.float32))
        assert info.value.js_name == "RangeError"
        assert "ragged" in info.value.js_message
        with pytest.raises(JSError):
            engine.get_array("[[1, 2], [3]]")
        assert_usable(engine)
        np.testing.assert_array_equal(engine.transform(f"({IDENTITY})", np.ones(3, np.float32)), np.ones(3))

