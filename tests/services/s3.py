"""A real S3 HTTP endpoint on loopback: moto's standalone server (`moto_server`, from `moto[server]`). Clients talk
to it with boto3 exactly as to AWS, MinIO or R2: signed requests, path-style addressing, a custom endpoint."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binary() -> str | None:
    beside = Path(sys.executable).parent / "moto_server"
    return str(beside) if beside.exists() else shutil.which("moto_server")


class MotoServer:
    def __init__(self) -> None:
        exe = binary()
        if exe is None:
            raise FileNotFoundError("moto_server not found (pip install 'moto[server]')")
        self.exe, self.port = exe, _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        """What a client needs, in the standard AWS variables (moto takes any credentials)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "cascade-test",
            "AWS_SECRET_ACCESS_KEY": "cascade-test-secret",
            "AWS_REGION": "us-east-1",
        }

    def start(self) -> MotoServer:
        self._proc = subprocess.Popen(
            [self.exe, "-H", "127.0.0.1", "-p", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self._proc.returncode}")
            try:
                httpx.get(f"{self.endpoint}/moto-api/", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise TimeoutError("moto_server did not start within 60 s")

    def create_bucket(self) -> str:
        import boto3

        name = "cascade-" + secrets.token_hex(6)
        env = self.env
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=env["AWS_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        client.create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
