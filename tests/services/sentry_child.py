"""Stands for one replica with Sentry on: run as `python -m tests.services.sentry_child`, with SENTRY_DSN and
the provider keys in its environment, `CHILD_API_KEY` (a Cascade key to send as a client would) and
`CHILD_SEND_PROMPTS`. It fails in every way the gateway and backends can, then flushes and exits.

A child process, because sentry-sdk's integrations patch Ray and Starlette for the whole process, for good.
"""

from __future__ import annotations

import base64
import logging
import os
import sys
from urllib.parse import quote

from fastapi import FastAPI, Request
from starlette.testclient import TestClient

from cascade import observe
from cascade.access_config import SentryConfig
from cascade.types import Attempt

PROMPT = "a lighthouse made of marmalade at dawn"


def main() -> int:
    api_key = os.environ["CHILD_API_KEY"]
    key_id = api_key[4:16]
    openai_key, gemini_key = os.environ["OPENAI_API_KEY"], os.environ["GEMINI_API_KEY"]
    config = SentryConfig(traces_sample_rate=1.0, send_prompts=os.environ.get("CHILD_SEND_PROMPTS") == "1")
    if not observe.init_sentry(config, component="gateway"):
        print("sentry did not start", file=sys.stderr)
        return 2

    app = FastAPI()

    @app.post("/api/generate/image")
    async def generate(request: Request) -> dict[str, str]:
        body = await request.json()
        with observe.request_scope(request_id="req-123", key_id=key_id, prompt=body["prompt"]):
            observe.report_attempt(
                Attempt("qwen_image", "timeout", "no answer in 120.0 s", 120004.0), request_id="req-123", key_id=key_id
            )
            observe.report_attempt(
                Attempt("remote", "error", f"openai 401 for key {openai_key} on '{body['prompt']}'", 812.0),
                request_id="req-123",
                key_id=key_id,
            )
            observe.report_attempt(Attempt("pillow", "busy", None, 0.1), request_id="req-123", key_id=key_id)
            logging.getLogger("ray.serve").error(
                "provider call failed: GET https://generativelanguage.googleapis.com/v1beta/models?key=%s headers=%s",
                quote(gemini_key),
                {"x-goog-api-key": gemini_key, "Authorization": f"Bearer {openai_key}"},
            )
            logging.getLogger("cascade.limits").warning("limit store %s unreachable", os.environ["CASCADE_REDIS_URL"])
            packed = [base64.b64encode((pad + gemini_key).encode()).decode() for pad in ("", "u", "us")]
            try:
                raise RuntimeError(f"bad upstream reply {packed} for {request.headers.get('authorization')}")
            except RuntimeError as exc:
                observe.capture_failure(exc, request_id="req-123", key_id=key_id, backend="remote")
            # Unhandled: the Starlette/FastAPI integration reports it, request headers included.
            raise ValueError(f"unhandled, with the key {api_key} and {os.environ['FAL_KEY']} in the message")

    client = TestClient(app, raise_server_exceptions=False)
    reply = client.post(
        f"/api/generate/image?key={api_key}",
        json={"prompt": PROMPT, "size": "64x64"},
        headers={"authorization": f"Bearer {api_key}", "x-api-key": api_key, "cookie": f"session={openai_key}"},
    )
    import sentry_sdk

    sentry_sdk.flush(timeout=20)
    print(reply.status_code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
