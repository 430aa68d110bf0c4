"""The reader builds the values network pickles hold, for every pickle protocol, and refuses the rest by name."""

from __future__ import annotations

import io
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from models.stylegan3.errors import PickleLimitError, UnsafePickleError
from models.stylegan3.pickle_vm import Limits
from models.stylegan3.unpickler import EasyDict, read_network_pickle, safe_load, safe_loads

VALUES = {
    "array": np.arange(6, dtype=np.float32).reshape(2, 3),
    "fortran": np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3)),
    "size": np.broadcast_to(np.asarray(36), [2]),  # how the release stores sizes: a read-only, stride-0 view
    "bools": np.array([True, False]),
    "empty": np.zeros((0, 3), dtype=np.float16),
    "f64": np.float64(2.5),
    "flag": np.bool_(True),
    "tensor_view": torch.arange(10.0)[2:8:2],
    "param": torch.nn.Parameter(torch.randn(3, 4), requires_grad=False),
    "channels_last": torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last),
    "half": torch.randn(5).half(),
    "bf16": torch.randn(5).bfloat16(),
    "int_tensor": torch.arange(5),
    "scalar_tensor": torch.tensor(0.75),
    "set": {1, "two", (3, 4.0)},
    "frozen": frozenset({"a"}),
    "ordered": OrderedDict(b=1, a=[1.5, None, "x"]),
    "bytes": b"\x00\xff",
    "big_int": 2**70,
    "text": "ü∂",
}


def _same(a: object, b: object) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("protocol", range(6))
def test_every_protocol_round_trips_network_values(protocol: int) -> None:
    out = safe_loads(pickle.dumps(VALUES, protocol=protocol))
    assert list(out) == list(VALUES)
    for key, value in VALUES.items():
        assert _same(value, out[key]), key
    assert out["array"].flags.writeable and out["size"].flags.writeable  # fresh arrays, not views of the file
    assert not isinstance(out["param"], torch.nn.Parameter)  # plain tensors: nothing of the file's classes


def test_easydict_pickles_as_the_release_writes_it() -> None:
    from models.stylegan3.release_pickle import EasyDict as WrittenEasyDict
    from models.stylegan3.release_pickle import dumps

    out = safe_loads(dumps({"kwargs": WrittenEasyDict(num_layers=2)}, protocol=4))
    assert type(out["kwargs"]) is EasyDict and out["kwargs"] == {"num_layers": 2}


def test_reads_from_a_file_without_loading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "v.pkl"
    path.write_bytes(pickle.dumps({"t": torch.randn(64, 64)}, protocol=4))
    assert read_network_pickle(path)["t"].shape == (64, 64)
    with open(path, "rb") as f:
        assert safe_load(f)["t"].shape == (64, 64)


def test_trailing_bytes_and_truncation_are_refused() -> None:
    data = pickle.dumps([1, 2, 3], protocol=4)
    with pytest.raises(UnsafePickleError, match="after the end of the pickle"):
        safe_loads(data + b"junk")
    with pytest.raises(UnsafePickleError, match="frame longer than the input"):
        safe_loads(data[:-3])
    with pytest.raises(UnsafePickleError, match="truncated"):
        safe_loads(pickle.dumps([1, 2, 3], protocol=2)[:-3])


def test_caps_are_checked_before_reading() -> None:
    data = pickle.dumps({"t": torch.randn(256)}, protocol=4)
    with pytest.raises(PickleLimitError, match="over the 100-byte limit"):
        safe_load(io.BytesIO(data), Limits(max_file_bytes=100))
    with pytest.raises(PickleLimitError, match="byte budget"):
        safe_load(io.BytesIO(data), Limits(max_bytes=512))
    with pytest.raises(PickleLimitError, match="over 10 elements"):
        safe_loads(pickle.dumps(list(range(100))), Limits(max_items=10))
    with pytest.raises(PickleLimitError, match="opcodes"):
        safe_loads(pickle.dumps(list(range(100))), Limits(max_ops=50))


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (len, r"refused global builtins\.len"),
        (OrderedDict, r"collections\.OrderedDict cannot be stored as data"),  # the class itself, as a value
        (np.dtype("f8"), r"numpy dtype 'f8' cannot be stored as data"),
        (bytearray(b"x"), r"refused global builtins\.bytearray"),
        (np.array(["a"]), r"refused numpy dtype 'U1'"),
        (torch.randn(2).to(torch.complex64), r"refused global torch\.ComplexFloatStorage"),
        ({(1, (2,)): 3}, r"a tuple cannot be a dict key"),
    ],
)
def test_values_outside_the_format_are_refused_by_name(value: object, match: str) -> None:
    with pytest.raises(UnsafePickleError, match=match):
        safe_loads(pickle.dumps(value, protocol=4))
