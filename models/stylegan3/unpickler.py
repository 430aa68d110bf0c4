"""A restricted unpickler for the release's network pickles: it builds data, never runs code from the file.

A pickle can call any importable callable it names (`GLOBAL` + `REDUCE`), so `find_class` is an allowlist: the
persistence reconstructor (→ `PersistentStub`, which keeps the recorded state and ignores the embedded `module_src`),
`EasyDict` (→ a plain dict subclass), `OrderedDict`, torch's tensor/parameter rebuilders and numpy's array/scalar
rebuilders, each replaced by a wrapper that checks its arguments. Anything else raises `UnsafePickleError` naming the
global. Tensor storages arrive as `torch.save` bytes; those are opened with `torch.load(weights_only=True)`, torch's own
restricted loader, instead of the original `_load_from_bytes` (which would unpickle them without restriction).
"""

from __future__ import annotations

import collections
import io
import pickle
import warnings
from collections.abc import Callable
from typing import IO, Any

import numpy as np
import torch

RECONSTRUCTOR = ("torch_utils.persistence", "_reconstruct_persistent_obj")
EASYDICT = ("dnnlib.util", "EasyDict")


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asked for something outside the allowlist (or smuggled code through an allowed door)."""


class EasyDict(dict):  # type: ignore[type-arg]
    """Stand-in for `dnnlib.util.EasyDict`: the data only (attribute access is not needed here)."""

    def __setstate__(self, state: Any) -> None:
        # A dict subclass may carry instance state; EasyDict keeps everything in its items, so accept only that.
        if isinstance(state, dict):
            self.update(state)
        elif state is not None:
            raise UnsafePickleError("unexpected EasyDict state")


class PersistentStub:
    """What a persistent object (a network module) becomes: its class name and recorded `__dict__`, nothing run."""

    __slots__ = ("class_name", "state", "version")

    def __init__(self, class_name: str, state: dict[str, Any], version: int) -> None:
        self.class_name, self.state, self.version = class_name, state, version

    def __setstate__(self, state: Any) -> None:
        raise UnsafePickleError("refused: state applied to a persistent object after reconstruction")

    @property
    def init_args(self) -> tuple[Any, ...]:
        return tuple(self.state.get("_init_args", ()))

    @property
    def init_kwargs(self) -> dict[str, Any]:
        return dict(self.state.get("_init_kwargs", {}))

    def __repr__(self) -> str:
        return f"PersistentStub({self.class_name!r})"


def _reconstruct_persistent_obj(meta: Any) -> PersistentStub:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise UnsafePickleError("refused persistent object: only meta of type 'class' is supported")
    class_name, state = meta.get("class_name"), meta.get("state")
    if not isinstance(class_name, str) or not isinstance(state, dict):
        raise UnsafePickleError("refused persistent object: malformed meta")
    # meta["module_src"] (the source text the original loader would exec) is deliberately never looked at.
    return PersistentStub(class_name, state, int(meta.get("version", 0)))


def _load_storage_bytes(data: Any) -> Any:
    if not isinstance(data, bytes):
        raise UnsafePickleError("refused tensor storage: expected bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TypedStorage deprecation chatter
            storage = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        raise UnsafePickleError(f"refused tensor storage: {exc}") from None
    if not isinstance(storage, torch.storage.TypedStorage | torch.UntypedStorage):
        raise UnsafePickleError(f"refused tensor storage: got {type(storage).__name__}")
    return storage


def _rebuild_tensor_v2(
    storage: Any,
    storage_offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    requires_grad: bool = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> torch.Tensor:
    if not isinstance(storage, torch.storage.TypedStorage | torch.UntypedStorage):
        raise UnsafePickleError("refused tensor: storage is not a torch storage")
    # Hooks and metadata are dropped: a served network needs neither, and hooks would be callables from the file.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch._utils._rebuild_tensor(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data: Any, requires_grad: bool = False, backward_hooks: Any = None, *_: Any) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise UnsafePickleError("refused parameter: data is not a tensor")
    return data


def _numpy_dtype(*args: Any) -> np.dtype[Any]:
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise UnsafePickleError("refused numpy object dtype")
    return dtype


def _numpy_reconstruct(cls: Any, *args: Any) -> np.ndarray[Any, Any]:
    if cls is not np.ndarray:
        raise UnsafePickleError("refused numpy reconstruct of a non-ndarray type")
    return np.ndarray.__new__(np.ndarray, *args)


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise UnsafePickleError("refused numpy scalar")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _codecs_encode(text: Any, encoding: str = "utf-8") -> bytes:
    # Protocol-2 pickles spell bytes as _codecs.encode(str, 'latin1').
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("refused _codecs.encode")
    return text.encode("latin1")


_ALLOWED: dict[tuple[str, str], Callable[..., Any] | type] = {
    RECONSTRUCTOR: _reconstruct_persistent_obj,
    EASYDICT: EasyDict,
    ("collections", "OrderedDict"): collections.OrderedDict,
    # Module state holds `_non_persistent_buffers_set`; protocols < 4 spell sets as builtins.set([...]).
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("_codecs", "encode"): _codecs_encode,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
}


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "__builtin__":  # the Python 2 spelling that protocol-2 pickles use
            module = "builtins"
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"refused global {module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refused persistent id (not a network pickle)")


def safe_load(file: IO[bytes]) -> Any:
    """Unpickle a network pickle without executing anything it contains."""
    return RestrictedUnpickler(file).load()


def safe_loads(data: bytes) -> Any:
    return safe_load(io.BytesIO(data))
