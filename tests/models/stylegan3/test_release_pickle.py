"""The fake release files are the real thing: Python's own pickler, torch's and numpy's own reducers, and the
persistence protocol's exact meta, with only three names spelled by us."""

from __future__ import annotations

import pickle
import pickletools
from collections import OrderedDict

import numpy as np
import pytest
import torch

from models.stylegan3.release_pickle import EasyDict, dumps, persistent_class
from models.stylegan3.release_tree import Buffer, module


def _ops(data: bytes) -> list[tuple[str, object]]:
    return [(op.name, arg) for op, arg, _ in pickletools.genops(data)]


@pytest.mark.skipif(not hasattr(np, "_core"), reason="numpy 1.x spells these functions numpy.core")
@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_our_pickler_writes_what_pythons_c_pickler_writes(protocol: int) -> None:
    torch.manual_seed(0)
    value = {
        "param": torch.nn.Parameter(torch.randn(3, 2), requires_grad=False),
        "buffer": torch.ones([]),
        "sizes": np.broadcast_to(np.asarray(36), [2]),
        "gain": np.float64(0.5) / np.sqrt(8),
        "fp16": np.float64(16) * 16 > 64,
        "hooks": OrderedDict(),
        "names": {"x"},
    }
    assert dumps(value, protocol, "numpy2") == pickle.dumps(value, protocol=protocol)


def test_a_persistent_module_reduces_to_the_release_meta() -> None:
    m = module("SynthesisInput", [("w_dim", 8), ("freqs", Buffer(torch.zeros(2, 2)))], (), {"w_dim": 8})
    func, args, state = m.__reduce__()
    assert func.__name__ == "_reconstruct_persistent_obj" and state is None
    meta = args[0]
    assert list(meta) == ["type", "version", "module_src", "class_name", "state"]
    assert (meta["type"], meta["version"], meta["class_name"]) == ("class", 6, "SynthesisInput")
    # The module's __dict__ as torch 1.9 laid it out, then the class's attributes, then the init arguments.
    assert list(meta["state"])[:3] == ["training", "_parameters", "_buffers"]
    assert list(meta["state"])[10:] == ["_modules", "w_dim", "_init_args", "_init_kwargs"]
    assert "_forward_hooks_with_kwargs" not in meta["state"]


def test_the_stream_has_no_build_for_persistent_objects_or_easydicts() -> None:
    m = module("MappingNetwork", [("num_layers", 2)], (), {"mapping_kwargs": EasyDict(num_layers=2)})
    ops = _ops(dumps(m, 4))
    names = [arg for name, arg in ops if name == "SHORT_BINUNICODE"]
    assert names[:2] == ["torch_utils.persistence", "_reconstruct_persistent_obj"]
    assert "dnnlib.util" in names and "EasyDict" in names and "MappingNetwork" in names
    assert ("BUILD", None) not in ops and ("NEWOBJ", None) in ops  # EasyDict: NEWOBJ + SETITEMS, never BUILD


def test_numpy_layouts_differ_only_in_the_module_name() -> None:
    value = {"size": np.broadcast_to(np.asarray(36), [2]), "rate": np.float64(16)}
    one, two = dumps(value, 4, "numpy1"), dumps(value, 4, "numpy2")
    assert b"numpy.core.multiarray" in one and b"numpy._core" not in one
    assert b"numpy._core.multiarray" in two
    rename = [(n, a.replace("numpy.core", "numpy._core") if isinstance(a, str) else a) for n, a in _ops(one)]
    assert [(n, a) for n, a in rename if n != "FRAME"] == [(n, a) for n, a in _ops(two) if n != "FRAME"]


def test_classes_are_per_source_and_named_bare() -> None:
    a, b = persistent_class("Generator", "src a"), persistent_class("Generator", "src b")
    assert a is not b and a.__name__ == b.__name__ == "Generator"
    assert a is persistent_class("Generator", "src a")
