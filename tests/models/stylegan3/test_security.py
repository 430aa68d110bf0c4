"""Malicious pickles: nothing from the file runs; the refusal names what was asked for."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from models.stylegan3.loader import load_network
from models.stylegan3.testing import tiny_generator, write_network_pickle
from models.stylegan3.unpickler import UnsafePickleError, safe_loads


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_os_system_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()
    pkl = _write(tmp_path / "evil.pkl", payload)
    with pytest.raises(UnsafePickleError, match=r"refused global os\.system"):
        load_network(pkl, device="cpu")
    assert not marker.exists()


def test_builtins_eval_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = f"cbuiltins\neval\n(S'open({str(marker)!r}, \"w\")'\ntR.".encode()
    with pytest.raises(UnsafePickleError, match=r"refused global builtins\.eval"):
        load_network(_write(tmp_path / "evil.pkl", payload), device="cpu")
    assert not marker.exists()


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_code_nested_in_a_network_dict_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    data = pickle.dumps({"G_ema": _Evil(marker), "training_set_kwargs": {}})
    with pytest.raises(UnsafePickleError, match=r"refused global (posix|nt|os)\.system"):
        load_network(_write(tmp_path / "evil.pkl", data), device="cpu")
    assert not marker.exists()


def test_module_src_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "module_src_ran"
    source = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
    pkl = tmp_path / "net.pkl"
    write_network_pickle(pkl, tiny_generator(seed=3), module_src=source)
    assert source.encode() in pkl.read_bytes()  # the code is really in the file...
    g = load_network(pkl, device="cpu")  # ...and the network still loads,
    assert g.img_resolution == 16
    assert not marker.exists()  # without running it.


class _StorageSmuggler:
    """An allowed door (torch.storage._load_from_bytes) carrying a payload that would run code in torch.load."""

    def __init__(self, inner: bytes) -> None:
        self.inner = inner

    def __reduce__(self) -> tuple[object, tuple[bytes]]:
        return (torch.storage._load_from_bytes, (self.inner,))


def test_code_smuggled_in_tensor_storage_bytes_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    torch.save(_Evil(marker), buf)
    data = pickle.dumps({"G_ema": _StorageSmuggler(buf.getvalue())})
    with pytest.raises(UnsafePickleError, match="refused tensor storage"):
        load_network(_write(tmp_path / "evil.pkl", data), device="cpu")
    assert not marker.exists()


def test_persistent_ids_and_object_arrays_are_refused() -> None:
    with pytest.raises(UnsafePickleError, match="persistent id"):
        safe_loads(b"\x80\x02X\x01\x00\x00\x00aQ.")  # BINPERSID
    with pytest.raises(UnsafePickleError, match="object dtype"):
        safe_loads(pickle.dumps(np.array([1, "x"], dtype=object)))


def test_allowed_values_still_load() -> None:
    value = {"a": np.arange(3), "s": np.float64(2.5), "t": torch.arange(4.0)[1:], "set": {1, 2}}
    for protocol in (2, 3, 4):  # what Python 3 pickle.dump defaults have been (5 only on request)
        out = safe_loads(pickle.dumps(value, protocol=protocol))
        np.testing.assert_array_equal(out["a"], value["a"])
        assert out["s"] == 2.5 and out["set"] == {1, 2}
        assert torch.equal(out["t"], value["t"])
