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


def test_the_prompt_pattern_means_what_python_s_strip_means_for_every_character(doc: dict) -> None:
    # A pattern's `\\s` differs between Python and ECMA-262; the spelled-out class must agree with str.isspace()
    # (which parse_request's strip() uses), or a fuzzer's "valid" prompt would be refused.
    pattern = re.compile(doc["components"]["schemas"]["ImageRequest"]["properties"]["prompt"]["pattern"])
    disagree = [hex(c) for c in range(sys.maxunicode + 1) if (pattern.search(chr(c)) is None) != chr(c).isspace()]
    assert disagree == []
