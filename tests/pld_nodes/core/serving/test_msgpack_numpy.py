"""msgpack-numpy: round trips (property-based), the exact openpi wire layout, and rejection of
unsafe input. Byte-level compatibility with the official package runs in the peer venv."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pld_nodes.core.serving.msgpack_numpy import MsgpackNumpyError, packb, unpackb

DTYPES = ["u1", "i4", "i8", "f2", "f4", "f8", "?", ">f4", "<u2"]


def assert_same(a: Any, b: Any) -> None:
    """Deep equality that also checks array dtype/shape and numpy scalar types."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray)
        assert (a.dtype, a.shape) == (b.dtype, b.shape)
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, np.generic):
        assert type(b) is type(a) and (a == b or (a != a and b != b))
    else:
        assert a == b or (a != a and b != b)


arrays = st.sampled_from(DTYPES).flatmap(
    lambda dt: hnp.arrays(np.dtype(dt), hnp.array_shapes(min_dims=0, max_dims=4, max_side=5))
)
scalars = st.one_of(
    st.floats(width=32).map(np.float32),
    st.integers(-(2**63), 2**63 - 1).map(np.int64),
    st.integers(0, 255).map(np.uint8),
    st.booleans().map(np.bool_),
)
leaves = st.one_of(
    arrays, scalars, st.text(max_size=8), st.integers(-(2**63), 2**63 - 1), st.floats(), st.none()
)
trees = st.recursive(
    leaves,
    lambda children: (
        st.dictionaries(st.text(max_size=8), children, max_size=4) | st.lists(children, max_size=3)
    ),
    max_leaves=12,
)


@given(arrays)
def test_array_round_trip_keeps_dtype_shape_values(arr: np.ndarray) -> None:
    out = unpackb(packb(arr))
    assert_same(arr, out)


@given(st.sampled_from(["f4", "u1", "i8"]).flatmap(lambda dt: hnp.arrays(dt, (4, 6))))
def test_non_contiguous_views_round_trip(arr: np.ndarray) -> None:
    for view in (arr.T, arr[::2, 1::3], np.asfortranarray(arr)):
        assert_same(np.ascontiguousarray(view), unpackb(packb(view)))


@given(scalars)
def test_numpy_scalar_round_trip_keeps_type(value: np.generic) -> None:
    assert_same(value, unpackb(packb(value)))


@settings(max_examples=150)
@given(trees)
def test_nested_tree_round_trip(tree: Any) -> None:
    assert_same(tree, unpackb(packb(tree)))


@given(
    hnp.arrays(np.uint8, st.tuples(st.integers(1, 64), st.integers(1, 64), st.just(3))),
    hnp.arrays(np.float32, (16,), elements=st.floats(-10, 10, width=32)),
    st.text(max_size=40),
)
def test_openpi_style_observation_round_trip(
    image: np.ndarray, state: np.ndarray, prompt: str
) -> None:
    obs = {"observation/image": image, "observation/state": state, "prompt": prompt}
    assert_same(obs, unpackb(packb(obs)))


def test_float64_and_str_scalars_travel_as_python_types() -> None:
    """msgpack packs subclasses of float/str natively; openpi behaves the same."""
    out = unpackb(packb({"f": np.float64(1.5), "s": np.str_("hi")}))
    assert type(out["f"]) is float and type(out["s"]) is str


def test_wire_layout_matches_openpi() -> None:
    """Bytes keys and dtype.str exactly as openpi_client.msgpack_numpy writes them."""
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    expected = msgpack.packb(
        {b"__ndarray__": True, b"data": arr.tobytes(), b"dtype": "<f4", b"shape": (2, 3)}
    )
    assert packb(arr) == expected
    scalar = msgpack.packb({b"__npgeneric__": True, b"data": 7, b"dtype": "|u1"})
    assert packb(np.uint8(7)) == scalar
    assert type(unpackb(scalar)) is np.uint8


def test_unpacked_arrays_are_read_only() -> None:
    out = unpackb(packb(np.zeros(3)))
    assert not out.flags.writeable


@pytest.mark.parametrize(
    "value",
    [np.array([object()], dtype=object), np.zeros(2, dtype=complex), np.complex64(1j), object()],
    ids=["object-array", "complex-array", "complex-scalar", "python-object"],
)
def test_pack_refuses_unsafe_or_unknown(value: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        packb(value)


@pytest.mark.parametrize(
    "payload",
    [
        {b"__ndarray__": True, b"data": b"\0" * 8, b"dtype": "|O", b"shape": [1]},
        {b"__ndarray__": True, b"data": b"\0" * 8, b"dtype": "<c8", b"shape": [1]},
        {b"__ndarray__": True, b"data": b"\0" * 7, b"dtype": "<f8", b"shape": [1]},
        {b"__ndarray__": True, b"data": b"\0" * 16, b"dtype": "<f8", b"shape": [1]},
        {b"__ndarray__": True, b"data": b"", b"dtype": "<f8", b"shape": [-1]},
        {b"__ndarray__": True, b"data": b"", b"dtype": "not-a-dtype", b"shape": [0]},
        {b"__npgeneric__": True, b"data": "x", b"dtype": "<f8"},
    ],
    ids=["object", "complex", "short", "long", "negative-shape", "bad-dtype", "bad-scalar"],
)
def test_unpack_refuses_malformed_arrays(payload: dict[bytes, Any]) -> None:
    with pytest.raises(MsgpackNumpyError):
        unpackb(msgpack.packb(payload))


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x92\x01", b"\x81\xa1a\x01\xff"])
def test_unpack_refuses_garbage(data: bytes) -> None:
    with pytest.raises(MsgpackNumpyError):
        unpackb(data)


def wire_sample() -> dict[str, Any]:
    return {
        "observation/image": np.arange(60, dtype=np.uint8).reshape(4, 5, 3),
        "observation/state": np.linspace(-1, 1, 8),
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
        "i64": np.array([-(2**40), 0, 3], dtype=np.int64),
        "flags": np.array([True, False]),
        "big_endian": np.arange(3, dtype=">f4"),
        "f16": np.array([0.5, -2.0], dtype=np.float16),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "scalars": {
            "f32": np.float32(1.25),
            "i64": np.int64(-3),
            "u8": np.uint8(7),
            "b": np.bool_(True),
            "f64": np.float64(2.5),
        },
        "prompt": "pick up the cube",
        "nested": {"list": [1, 2.0, "x", None]},
    }


def test_official_openpi_msgpack_reads_and_writes_identical_bytes(
    run_peer: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    """Ours -> openpi unpack -> openpi pack gives byte-identical frames; we read them back."""
    sample = wire_sample()
    src, dst = tmp_path / "ours.bin", tmp_path / "theirs.bin"
    src.write_bytes(packb(sample))
    summary = json.loads(run_peer("echo", str(src), str(dst)).stdout)
    assert summary["observation/image"] == "ndarray |u1 [4, 5, 3]"
    assert summary["big_endian"] == "ndarray >f4 [3]"
    assert summary["scalars"] == {
        "f32": "float32",
        "i64": "int64",
        "u8": "uint8",
        "b": "bool_",
        "f64": "float",
    }
    assert dst.read_bytes() == src.read_bytes()
    expected = {**sample, "scalars": {**sample["scalars"], "f64": 2.5}}
    assert_same(expected, unpackb(dst.read_bytes()))
