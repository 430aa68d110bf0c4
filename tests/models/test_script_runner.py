"""The script runner: real child processes speaking the seed's JSON protocol, their failures, and their cleanup."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import pickle
import signal
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from models.datauri import decode_data_uri, encode_data_uri
from models.script.runner import (
    ScriptError,
    ScriptOutput,
    ScriptTimeout,
    build_env,
    default_python,
    parse_output,
    run_script,
)


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


PNG = _png()
PNG_URI = encode_data_uri("image/png", PNG)
PAYLOAD = {"prompt": "a friendly robot", "size": "4x3", "seed": 1}


def _script(tmp_path: Path, body: str, name: str = "child.py") -> list[str]:
    path = tmp_path / name
    path.write_text("import json, os, sys, time, subprocess\n" + textwrap.dedent(body))
    return [sys.executable, str(path)]


def _run(argv: list[str], payload: dict[str, Any] = PAYLOAD, **kwargs: Any) -> ScriptOutput:
    kwargs.setdefault("timeout_s", 30.0)
    return asyncio.run(run_script(argv, payload, **kwargs))


def _gone(pid: int, *, group: bool, within_s: float = 10.0) -> bool:
    """True once nothing answers to the pid (or process group); the killed grandchild is reaped by init."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            (os.killpg if group else os.kill)(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("key", ["dataUri", "data_uri", "output", "content"])
def test_each_data_uri_alias_is_read(tmp_path: Path, key: str) -> None:
    argv = _script(tmp_path, f"json.load(sys.stdin)\nprint(json.dumps({{{key!r}: {PNG_URI!r}}}))\n")
    assert _run(argv) == ScriptOutput(data_uri=PNG_URI)


def test_raw_base64_image_becomes_a_png_data_uri(tmp_path: Path) -> None:
    raw = base64.b64encode(PNG).decode()
    out = _run(_script(tmp_path, f"print(json.dumps({{'image': {raw!r}}}))\n"))
    assert out.url is None and out.data_uri is not None
    assert decode_data_uri(out.data_uri) == ("image/png", PNG)


def test_text_with_an_https_url_is_returned_as_a_url(tmp_path: Path) -> None:
    out = _run(_script(tmp_path, "print(json.dumps({'text': 'https://example.com/a.png'}))\n"))
    assert out == ScriptOutput(url="https://example.com/a.png")


def test_the_child_receives_the_payload_on_stdin(tmp_path: Path) -> None:
    body = f"""
        req = json.load(sys.stdin)
        ok = req == {PAYLOAD!r}
        print(json.dumps({{'dataUri': {PNG_URI!r}}} if ok else {{'error': 'got ' + repr(req)}}))
    """
    assert _run(_script(tmp_path, body)).data_uri == PNG_URI


def test_output_that_is_not_json_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match="not JSON"):
        _run(_script(tmp_path, "print('loading model... done')\n"))


def test_json_without_an_image_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ScriptError) as info:
        _run(_script(tmp_path, "print(json.dumps({'status': 'ok'}))\n"))
    assert str(info.value) == (
        "no image in script output; expected one of dataUri, data_uri, output, content, image, text"
    )


def test_an_error_object_becomes_the_error_message(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match=r"^CUDA out of memory$"):
        _run(_script(tmp_path, "print(json.dumps({'error': 'CUDA out of memory'}))\n"))


def test_a_non_zero_exit_names_the_code_and_the_end_of_stderr(tmp_path: Path) -> None:
    body = """
        sys.stderr.write('noise\\n' * 5000 + 'Traceback: the real reason\\n')
        sys.exit(3)
    """
    with pytest.raises(ScriptError) as info:
        _run(_script(tmp_path, body))
    message = str(info.value)
    assert "code 3" in message
    assert message.endswith("the real reason")
    assert len(message) < 2300


def test_output_over_the_cap_stops_the_child_at_once(tmp_path: Path) -> None:
    body = """
        while True:
            sys.stdout.write('x' * 65536)
    """
    with pytest.raises(ScriptError, match="output over 100000 bytes") as info:
        _run(_script(tmp_path, body), max_output_bytes=100_000, timeout_s=60.0)
    assert not isinstance(info.value, ScriptTimeout)


def test_a_hanging_child_and_its_grandchild_are_killed_at_the_timeout(tmp_path: Path) -> None:
    record = tmp_path / "pids.json"
    body = f"""
        json.load(sys.stdin)
        grandchild = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])
        with open({str(record)!r}, 'w') as f:
            json.dump({{'pid': os.getpid(), 'pgid': os.getpgid(0), 'grandchild': grandchild.pid}}, f)
        time.sleep(600)
    """
    argv = _script(tmp_path, body)
    with pytest.raises(ScriptTimeout, match="no answer in 2 s"):
        _run(argv, timeout_s=2.0)
    pids = json.loads(record.read_text())
    assert pids["pgid"] == pids["pid"]  # the child leads its own group...
    assert pids["pgid"] != os.getpgid(0)  # ...not ours
    assert _gone(pids["pid"], group=False)
    assert _gone(pids["grandchild"], group=False)
    assert _gone(pids["pgid"], group=True)


def test_cancelling_the_call_kills_the_process_group(tmp_path: Path) -> None:
    record = tmp_path / "pids.json"
    body = f"""
        grandchild = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])
        with open({str(record)!r}, 'w') as f:
            json.dump({{'pgid': os.getpgid(0), 'grandchild': grandchild.pid}}, f)
        time.sleep(600)
    """
    argv = _script(tmp_path, body)

    async def scenario() -> None:
        task = asyncio.ensure_future(run_script(argv, PAYLOAD, timeout_s=600.0))
        while not record.exists() or not record.read_text():
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    pids = json.loads(record.read_text())
    assert _gone(pids["grandchild"], group=False)
    assert _gone(pids["pgid"], group=True)


def test_a_grandchild_that_escaped_the_group_does_not_hold_the_answer_back(tmp_path: Path) -> None:
    record = tmp_path / "escaped.txt"
    body = f"""
        # A new session: the timeout's group kill cannot reach it, and it keeps our stdout open.
        escaped = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], start_new_session=True)
        open({str(record)!r}, 'w').write(str(escaped.pid))
        print(json.dumps({{'dataUri': {PNG_URI!r}}}), flush=True)
    """
    try:
        assert _run(_script(tmp_path, body), timeout_s=60.0).data_uri == PNG_URI
    finally:
        os.kill(int(record.read_text()), signal.SIGKILL)


def test_gpus_are_hidden_from_the_child_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    body = f"""
        seen = os.environ.get('CUDA_VISIBLE_DEVICES')
        print(json.dumps({{'dataUri': {PNG_URI!r}}} if seen == '' else {{'error': 'saw ' + repr(seen)}}))
    """
    assert _run(_script(tmp_path, body)).data_uri == PNG_URI


def test_a_configured_gpu_is_passed_through(tmp_path: Path) -> None:
    body = f"""
        seen = os.environ.get('CUDA_VISIBLE_DEVICES')
        print(json.dumps({{'dataUri': {PNG_URI!r}}} if seen == '1' else {{'error': 'saw ' + repr(seen)}}))
    """
    env = build_env({"PATH": os.environ.get("PATH", "")}, "1")
    assert _run(_script(tmp_path, body), env=env).data_uri == PNG_URI


def test_a_missing_program_is_a_script_error(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match="cannot start"):
        _run([str(tmp_path / "no-such-program")])


def test_build_env() -> None:
    base = {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "3"}
    assert build_env(base, None) == {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": ""}
    assert build_env(base, "0")["CUDA_VISIBLE_DEVICES"] == "0"
    assert base["CUDA_VISIBLE_DEVICES"] == "3"  # the caller's mapping is left alone


def test_default_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHON_BIN", raising=False)
    assert default_python() == "python3"
    monkeypatch.setenv("PYTHON_BIN", "/opt/py/bin/python")
    assert default_python() == "/opt/py/bin/python"


def test_errors_survive_pickling() -> None:
    for error in (ScriptError("boom"), ScriptTimeout("no answer in 1 s")):
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error)
        assert str(back) == str(error)


def test_parse_output_prefers_the_first_key_in_protocol_order() -> None:
    other = encode_data_uri("image/jpeg", b"\xff\xd8\xff")
    text = json.dumps({"image": base64.b64encode(b"x").decode(), "content": other, "dataUri": PNG_URI})
    assert parse_output(text) == ScriptOutput(data_uri=PNG_URI)


def test_parse_output_accepts_a_data_uri_in_text() -> None:
    assert parse_output(json.dumps({"text": PNG_URI})) == ScriptOutput(data_uri=PNG_URI)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[1, 2]", "expected an object"),
        ('"data:image/png;base64,AAAA"', "expected an object"),
        (json.dumps({"dataUri": "data:image/png;base64,@@@"}), "bad base64"),
        (json.dumps({"dataUri": "https://example.com/a.png"}), "bad data URI"),
        (json.dumps({"output": encode_data_uri("text/plain", b"hi")}), "not an image"),
        (json.dumps({"image": "not base64!"}), "bad base64"),
        (json.dumps({"text": "http://example.com/a.png"}), "no image"),
        (json.dumps({"text": "a picture of a cat"}), "no image"),
        (json.dumps({"dataUri": 42}), "no image"),
    ],
)
def test_parse_output_rejects(text: str, fragment: str) -> None:
    with pytest.raises(ScriptError, match=fragment):
        parse_output(text)
