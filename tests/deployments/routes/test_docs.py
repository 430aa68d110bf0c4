"""/openapi.json describes every body and answer, sized to the deployment; schemathesis holds the app to it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from ray import serve

from cascade.config import Route
from tests.fakes.backends import Fake, run_gateway

APP = "schema"
# Checks that hold the answers to the schema (statuses, content types, bodies, headers), that no answer is a 5xx,
# and that data the schema forbids is refused.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
)
MIN_CASES = 1000


@pytest.fixture(scope="module")
def app(serve_url: str, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("schema")
    journal = tmp / "fake.log"
    journal.touch()
    # A backend that always answers at once (a solid PNG of the asked size): a thousand cases cost little, and an
    # answer is never a 503 because the chain failed.
    run_gateway(APP, {"fake": Route(10)}, {"fake": Fake.options(name="fake").bind("ok", str(journal))}, tmp / "img")
    yield f"{serve_url}/{APP}", tmp
    serve.delete(APP)


def _doc(url: str) -> dict[str, Any]:
    r = httpx.get(f"{url}/openapi.json", timeout=30)
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]


def test_every_json_body_has_its_schema_with_this_deployment_s_limits(app) -> None:
    url, _ = app
    doc = _doc(url)
    assert doc["servers"] == [{"url": f"/{APP}"}]
    bodies = {
        (path, method): op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if "requestBody" in op
    }
    assert bodies == {
        ("/api/generate/image", "post"): "#/components/schemas/ImageRequest",
        ("/api/jobs", "post"): "#/components/schemas/ImageRequest",
        ("/v1/images/generations", "post"): "#/components/schemas/GenerationsBody",
    }
    schemas = doc["components"]["schemas"]
    image = schemas["ImageRequest"]
    assert image["required"] == ["prompt"] and image["additionalProperties"] is False
    assert image["properties"]["prompt"]["maxLength"] == 4000
    assert image["properties"]["backend"]["anyOf"][0]["enum"] == ["fake", "svg"]
    assert "64..2048 pixels" in image["properties"]["size"]["description"]
    openai = schemas["GenerationsBody"]["properties"]
    assert openai["model"]["anyOf"][0]["enum"] == ["cascade", "fake", "svg"]
    assert {"seed", "local", "steps"} <= set(openai)  # our own fields, documented for the SDK's extra_body
    # Every answer a handler builds itself is described too.
    generate = doc["paths"]["/api/generate/image"]["post"]["responses"]
    assert generate["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/GenerateResponse")
    assert {"400", "413", "415", "422", "503"} <= set(generate)
    assert "dataUri" in schemas["GenerateResponse"]["properties"]
    assert doc["paths"]["/api/jobs"]["post"]["responses"]["202"]["headers"]["Location"]


def test_docs_page_loads_the_schema_under_the_route_prefix(app) -> None:
    url, _ = app
    page = httpx.get(f"{url}/docs", timeout=30)
    assert page.status_code == 200 and f"/{APP}/openapi.json" in page.text


def test_schemathesis_finds_no_5xx_and_no_answer_outside_the_schema(app) -> None:
    url, tmp = app
    report = Path(tmp) / "schemathesis.json"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{url}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        "60",
        "--seed",
        "13",  # reproducible in CI; change it locally to explore
        "--workers",
        "2",
        "--request-timeout",
        "30",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    # In the test's folder: the CLI keeps a cache of crashes under its working directory.
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, cwd=tmp)
    assert report.is_file(), run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(report.read_text())
    assert result["exit_code"] == 0 and not result["failures"] and not result["errors"], run.stdout[-6000:]
    cases = result["test_cases"]["generated"]
    print(f"schemathesis: {cases} cases in {result['running_time']:.0f} s")  # shown with pytest -s
    assert cases >= MIN_CASES
    assert result["operations"]["tested"] == result["operations"]["total"] >= 10
    # The bodies reach the handlers' validation and beyond: generated requests are served, not mostly refused.
    for operation in ("POST /api/generate/image", "POST /api/jobs", "POST /v1/images/generations"):
        rates = result["valid_rates"][operation]["fuzzing"]
        assert rates["accepted"] >= 10, (operation, rates)
