"""Read a release network pickle as data: nothing in the file can choose code to run, memory to touch or a size to
allocate beyond what it holds.

The opcodes are interpreted by `pickle_vm` (which opcode may do what is in its docstring). The only callables a
file can name, and what each accepts (anything else is refused, naming it):
- `torch_utils.persistence._reconstruct_persistent_obj(meta)` → `PersistentStub`: meta a plain dict with exactly
  type='class', version=6, module_src (a str, never looked at: the release's loader would exec it), class_name (a
  bare identifier) and state (a dict with str keys: the module's `__dict__`).
- `dnnlib.util.EasyDict` via NEWOBJ with no arguments → an empty `EasyDict` (a plain dict subclass), then filled
  by SETITEMS like any dict. No BUILD.
- `collections.OrderedDict()` with no arguments; `builtins.set` / `builtins.frozenset` of nothing or of one list of
  scalars (protocols < 4 spell sets so); `_codecs.encode(str, 'latin1')` and `builtins.bytes()` (protocols < 3 spell
  bytes and empty bytes so).
- numpy: `numpy.dtype`, `numpy.ndarray` (an argument only), `numpy[._]core.multiarray._reconstruct` / `.scalar`,
  `numpy[._]core.numeric._frombuffer`: see `pickle_numpy` (plain numeric dtypes, exact byte counts).
- torch: `torch.storage._load_from_bytes`, `torch._utils._rebuild_tensor_v2`, `_rebuild_parameter`,
  `_rebuild_parameter_with_state`: see `pickle_torch` (storage bytes parsed by us, bounds checked, no hooks).
BUILD is allowed only on a numpy dtype spec and a numpy array skeleton (`pickle_numpy`), once each: the release's
layout needs it nowhere else. Refusals raise `UnsafePickleError` (caps: `PickleLimitError`); the file's size is
checked against `Limits.max_file_bytes` before reading.
"""

from __future__ import annotations

import io
import os
import re
from collections import OrderedDict
from typing import IO, Any

from models.stylegan3.errors import PickleLimitError, UnsafePickleError
from models.stylegan3.pickle_numpy import globals_for as numpy_globals
from models.stylegan3.pickle_torch import globals_for as torch_globals
from models.stylegan3.pickle_vm import Budget, FileReader, Global, Limits, Machine, Reader, Record, hashable

PERSISTENCE_VERSION = 6  # torch_utils/persistence.py `_version` in the release
_META_KEYS = frozenset({"type", "version", "module_src", "class_name", "state"})
_CLASS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")


class EasyDict(dict):  # type: ignore[type-arg]
    """Stand-in for `dnnlib.util.EasyDict` (a dict whose attributes are its items): the data only."""


class PersistentStub(Record):
    """A persistent network object of the file: its bare class name and recorded `__dict__`, nothing run."""

    __slots__ = ("class_name", "state", "version")

    def __init__(self, class_name: str, state: dict[str, Any], version: int) -> None:
        self.class_name, self.state, self.version = class_name, state, version

    @property
    def init_args(self) -> tuple[Any, ...]:
        args = self.state.get("_init_args", ())
        return args if isinstance(args, tuple) else ()

    @property
    def init_kwargs(self) -> dict[str, Any]:
        kwargs = self.state.get("_init_kwargs", {})
        return dict(kwargs) if isinstance(kwargs, dict) else {}

    def children(self) -> dict[str, Any]:
        """Child modules by name (a name that is not text becomes a placeholder, which matches no module)."""
        modules = self.state.get("_modules")
        if not isinstance(modules, dict):
            return {}
        return {
            k if isinstance(k, str) else f"<{type(k).__name__} #{i}>": v for i, (k, v) in enumerate(modules.items())
        }

    def __repr__(self) -> str:
        return f"PersistentStub({self.class_name!r})"


def _persistent(args: tuple[Any, ...]) -> PersistentStub:
    meta = args[0] if len(args) == 1 else None
    if type(meta) is not dict or set(meta) != _META_KEYS:
        raise UnsafePickleError("refused persistent object: its meta is not the release's")
    kind, version, name, state = meta["type"], meta["version"], meta["class_name"], meta["state"]
    if not (type(kind) is str and kind == "class" and type(meta["module_src"]) is str):
        raise UnsafePickleError("refused persistent object: only classes are supported")
    if not (type(version) is int and version == PERSISTENCE_VERSION):
        raise UnsafePickleError(f"refused persistent object: persistence version {version!r:.20}, expected 6")
    if not (type(name) is str and _CLASS_NAME.fullmatch(name)):
        raise UnsafePickleError("refused persistent object: malformed class name")
    if not (isinstance(state, dict) and all(type(k) is str for k in state)):
        raise UnsafePickleError(f"refused persistent object {name}: its state is not a dict of attributes")
    return PersistentStub(name, state, version)


def _easydict(args: tuple[Any, ...]) -> EasyDict:
    if args:
        raise UnsafePickleError("refused EasyDict with constructor arguments")
    return EasyDict()


def _ordered_dict(args: tuple[Any, ...]) -> OrderedDict[Any, Any]:
    if args:
        raise UnsafePickleError("refused OrderedDict with constructor arguments")
    return OrderedDict()


def _members(args: tuple[Any, ...]) -> list[Any]:
    if not args:
        return []
    if len(args) != 1 or type(args[0]) is not list:
        raise UnsafePickleError("refused set construction")
    for member in args[0]:
        if not hashable(member):
            raise UnsafePickleError(f"a {type(member).__name__} cannot be a set member")
    return args[0]


def _encode(args: tuple[Any, ...]) -> bytes:
    if not (len(args) == 2 and type(args[0]) is str and type(args[1]) is str and args[1] in ("latin1", "latin-1")):
        raise UnsafePickleError("refused _codecs.encode")
    try:
        return args[0].encode("latin1")
    except UnicodeEncodeError:
        raise UnsafePickleError("refused _codecs.encode: not latin-1") from None


def _empty_bytes(args: tuple[Any, ...]) -> bytes:
    if args:
        raise UnsafePickleError("refused bytes() with arguments")
    return b""


def _table(budget: Budget) -> dict[tuple[str, str], Global]:
    table = {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): Global(
            "torch_utils.persistence", "_reconstruct_persistent_obj", reduce=_persistent
        ),
        ("dnnlib.util", "EasyDict"): Global("dnnlib.util", "EasyDict", newobj=_easydict),
        ("collections", "OrderedDict"): Global("collections", "OrderedDict", reduce=_ordered_dict),
        ("builtins", "set"): Global("builtins", "set", reduce=lambda a: set(_members(a))),
        ("builtins", "frozenset"): Global("builtins", "frozenset", reduce=lambda a: frozenset(_members(a))),
        ("_codecs", "encode"): Global("_codecs", "encode", reduce=_encode),
        ("builtins", "bytes"): Global("builtins", "bytes", reduce=_empty_bytes),
    }
    return table | numpy_globals(budget) | torch_globals(budget)


def _hint(module: str, name: str) -> str:
    if module.startswith(("torch.nn.", "timm.")):
        return ": a plain torch module, which StyleGAN3 network pickles never hold (StyleGAN-XL's do)"
    return ""


def safe_load(file: IO[bytes], limits: Limits | None = None) -> Any:
    """Unpickle a network pickle as data (see the module docstring); `UnsafePickleError` for anything else."""
    limits = limits or Limits()
    reader = FileReader(file)
    try:
        return _load(reader, limits)
    except (UnsafePickleError, PickleLimitError):
        raise
    except (RecursionError, MemoryError, ValueError, TypeError, OverflowError, IndexError, KeyError) as exc:
        # The interpreter checks before it acts; this is the net under that, so a reader bug is still a refusal.
        raise UnsafePickleError(f"unreadable pickle ({type(exc).__name__}: {str(exc)[:200]})") from exc


def _load(reader: Reader, limits: Limits) -> Any:
    if reader.left > limits.max_file_bytes:
        raise PickleLimitError(f"file of {reader.left} bytes, over the {limits.max_file_bytes}-byte limit")
    budget = Budget(limits)
    value = Machine(reader, _table(budget), budget, hint=_hint).load()
    if reader.left:
        raise UnsafePickleError(f"{reader.left} bytes after the end of the pickle")
    return value


def safe_loads(data: bytes, limits: Limits | None = None) -> Any:
    return safe_load(io.BytesIO(data), limits)


def read_network_pickle(path: str | os.PathLike[str], limits: Limits | None = None) -> Any:
    with open(path, "rb") as f:
        return safe_load(f, limits)
