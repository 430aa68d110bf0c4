"""Run a program that speaks the seed's script protocol: one JSON object on stdin, one JSON object on stdout.

The child gets its own session (process group) and a run marker, so that a timeout, or its end, takes everything
it spawned with it (models/script/tree.py), even what escaped the group: leftovers would hold the GPU or the pipe.
It sees an allowlisted environment: API keys reach it only when the config names them, and every configured
secret is masked in whatever of its output becomes an error.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from models.datauri import decode_data_uri, encode_data_uri
from models.script.tree import MARKER_ENV, kill_tree, new_marker
from models.scrub import scrub

_STDERR_TAIL = 2048
# How long to wait for pipes to close, or a killed child to be reaped, before going on without them.
_DRAIN_S = 2.0
_DATA_URI_KEYS = ("dataUri", "data_uri", "output", "content")
_NO_IMAGE = "no image in script output; expected one of dataUri, data_uri, output, content, image, text"


class ScriptError(Exception):
    """The script did not produce an image. The message is short and meant for the caller's attempt list."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ScriptTimeout(ScriptError):
    pass


@dataclass(frozen=True)
class ScriptOutput:
    """Exactly one of `data_uri` (a `data:image/...;base64,` URI) or `url` (an `https://` URL to fetch)."""

    data_uri: str | None = None
    url: str | None = None


def default_python() -> str:
    return os.environ.get("PYTHON_BIN", "python3")


# What every child gets from our environment; anything else only when the config names it.
ALLOWED_ENV = frozenset({"PATH", "HOME", "LANG", "CUDA_VISIBLE_DEVICES"})
ALLOWED_PREFIXES = ("LC_", "PYTHON")
# Credentials of the remote providers (models/remote/config.py KEY_ENV): passed only when named, always scrubbed.
KNOWN_SECRETS = frozenset({"OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "FAL_KEY", "FAL_API_KEY"})


def build_env(
    base: Mapping[str, str],
    cuda_visible_devices: str | None = None,
    *,
    pass_env: Iterable[str] = (),
    secret_env: Iterable[str] = (),
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The child's environment: the allowlisted variables of `base`, those `pass_env` and `secret_env` name,
    then `extra` (literal values from the config); GPUs hidden unless the config hands some to the script."""
    named = set(pass_env) | set(secret_env)
    env = {
        k: v
        for k, v in base.items()
        if k in named or (k not in KNOWN_SECRETS and (k in ALLOWED_ENV or k.startswith(ALLOWED_PREFIXES)))
    }
    env.update(extra or {})
    env["CUDA_VISIBLE_DEVICES"] = cuda_visible_devices if cuda_visible_devices is not None else ""
    return env


def secret_values(
    base: Mapping[str, str], secret_env: Iterable[str] = (), extra: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """Every value to mask in what a child says: the known provider keys and the configured secrets, whether they
    come from `base` or from the config's literal `extra`."""
    names = KNOWN_SECRETS | set(secret_env)
    values = [v for source in (base, extra or {}) for k, v in source.items() if k in names and v]
    return tuple(dict.fromkeys(values))


def _image_data_uri(value: str) -> str:
    try:
        mime, _ = decode_data_uri(value)
    except ValueError as exc:
        raise ScriptError(f"bad data URI in script output: {exc}") from None
    if not mime.startswith("image/"):
        raise ScriptError(f"script output is {mime}, not an image")
    return value.strip()


def _raw_png(value: str) -> str:
    try:
        data = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ScriptError(f"bad base64 in script output 'image': {exc}") from None
    if not data:
        raise ScriptError("empty 'image' in script output")
    return encode_data_uri("image/png", data)


def parse_output(text: str) -> ScriptOutput:
    """Read the script's stdout: one JSON object carrying an image under one of the protocol's keys."""
    try:
        obj = json.loads(text)
    except ValueError:
        snippet = text.strip()[:200]
        raise ScriptError(f"script output is not JSON: {snippet!r}") from None
    if not isinstance(obj, dict):
        raise ScriptError(f"script output is JSON {type(obj).__name__}, expected an object")
    error = obj.get("error")
    if error:
        raise ScriptError(str(error)[:500])

    for key in _DATA_URI_KEYS:
        value = obj.get(key)
        if isinstance(value, str) and value.strip():
            return ScriptOutput(data_uri=_image_data_uri(value))
    image = obj.get("image")
    if isinstance(image, str) and image.strip():
        return ScriptOutput(data_uri=_raw_png(image))
    value = obj.get("text")
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("https://"):
            return ScriptOutput(url=value)
        if value.startswith("data:"):
            return ScriptOutput(data_uri=_image_data_uri(value))
    raise ScriptError(_NO_IMAGE)


class _Child(asyncio.SubprocessProtocol):
    """Collects the child's stdout (up to a cap) and the tail of its stderr, and reports its exit.

    asyncio's own `Process.wait()` returns only once every pipe is closed, so a grandchild that escaped the
    process group and holds stdout would make it wait forever; this protocol reports the exit by itself.
    """

    def __init__(self, cap: int) -> None:
        loop = asyncio.get_running_loop()
        self.cap = cap
        self.out = bytearray()
        self.err_tail = b""
        self.exited: asyncio.Future[None] = loop.create_future()
        self.stdout_closed: asyncio.Future[None] = loop.create_future()
        self.stderr_closed: asyncio.Future[None] = loop.create_future()
        self.overflow: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1 and not self.overflow.done():
            self.out += data
            if len(self.out) > self.cap:
                self.overflow.set_result(None)
                self.out = bytearray()
        elif fd == 2:
            self.err_tail = (self.err_tail + data)[-_STDERR_TAIL:]

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        closed = {1: self.stdout_closed, 2: self.stderr_closed}.get(fd)
        if closed is not None and not closed.done():
            closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


async def _first(*futures: asyncio.Future[None], timeout: float | None = None) -> None:
    # asyncio.wait, unlike awaiting the futures, leaves them alone when it is cancelled or times out.
    await asyncio.wait(futures, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)


async def _collect(child: _Child, pid: int, marker: str) -> None:
    """Return once the child has exited and its stdout is read; ScriptError as soon as stdout passes the cap."""
    await _first(child.exited, child.overflow)
    if not child.overflow.done():
        # Whatever the script left running goes with it: leftovers would hold pipes, CPU or a GPU.
        await asyncio.to_thread(kill_tree, pid, marker, root_alive=False)
        # What it wrote is already in the pipe; a holder that escaped the group must not keep us waiting for EOF.
        await _first(child.stdout_closed, child.overflow, timeout=_DRAIN_S)
    if child.overflow.done():
        raise ScriptError(f"output over {child.cap} bytes")


async def run_script(
    argv: Sequence[str],
    payload: Mapping[str, Any],
    *,
    timeout_s: float,
    max_output_bytes: int = 64 * 2**20,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    secrets: Iterable[str | None] = (),
) -> ScriptOutput:
    """Run `argv` with `payload` as JSON on stdin and parse its stdout; ScriptError when it yields no image.

    `env` is the child's whole environment (default: `build_env(os.environ)`, the allowlist). Every one of
    `secrets`, in any encoding, is masked in the error a failure raises.
    """
    secrets = tuple(s for s in secrets if s)
    try:
        return await _run(argv, payload, timeout_s, max_output_bytes, env, cwd)
    except ScriptError as exc:
        clean = type(exc)(scrub(exc.message, secrets))
    # Raised outside the handler so the original (with the secret) is not its context.
    raise clean


async def _run(
    argv: Sequence[str],
    payload: Mapping[str, Any],
    timeout_s: float,
    max_output_bytes: int,
    env: Mapping[str, str] | None,
    cwd: str | None,
) -> ScriptOutput:
    if not argv:
        raise ScriptError("no command configured")
    marker = new_marker()
    child_env = dict(env) if env is not None else build_env(os.environ)
    child_env[MARKER_ENV] = marker
    loop = asyncio.get_running_loop()
    try:
        transport, child = await loop.subprocess_exec(
            lambda: _Child(max_output_bytes),
            *argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        raise ScriptError(f"cannot start {argv[0]!r}: {exc}") from None

    pid = transport.get_pid()
    try:
        stdin = transport.get_pipe_transport(0)
        if stdin is not None:
            # Closing flushes first; a script that exits without reading its input is not an error.
            stdin.write(json.dumps(payload).encode("utf-8"))
            stdin.close()
        await asyncio.wait_for(_collect(child, pid, marker), timeout_s)
    except BaseException as exc:
        # Timeout, output cap, or our caller cancelling us: nothing the script started may outlive the call.
        # Synchronous on purpose: a cancelled caller must not be able to skip it.
        kill_tree(pid, marker, root_alive=not child.exited.done())
        await _first(child.exited, timeout=_DRAIN_S)
        transport.close()
        if isinstance(exc, asyncio.TimeoutError):
            raise ScriptTimeout(f"no answer in {timeout_s:g} s") from None
        raise

    code = transport.get_returncode()
    if code != 0:
        # The tail of stderr says why; it may still be on its way through the pipe.
        await _first(child.stderr_closed, timeout=_DRAIN_S)
    transport.close()
    if code != 0:
        tail = child.err_tail.decode("utf-8", "replace").strip()
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        raise ScriptError(f"script {how}" + (f": {tail}" if tail else ""))
    return parse_output(bytes(child.out).decode("utf-8", "replace"))
