"""The OpenAI mapping without a server: bodies to image requests, answers and errors to OpenAI's shapes."""

from __future__ import annotations

import random

import pytest

from cascade.errors import AllBackendsFailed, NotFound, Refused, RequestRejected
from cascade.openai_compat import (
    ModelNotFound,
    ParamError,
    error_body,
    image_url,
    images_response,
    plan_generation,
)
from cascade.schemas import AttemptModel, GenerateResponse
from cascade.types import Attempt

MODELS = {"cascade": None, "pillow": "pillow", "svg": "svg"}


def _plan(body: object, **kw: object):
    kw.setdefault("rng", random.Random(1))
    return plan_generation(body, MODELS, **kw)  # type: ignore[arg-type]


def test_defaults_are_one_png_of_the_default_size_through_the_whole_chain() -> None:
    gen = _plan({"prompt": "a cat"})
    assert gen.model == "cascade" and gen.response_format == "b64_json" and gen.output_format == "png"
    [request] = gen.requests
    assert "backend" not in request and "size" not in request
    assert request["output_format"] == "png" and request["prompt"] == "a cat"


def test_n_images_get_consecutive_seeds_from_the_given_one_and_a_random_one_otherwise() -> None:
    gen = _plan({"prompt": "p", "n": 3, "seed": 2**32 - 2})
    assert [r["seed"] for r in gen.requests] == [2**32 - 2, 2**32 - 1, 0]
    a, b = (_plan({"prompt": "p", "n": 2}, rng=random.Random(s)) for s in (1, 2))
    assert a.requests[1]["seed"] == a.requests[0]["seed"] + 1 and a.requests[0]["seed"] != b.requests[0]["seed"]


def test_a_backend_model_size_and_our_own_fields_reach_the_image_request() -> None:
    gen = _plan(
        {
            "prompt": "p",
            "model": "pillow",
            "size": "512x256",
            "response_format": "url",
            "output_format": "webp",
            "output_compression": 70,
            "local": True,
            "steps": 4,
            "quality": "high",
            "style": "vivid",
            "user": "someone",
        }
    )
    [request] = gen.requests
    assert request["backend"] == "pillow" and request["size"] == "512x256"
    assert (request["output_format"], request["output_compression"]) == ("webp", 70)
    assert request["local"] is True and request["steps"] == 4
    assert not {"quality", "style", "user"} & set(request)  # accepted, meaning nothing here
    assert gen.response_format == "url"
    assert "size" not in _plan({"prompt": "p", "size": "auto"}).requests[0]


def test_the_svg_model_answers_svg_and_nothing_else() -> None:
    gen = _plan({"prompt": "p", "model": "svg"})
    assert gen.output_format == "svg" and "output_format" not in gen.requests[0]
    with pytest.raises(ParamError) as err:
        _plan({"prompt": "p", "model": "svg", "output_format": "png"})
    assert err.value.field == "output_format"
    with pytest.raises(ParamError):
        _plan({"prompt": "p", "output_format": "svg"})


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ("not an object", "body", "invalid_type"),
        ({}, "prompt", "missing_required_parameter"),
        ({"prompt": "p", "sise": "1x1"}, "sise", "unknown_parameter"),
        ({"prompt": "p", "n": 5}, "n", "invalid_value"),
        ({"prompt": "p", "n": True}, "n", "invalid_value"),
        ({"prompt": "p", "response_format": "png"}, "response_format", "invalid_value"),
        ({"prompt": "p", "stream": True}, "stream", "invalid_value"),
        ({"prompt": "p", "background": "transparent"}, "background", "invalid_value"),
        ({"prompt": "p", "output_format": "gif"}, "output_format", "invalid_value"),
        ({"prompt": "p", "seed": -1}, "seed", "invalid_value"),
        ({"prompt": "p", "seed": 1.5}, "seed", "invalid_value"),
    ],
)
def test_bad_bodies_are_400s_naming_the_parameter(body: object, param: str, code: str) -> None:
    with pytest.raises(ParamError) as err:
        _plan(body)
    assert (err.value.field, err.value.code, err.value.status) == (param, code, 400)
    status, answer, _ = error_body(err.value)
    assert status == 400 and answer.error.param == (None if param == "body" else param)
    assert answer.error.type == "invalid_request_error" and answer.error.code == code


def test_unknown_and_left_out_models_are_404_model_not_found() -> None:
    with pytest.raises(ModelNotFound) as err:
        _plan({"prompt": "p", "model": "dall-e-3"})
    status, body, _ = error_body(err.value)
    assert status == 404 and (body.error.code, body.error.param) == ("model_not_found", "model")
    assert "cascade, pillow, svg" in body.error.message
    with pytest.raises(ModelNotFound) as err:
        _plan({"prompt": "p", "model": "qwen_image"}, unavailable={"qwen_image": "needs 1 GPU"})
    assert "not deployed: needs 1 GPU" in str(err.value)


def test_our_errors_keep_their_meaning_in_openai_s_shape() -> None:
    attempts = (Attempt("pillow", "error", "boom", 3.0),)
    status, body, _ = error_body(AllBackendsFailed(attempts))
    assert status == 503 and body.error.type == "server_error" and body.error.code == "all_backends_failed"
    assert body.error.attempts == [AttemptModel.of(attempts[0])]
    status, body, _ = error_body(Refused("refused by openai", attempts))
    assert status == 400 and body.error.code == "content_policy_violation"
    # The gateway's own field names become OpenAI's, and its 422 OpenAI's 400.
    status, body, _ = error_body(RequestRejected("backend", "unknown backend"))
    assert status == 400 and body.error.param == "model"
    status, body, _ = error_body(RequestRejected("body", "over 1024 bytes", 413))
    assert status == 413 and body.error.code == "request_too_large" and body.error.param is None
    status, body, _ = error_body(NotFound("nothing"))
    assert status == 404 and body.error.type == "invalid_request_error"
    status, body, _ = error_body(RuntimeError("secret detail"))
    assert status == 500 and "secret" not in body.error.message and body.error.type == "server_error"


class _KeyError(RequestRejected):
    """Shaped like the access errors to come (a status, a field, headers to send): they must map by status."""

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        super().__init__("backend", "not for this key", status)
        self.headers = headers


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (401, "invalid_request_error", "invalid_api_key"),
        (403, "permission_error", "permission_denied"),
        (429, "rate_limit_error", "rate_limit_exceeded"),
    ],
)
def test_access_errors_map_by_status_and_keep_their_headers(status: int, kind: str, code: str) -> None:
    got, body, headers = error_body(_KeyError(status, {"retry-after": "3"}))
    assert (got, body.error.type, body.error.code, body.error.param) == (status, kind, code, "model")
    assert headers == {"retry-after": "3"}


def _result(saved: str | None, mime: str = "image/png") -> GenerateResponse:
    return GenerateResponse(
        dataUri=f"data:{mime};base64,QUJD",
        content=saved or "data:",
        saved=saved,
        provider="pillow",
        backend="pillow",
        width=64,
        height=32,
        seed=5,
        request_id="r",
        attempts=[],
    )


def test_answers_carry_b64_or_an_absolute_url_and_what_was_made() -> None:
    gen = _plan({"prompt": "a cat", "n": 2})
    answer = images_response(gen, [_result("/generated/a.png"), _result(None)], "http://h/app/", 7, "req")
    assert [d.b64_json for d in answer.data] == ["QUJD", "QUJD"] and answer.data[0].url is None
    assert (answer.output_format, answer.size, answer.created, answer.background) == ("png", "64x32", 7, "opaque")
    assert answer.data[0].revised_prompt == "a cat" and answer.data[0].seed == 5
    urls = _plan({"prompt": "a cat", "response_format": "url"})
    answer = images_response(urls, [_result("/generated/a.png", "image/jpeg")], "http://h/app/", 7, "req")
    assert answer.data[0].url == "http://h/app/generated/a.png" and answer.output_format == "jpeg"
    assert image_url(None, "data:image/png;base64,QUJD", "http://h") == "data:image/png;base64,QUJD"
    assert image_url("https://bucket/x.png", "data:", "http://h") == "https://bucket/x.png"
