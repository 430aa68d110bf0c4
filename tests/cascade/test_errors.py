"""The exception types that cross deployment boundaries: the HTTP status each one means, and that Ray can carry them."""

from __future__ import annotations

import pickle

import pytest

from cascade.errors import (
    AllBackendsFailed,
    BackendBusy,
    BackendFailed,
    CascadeError,
    JobRejected,
    NotFound,
    Refused,
    RequestRejected,
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
        (BackendBusy("queue full"), 503),
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
        BackendBusy("queue full"),
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
