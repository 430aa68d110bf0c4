"""/v1 with the official `openai` SDK as the client, against the real app (builder, Pillow backend) over loopback."""

from __future__ import annotations

import base64
import io

import httpx
import openai
import pytest
from PIL import Image
from ray import serve

from cascade.config import Route
from deployments.app import AppArgs, build_app
from tests.fakes.backends import Fake, run_gateway, wait_running

APP, FAILING = "oai", "oai-failing"
PUBLIC = "https://images.example.com/cascade"


@pytest.fixture(scope="module")
def real(serve_url: str, tmp_path_factory: pytest.TempPathFactory):
    images = tmp_path_factory.mktemp("oai-images")
    args = AppArgs.model_validate(
        {
            "order": ["stylegan3", "pillow", "svg"],  # stylegan3 has no weights: left out, so not a model
            "storage_dir": str(images),
            "backends": {"pillow": {"deployment": {"num_replicas": 1, "ray_actor_options": {"num_cpus": 1}}}},
        }
    )
    serve.run(build_app(args), name=APP, route_prefix=f"/{APP}", blocking=False)
    wait_running(APP)
    yield f"{serve_url}/{APP}", images
    serve.delete(APP)


@pytest.fixture(scope="module")
def failing(serve_url: str, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("oai-failing")
    journal = tmp / "raiser.log"
    journal.touch()
    backends = {"raiser": Fake.options(name="raiser").bind("raise", str(journal))}
    run_gateway(FAILING, {"raiser": Route(5)}, backends, tmp / "images", public_base_url=PUBLIC)
    yield f"{serve_url}/{FAILING}"
    serve.delete(FAILING)


def _client(url: str) -> openai.OpenAI:
    # No retries: the SDK retries 5xx twice by default, which would only slow the error tests down.
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused-until-keys-exist", max_retries=0, timeout=60)


def _image(b64: str | None) -> Image.Image:
    assert b64 is not None
    img = Image.open(io.BytesIO(base64.b64decode(b64)))
    img.load()
    return img


def test_the_sdk_generates_an_image_with_the_default_chain(real) -> None:
    url, _ = real
    answer = _client(url).images.generate(model="cascade", prompt="a lighthouse at dusk", size="1024x1024")
    [item] = answer.data or []
    img = _image(item.b64_json)
    assert (img.format, img.size) == ("PNG", (1024, 1024))
    assert item.url is None and item.revised_prompt == "a lighthouse at dusk"
    assert (answer.output_format, answer.size, answer.background) == ("png", "1024x1024", "opaque")
    extra = item.model_extra or {}
    assert extra["backend"] == "pillow" and isinstance(extra["seed"], int)
    # The GPU backend without weights shows as a skipped attempt, as on every front door.
    assert [(a["backend"], a["outcome"]) for a in extra["attempts"]] == [("stylegan3", "skipped"), ("pillow", "ok")]


def test_n_images_get_consecutive_seeds_and_urls_serve_the_saved_files(real) -> None:
    url, images = real
    answer = _client(url).images.generate(
        model="pillow",
        prompt="a red fox",
        n=2,
        size="96x64",
        response_format="url",
        output_format="jpeg",
        extra_body={"seed": 41},
    )
    data = answer.data or []
    assert [(d.model_extra or {})["seed"] for d in data] == [41, 42]
    assert answer.output_format == "jpeg"
    fetched = []
    for item in data:
        assert item.url is not None and item.url.startswith(f"{url}/generated/") and item.b64_json is None
        r = httpx.get(item.url)
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert (images / item.url.rsplit("/", 1)[1]).read_bytes() == r.content
        fetched.append(Image.open(io.BytesIO(r.content)))
    assert [f.size for f in fetched] == [(96, 64), (96, 64)]
    assert fetched[0].tobytes() != fetched[1].tobytes()  # two seeds, two pictures
    # The same seed through /api gives the very same picture (both run the chain the same way).
    same = httpx.post(
        f"{url}/api/generate/image",
        json={"prompt": "a red fox", "size": "96x64", "seed": 41, "backend": "pillow", "output_format": "jpeg"},
        timeout=60,
    ).json()
    assert base64.b64decode(same["dataUri"].split(",", 1)[1]) == httpx.get(data[0].url or "").content


def test_models_lists_what_can_serve(real) -> None:
    url, _ = real
    client = _client(url)
    listed = client.models.list()
    assert [m.id for m in listed.data] == ["cascade", "pillow", "svg"]
    assert {m.object for m in listed.data} == {"model"} and all(m.created > 0 for m in listed.data)
    assert client.models.retrieve("pillow").id == "pillow"
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("stylegan3")
    assert err.value.code == "model_not_found" and "not deployed" in err.value.message


@pytest.mark.parametrize(
    ("kwargs", "param", "code"),
    [
        ({"size": "10x10"}, "size", "invalid_value"),
        ({"n": 5}, "n", "invalid_value"),
        ({"prompt": "   "}, "prompt", "invalid_value"),
        ({"background": "transparent"}, "background", "invalid_value"),
        ({"extra_body": {"sise": "64x64"}}, "sise", "unknown_parameter"),
        ({"extra_body": {"steps": 0}}, "steps", "invalid_value"),
    ],
)
def test_bad_requests_raise_bad_request_error_naming_the_param(real, kwargs: dict, param: str, code: str) -> None:
    url, _ = real
    body = {"model": "cascade", "prompt": "p", "size": "64x64", **kwargs}
    with pytest.raises(openai.BadRequestError) as err:
        _client(url).images.generate(**body)
    assert (err.value.param, err.value.code, err.value.type) == (param, code, "invalid_request_error")
    assert err.value.request_id  # Serve's x-request-id, as OpenAI's clients read it


def test_an_unknown_model_raises_not_found_error(real) -> None:
    url, _ = real
    with pytest.raises(openai.NotFoundError) as err:
        _client(url).images.generate(model="dall-e-3", prompt="p")
    assert err.value.code == "model_not_found" and err.value.param == "model"
    assert "available: cascade, pillow, svg" in err.value.message


def test_a_body_over_the_cap_raises_api_status_error_413(real) -> None:
    url, _ = real
    with pytest.raises(openai.APIStatusError) as err:
        _client(url).images.generate(model="cascade", prompt="x" * 300_000)
    assert type(err.value) is openai.APIStatusError  # the SDK has no class of its own for 413
    assert err.value.status_code == 413 and err.value.code == "request_too_large"


def test_every_backend_failing_raises_internal_server_error_with_the_attempts(failing) -> None:
    with pytest.raises(openai.InternalServerError) as err:
        _client(failing).images.generate(model="cascade", prompt="p", size="64x64")
    assert err.value.status_code == 503 and err.value.code == "all_backends_failed"
    body = err.value.body
    assert isinstance(body, dict)
    # A PNG was asked for (the default), which the SVG last resort cannot draw: it is skipped, and says why.
    assert [(a["backend"], a["outcome"]) for a in body["attempts"]] == [("raiser", "error"), ("svg", "skipped")]


def test_urls_use_the_configured_public_base(failing) -> None:
    answer = _client(failing).images.generate(model="svg", prompt="p", size="64x64", response_format="url")
    [item] = answer.data or []
    assert item.url is not None and item.url.startswith(f"{PUBLIC}/generated/") and item.url.endswith(".svg")
    assert answer.output_format == "svg"


@pytest.mark.parametrize(
    ("method", "path", "content", "headers", "status", "code"),
    [
        ("POST", "/images/generations", b"{}", {"content-type": "text/plain"}, 415, "unsupported_media_type"),
        ("POST", "/images/generations", b"{", {"content-type": "application/json"}, 400, "invalid_value"),
        ("POST", "/images/generations", b"[]", {"content-type": "application/json"}, 400, "invalid_type"),
        ("POST", "/images/generations", b"x" * 300_000, {"content-type": "application/json"}, 413, "request_too_large"),
        ("GET", "/images/edits", b"", {}, 404, "not_found"),
        ("GET", "/images/generations", b"", {}, 405, None),
    ],
)
def test_every_error_on_v1_has_openai_s_shape(
    real, method: str, path: str, content: bytes, headers: dict, status: int, code: str | None
) -> None:
    url, _ = real
    r = httpx.request(method, f"{url}/v1{path}", content=content, headers=headers, timeout=30)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    if code is not None:
        assert error["code"] == code
    # The SDK picks its class from the status alone: 413 and 405 come out as APIStatusError, 400 BadRequestError.
