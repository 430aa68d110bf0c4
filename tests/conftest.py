"""One Ray instance for the whole session (starting Ray costs seconds); Serve apps are deployed per module."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from tests.services.browser import Browser
from tests.services.postgres import PostgresServer
from tests.services.s3 import MotoServer

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def serve_url() -> Iterator[str]:
    """Base URL of a running Serve HTTP proxy on loopback, in a Ray with 8 logical CPUs and 1 logical GPU."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray
    from ray import serve

    # Replicas import test fakes (tests.fakes...) by name, so they need the project on their path.
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    # address="local": always a Ray of our own, never one some other process started on this machine.
    ray.init(
        address="local",
        num_cpus=8,
        num_gpus=1,
        include_dashboard=False,
        runtime_env={"env_vars": {"PYTHONPATH": pythonpath, "RAY_AUTH_MODE": "disabled"}},
        logging_level="WARNING",
    )
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


# --- real storage services, started by the tests themselves -------------------------------------------------------


def _start_or_skip(start: Callable[[], T], what: str) -> T:
    """A service the machine cannot run is a skip with the reason for a developer, and a failure in CI
    (CASCADE_REQUIRE_SERVICES=1, set by .ci/run), where every test must run."""
    try:
        return start()
    except FileNotFoundError as exc:
        if os.environ.get("CASCADE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{what} is required here (CASCADE_REQUIRE_SERVICES=1) but cannot start: {exc}")
        pytest.skip(f"{what} not available on this machine: {exc}")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = _start_or_skip(lambda: PostgresServer().start(), "PostgreSQL")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    server = _start_or_skip(lambda: MotoServer().start(), "moto_server (S3)")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium (Debian's chromium + chromium-driver), a fresh profile per test module."""
    session = _start_or_skip(Browser, "Chromium (chromium, chromium-driver)")
    try:
        yield session
    finally:
        session.quit()


@dataclass(frozen=True)
class Stack:
    """Where images and their rows go for one test: a folder + SQLite, or S3 (moto) + PostgreSQL."""

    name: str
    storage_url: str
    database_url: str
    env: dict[str, str]  # the AWS variables an S3 client needs (empty for a folder)


STACKS = ["folder+sqlite", "s3+postgres"]


def make_stack(kind: str, tmp: Path, request: pytest.FixtureRequest) -> Stack:
    if kind == "folder+sqlite":
        return Stack(kind, str(tmp / "images"), f"sqlite:///{tmp / 'index.sqlite3'}", {})
    pg: PostgresServer = request.getfixturevalue("postgres")
    s3: MotoServer = request.getfixturevalue("moto")
    return Stack(kind, f"s3://{s3.create_bucket()}/images", pg.create_database(), s3.env)


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Stack:
    made = make_stack(request.param, tmp_path, request)
    for name, value in made.env.items():
        monkeypatch.setenv(name, value)
    return made
