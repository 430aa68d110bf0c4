"""Sentry end to end: the real sentry-sdk in a child process (a replica) sends to a loopback server posing as
the DSN's ingest; the events carry our tags and no envelope holds a secret in any encoding."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from cascade import observe
from cascade.access_config import SentryConfig
from cascade.keys import tokens
from tests.services.secret_scan import leaks
from tests.services.sentry_child import PROMPT
from tests.services.sentry_ingest import Ingest, sentry_ingest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ingest() -> Iterator[Ingest]:
    with sentry_ingest() as server:
        yield server


def run_replica(ingest: Ingest, *, send_prompts: bool) -> dict[str, str]:
    api_key = tokens.generate().key
    made = {
        "OPENAI_API_KEY": "sk-proj-" + secrets.token_urlsafe(36),
        # No recognisable shape: only knowing the value from the environment can catch it.
        "GEMINI_API_KEY": secrets.token_urlsafe(30),
        "FAL_KEY": f"{uuid.uuid4()}:{secrets.token_hex(16)}",
        "REDIS_PASSWORD": secrets.token_urlsafe(18),
    }
    env = {
        **os.environ,
        **made,
        "CASCADE_REDIS_URL": f"redis://:{made['REDIS_PASSWORD']}@127.0.0.1:1/0",
        "SENTRY_DSN": ingest.dsn(),
        "CHILD_API_KEY": api_key,
        "CHILD_SEND_PROMPTS": "1" if send_prompts else "0",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.services.sentry_child"], cwd=ROOT, env=env, capture_output=True, timeout=180
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert done.stdout.decode().strip().endswith("500")
    # The API key's secret part (its id is public and is meant to be there, as the key_id tag).
    return {**made, "API_KEY_SECRET": api_key[len("csk_") + 13 :], "KEY_ID": api_key[4:16]}


def by_message(events: list[dict[str, Any]], text: str) -> dict[str, Any]:
    def message(e: dict[str, Any]) -> str:
        values = e.get("exception", {}).get("values", [])
        return " ".join([str(e.get("message", "")), str(e.get("logentry", {})), *(str(v.get("value")) for v in values)])

    matches = [e for e in events if text in message(e)]
    assert len(matches) == 1, [message(e) for e in events]
    return matches[0]


def test_events_arrive_tagged_and_no_envelope_holds_a_secret_or_the_prompt(ingest: Ingest) -> None:
    made = run_replica(ingest, send_prompts=False)
    key_id = made.pop("KEY_ID")
    assert ingest.envelopes, "nothing reached the ingest"
    for envelope in ingest.envelopes:
        assert envelope.path == "/api/1/envelope/"
        for name, secret in made.items():
            assert not leaks(envelope.raw, secret), (name, leaks(envelope.raw, secret))
        assert PROMPT.encode() not in envelope.raw and quote_plus(PROMPT).encode() not in envelope.raw

    events = ingest.events()
    request_tags = {"request_id": "req-123", "key_id": key_id, "component": "gateway"}
    timeout = by_message(events, "qwen_image timeout")
    assert timeout["tags"] == {**request_tags, "backend": "qwen_image", "outcome": "timeout"}
    assert timeout["level"] == "warning" and timeout["release"] == observe.release() == "cascade@0.1.0"
    remote = by_message(events, "remote error")
    assert remote["tags"]["outcome"] == "error" and "[Filtered]" in remote["message"]
    assert "[prompt]" in remote["message"]
    assert not [e for e in events if "pillow" in str(e.get("message"))], "busy is not an error"
    logged = by_message(events, "provider call failed")
    assert logged["tags"]["request_id"] == "req-123"
    failure = by_message(events, "bad upstream reply")
    assert failure["tags"] == {**request_tags, "backend": "remote", "outcome": "error"}
    unhandled = by_message(events, "unhandled, with the key")
    assert unhandled["tags"] == {**request_tags, "outcome": "error"}
    assert len(events) == 5  # the framework's copy of the unhandled error was dropped as a duplicate
    headers = {k.lower(): v for k, v in unhandled.get("request", {}).get("headers", {}).items()}
    if headers:  # what the Starlette integration attached, if anything, is scrubbed
        assert headers.get("authorization") in (None, "[Filtered]") and headers.get("x-api-key") in (None, "[Filtered]")

    transactions = ingest.transactions()
    assert [t["transaction"] for t in transactions] == ["/api/generate/image"]


def test_prompts_are_sent_only_when_allowed_and_secrets_never(ingest: Ingest) -> None:
    made = run_replica(ingest, send_prompts=True)
    made.pop("KEY_ID")
    raw = b"".join(e.raw for e in ingest.envelopes)
    for name, secret in made.items():
        assert not leaks(raw, secret), name
    remote = by_message(ingest.events(), "remote error")
    assert PROMPT in remote["message"]
    assert by_message(ingest.events(), "qwen_image timeout")["contexts"]["generation"] == {"prompt": PROMPT}


def test_without_a_dsn_nothing_starts_and_every_call_is_a_no_op() -> None:
    assert observe.init_sentry(SentryConfig(), component="gateway", environ={}) is False
    assert not observe.enabled()
    with observe.request_scope(request_id="r", key_id="k", prompt="p"):
        observe.capture_failure(RuntimeError("x"), request_id="r")
