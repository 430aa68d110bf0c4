"""A loopback HTTP server posing as Sentry's ingest: it keeps every envelope the real SDK posts to it.

Envelope format (Sentry developer docs, "Envelopes"): a JSON header line, then items, each a JSON item-header
line (`type`, optional `length` in bytes) followed by its payload and a newline. The SDK posts them to
`/api/<project>/envelope/`, gzip- or brotli-encoded (`Content-Encoding`).
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Envelope:
    path: str
    raw: bytes  # decoded body: what a scan for secrets must read
    header: dict[str, Any]
    items: list[tuple[dict[str, Any], bytes]]

    def payloads(self, kind: str) -> list[dict[str, Any]]:
        return [json.loads(body) for head, body in self.items if head.get("type") == kind]


def parse_envelope(path: str, raw: bytes) -> Envelope:
    lines = raw.split(b"\n", 1)
    header = json.loads(lines[0])
    rest = lines[1] if len(lines) > 1 else b""
    items = []
    while rest.strip():
        head_line, _, rest = rest.partition(b"\n")
        head = json.loads(head_line)
        if "length" in head:
            body, rest = rest[: head["length"]], rest[head["length"] :]
            rest = rest[1:] if rest.startswith(b"\n") else rest
        else:
            body, _, rest = rest.partition(b"\n")
        items.append((head, body))
    return Envelope(path, raw, header, items)


@dataclass
class Ingest:
    port: int
    envelopes: list[Envelope] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self.port}/1"

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [p for e in self.envelopes for p in e.payloads("event")]

    def transactions(self) -> list[dict[str, Any]]:
        with self.lock:
            return [p for e in self.envelopes for p in e.payloads("transaction")]


def _decode(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "br":
        import brotli  # only when the SDK found brotli installed, which is when it sends br

        return brotli.decompress(body)
    if encoding in ("", "identity"):
        return body
    raise ValueError(f"unexpected Content-Encoding {encoding!r}")


@contextmanager
def sentry_ingest() -> Iterator[Ingest]:
    ingest = Ingest(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            raw = _decode(body, self.headers.get("content-encoding", "").strip().lower())
            with ingest.lock:
                ingest.envelopes.append(parse_envelope(self.path, raw))
            reply = b"{}"
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ingest.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ingest
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
