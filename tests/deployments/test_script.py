"""The script backend through the gateway: what a child may see, and what of its output reaches a response."""

from __future__ import annotations

import base64
import sys
import textwrap
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from ray import serve

from cascade.config import Route
from deployments.script import ScriptArgs, ScriptBackend
from tests.fakes.backends import run_gateway

TOKEN = "tok-Sekrit/0123456789+abcdef"
OPENAI_KEY = "sk-proj-NOT-FOR-SCRIPTS-0123456789"

# Reports, through its stderr and a failing exit, what it was given: the configured secret in three encodings
# (all must come back masked), and whether a provider key it was not given reached it.
PROBE = textwrap.dedent(
    """
    import base64, json, os, sys, urllib.parse
    json.load(sys.stdin)
    token = os.environ.get("MY_TOKEN", "none")
    sys.stderr.write(
        "token=" + token + " url=" + urllib.parse.quote(token, safe="")
        + " b64=" + base64.b64encode(token.encode()).decode()
        + " openai=" + os.environ.get("OPENAI_API_KEY", "none")
        + " region=" + os.environ.get("REGION", "none")
    )
    sys.exit(1)
    """
)


@pytest.fixture(scope="module")
def probe(serve_url: str, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("script")
    script = tmp / "probe.py"
    script.write_text(PROBE)
    args = ScriptArgs(command=[sys.executable, str(script)], secret_env=["MY_TOKEN"], pass_env=["REGION"])
    env = {"MY_TOKEN": TOKEN, "OPENAI_API_KEY": OPENAI_KEY, "REGION": "eu-west"}
    backend = ScriptBackend.options(
        name="script", ray_actor_options={"num_cpus": 0.1, "runtime_env": {"env_vars": env}}
    ).bind(args)
    run_gateway("scripted", {"script": Route(20)}, {"script": backend}, tmp / "images")
    yield f"{serve_url}/scripted", tmp / "images"
    serve.delete("scripted")


def test_a_scripts_error_reaches_the_attempts_with_its_secrets_masked(probe: tuple[str, Path]) -> None:
    url, _ = probe
    r = httpx.post(f"{url}/api/generate/image", json={"prompt": "x", "size": "64x64"}, timeout=60)

    assert r.status_code == 200 and r.json()["backend"] == "svg", r.text
    error = r.json()["attempts"][0]["error"]
    assert "token=*** url=*** b64=***" in error
    for form in (TOKEN, quote(TOKEN, safe=""), base64.b64encode(TOKEN.encode()).decode()):
        assert form not in r.text
    # Named variables pass; a provider key the config does not name never reaches the child.
    assert "region=eu-west" in error and "openai=none" in error
    assert OPENAI_KEY not in r.text


def test_the_saved_record_holds_no_secret_either(probe: tuple[str, Path]) -> None:
    url, images = probe
    r = httpx.post(f"{url}/api/generate/image", json={"prompt": "y", "size": "64x64"}, timeout=60)

    record = (images / r.json()["saved"].removeprefix("/generated/")).with_suffix(".json").read_text()
    assert "token=***" in record and TOKEN not in record and OPENAI_KEY not in record
