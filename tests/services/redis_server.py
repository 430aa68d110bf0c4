"""A real `redis-server` (Debian's package) on a free loopback port, in a temp dir, stopped afterwards."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_redis_server() -> str:
    """Path of redis-server; skips the test where it is missing, except in CI (`.ci/run` installs it and sets
    CASCADE_REQUIRE_SERVICES=1), where the test fails instead."""
    path = shutil.which("redis-server")
    if path is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI") or os.environ.get("CASCADE_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    binary = require_redis_server()
    with tempfile.TemporaryDirectory(prefix="cascade-redis-") as tmp:
        server = _start(binary, tmp)
        try:
            yield server
        finally:
            server.stop()


def _start(binary: str, folder: str) -> RedisServer:
    # A free port can be taken by someone else before redis binds it: try a few.
    for _ in range(5):
        port = free_port()
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", folder, "--save", "", "--appendonly", "no"]
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server = RedisServer(port, process)
        deadline = time.monotonic() + 20
        while process.poll() is None and time.monotonic() < deadline:
            if _ping(port) and process.poll() is None:  # ours answered, not another server on that port
                return server
            time.sleep(0.05)
        server.stop()
    raise RuntimeError("redis-server did not start")
