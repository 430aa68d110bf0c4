"""Write network pickles laid out exactly as NVIDIA's public StyleGAN3 release writes them (for tests and benches).

Facts, from the release's code (NVlabs/stylegan3, read for facts only: its licence is non-commercial):
- `training/training_loop.py` saves `pickle.dump(dict(training_set_kwargs=dict(...), G=..., D=..., G_ema=...,
  augment_pipe=...))` with Python's default protocol (4 on the Python 3.8 of its environment.yml), each network a
  `copy.deepcopy(module).eval().requires_grad_(False).cpu()`.
- `torch_utils/persistence.py` (`_version = 6`): a persistent class reduces to
  `_reconstruct_persistent_obj(meta)`, meta = dict(type='class', version=6, module_src=<its module's source>,
  class_name=<the class's bare `__name__`>, state=<the third field of `object.__reduce__()`: the module's
  `__dict__`>), and nothing else (no BUILD). `_init_args` / `_init_kwargs` are set on the instance after `__init__`.
- `dnnlib/util.py`: `EasyDict` is a dict whose attributes are its items, so it pickles as NEWOBJ + SETITEMS.
- `training/networks_stylegan3.py`: which attributes each class sets, in which order and of which type (numpy
  float64 for cutoffs and gains, int64 size arrays from `np.broadcast_to`, numpy bool for `use_fp16`...): see
  `release_tree.py`.
- torch 1.9.1 (environment.yml) `nn.Module.__init__` sets training, _parameters, _buffers,
  _non_persistent_buffers_set, _backward_hooks, _is_full_backward_hook, _forward_hooks, _forward_pre_hooks,
  _state_dict_hooks, _load_state_dict_pre_hooks, _modules (later torch versions add more hook dicts; `torch19`
  keeps the 2021 set).
Everything else is the real thing: real `nn.Module`s holding real Parameters and buffers, pickled by Python's own
pickler, so tensors go through torch's own `__reduce_ex__` (`_rebuild_parameter`, `_rebuild_tensor_v2`, storages as
`_load_from_bytes` blobs) and numpy values through numpy's own `__reduce__`/`__reduce_ex__`. Only three names are
spelled by us, because their modules are not importable here: the persistence reconstructor, `EasyDict`, and
numpy's `multiarray`/`numeric` functions (under `numpy.core` for numpy 1.x files, `numpy._core` for numpy 2.x).
"""

from __future__ import annotations

import io
import os
import pickle
import sys
import types
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from torch import nn

NumpyLayout = Literal["numpy1", "numpy2"]
PERSISTENCE_VERSION = 6
_TORCH19_FIELDS = (
    "training",
    "_parameters",
    "_buffers",
    "_non_persistent_buffers_set",
    "_backward_hooks",
    "_is_full_backward_hook",
    "_forward_hooks",
    "_forward_pre_hooks",
    "_state_dict_hooks",
    "_load_state_dict_pre_hooks",
    "_modules",
)


def _reconstruct_persistent_obj(meta: Any) -> Any:  # pragma: no cover - only its name is ever written
    raise RuntimeError("stand-in for torch_utils.persistence._reconstruct_persistent_obj: read with our unpickler")


class EasyDict(dict):  # type: ignore[type-arg]
    """Stand-in for dnnlib.util.EasyDict: its attributes live in its items, so its instance __dict__ stays empty."""

    def __getattr__(self, name: str) -> Any:
        if name in self:
            return self[name]
        raise AttributeError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


def _np_reconstruct(*args: Any) -> Any:  # pragma: no cover - only its name is ever written
    raise RuntimeError("stand-in")


def _np_scalar(*args: Any) -> Any:  # pragma: no cover
    raise RuntimeError("stand-in")


def _np_frombuffer(*args: Any) -> Any:  # pragma: no cover
    raise RuntimeError("stand-in")


_NUMPY_STAND_INS = {"_reconstruct": _np_reconstruct, "scalar": _np_scalar, "_frombuffer": _np_frombuffer}
_NUMPY_MODULES = {"_reconstruct": "multiarray", "scalar": "multiarray", "_frombuffer": "numeric"}


class Persistent:
    """Mix-in: pickles a torch module the way the release's persistent classes do."""

    module_src: str = ""
    torch19: bool = True

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]], None]:
        state = vars(self)
        if type(self).torch19:
            base = set(vars(nn.Module()))
            state = {k: state[k] for k in _TORCH19_FIELDS if k in state} | {
                k: v for k, v in state.items() if k not in base
            }
        meta = {
            "type": "class",
            "version": PERSISTENCE_VERSION,
            "module_src": type(self).module_src,
            "class_name": type(self).__name__,
            "state": state,
        }
        return (_reconstruct_persistent_obj, (meta,), None)


_CLASSES: dict[tuple[str, int, bool], type] = {}


def persistent_class(name: str, module_src: str, torch19: bool = True) -> type:
    """A torch module class with the release's bare class name whose instances pickle like the release's."""
    key = (name, id(module_src), torch19)
    if key not in _CLASSES:
        _CLASSES[key] = type(name, (Persistent, nn.Module), {"module_src": module_src, "torch19": torch19})
    return _CLASSES[key]


class _ReleasePickler(pickle._Pickler):  # the Python pickler: it lets us spell our three stand-ins' names
    def __init__(self, file: io.BufferedIOBase, protocol: int, numpy_layout: NumpyLayout) -> None:
        super().__init__(file, protocol)
        self.core = "numpy.core" if numpy_layout == "numpy1" else "numpy._core"

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is np.ndarray or isinstance(obj, np.generic):
            reduced = list(obj.__reduce_ex__(self.proto))  # numpy's own reduce; only its function's module differs
            reduced[0] = _NUMPY_STAND_INS[reduced[0].__name__]
            return tuple(reduced)
        return NotImplemented

    def save_global(self, obj: Any, name: str | None = None) -> None:
        if obj is _reconstruct_persistent_obj:
            module, name = "torch_utils.persistence", "_reconstruct_persistent_obj"
        elif obj is EasyDict:
            module, name = "dnnlib.util", "EasyDict"
        elif obj in _NUMPY_STAND_INS.values():
            name = next(k for k, v in _NUMPY_STAND_INS.items() if v is obj)
            # One string object per module, as `obj.__module__` is for the real functions: the memo then shares it.
            module = sys.intern(f"{self.core}.{_NUMPY_MODULES[name]}")
        else:
            super().save_global(obj, name)
            return
        # What Python's pickler writes for a global (Lib/pickle.py save_global), minus its importability check.
        if self.proto >= 4:
            self.save(module)
            self.save(name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
        self.memoize(obj)


# Python's pickler binds functions to its own save_global in a class-level table: route them through ours.
_ReleasePickler.dispatch = {**pickle._Pickler.dispatch, types.FunctionType: _ReleasePickler.save_global}


def dumps(data: Any, protocol: int = 4, numpy_layout: NumpyLayout = "numpy1") -> bytes:
    buf = io.BytesIO()
    _ReleasePickler(buf, protocol, numpy_layout).dump(data)
    return buf.getvalue()


def snapshot(
    G_ema: nn.Module,  # the release's names
    G: nn.Module | None = None,
    D: nn.Module | None = None,
    augment_pipe: nn.Module | None = None,
    training_set_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The dict the release's training loop pickles, in its key order."""
    data: dict[str, Any] = {"training_set_kwargs": dict(training_set_kwargs or {})}
    for key, module in (
        ("G", G if G is not None else G_ema),
        ("D", D),
        ("G_ema", G_ema),
        ("augment_pipe", augment_pipe),
    ):
        data[key] = module.eval().requires_grad_(False).cpu() if module is not None else None
    return data


def write(
    path: str | os.PathLike[str],
    data: Any,
    protocol: int = 4,
    numpy_layout: NumpyLayout = "numpy1",
) -> None:
    with open(path, "wb") as f:
        f.write(dumps(data, protocol, numpy_layout))
