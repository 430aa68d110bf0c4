"""A fake OpenAI + Gemini + fal.ai server on loopback: real HTTP, the vendors' wire formats, scripted faults.

Every request is recorded (method, path, headers, JSON body). Each provider answers from its script: queued steps
are used first, one per request, then the provider's `default` step. Use as a context manager or call `close()`.

    with FakeProviders() as fake:
        fake.script("openai", reply(429, openai_error("rate_limit_exceeded", "requests"), {"retry-after": "1"}))
        cfg = provider_config("openai", base_url=fake.openai_base, api_key=fake.keys["openai"])
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import socket
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from PIL import Image, ImageDraw

from tests.fakes.provider_replies import (
    FAL_REFUSAL_DETAIL,
    GEMINI_QUOTA_MESSAGE,
    HANG,
    OK,
    RESET,
    Step,
    fal_infra_error,
    fal_locked,
    fal_refusal,
    fal_toolkit_error,
    gemini_daily_quota,
    gemini_error,
    gemini_no_image,
    gemini_quota_failure,
    gemini_retry_info,
    http_date,
    no_image,
    openai_error,
    openai_with_verdict,
    rate_limited,
    refusal,
    reply,
    server_error,
)

# Tests build their scripts from the replies module through this one.
__all__ = [
    "DRAFT_COLOUR",
    "FAL_REFUSAL_DETAIL",
    "FINAL_COLOUR",
    "GEMINI_QUOTA_MESSAGE",
    "HANG",
    "OK",
    "RESET",
    "FakeProviders",
    "Received",
    "Step",
    "fal_infra_error",
    "fal_locked",
    "fal_refusal",
    "fal_toolkit_error",
    "gemini_daily_quota",
    "gemini_error",
    "gemini_no_image",
    "gemini_quota_failure",
    "gemini_retry_info",
    "http_date",
    "no_image",
    "openai_error",
    "openai_with_verdict",
    "png_bytes",
    "rate_limited",
    "refusal",
    "reply",
    "server_error",
]

# Gemini 3 image models' 1K output for each aspect ratio; 2K and 4K are twice and four times each side (the
# resolution table of ai.google.dev/gemini-api/docs/image-generation for Gemini 3 Pro Image). The extreme ratios
# of Nano Banana 2/2.1 (1:4 4:1 1:8 8:1) are not in that table: ours hold ~1 MP on a 16-pixel grid.
GEMINI_1K_SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "2:3": (848, 1264),
    "3:2": (1264, 848),
    "3:4": (896, 1200),
    "4:3": (1200, 896),
    "4:5": (928, 1152),
    "5:4": (1152, 928),
    "9:16": (768, 1376),
    "16:9": (1376, 768),
    "21:9": (1584, 672),
    "1:4": (512, 2048),
    "4:1": (2048, 512),
    "1:8": (368, 2896),
    "8:1": (2896, 368),
}
GEMINI_TIER_SCALE = {"1K": 1, "2K": 2, "4K": 4}
# Models the fake Gemini serves, and the ratios each accepts (catalogue.yaml); anything else is a 404 NOT_FOUND.
GEMINI_MODELS: dict[str, frozenset[str]] = {
    "gemini-nano-banana-2.1": frozenset(GEMINI_1K_SIZES),
    "gemini-3.1-flash-image": frozenset(GEMINI_1K_SIZES),
    "gemini-3-pro-image": frozenset(list(GEMINI_1K_SIZES)[:10]),
    "gemini-3.1-flash-lite-image": frozenset(list(GEMINI_1K_SIZES)[:10]),
}
FAL_SIZES: dict[str, tuple[int, int]] = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
# The GPT image models the fake OpenAI serves; the retired ones answer 404 model_not_found, as the real API does
# after a shutdown ("The model `dall-e-3` has been deprecated", quoted in dev.to/flarecanary, 2026-05).
OPENAI_MODELS = frozenset({"gpt-image-2.6-flare", "gpt-image-2.6-sunburst", "gpt-image-2"})
OPENAI_RETIRED = frozenset({"dall-e-2", "dall-e-3", "gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5"})
OPENAI_QUALITIES = frozenset({"low", "medium", "high", "xhigh", "max", "auto"})


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]  # lower-case names
    body: Any  # parsed JSON, or None
    provider: str  # "openai" | "gemini" | "fal" | "files" | "other"


FINAL_COLOUR = (40, 120, 200)
DRAFT_COLOUR = (230, 40, 40)


def _gpt_image_size(size: str) -> tuple[int, int] | None:
    if size == "auto":
        return 1024, 1024
    try:
        w, h = (int(v) for v in size.split("x"))
    except ValueError:
        return None
    ok = w % 16 == 0 and h % 16 == 0 and max(w, h) <= 3840 and max(w / h, h / w) <= 3
    return (w, h) if ok and 655_360 <= w * h <= 8_294_400 else None


def png_bytes(width: int, height: int, color: tuple[int, int, int] = FINAL_COLOUR) -> bytes:
    img = Image.new("RGB", (width, height), color)
    # A mark off-centre, so a crop or a flip would show.
    ImageDraw.Draw(img).rectangle((0, 0, width // 4, height // 4), fill=(250, 200, 30))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


class FakeProviders:
    """The fake server. `keys` are the API keys it accepts; a wrong key gets each vendor's auth error."""

    def __init__(self, keys: Mapping[str, str] | None = None) -> None:
        self.keys: dict[str, str] = dict(
            keys
            or {
                "openai": "sk-test-OPENAI-0123456789abcdef",
                "gemini": "AIzaTest-GEMINI-0123456789abcdef",
                "fal": "fal-test-FAL-0123456789abcdef",
            }
        )
        self.requests: list[Received] = []
        self.files: dict[str, tuple[int, str, bytes, bool]] = {}
        self.redirects: dict[str, str] = {}
        self.defaults: dict[str, Step] = {"openai": OK, "gemini": OK, "fal": OK}
        self._queues: dict[str, list[Step]] = {"openai": [], "gemini": [], "fal": []}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    # Addresses -----------------------------------------------------------------------------------------------
    @property
    def host(self) -> str:
        """host:port, for `allow_http_hosts`."""
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}"

    @property
    def openai_base(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def gemini_base(self) -> str:
        return f"{self.base_url}/v1beta"

    @property
    def fal_base(self) -> str:
        return self.base_url

    # Scripting -----------------------------------------------------------------------------------------------
    def script(self, provider: str, *steps: Step, then: Step | None = None) -> None:
        """Queue `steps` for the next requests to `provider`; `then` replaces its default afterwards."""
        with self._lock:
            self._queues[provider].extend(steps)
            if then is not None:
                self.defaults[provider] = then

    def always(self, provider: str, step: Step) -> None:
        self.script(provider, then=step)

    def next_step(self, provider: str) -> Step:
        with self._lock:
            queue = self._queues.get(provider)
            if queue:
                return queue.pop(0)
            return self.defaults.get(provider, OK)

    def add_file(
        self, mime: str, data: bytes, ext: str = "png", *, declare_length: bool = True, status: int = 200
    ) -> str:
        """Serve `data` at a new URL; without `declare_length` the body just ends when the connection closes."""
        name = f"img{next(self._ids)}.{ext}"
        with self._lock:
            self.files[name] = (status, mime, data, declare_length)
        return f"{self.base_url}/files/{name}"

    def add_redirect(self, location: str) -> str:
        """A URL that answers 302 to `location`."""
        name = f"moved{next(self._ids)}"
        with self._lock:
            self.redirects[name] = location
        return f"{self.base_url}/files/{name}"

    def received(self, provider: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if provider is None or r.provider == provider]

    # Lifecycle -----------------------------------------------------------------------------------------------
    def close(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeProviders:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeProviders

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Resets and hangs break sockets on purpose; their tracebacks would only be noise.
        pass


def _provider_of(path: str) -> str:
    if path.startswith("/v1/images/"):
        return "openai"
    if path.startswith("/v1beta/models/"):
        return "gemini"
    if path.startswith("/files/"):
        return "files"
    if path.startswith("/fal-ai/"):
        return "fal"
    return "other"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # Plumbing ------------------------------------------------------------------------------------------------
    def _record(self, method: str) -> Received:
        parts = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        received = Received(
            method=method,
            path=parts.path,
            query=parts.query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            provider=_provider_of(parts.path),
        )
        fake = self.server.fake
        with fake._lock:
            fake.requests.append(received)
        return received

    def _send(
        self, status: int, body: Any, headers: Mapping[str, str] | None = None, *, declare_length: bool = True
    ) -> None:
        if isinstance(body, bytes):
            data, ctype = body, "application/octet-stream"
        else:
            data, ctype = json.dumps(body).encode(), "application/json"
        headers = dict(headers or {})
        self.send_response(status)
        if not any(k.lower() == "content-type" for k in headers):
            self.send_header("Content-Type", ctype)
        for name, value in headers.items():
            self.send_header(name, value)
        if declare_length:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _reset(self) -> None:
        # SO_LINGER 0 makes close() send RST instead of FIN: the client sees "connection reset".
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    # Verbs ---------------------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        req = self._record("GET")
        if req.provider == "files":
            name = req.path.removeprefix("/files/")
            fake = self.server.fake
            if name in fake.redirects:
                self._send(302, b"", {"Location": fake.redirects[name]})
                return
            entry = fake.files.get(name)
            if entry is None:
                self._send(404, b"<Error><Code>BlobNotFound</Code></Error>", {"Content-Type": "application/xml"})
                return
            status, mime, data, declare_length = entry
            self._send(status, data, {"Content-Type": mime}, declare_length=declare_length)
            return
        self._send(404, {"detail": "not found"})

    def do_POST(self) -> None:
        req = self._record("POST")
        fake = self.server.fake
        if req.provider not in ("openai", "gemini", "fal"):
            self._send(404, {"detail": "not found"})
            return
        step = fake.next_step(req.provider)
        if step.action == "reset":
            self._reset()
            return
        if step.action == "hang":
            fake.stopping.wait(60)
            self._reset()
            return
        if step.action == "reply":
            self._send(step.status, step.body, step.headers)
            return
        handler = {"openai": self._openai, "gemini": self._gemini, "fal": self._fal}[req.provider]
        handler(req)

    # Providers, answering as the real ones do ---------------------------------------------------------------
    def _openai(self, req: Received) -> None:
        fake = self.server.fake
        auth = req.headers.get("authorization", "")
        if auth != f"Bearer {fake.keys['openai']}":
            # The real API echoes (part of) the key it got; the fake echoes all of it to test our scrubbing.
            msg = f"Incorrect API key provided: {auth.removeprefix('Bearer ')}."
            self._send(401, openai_error("invalid_api_key", "invalid_request_error", msg))
            return
        body = req.body if isinstance(req.body, dict) else {}
        model = str(body.get("model") or "")
        if model in OPENAI_RETIRED:
            msg = f"The model `{model}` has been deprecated. Learn more: https://platform.openai.com/docs/deprecations"
            self._send(404, openai_error("model_not_found", "invalid_request_error", msg, "model"))
            return
        if model not in OPENAI_MODELS:
            msg = f"The model `{model}` does not exist or you do not have access to it."
            self._send(404, openai_error("model_not_found", "invalid_request_error", msg, "model"))
            return
        if not body.get("prompt"):
            self._send(400, openai_error(None, "invalid_request_error", "Missing prompt", "prompt"))
            return
        for name in ("response_format", "style"):
            if name in body:
                msg = f"Unknown parameter: '{name}'."
                self._send(400, openai_error("unknown_parameter", "invalid_request_error", msg, name))
                return
        if body.get("quality", "auto") not in OPENAI_QUALITIES:
            msg = f"Invalid value: '{body['quality']}'."
            self._send(400, openai_error("invalid_value", "invalid_request_error", msg, "quality"))
            return
        size = str(body.get("size") or "auto")
        dims = _gpt_image_size(size)
        if dims is None:
            # openai-python `image_generate_params.py` (gpt-image-2): sides divisible by 16, ratio 1:3..3:1,
            # at most 3840x2160, within the pixel bounds.
            msg = f"Invalid value: '{size}'. Width and height must be multiples of 16 within the supported limits."
            self._send(400, openai_error("invalid_value", "invalid_request_error", msg, "size"))
            return
        png = png_bytes(*dims)
        item = {"b64_json": base64.b64encode(png).decode(), "url": None, "revised_prompt": None}
        usage = {"total_tokens": 100, "input_tokens": 10, "output_tokens": 90}
        self._send(200, {"created": int(time.time()), "data": [item], "usage": usage})

    def _gemini(self, req: Received) -> None:
        fake = self.server.fake
        key = req.headers.get("x-goog-api-key", "")
        if key != fake.keys["gemini"]:
            details = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ]
            msg = f"API key not valid. Please pass a valid API key. (got {key})"
            self._send(400, gemini_error(400, "INVALID_ARGUMENT", msg, details))
            return
        model = req.path.removeprefix("/v1beta/models/").removesuffix(":generateContent")
        if not req.path.endswith(":generateContent") or model not in GEMINI_MODELS:
            msg = f"models/{model} is not found for API version v1beta, or is not supported for generateContent."
            self._send(404, gemini_error(404, "NOT_FOUND", msg))
            return
        body = req.body if isinstance(req.body, dict) else {}
        config = body.get("generationConfig") or {}
        image_config = config.get("imageConfig") or {}
        ratio = image_config.get("aspectRatio", "1:1")
        tier = image_config.get("imageSize", "1K")
        if ratio not in GEMINI_MODELS[model] or tier not in GEMINI_TIER_SCALE:
            self._send(400, gemini_error(400, "INVALID_ARGUMENT", f"Unsupported image config: {ratio} {tier}"))
            return
        w, h = (side * GEMINI_TIER_SCALE[tier] for side in GEMINI_1K_SIZES[ratio])
        # Gemini 3 image models think in pictures: up to two interim images, marked `"thought": true`, come
        # before the final one, which carries the thought signature (ai.google.dev image-generation guide,
        # "Thinking process"; google-genai `types.Part.thought` / `thought_signature`).
        parts: list[dict[str, Any]] = [{"text": "Planning the composition.", "thought": True}]
        for _ in range(2):
            draft = base64.b64encode(png_bytes(w // 2, h // 2, DRAFT_COLOUR)).decode()
            parts.append({"inlineData": {"mimeType": "image/png", "data": draft}, "thought": True})
        if "TEXT" in (config.get("responseModalities") or []):
            parts.append({"text": "Here is your image."})
        final = {"mimeType": "image/png", "data": base64.b64encode(png_bytes(w, h)).decode()}
        parts.append({"inlineData": final, "thoughtSignature": base64.b64encode(b"signature").decode()})
        candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
        usage = {"promptTokenCount": 10, "candidatesTokenCount": 1290, "totalTokenCount": 1300}
        self._send(200, {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model})

    def _fal(self, req: Received) -> None:
        fake = self.server.fake
        auth = req.headers.get("authorization", "")
        if auth != f"Key {fake.keys['fal']}":
            self._send(401, {"detail": f"Invalid credentials: {auth}"})
            return
        body = req.body if isinstance(req.body, dict) else {}
        size = body.get("image_size", "landscape_4_3")
        if isinstance(size, dict):
            w, h = int(size["width"]), int(size["height"])
        elif size in FAL_SIZES:
            w, h = FAL_SIZES[size]
        else:
            self._send(422, {"detail": [{"loc": ["body", "image_size"], "msg": "bad size", "type": "value_error"}]})
            return
        fmt = body.get("output_format", "jpeg")
        mime = "image/png" if fmt == "png" else "image/jpeg"
        img = Image.open(io.BytesIO(png_bytes(w, h)))
        buf = io.BytesIO()
        img.save(buf, format="PNG" if fmt == "png" else "JPEG")
        data = buf.getvalue()
        if body.get("sync_mode"):
            url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
        else:
            url = fake.add_file(mime, data, "png" if fmt == "png" else "jpg")
        seed = body.get("seed", 424242)
        self._send(
            200,
            {
                "images": [{"url": url, "width": w, "height": h, "content_type": mime}],
                "timings": {"inference": 0.12},
                "seed": seed,
                "has_nsfw_concepts": [False],
                "prompt": body.get("prompt", ""),
            },
        )
