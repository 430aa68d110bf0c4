"""The exception types that cross deployment boundaries: the HTTP status each one means, and that Ray can carry them."""

from __future__ import annotations

import pickle

import pytest

from cascade.errors import (
    AllBackendsFailed,
    BackendBusy,
    BackendFailed,
    CascadeError,
    Conflict,
    Declined,
    Forbidden,
    JobRejected,
    NotFound,
    RateLimited,
    Refused,
    RequestRejected,
    StorageUnavailable,
    Unauthorized,
    Unavailable,
    http_headers,
    http_status,
)
from cascade.types import Attempt

ATTEMPTS = (Attempt("gpu", "timeout", "no answer in 5.0 s", 5000.0), Attempt("svg", "error", "boom", 1.0))


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (RequestRejected("size", "too big"), 422),
        (RequestRejected("content-type", "expected application/json", 415), 415),
        (RequestRejected("body", "over 262144 bytes", 413), 413),
        (RequestRejected("body", "not valid JSON", 400), 400),
        (NotFound("no image abc"), 404),
        (Unauthorized("no API key given"), 401),
        (Forbidden("backend", "this key may not use gpu"), 403),
        (RateLimited("requests", "60 a minute", {"retry-after": "3"}), 429),
        (RateLimited("requests", "the limit store is down", {}, 503), 503),
        (Conflict("job j1 already ended"), 409),
        (Unavailable("too many jobs"), 503),
        (StorageUnavailable("the index did not answer"), 503),
        (BackendBusy("queue full"), 503),
        (Declined("cannot finish before the deadline"), 503),
        (BackendFailed("bad weights"), 502),
        (JobRejected("class_label 7 is out of range"), 422),
        (Refused("refused: policy"), 422),
        (AllBackendsFailed(ATTEMPTS), 503),
        (CascadeError("unexpected"), 500),
        (ValueError("a bug"), 500),
        (KeyboardInterrupt(), 500),
    ],
)
def test_every_error_maps_to_its_http_status(exc: BaseException, status: int) -> None:
    assert http_status(exc) == status


@pytest.mark.parametrize(
    "exc",
    [
        RequestRejected("body", "over 262144 bytes", 413),
        RequestRejected("size", "too big"),
        NotFound("no image abc"),
        Unauthorized("no API key given"),
        Forbidden("backend", "this key may not use gpu"),
        RateLimited("requests", "60 a minute", {"retry-after": "3"}),
        RateLimited("requests", "the limit store is down", {}, 503),
        Conflict("job j1 already ended"),
        StorageUnavailable("the index did not answer"),
        BackendBusy("queue full"),
        Declined("cannot finish before the deadline"),
        BackendFailed("all providers failed", ATTEMPTS),
        JobRejected("steps: 500 is over 50"),
        Refused("refused: policy", ATTEMPTS[:1]),
        AllBackendsFailed(ATTEMPTS),
    ],
)
def test_errors_keep_type_fields_and_status_through_pickling(exc: CascadeError) -> None:
    # Ray pickles an exception raised in a replica and re-raises it in the caller.
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is type(exc)
    assert vars(again) == vars(exc)
    assert (str(again), http_status(again)) == (str(exc), http_status(exc))


@pytest.mark.parametrize(
    "exc",
    [
        RequestRejected(field="size", message="over the pixel limit", status=413),
        Unauthorized(message="invalid API key"),
        Forbidden(field="backend", message="this key may not use qwen_image"),
        RateLimited(limit="rate", message="slow down", headers={"retry-after": "2"}, status=503),
        Declined(message="cannot finish before the deadline"),
        BackendFailed(message="all providers failed", attempts=ATTEMPTS),
        AllBackendsFailed(attempts=ATTEMPTS),
    ],
)
def test_errors_made_with_keywords_keep_every_field_through_pickling(exc: CascadeError) -> None:
    # An exception pickles as its class and `args`; keywords never reach `args` unless __init__ passes them on,
    # and a replica's error that cannot be rebuilt reaches the caller as a RayTaskError, not as itself.
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is type(exc)
    assert vars(again) == vars(exc)
    assert (str(again), http_status(again)) == (str(exc), http_status(exc))


def test_a_rejected_request_names_its_field() -> None:
    exc = RequestRejected("seed", "must be at most 4294967295")
    assert (exc.field, exc.message, exc.status) == ("seed", "must be at most 4294967295", 422)
    assert str(exc) == "seed: must be at most 4294967295"


def test_backend_failures_carry_their_inner_attempts() -> None:
    assert BackendFailed("bad weights").attempts == ()
    failed = BackendFailed("all providers failed", ATTEMPTS)
    assert (str(failed), failed.message, failed.attempts) == ("all providers failed", "all providers failed", ATTEMPTS)


def test_the_chain_s_rules_hang_on_the_hierarchy() -> None:
    # run_chain: a refusal ends the chain; a JobRejected is not the backend's fault; both still report attempts.
    assert issubclass(Refused, JobRejected) and issubclass(JobRejected, BackendFailed)
    assert not issubclass(BackendBusy, BackendFailed)
    assert all(issubclass(t, CascadeError) for t in (RequestRejected, NotFound, BackendBusy, AllBackendsFailed))


def test_all_backends_failed_says_what_each_did() -> None:
    exc = AllBackendsFailed(ATTEMPTS)
    assert exc.attempts == ATTEMPTS
    assert str(exc) == "every backend failed: gpu timeout; svg error"


def test_errors_say_what_went_wrong_and_carry_the_headers_their_answer_needs() -> None:
    unauthorized = Unauthorized("the API key is revoked")
    assert str(unauthorized) == "the API key is revoked"
    # RFC 9110 §11.6.1: a 401 carries WWW-Authenticate naming the scheme.
    assert http_headers(unauthorized) == {"www-authenticate": 'Bearer realm="cascade"'}
    forbidden = Forbidden("backend", "this key may not use gpu")
    assert (str(forbidden), forbidden.field) == ("backend: this key may not use gpu", "backend")
    sent = {"retry-after": "3", "x-ratelimit-remaining-requests": "0"}
    limited = RateLimited("requests", "60 requests a minute", sent)
    assert (str(limited), limited.limit, http_headers(limited)) == ("60 requests a minute", "requests", sent)
    sent["retry-after"] = "99"  # the error keeps its own copy
    assert http_headers(limited)["retry-after"] == "3"
    assert str(Declined("cannot finish in 2.0 s")) == "cannot finish in 2.0 s"
    assert http_headers(NotFound("no image")) == {} and http_headers(ValueError("a bug")) == {}
    assert issubclass(StorageUnavailable, Unavailable)
