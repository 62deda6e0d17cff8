"""msgpack with numpy arrays, wire-compatible with ``openpi_client.msgpack_numpy``.

openpi servers and clients exchange nested dicts of numpy arrays as msgpack. Arrays and numpy
scalars travel as small maps with *bytes* keys so both sides can rebuild them without pickle:

* ``np.ndarray`` -> ``{b"__ndarray__": True, b"data": <raw C-order bytes>, b"dtype": dtype.str,
  b"shape": [dims]}``
* ``np.generic`` -> ``{b"__npgeneric__": True, b"data": scalar.item(), b"dtype": dtype.str}``

numpy scalars that subclass Python types (``np.float64``, ``np.str_``, ``np.bytes_``) are packed
by msgpack natively and come back as plain ``float``/``str``/``bytes`` — the same as openpi.
Object, void and complex dtypes are refused in both directions (openpi refuses them when
packing; we also refuse them when unpacking because an object array built from raw bytes would
be a memory-safety hole). Unpacked arrays are read-only views of the received message.
"""

from __future__ import annotations

import math
from typing import Any

import msgpack
import numpy as np

_NDARRAY = b"__ndarray__"
_NPGENERIC = b"__npgeneric__"
_UNSUPPORTED_KINDS = frozenset("VOc")


class MsgpackNumpyError(ValueError):
    """A message that is not valid openpi msgpack-numpy (bad dtype, shape or buffer size)."""


def _check_dtype(dtype: np.dtype) -> None:
    if dtype.kind in _UNSUPPORTED_KINDS or dtype.hasobject:
        raise MsgpackNumpyError(f"unsupported dtype {dtype.str!r} (kind {dtype.kind!r})")


def _encode(obj: Any) -> Any:
    """msgpack ``default`` hook: called only for objects msgpack cannot pack itself."""
    if isinstance(obj, np.ndarray):
        _check_dtype(obj.dtype)
        return {
            _NDARRAY: True,
            b"data": obj.tobytes(),
            b"dtype": obj.dtype.str,
            b"shape": obj.shape,
        }
    if isinstance(obj, np.generic):
        _check_dtype(obj.dtype)
        return {_NPGENERIC: True, b"data": obj.item(), b"dtype": obj.dtype.str}
    raise TypeError(f"cannot serialize {type(obj).__name__!r} to msgpack")


def _parse_dtype(raw: Any) -> np.dtype:
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", errors="replace")
    if not isinstance(raw, str):
        raise MsgpackNumpyError(f"dtype must be a string, got {type(raw).__name__}")
    try:
        dtype = np.dtype(raw)
    except TypeError as exc:
        raise MsgpackNumpyError(f"invalid dtype {raw!r}") from exc
    _check_dtype(dtype)
    return dtype


def _decode_ndarray(obj: dict[Any, Any]) -> np.ndarray:
    dtype = _parse_dtype(obj.get(b"dtype"))
    shape = obj.get(b"shape")
    data = obj.get(b"data")
    if not isinstance(shape, list | tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise MsgpackNumpyError(f"array shape must be a list of ints >= 0, got {shape!r}")
    if not isinstance(data, bytes):
        raise MsgpackNumpyError(f"array data must be bytes, got {type(data).__name__}")
    expected = math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise MsgpackNumpyError(
            f"array data has {len(data)} bytes, {dtype.str}{tuple(shape)} needs {expected}"
        )
    return np.ndarray(buffer=data, dtype=dtype, shape=tuple(shape))


def _decode(obj: dict[Any, Any]) -> Any:
    """msgpack ``object_hook``: rebuild arrays/scalars, pass other maps through."""
    if _NDARRAY in obj:
        return _decode_ndarray(obj)
    if _NPGENERIC in obj:
        dtype = _parse_dtype(obj.get(b"dtype"))
        try:
            return dtype.type(obj.get(b"data"))
        except (TypeError, ValueError, OverflowError) as exc:
            raise MsgpackNumpyError(f"invalid {dtype.str} scalar {obj.get(b'data')!r}") from exc
    return obj


def packb(obj: Any) -> bytes:
    """Serialize ``obj`` (dicts/lists/str/numbers/numpy arrays and scalars) to msgpack bytes."""
    return msgpack.packb(obj, default=_encode)


def unpackb(data: bytes) -> Any:
    """Deserialize msgpack bytes; raises :class:`MsgpackNumpyError` on any malformed input."""
    try:
        return msgpack.unpackb(data, object_hook=_decode)
    except MsgpackNumpyError:
        raise
    except Exception as exc:  # msgpack raises several exception types on garbage input
        raise MsgpackNumpyError(f"not a valid msgpack message: {exc!r}") from exc
