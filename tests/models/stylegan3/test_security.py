"""Malicious pickles: nothing from the file runs, no memory outside it is touched, and every case of issue 8 ends
in the loader's own error, in a child process that stays alive and small."""

from __future__ import annotations

import io
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from models.stylegan3.errors import UnsafePickleError
from models.stylegan3.loader import load_network
from models.stylegan3.testing import tiny_generator, write_network_pickle
from models.stylegan3.unpickler import safe_loads
from tests.models.stylegan3 import hostile
from tests.models.stylegan3.load_child import Report, run_child


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


@pytest.mark.parametrize("zipfile", [True, False])
def test_code_smuggled_in_tensor_storage_bytes_is_refused(tmp_path: Path, zipfile: bool) -> None:
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    torch.save(_Evil(marker), buf, _use_new_zipfile_serialization=zipfile)
    data = pickle.dumps({"G_ema": _StorageSmuggler(buf.getvalue())})
    with pytest.raises(UnsafePickleError, match=r"refused tensor storage|refused global (posix|nt|os)\.system"):
        load_network(_write(tmp_path / "evil.pkl", data), device="cpu")
    assert not marker.exists()


def test_persistent_ids_and_object_arrays_are_refused() -> None:
    with pytest.raises(UnsafePickleError, match="persistent ids are not allowed"):
        safe_loads(b"\x80\x02X\x01\x00\x00\x00aQ.")  # BINPERSID
    with pytest.raises(UnsafePickleError, match="refused numpy dtype 'O8'"):
        safe_loads(pickle.dumps(np.array([1, "x"], dtype=object)))


def test_build_cannot_touch_the_allowed_functions() -> None:
    before = torch._utils._rebuild_parameter.__defaults__
    with pytest.raises(UnsafePickleError, match=r"BUILD .* on a Global is not allowed"):
        safe_loads(hostile.build_sets_defaults_of_an_allowed_function())
    assert torch._utils._rebuild_parameter.__defaults__ == before


# --- every hostile case of issue 8, loaded in a child process (a crash fails the test instead of pytest) ---------


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    folder = tmp_path_factory.mktemp("hostile")
    cases = []
    for name, build in hostile.CASES.items():
        path = folder / f"{name}.pkl"
        path.write_bytes(build())
        cases.append([name, str(path)])
    return run_child({"cases": cases}, timeout_s=300)


def _refused(report: Report, name: str, match: str) -> None:
    outcome = report.outcome(name)
    assert outcome == "refused", f"{name}: {outcome} {report.results.get(name)} {report.stderr}"
    assert re.search(match, report.results[name]["error"]), report.results[name]["error"]


def test_dtype_build_with_a_field_at_a_huge_offset(hostile_report: Report) -> None:
    _refused(hostile_report, "dtype_field_at_huge_offset", "tuple holding internal values")
    _refused(hostile_report, "void_dtype_field_at_huge_offset", "refused numpy dtype 'V8'")
    _refused(hostile_report, "dtype_state_with_huge_itemsize", "refused numpy dtype state")


def test_ndarray_setstate_cannot_write(hostile_report: Report) -> None:
    _refused(hostile_report, "ndarray_setstate_with_list_data", "data must be raw bytes")
    _refused(hostile_report, "ndarray_setstate_twice", r"BUILD \(setting state\) on a ndarray is not allowed")


def test_raw_ndarray_constructor_is_not_callable(hostile_report: Report) -> None:
    _refused(hostile_report, "ndarray_object_dtype_constructor", "calling numpy.ndarray is not allowed")
    _refused(hostile_report, "ndarray_huge_shape_constructor", "calling numpy.ndarray is not allowed")
    _refused(hostile_report, "array_state_claiming_2e9_elements", r"needs 16000000000 bytes, has 8")


def test_nested_tuples_as_dict_keys_and_set_members(hostile_report: Report) -> None:
    _refused(hostile_report, "dict_key_of_nested_tuples", "nesting deeper than 64")
    _refused(hostile_report, "frozenset_of_nested_tuples", "nesting deeper than 64")


def test_huge_names_are_refused(hostile_report: Report) -> None:
    _refused(hostile_report, "dict_key_of_a_megabyte", "a str cannot be a dict key")


def test_cycles_and_shared_blowups(hostile_report: Report) -> None:
    _refused(hostile_report, "list_appended_to_itself", "cannot change once it is inside another value")
    _refused(hostile_report, "shared_list_doubling", "values once shared ones are counted")


def test_lengths_past_the_input(hostile_report: Report) -> None:
    _refused(hostile_report, "bytes_length_past_the_end", "bytes of 1152921504606846976 bytes")
    _refused(hostile_report, "long_of_two_gigabytes", "integer of 2147483647 bytes")


def test_tensor_larger_than_its_storage(hostile_report: Report) -> None:
    _refused(hostile_report, "tensor_larger_than_its_storage", "1000 elements from a storage of 4")


def test_build_on_an_allowed_function(hostile_report: Report) -> None:
    _refused(hostile_report, "build_sets_defaults_of_an_allowed_function", "BUILD .* on a Global is not allowed")


def test_init_kwargs_holding_a_large_array(hostile_report: Report) -> None:
    _refused(hostile_report, "init_kwargs_holding_a_large_array", "an array of 100000 values")


def test_every_hostile_case_ran_within_bounded_memory(hostile_report: Report) -> None:
    assert hostile_report.returncode == 0, hostile_report.stderr
    assert set(hostile_report.results) == set(hostile.CASES)
    assert hostile_report.peak_rss_mb < 1500, hostile_report.peak_rss_mb
