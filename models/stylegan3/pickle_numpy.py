"""numpy values in a network pickle, rebuilt from checked (shape, plain numeric dtype, bytes), never by numpy itself.

numpy writes (numpy 1.x and 2.x alike; only the module is renamed, `numpy.core` → `numpy._core`):
- a dtype as `numpy.dtype(code, False, True)` then BUILD `(3, byteorder, None, None, None, -1, -1, 0)`;
- an array as `multiarray._reconstruct(numpy.ndarray, (0,), b'b')` then BUILD `(1, shape, dtype, is_fortran, data)`;
- a scalar (np.float64, np.bool_...) as `multiarray.scalar(dtype, data)`;
- with protocol 5, an array as `numeric._frombuffer(data, dtype, shape, order)`.
Here each of those yields an internal placeholder or a fresh numpy value made from bytes already read: the dtype code
must be in `CODES`, the state must be exactly the plain form above (no fields, subarrays, metadata or object
lists), and the byte count must equal shape × itemsize before anything is allocated.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from models.stylegan3.errors import UnsafePickleError
from models.stylegan3.pickle_vm import Budget, Global, Internal

# Plain numeric types only: no object ('O'), void/structured, string or datetime types.
CODES = frozenset({"b1", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8"})
MAX_NDIM = 8
_MAX_SIDE = 1 << 40


def _exactly(value: Any, expected: Any) -> bool:
    """`value == expected` without running a comparison a value from the file could define."""
    return type(value) is type(expected) and value == expected


class DtypeSpec(Internal):
    """`numpy.dtype(code, ...)` before and after its BUILD; usable only once built."""

    __slots__ = ("code", "dtype")

    def __init__(self, code: str) -> None:
        self.code, self.dtype = code, None

    def describe(self) -> str:
        return f"numpy dtype {self.code!r}"

    def build(self, state: Any) -> DtypeSpec:
        if self.dtype is not None:
            raise UnsafePickleError("a numpy dtype's state can be set once")
        plain = (None, None, None, -1, -1, 0)
        if not (
            type(state) is tuple
            and len(state) == 8
            and _exactly(state[0], 3)
            and type(state[1]) is str
            and state[1] in ("<", ">", "|", "=")
            and all(v is None if p is None else _exactly(v, p) for v, p in zip(state[2:], plain, strict=True))
        ):
            raise UnsafePickleError("refused numpy dtype state: only plain numeric dtypes are allowed")
        self.dtype = np.dtype(self.code).newbyteorder(state[1])
        return self

    def value(self) -> np.dtype[Any]:
        if self.dtype is None:
            raise UnsafePickleError("numpy dtype used before its state was set")
        return self.dtype


def _dtype(args: tuple[Any, ...]) -> DtypeSpec:
    if not (len(args) == 3 and type(args[0]) is str and type(args[1]) is bool and type(args[2]) is bool):
        raise UnsafePickleError("refused numpy.dtype call")
    if args[0] not in CODES:
        raise UnsafePickleError(f"refused numpy dtype {args[0][:20]!r}: only plain numeric types are allowed")
    return DtypeSpec(args[0])


def make_array(budget: Budget, data: Any, spec: Any, shape: Any, order: str) -> np.ndarray[Any, Any]:
    """A fresh, writable, native-order array from `data`, after checking everything against everything."""
    if not isinstance(spec, DtypeSpec):
        raise UnsafePickleError("numpy array without a plain dtype")
    dtype = spec.value()
    if not (
        type(shape) is tuple and len(shape) <= MAX_NDIM and all(type(s) is int and 0 <= s <= _MAX_SIDE for s in shape)
    ):
        raise UnsafePickleError("refused numpy array shape")
    if type(data) not in (bytes, bytearray):
        raise UnsafePickleError("refused numpy array: its data must be raw bytes")
    count = math.prod(shape)
    if count * dtype.itemsize != len(data):
        raise UnsafePickleError(
            f"refused numpy array: shape {shape} of {dtype} needs {count * dtype.itemsize} bytes, has {len(data)}"
        )
    _check_bools(dtype, data)
    budget.take_bytes(len(data), "numpy array")
    native = dtype.newbyteorder("=")
    if count == 0:
        return np.zeros(shape, native)
    flat = np.frombuffer(data, dtype=dtype)
    return np.array(flat.reshape(shape, order=order), dtype=native, copy=True)  # type: ignore[call-overload]


def _check_bools(dtype: np.dtype[Any], data: bytes | bytearray) -> None:
    # numpy assumes a bool byte is 0 or 1; other values are undefined behaviour in some of its kernels.
    if dtype.kind == "b" and bytes(data).translate(None, b"\x00\x01"):
        raise UnsafePickleError("refused numpy bool data: bytes other than 0 and 1")


class ArraySkeleton(Internal):
    """What `_reconstruct(ndarray, (0,), b'b')` stands for until its BUILD gives shape, dtype and bytes."""

    __slots__ = ("array", "budget", "memo_keys")

    def __init__(self, budget: Budget) -> None:
        self.budget, self.array, self.memo_keys = budget, None, []

    def describe(self) -> str:
        return "numpy array without its state"

    def build(self, state: Any) -> np.ndarray[Any, Any]:
        if self.array is not None:
            raise UnsafePickleError("a numpy array's state can be set once")
        if type(state) is tuple and len(state) == 5 and _exactly(state[0], 1):
            state = state[1:]
        if not (type(state) is tuple and len(state) == 4 and type(state[2]) is bool):
            raise UnsafePickleError("refused numpy array state")
        shape, spec, fortran, data = state
        self.array = make_array(self.budget, data, spec, shape, "F" if fortran else "C")
        return self.array


def globals_for(budget: Budget) -> dict[tuple[str, str], Global]:
    ndarray = Global("numpy", "ndarray")  # an argument of _reconstruct only: never callable

    def reconstruct(args: tuple[Any, ...]) -> ArraySkeleton:
        if not (
            len(args) == 3
            and args[0] is ndarray
            and type(args[1]) is tuple
            and len(args[1]) == 1
            and _exactly(args[1][0], 0)
            and type(args[2]) in (bytes, str)
            and args[2] in (b"b", "b")
        ):
            raise UnsafePickleError("refused numpy _reconstruct: only a plain ndarray skeleton is allowed")
        return ArraySkeleton(budget)

    def scalar(args: tuple[Any, ...]) -> Any:
        if len(args) != 2 or not isinstance(args[0], DtypeSpec) or type(args[1]) is not bytes:
            raise UnsafePickleError("refused numpy scalar")
        dtype = args[0].value()
        if len(args[1]) != dtype.itemsize:
            raise UnsafePickleError(f"refused numpy scalar: {len(args[1])} bytes for a {dtype}")
        _check_bools(dtype, args[1])
        return np.frombuffer(args[1], dtype=dtype).astype(dtype.newbyteorder("="))[0]

    def frombuffer(args: tuple[Any, ...]) -> np.ndarray[Any, Any]:
        if len(args) != 4 or type(args[3]) is not str or args[3] not in ("C", "F"):
            raise UnsafePickleError("refused numpy _frombuffer")
        return make_array(budget, args[0], args[1], args[2], args[3])

    table = {("numpy", "dtype"): Global("numpy", "dtype", reduce=_dtype), ("numpy", "ndarray"): ndarray}
    for core in ("numpy.core", "numpy._core"):  # numpy 1.x and 2.x spellings of the same functions
        table[(f"{core}.multiarray", "_reconstruct")] = Global(f"{core}.multiarray", "_reconstruct", reduce=reconstruct)
        table[(f"{core}.multiarray", "scalar")] = Global(f"{core}.multiarray", "scalar", reduce=scalar)
        table[(f"{core}.numeric", "_frombuffer")] = Global(f"{core}.numeric", "_frombuffer", reduce=frombuffer)
    return table
