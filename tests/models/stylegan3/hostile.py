"""Hostile pickles of a few bytes to a few hundred kilobytes, each aimed at one way a plain (or allowlisting)
unpickler crashes, corrupts or exhausts the process. Used by test_security (each a named regression) and the fuzzer."""

from __future__ import annotations

import pickle
import struct
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import torch

from models.stylegan3.release_pickle import dumps, snapshot
from models.stylegan3.release_tree import release_generator
from models.stylegan3.testing import tiny_generator

P2, P3, P4 = b"\x80\x02", b"\x80\x03", b"\x80\x04"
MARK, TUPLE, TUPLE1, TUPLE2, TUPLE3 = b"(", b"t", b"\x85", b"\x86", b"\x87"
REDUCE, BUILD, STOP, NONE, TRUE, FALSE = b"R", b"b", b".", b"N", b"\x88", b"\x89"
EMPTY_DICT, EMPTY_LIST, EMPTY_TUPLE, SETITEM, APPEND = b"}", b"]", b")", b"s", b"a"
FROZENSET, LIST, BINPUT0, BINGET0 = b"\x91", b"l", b"q\x00", b"h\x00"


def glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def text(value: str) -> bytes:
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def num(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def raw(value: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(value)) + value


def dtype(code: str) -> bytes:
    return glob("numpy", "dtype") + text(code) + FALSE + TRUE + TUPLE3 + REDUCE


def plain_dtype(code: str) -> bytes:
    return dtype(code) + MARK + num(3) + text("<") + NONE * 3 + num(-1) + num(-1) + num(0) + TUPLE + BUILD


def skeleton() -> bytes:
    ndarray = glob("numpy", "ndarray")
    return glob("numpy.core.multiarray", "_reconstruct") + ndarray + num(0) + TUPLE1 + raw(b"b") + TUPLE3 + REDUCE


# --- numpy ----------------------------------------------------------------------------------------------------------


def _field_at_huge_offset(code: str) -> bytes:
    fields = EMPTY_DICT + text("a") + plain_dtype("f8") + num(1 << 30) + TUPLE2 + SETITEM
    state = MARK + num(3) + text("|") + NONE + text("a") + TUPLE1 + fields + num(8) + num(1) + num(16) + TUPLE
    return P3 + dtype(code) + state + BUILD + STOP


def dtype_field_at_huge_offset() -> bytes:
    """dtype.__setstate__ giving an f8 a field 2^30 bytes into its 8-byte item: numpy reads outside the buffer."""
    return _field_at_huge_offset("f8")


def void_dtype_field_at_huge_offset() -> bytes:
    """The same on a structured (void) dtype, the type such fields belong to."""
    return _field_at_huge_offset("V8")


def dtype_state_with_huge_itemsize() -> bytes:
    """A plain-looking f8 dtype whose state claims 2^30-byte items."""
    state = MARK + num(3) + text("<") + NONE + text("a") + TUPLE1 + NONE + num(1 << 30) + num(1) + num(16) + TUPLE
    return P3 + dtype("f8") + state + BUILD + STOP


def ndarray_setstate_with_list_data() -> bytes:
    """ndarray.__setstate__ with the list-pickle flag: object arrays whose 'data' is a list of Python objects."""
    state = MARK + num(1) + num(1) + TUPLE1 + plain_dtype("f8") + FALSE + EMPTY_LIST + num(7) + APPEND + TUPLE
    return P3 + skeleton() + state + BUILD + STOP


def ndarray_setstate_twice() -> bytes:
    """A second __setstate__ on a built array rewrites its memory in place."""
    state = MARK + num(1) + num(1) + TUPLE1 + plain_dtype("f8") + FALSE + raw(b"\0" * 8) + TUPLE
    return P3 + skeleton() + state + BUILD + state + BUILD + STOP


def ndarray_object_dtype_constructor() -> bytes:
    """`ndarray((1,), 'O', buffer=...)`: forges object pointers from bytes."""
    args = MARK + num(1) + TUPLE1 + text("O") + raw(b"\x41" * 8) + TUPLE
    return P3 + glob("numpy", "ndarray") + args + REDUCE + STOP


def ndarray_huge_shape_constructor() -> bytes:
    """`ndarray((10^8,), 'O')`: a gigabyte from 40 bytes."""
    return P3 + glob("numpy", "ndarray") + num(10**8) + TUPLE1 + text("O") + TUPLE2 + REDUCE + STOP


def array_state_claiming_2e9_elements() -> bytes:
    """An array skeleton whose state claims 2·10^9 float64s with 8 bytes of data."""
    state = MARK + num(1) + num(2 * 10**9) + TUPLE1 + plain_dtype("f8") + FALSE + raw(b"\0" * 8) + TUPLE
    return P3 + skeleton() + state + BUILD + STOP


# --- containers -----------------------------------------------------------------------------------------------------


def dict_key_of_nested_tuples() -> bytes:
    """Hashing a key of 10^6 nested tuples recurses in C: a stack overflow."""
    return P2 + EMPTY_DICT + EMPTY_TUPLE + TUPLE1 * 10**6 + NONE + SETITEM + STOP


def frozenset_of_nested_tuples() -> bytes:
    return P4 + MARK + EMPTY_TUPLE + TUPLE1 * 10**6 + FROZENSET + STOP


def dict_key_of_a_megabyte() -> bytes:
    """A module name of 10^6 characters: every dotted tensor name under it would copy it."""
    return P2 + EMPTY_DICT + text("L" * 10**6) + NONE + SETITEM + STOP


def list_appended_to_itself() -> bytes:
    """A cycle: any recursive walk of the result never ends."""
    return P2 + EMPTY_LIST + BINPUT0 + BINGET0 + APPEND + STOP


def shared_list_doubling() -> bytes:
    """'Billion laughs': 64 levels each holding the previous level twice, 2^64 elements to any walker."""
    level = MARK + BINGET0 + BINGET0 + LIST + BINPUT0
    return P2 + EMPTY_LIST + BINPUT0 + level * 64 + STOP


def bytes_length_past_the_end() -> bytes:
    return P4 + b"\x8e" + struct.pack("<Q", 1 << 60) + b"x" + STOP


def long_of_two_gigabytes() -> bytes:
    return P2 + b"\x8b" + struct.pack("<i", (1 << 31) - 1) + b"\xff" * 8 + STOP


# --- torch and callables --------------------------------------------------------------------------------------------


class _Forged:
    def __init__(self, reduced: tuple[object, ...]) -> None:
        self.reduced = reduced

    def __reduce__(self) -> tuple[object, ...]:
        return self.reduced


def tensor_larger_than_its_storage() -> bytes:
    """`_rebuild_tensor_v2` with a size past its 4-element storage: torch grows it with heap leftovers."""
    storage = torch.arange(4.0).untyped_storage()
    typed = torch.storage.TypedStorage(wrap_storage=storage, dtype=torch.float32, _internal=True)
    args = (typed, 0, (1000,), (1,), False, OrderedDict())
    return pickle.dumps(_Forged((torch._utils._rebuild_tensor_v2, args)), protocol=2)


def build_sets_defaults_of_an_allowed_function() -> bytes:
    """BUILD on an allowed callable: `__defaults__` changed for the rest of the process."""
    state = NONE + EMPTY_DICT + text("__defaults__") + num(1) + TUPLE1 + SETITEM + TUPLE2
    return P2 + glob("torch._utils", "_rebuild_parameter") + state + BUILD + STOP


def init_kwargs_holding_a_large_array() -> bytes:
    """A generator whose options hold a 10^5-element array: `tolist()` of 10^7 costs ~0.7 GB."""
    tree = release_generator(tiny_generator(seed=4))
    tree._init_kwargs["w_dim"] = np.zeros(10**5, dtype=np.float64)
    return dumps(snapshot(tree))


CASES: dict[str, Callable[[], bytes]] = {
    fn.__name__: fn
    for fn in (
        dtype_field_at_huge_offset,
        void_dtype_field_at_huge_offset,
        dtype_state_with_huge_itemsize,
        ndarray_setstate_with_list_data,
        ndarray_setstate_twice,
        ndarray_object_dtype_constructor,
        ndarray_huge_shape_constructor,
        array_state_claiming_2e9_elements,
        dict_key_of_nested_tuples,
        frozenset_of_nested_tuples,
        dict_key_of_a_megabyte,
        list_appended_to_itself,
        shared_list_doubling,
        bytes_length_past_the_end,
        long_of_two_gigabytes,
        tensor_larger_than_its_storage,
        build_sets_defaults_of_an_allowed_function,
        init_kwargs_holding_a_large_array,
    )
}
