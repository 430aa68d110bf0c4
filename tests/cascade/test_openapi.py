"""The OpenAPI document without a server: components sized to the config, /v1 answering errors OpenAI's way."""

from __future__ import annotations

import re
import sys

import pytest
from fastapi import FastAPI

from cascade import openapi
from cascade.config import Limits


@pytest.fixture(scope="module")
def doc() -> dict:
    from deployments.routes import jobs, openai

    app = FastAPI()
    openai.install(app)
    app.include_router(jobs.router)
    limits = Limits(max_prompt_chars=100, min_side=32, max_side=512, max_pixels=200_000)
    return openapi.build(
        app.routes, limits=limits, backends=["pillow", "svg"], models=["cascade", "pillow", "svg"], root_path="/x"
    )


def test_components_carry_the_configured_limits_and_names(doc: dict) -> None:
    image = doc["components"]["schemas"]["ImageRequest"]["properties"]
    assert image["prompt"]["maxLength"] == 100 and image["prompt"]["minLength"] == 1
    assert "32..512 pixels" in image["size"]["description"] and "0.2 megapixels" in image["size"]["description"]
    assert image["backend"]["anyOf"][0]["enum"] == ["pillow", "svg"]
    assert image["translate"]["anyOf"][0]["items"]["anyOf"]  # a fixed-length array of numbers, not prefixItems
    openai = doc["components"]["schemas"]["GenerationsBody"]["properties"]
    assert openai["model"]["anyOf"][0]["enum"] == ["cascade", "pillow", "svg"]
    assert openai["seed"] == image["seed"]
    assert doc["servers"] == [{"url": "/x"}]


def test_v1_documents_openai_errors_and_no_422(doc: dict) -> None:
    for path, operations in doc["paths"].items():
        if path.startswith("/v1/"):
            for operation in operations.values():
                assert "422" not in operation["responses"]
                for status, answer in operation["responses"].items():
                    if status.startswith(("4", "5")):
                        ref = answer["content"]["application/json"]["schema"]["$ref"]
                        assert ref.endswith("/OpenAIErrorBody")


def _build(auth_required: bool) -> dict:
    from deployments.routes import jobs, openai

    app = FastAPI()
    openai.install(app)
    app.include_router(jobs.router)
    return openapi.build(
        app.routes,
        limits=Limits(),
        backends=["pillow", "svg"],
        models=["cascade", "pillow", "svg"],
        auth_required=auth_required,
    )


def test_routes_that_take_a_key_document_401_403_429_with_their_headers_and_the_two_ways_to_send_it() -> None:
    doc = _build(auth_required=True)
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKey"] == {**schemes["apiKey"], "type": "apiKey", "in": "header", "name": "x-api-key"}
    either = [{"bearer": []}, {"apiKey": []}]
    generations = doc["paths"]["/v1/images/generations"]["post"]
    assert generations["security"] == either
    answers = generations["responses"]
    assert {"401", "403", "429"} <= set(answers)
    assert answers["429"]["content"]["application/json"]["schema"]["$ref"].endswith("/OpenAIErrorBody")
    assert {"Retry-After", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(
        answers["429"]["headers"]
    )
    assert "WWW-Authenticate" in answers["401"]["headers"]
    submit = doc["paths"]["/api/jobs"]["post"]
    assert submit["security"] == either and {"401", "403", "429"} <= set(submit["responses"])
    assert submit["responses"]["403"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    for path in ("/api/jobs/{job_id}", "/api/jobs/{job_id}/events", "/v1/models"):
        for operation in doc["paths"][path].values():
            assert operation["security"] == either and "401" in operation["responses"], path


def test_with_auth_off_the_same_routes_take_no_key() -> None:
    doc = _build(auth_required=False)
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "apiKey"}  # described, not demanded
    assert "security" not in doc["paths"]["/v1/images/generations"]["post"]
    assert "security" not in doc["paths"]["/api/jobs"]["post"] and "security" not in doc


def test_the_prompt_pattern_means_what_python_s_strip_means_for_every_character(doc: dict) -> None:
    # A pattern's `\\s` differs between Python and ECMA-262; the spelled-out class must agree with str.isspace()
    # (which parse_request's strip() uses), or a fuzzer's "valid" prompt would be refused.
    pattern = re.compile(doc["components"]["schemas"]["ImageRequest"]["properties"]["prompt"]["pattern"])
    disagree = [hex(c) for c in range(sys.maxunicode + 1) if (pattern.search(chr(c)) is None) != chr(c).isspace()]
    assert disagree == []
