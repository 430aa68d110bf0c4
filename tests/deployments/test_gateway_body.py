"""The request body as a hostile client sends it: slowly."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest
from ray import serve

from cascade.config import Limits
from tests.fakes.backends import run_gateway

BODY = b'{"prompt": "a slow drip", "size": "64x64"}'


@pytest.fixture(scope="module")
def gateway(serve_url: str, tmp_path_factory: pytest.TempPathFactory):
    run_gateway("drip", {}, {}, tmp_path_factory.mktemp("drip"), limits=Limits(body_read_timeout_s=2.0))
    yield f"{serve_url}/drip"
    serve.delete("drip")


def _drip(url: str, body: bytes, every_s: float) -> tuple[int, bytes, float]:
    """Send the headers, then the body one byte every `every_s`; (status, response, seconds until it came)."""
    parts = urlsplit(url)
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        head = (
            f"POST {parts.path}/api/generate/image HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode())
        sock.setblocking(False)
        answer = b""
        for byte in body:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(every_s)
            try:
                answer += sock.recv(65536)
            except BlockingIOError:
                continue
            if answer:
                break
        sock.setblocking(True)
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return status, answer, time.monotonic() - started


def test_a_body_dripped_one_byte_per_half_second_gets_408(gateway: str) -> None:
    status, answer, took = _drip(gateway, BODY, every_s=0.5)

    assert status == 408, answer[:300]
    assert b'"field":"body"' in answer.replace(b" ", b"")
    # Answered at the deadline, long before the 21 s the whole drip would take.
    assert took < 8


def test_a_body_that_arrives_in_time_is_served(gateway: str) -> None:
    r = httpx.post(f"{gateway}/api/generate/image", content=BODY, headers={"content-type": "application/json"})

    assert r.status_code == 200 and r.json()["backend"] == "svg"


def test_the_default_body_deadline_is_ten_seconds() -> None:
    assert Limits().body_read_timeout_s == 10.0
