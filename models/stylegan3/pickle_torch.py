"""torch tensors in a plain pickle, rebuilt from storage bytes we parsed ourselves and bounds we checked.

How torch pickles a tensor outside `torch.save` (torch 1.9 of the 2021 release files and torch 2.x alike; see
`Tensor.__reduce_ex__`, `Parameter.__reduce_ex__` and `TypedStorage.__reduce__` in torch's source):
- a Parameter: `torch._utils._rebuild_parameter(data, requires_grad, OrderedDict())` (with Python-level state:
  `_rebuild_parameter_with_state(data, requires_grad, hooks, state)`);
- a tensor: `torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, OrderedDict()
  [, metadata])`;
- its storage: `torch.storage._load_from_bytes(blob)`, where the blob is `torch.save(storage,
  _use_new_zipfile_serialization=False)`: five protocol-2 pickles (the magic number 0x1950a86a20f9469cfc6c, protocol
  version 1001, a sys_info dict, the storage as persistent id `('storage', torch.<T>Storage, key, location, numel,
  None)`, the list of keys), then for the one storage an int64 element count and its raw little-endian bytes.
torch's own loader would unpickle that blob with the full unpickler; here the five pickles run in the same
restricted interpreter (only the storage types as globals, only that persistent id), the element count must match
and the bytes must be exactly count × itemsize. A tensor is built only when its size, stride and offset stay inside
the storage and it has no more elements than the storage (no overlapping or broadcast views), so a file can neither
read outside what it holds nor make torch allocate more than it holds. Hooks, metadata and parameter state must be
empty: they would be callables or arbitrary objects.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from models.stylegan3.errors import UnsafePickleError
from models.stylegan3.pickle_vm import Budget, Global, Internal, Machine, Reader

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
MAX_NDIM = 8
_MAX_SIDE = 1 << 40
STORAGE_TYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class StorageType(Global):
    __slots__ = ("dtype",)

    def __init__(self, name: str, dtype: torch.dtype) -> None:
        super().__init__("torch", name)
        self.dtype = dtype


class Storage(Internal):
    """One storage's element type and bytes (a view into its blob)."""

    __slots__ = ("data", "dtype", "key", "numel")

    def __init__(self, dtype: torch.dtype, key: str, numel: int) -> None:
        self.dtype, self.key, self.numel = dtype, key, numel
        self.data: memoryview | None = None

    def describe(self) -> str:
        return "torch storage"


_BLOB_GLOBALS = {("torch", name): StorageType(name, dtype) for name, dtype in STORAGE_TYPES.items()}


def _storage_pid(pid: Any) -> Storage:
    if not (
        type(pid) is tuple
        and len(pid) == 6
        and type(pid[0]) is str
        and pid[0] == "storage"
        and isinstance(pid[1], StorageType)
        and type(pid[2]) is str
        and len(pid[2]) <= 64
        and type(pid[3]) is str
        and len(pid[3]) <= 32
        and type(pid[4]) is int
        and 0 <= pid[4] <= _MAX_SIDE
        and pid[5] is None
    ):
        raise UnsafePickleError("refused tensor storage: unexpected persistent id")
    return Storage(pid[1].dtype, pid[2], pid[4])


def load_storage_blob(blob: Any, budget: Budget) -> Storage:
    """`torch.storage._load_from_bytes(blob)`, read without torch's unpickler."""
    if type(blob) not in (bytes, bytearray):
        raise UnsafePickleError("refused tensor storage: expected bytes")
    if blob[:2] == b"PK":
        raise UnsafePickleError("refused tensor storage: zip-format storages are not part of a network pickle")
    reader = Reader(blob)
    found: list[Storage] = []

    def persistent(pid: Any) -> Storage:
        if found:
            raise UnsafePickleError("refused tensor storage: more than one storage in a blob")
        found.append(_storage_pid(pid))
        return found[0]

    def one() -> Any:
        return Machine(reader, {}, budget).load()

    if not (_is(one(), MAGIC) and _is(one(), PROTOCOL_VERSION)):
        raise UnsafePickleError("refused tensor storage: not torch's legacy storage format")
    info = one()
    if not (type(info) is dict and info.get("little_endian") is True):
        raise UnsafePickleError("refused tensor storage: not little-endian")
    storage = Machine(reader, _BLOB_GLOBALS, budget, persistent_load=persistent, internal_result=True).load()
    keys = one()
    if not (
        found
        and storage is found[0]
        and type(keys) is list
        and len(keys) == 1
        and type(keys[0]) is str
        and keys[0] == storage.key
    ):
        raise UnsafePickleError("refused tensor storage: its keys do not match")
    count = int.from_bytes(reader.read(8), "little", signed=True)
    itemsize = storage.dtype.itemsize
    if count != storage.numel or reader.left != count * itemsize:
        raise UnsafePickleError(
            f"refused tensor storage: {storage.numel} elements declared, {count} counted, {reader.left} bytes given"
        )
    storage.data = reader.view(reader.left)
    return storage


def _is(value: Any, expected: int) -> bool:
    return type(value) is int and value == expected


def _empty_dict(value: Any) -> bool:
    return value is None or (isinstance(value, dict) and not value)


def _sizes(value: Any) -> bool:
    return (
        type(value) is tuple and len(value) <= MAX_NDIM and all(type(v) is int and 0 <= v <= _MAX_SIDE for v in value)
    )


def build_tensor(
    budget: Budget, storage: Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
) -> torch.Tensor:
    numel = math.prod(size)
    if numel == 0:
        return torch.empty(size, dtype=storage.dtype)
    if numel > storage.numel:
        raise UnsafePickleError(f"refused tensor: {numel} elements from a storage of {storage.numel}")
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if last >= storage.numel:
        raise UnsafePickleError(f"refused tensor: size {size}, stride {stride}, offset {offset} reach past its storage")
    data = storage.data
    if data is None:
        raise UnsafePickleError("refused tensor: storage without data")
    if storage.dtype == torch.bool and bytes(data).translate(None, b"\x00\x01"):
        raise UnsafePickleError("refused bool tensor: bytes other than 0 and 1")
    budget.take_bytes(len(data), "tensor")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = torch.frombuffer(bytearray(data), dtype=storage.dtype)
    tensor = base.as_strided(size, stride, offset)
    if offset == 0 and numel == storage.numel and tensor.is_contiguous():
        return tensor  # the whole storage: it keeps the copied bytes
    budget.take_bytes(numel * storage.dtype.itemsize, "tensor")
    return tensor.clone(memory_format=torch.contiguous_format)


def globals_for(budget: Budget) -> dict[tuple[str, str], Global]:
    def from_bytes(args: tuple[Any, ...]) -> Storage:
        if len(args) != 1:
            raise UnsafePickleError("refused _load_from_bytes call")
        return load_storage_blob(args[0], budget)

    def rebuild_tensor(args: tuple[Any, ...]) -> torch.Tensor:
        if not 4 <= len(args) <= 7:
            raise UnsafePickleError("refused _rebuild_tensor_v2 call")
        storage, offset, size, stride = args[:4]
        rest = args[4:] + (False, None, None)[len(args) - 4 :]
        if not (
            isinstance(storage, Storage)
            and type(offset) is int
            and 0 <= offset <= storage.numel
            and _sizes(size)
            and _sizes(stride)
            and len(size) == len(stride)
            and type(rest[0]) is bool
            and _empty_dict(rest[1])
            and _empty_dict(rest[2])
        ):
            raise UnsafePickleError("refused _rebuild_tensor_v2 arguments")
        return build_tensor(budget, storage, offset, size, stride)

    def rebuild_parameter(args: tuple[Any, ...]) -> torch.Tensor:
        if not (
            len(args) in (3, 4)
            and isinstance(args[0], torch.Tensor)
            and type(args[1]) is bool
            and _empty_dict(args[2])
            and (len(args) == 3 or _empty_dict(args[3]))
        ):
            raise UnsafePickleError("refused _rebuild_parameter arguments")
        return args[0]

    return {
        ("torch.storage", "_load_from_bytes"): Global("torch.storage", "_load_from_bytes", reduce=from_bytes),
        ("torch._utils", "_rebuild_tensor_v2"): Global("torch._utils", "_rebuild_tensor_v2", reduce=rebuild_tensor),
        ("torch._utils", "_rebuild_parameter"): Global("torch._utils", "_rebuild_parameter", reduce=rebuild_parameter),
        ("torch._utils", "_rebuild_parameter_with_state"): Global(
            "torch._utils", "_rebuild_parameter_with_state", reduce=rebuild_parameter
        ),
    }
