"""`python -m models.remote` as a real child process against the fake provider server: keys only from its env."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from PIL import Image

from models.datauri import decode_data_uri
from models.remote.__main__ import main
from models.remote.config import BASE_URL_ENV, KEY_ENV
from tests.fakes.providers import FakeProviders, refusal

ROOT = Path(__file__).resolve().parents[3]


def _env(**extra: str) -> dict[str, str]:
    """This process's environment without any provider key or base URL (a developer's real keys must not leak
    into the test, nor reach a real provider), plus `extra`."""
    drop = {var for variables in KEY_ENV.values() for var in variables} | set(BASE_URL_ENV.values())
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def _run(request: dict[str, Any], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "models.remote"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )


def _openai_env(fake: FakeProviders, key: str | None = None) -> dict[str, str]:
    return _env(OPENAI_API_KEY=key or fake.keys["openai"], OPENAI_BASE_URL=fake.openai_base)


def test_the_script_skips_providers_without_keys_and_answers_from_openai(fake: FakeProviders) -> None:
    key = fake.keys["openai"]
    request = {"prompt": "a lighthouse at dusk", "size": "101x77", "seed": 5, "providers": ["gemini", "fal", "openai"]}

    proc = _run(request, _openai_env(fake))

    assert proc.returncode == 0, proc.stderr[-2000:]
    answer = json.loads(proc.stdout)
    mime, data = decode_data_uri(answer["dataUri"])
    assert mime == "image/png"
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (101, 77)
    assert answer["provider"] == "openai:gpt-image-2.6-flare"
    assert (answer["width"], answer["height"]) == (101, 77)
    gemini, fal, openai = answer["attempts"]
    assert gemini["backend"] == "remote:gemini" and gemini["outcome"] == "skipped"
    assert gemini["error"] == "no GOOGLE_API_KEY or GEMINI_API_KEY set"
    assert fal["backend"] == "remote:fal" and fal["outcome"] == "skipped"
    assert fal["error"] == "no FAL_KEY or FAL_API_KEY set"
    assert openai["backend"] == "remote:openai" and openai["outcome"] == "ok" and openai["error"] is None
    assert all(isinstance(a["elapsed_ms"], float) for a in answer["attempts"])
    # The key came from the environment and was used, but is printed nowhere.
    [sent] = fake.received("openai")
    assert sent.headers["authorization"] == f"Bearer {key}"
    assert sent.body["prompt"] == "a lighthouse at dusk"
    assert key not in proc.stdout and key not in proc.stderr
    assert fake.received("gemini") == [] and fake.received("fal") == []


def test_by_default_openai_is_tried_first(fake: FakeProviders) -> None:
    proc = _run({"prompt": "a cat", "size": "64x64"}, _openai_env(fake))

    assert proc.returncode == 0, proc.stderr[-2000:]
    answer = json.loads(proc.stdout)
    assert [(a["backend"], a["outcome"]) for a in answer["attempts"]] == [("remote:openai", "ok")]


def test_a_refusal_is_an_error_with_the_attempts_and_exit_1(fake: FakeProviders) -> None:
    key = fake.keys["openai"]
    fake.always("openai", refusal("openai"))

    proc = _run({"prompt": "something forbidden", "size": "64x64"}, _openai_env(fake))

    assert proc.returncode == 1
    answer = json.loads(proc.stdout)
    assert set(answer) == {"error", "attempts"}
    assert answer["error"].startswith("refused by openai:gpt-image-2.6-flare")
    assert "safety system" in answer["error"]
    [attempt] = answer["attempts"]
    assert attempt["backend"] == "remote:openai" and attempt["outcome"] == "error"
    assert attempt["error"].startswith("refused")
    assert answer["error"] in proc.stderr
    assert key not in proc.stdout and key not in proc.stderr
    # A refusal ends the chain: the next providers are not asked to launder the prompt.
    assert fake.received("gemini") == [] and fake.received("fal") == []


def test_a_wrong_key_fails_without_being_printed(fake: FakeProviders) -> None:
    # The fake echoes a rejected key in its error body, as the real API partly does.
    wrong = "sk-wrong-key-that-must-stay-secret-0123456789"

    proc = _run({"prompt": "a cat", "size": "64x64"}, _openai_env(fake, key=wrong))

    assert proc.returncode == 1
    answer = json.loads(proc.stdout)
    assert answer["error"] == "every remote provider failed"
    openai, gemini, fal = answer["attempts"]
    assert openai["outcome"] == "error" and openai["error"].startswith("auth: HTTP 401")
    assert gemini["outcome"] == fal["outcome"] == "skipped"
    assert wrong not in proc.stdout and wrong not in proc.stderr


def test_no_key_at_all_fails_with_every_skip_listed() -> None:
    proc = _run({"prompt": "a cat", "providers": ["fal", "gemini"]}, _env())

    assert proc.returncode == 1
    answer = json.loads(proc.stdout)
    assert answer["error"] == "no remote provider could be tried"
    assert [(a["backend"], a["outcome"]) for a in answer["attempts"]] == [
        ("remote:fal", "skipped"),
        ("remote:gemini", "skipped"),
    ]


def test_bad_requests_exit_2_before_any_provider_is_asked(fake: FakeProviders) -> None:
    for request, fragment in [
        ({"prompt": "a cat", "providers": ["openai", "midjourney"]}, "unknown provider 'midjourney'"),
        ({"prompt": "a cat", "providers": ["openai", "openai"]}, "listed twice"),
        ({"prompt": "a cat", "providers": []}, "providers"),
        ({"prompt": "a cat", "providers": "openai"}, "providers"),
        ({"prompt": "a cat", "size": "big"}, "size"),
        ({"prompt": "a cat", "timeout_s": 0}, "timeout_s"),
        ({"prompt": "a cat", "seed": "7"}, "seed"),
        ({"size": "64x64"}, "prompt"),
    ]:
        out, err = io.StringIO(), io.StringIO()
        # In-process (the subprocess tests above cover the entry point): these never reach the environment.
        with contextlib.redirect_stderr(err):
            assert main(io.StringIO(json.dumps(request)), out) == 2, request
        answer = json.loads(out.getvalue())
        assert set(answer) == {"error"} and fragment in answer["error"], (request, answer)
    assert fake.received() == []
