"""The script runner: real child processes speaking the seed's JSON protocol, their failures, and their cleanup."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import pickle
import sys
import textwrap
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

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
    secret_values,
)


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


PNG = _png()
PNG_URI = encode_data_uri("image/png", PNG)
PAYLOAD = {"prompt": "a friendly robot", "size": "4x3", "seed": 1}
SECRETS = {
    "OPENAI_API_KEY": "sk-proj-OPENAI/0123456789+abcdef",
    "GEMINI_API_KEY": "AIzaGEMINI-0123456789abcdefgh",
    "GOOGLE_API_KEY": "AIzaGOOGLE-0123456789abcdefgh",
    "FAL_KEY": "fal-key:0123456789/abcdef+xyz",
    "FAL_API_KEY": "fal-api-0123456789abcdefgh",
}


def _script(tmp_path: Path, body: str, name: str = "child.py") -> list[str]:
    path = tmp_path / name
    path.write_text("import json, os, sys, time, subprocess\n" + textwrap.dedent(body))
    return [sys.executable, str(path)]


def _run(argv: list[str], payload: dict[str, Any] = PAYLOAD, **kwargs: Any) -> ScriptOutput:
    kwargs.setdefault("timeout_s", 30.0)
    return asyncio.run(run_script(argv, payload, **kwargs))


def _dead(pid: int) -> bool:
    """Gone, or a zombie: killed and waiting for a parent (init, here) to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] in "ZX"


def _gone(pid: int, *, group: bool, within_s: float = 10.0) -> bool:
    """True once nothing alive answers to the pid (or process group)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not group and _dead(pid):
            return True
        try:
            os.killpg(pid, 0) if group else os.kill(pid, 0)
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
        # A new session: the group kill cannot reach it, and it keeps our stdout open.
        escaped = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], start_new_session=True)
        open({str(record)!r}, 'w').write(str(escaped.pid))
        print(json.dumps({{'dataUri': {PNG_URI!r}}}), flush=True)
    """
    assert _run(_script(tmp_path, body), timeout_s=60.0).data_uri == PNG_URI
    # ...and it does not outlive the run either.
    assert _gone(int(record.read_text()), group=False)


def test_a_grandchild_that_called_setsid_is_killed_at_the_timeout(tmp_path: Path) -> None:
    record = tmp_path / "pids.json"
    body = f"""
        json.load(sys.stdin)
        # setsid(): its own session and group, out of reach of a kill of ours.
        escaped = subprocess.Popen([sys.executable, '-c', 'import os, time; os.setsid(); time.sleep(600)'])
        time.sleep(0.5)
        with open({str(record)!r}, 'w') as f:
            json.dump({{'pid': os.getpid(), 'escaped': escaped.pid, 'sid': os.getsid(escaped.pid)}}, f)
        time.sleep(600)
    """
    with pytest.raises(ScriptTimeout):
        _run(_script(tmp_path, body), timeout_s=3.0)

    pids = json.loads(record.read_text())
    assert pids["sid"] == pids["escaped"]  # it really left the child's session
    assert _gone(pids["pid"], group=False)
    assert _gone(pids["escaped"], group=False)


def test_a_double_forked_daemon_is_killed_when_the_script_ends(tmp_path: Path) -> None:
    record = tmp_path / "daemon.txt"
    daemon = textwrap.dedent(f"""
        import os, time
        if os.fork():
            os._exit(0)
        os.setsid()
        if os.fork():
            os._exit(0)
        open({str(record)!r}, 'w').write(str(os.getpid()))
        time.sleep(600)
    """)
    body = f"""
        subprocess.run([sys.executable, '-c', {daemon!r}], check=True)
        while not os.path.exists({str(record)!r}) or not open({str(record)!r}).read():
            time.sleep(0.05)
        print(json.dumps({{'dataUri': {PNG_URI!r}}}), flush=True)
    """
    assert _run(_script(tmp_path, body), timeout_s=60.0).data_uri == PNG_URI

    # Reparented away from the child, in a session of its own: found by the run marker it inherited.
    assert _gone(int(record.read_text()), group=False)


def test_the_child_sees_only_allowlisted_variables_and_no_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", "postgres://admin:hunter2@db/prod")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    seen = tmp_path / "env.json"
    body = f"""
        json.dump(dict(os.environ), open({str(seen)!r}, 'w'))
        print(json.dumps({{'dataUri': {PNG_URI!r}}}))
    """
    _run(_script(tmp_path, body))

    env = json.loads(seen.read_text())
    assert not set(SECRETS) & set(env)
    assert "DATABASE_URL" not in env
    assert env["LC_ALL"] == "C.UTF-8" and env["PYTHONHASHSEED"] == "0" and env["PATH"] == os.environ["PATH"]
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert set(env) <= {"PATH", "HOME", "LANG", "CUDA_VISIBLE_DEVICES", "CASCADE_SCRIPT_RUN"} | {
        k for k in env if k.startswith(("LC_", "PYTHON"))
    }


def test_named_variables_and_secrets_are_passed(tmp_path: Path) -> None:
    base = {"PATH": os.environ["PATH"], "OPENAI_API_KEY": SECRETS["OPENAI_API_KEY"], "REGION": "eu", "OTHER": "x"}
    env = build_env(base, pass_env=["REGION"], secret_env=["OPENAI_API_KEY"], extra={"MODE": "fast"})

    assert env == {
        "PATH": os.environ["PATH"],
        "OPENAI_API_KEY": SECRETS["OPENAI_API_KEY"],
        "REGION": "eu",
        "MODE": "fast",
        "CUDA_VISIBLE_DEVICES": "",
    }


@pytest.mark.parametrize("form", ["plain", "url", "base64"])
def test_secrets_are_masked_in_stderr_and_error_text(tmp_path: Path, form: str) -> None:
    key = SECRETS["FAL_KEY"]
    shown = {"plain": key, "url": quote(key, safe=""), "base64": base64.b64encode(key.encode()).decode()}[form]
    loud = _script(tmp_path, f"sys.stderr.write('auth failed for ' + {shown!r}); sys.exit(3)\n", "loud.py")
    chatty = _script(tmp_path, f"print(json.dumps({{'error': 'bad key ' + {shown!r}}}))\n", "chatty.py")
    garbled = _script(tmp_path, f"print('not json ' + {shown!r})\n", "garbled.py")

    for argv in (loud, chatty, garbled):
        with pytest.raises(ScriptError) as info:
            _run(argv, secrets=[key, None])
        assert shown not in str(info.value) and key not in str(info.value)
        assert "***" in str(info.value)


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
    base = {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "3", "FAL_KEY": "f" * 20, "HOSTNAME": "box"}
    assert build_env(base, None) == {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": ""}
    assert build_env(base, "0")["CUDA_VISIBLE_DEVICES"] == "0"
    assert base["CUDA_VISIBLE_DEVICES"] == "3"  # the caller's mapping is left alone


def test_secret_values_cover_known_keys_and_configured_secrets() -> None:
    base = {"OPENAI_API_KEY": "sk-1", "GOOGLE_API_KEY": "g-2", "MY_TOKEN": "t-3", "PATH": "/bin"}

    assert set(secret_values(base, ["MY_TOKEN"], {"OTHER_SECRET": "o-4"})) == {"sk-1", "g-2", "t-3"}
    assert set(secret_values(base, ["OTHER_SECRET"], {"OTHER_SECRET": "o-4"})) == {"sk-1", "g-2", "o-4"}


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
