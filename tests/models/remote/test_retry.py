from __future__ import annotations

import logging

import pytest

from models.remote.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderNetworkError,
    ProviderQuotaExhausted,
    ProviderRateLimited,
    ProviderRefused,
    ProviderServerError,
    ProviderTimeout,
)
from models.remote.retry import RetryPolicy, with_retries
from tests.models.remote.helpers import run


class FakeTime:
    """A clock that only moves when slept on: retry decisions become exact."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


class Script:
    """A call that fails with the given errors in turn, then returns "done"; records the timeouts it got."""

    def __init__(self, *errors: ProviderError, cost: float = 0.0, time: FakeTime | None = None) -> None:
        self.errors = list(errors)
        self.timeouts: list[float] = []
        self.cost, self.time = cost, time

    async def __call__(self, timeout_s: float) -> str:
        self.timeouts.append(timeout_s)
        if self.time is not None:
            self.time.now += self.cost
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def _retry(
    call: Script,
    time: FakeTime,
    *,
    deadline_in: float = 100.0,
    policy: RetryPolicy | None = None,
    rand: float = 1.0,
    request_timeout_s: float = 30.0,
) -> str:
    return run(
        with_retries(
            call,
            policy=policy or RetryPolicy(max_tries=5, base_delay_s=1.0, max_delay_s=8.0),
            deadline=time.now + deadline_in,
            request_timeout_s=request_timeout_s,
            sleep=time.sleep,
            rand=lambda: rand,
            clock=time.clock,
        )
    )


def test_exponential_backoff_with_cap() -> None:
    time = FakeTime()
    call = Script(*(ProviderServerError("boom") for _ in range(4)))

    assert _retry(call, time) == "done"
    assert time.waits == [1.0, 2.0, 4.0, 8.0]


def test_full_jitter_scales_the_backoff() -> None:
    time = FakeTime()

    _retry(Script(ProviderServerError("a"), ProviderServerError("b")), time, rand=0.25)

    assert time.waits == [0.25, 0.5]


def test_provider_delay_wins_when_longer_and_backoff_when_longer() -> None:
    time = FakeTime()
    call = Script(ProviderRateLimited("slow down", "p", 429, 5.0), ProviderRateLimited("again", "p", 429, 0.1))

    _retry(call, time)

    assert time.waits == [5.0, 2.0]


@pytest.mark.parametrize(
    "error",
    [
        ProviderRefused("no"),
        ProviderQuotaExhausted("broke"),
        ProviderAuthError("who"),
        ProviderTimeout("slow"),
        ProviderNetworkError("tls", "p", retry=False),
    ],
)
def test_final_errors_are_not_retried(error: ProviderError) -> None:
    time = FakeTime()
    call = Script(error)

    with pytest.raises(type(error)):
        _retry(call, time)

    assert len(call.timeouts) == 1 and time.waits == []


def test_resets_are_retried() -> None:
    time = FakeTime()

    assert _retry(Script(ProviderNetworkError("reset")), time) == "done"
    assert len(time.waits) == 1


def test_gives_up_with_the_last_error_when_the_wait_would_pass_the_deadline() -> None:
    time = FakeTime()
    last = ProviderRateLimited("later", "p", 429, 30.0)
    call = Script(ProviderServerError("first"), last)

    with pytest.raises(ProviderRateLimited) as info:
        _retry(call, time, deadline_in=10.0)

    assert info.value is last
    assert time.waits == [1.0]  # slept once, then refused to sleep 30 s towards a 10 s deadline
    assert time.now < 1000.0 + 10.0


def test_max_tries_bounds_the_calls() -> None:
    time = FakeTime()
    call = Script(*(ProviderServerError(str(i)) for i in range(10)))

    with pytest.raises(ProviderServerError, match="2"):
        _retry(call, time, policy=RetryPolicy(max_tries=3, base_delay_s=0.0))

    assert len(call.timeouts) == 3


def test_each_request_timeout_is_cut_to_the_time_left() -> None:
    time = FakeTime()
    call = Script(ProviderServerError("a"), ProviderServerError("b"), cost=3.0, time=time)

    _retry(call, time, deadline_in=10.0, request_timeout_s=5.0)

    # 10 s left -> 5 (configured); after 3 s work + 1 s wait, 6 left -> 5; after 3 + 2 more, 1 left.
    assert call.timeouts == [5.0, 5.0, pytest.approx(1.0)]


def test_deadline_already_passed_raises_timeout_without_calling() -> None:
    time = FakeTime()
    call = Script()

    with pytest.raises(ProviderTimeout):
        _retry(call, time, deadline_in=0.0)

    assert call.timeouts == []


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_tries=0)
    with pytest.raises(ValueError):
        RetryPolicy(base_delay_s=-1)


def test_a_single_try_policy_calls_once_and_never_waits() -> None:
    time = FakeTime()
    call = Script(ProviderServerError("boom"))

    with pytest.raises(ProviderServerError):
        _retry(call, time, policy=RetryPolicy(max_tries=1))

    assert len(call.timeouts) == 1 and time.waits == []


def test_the_default_policy_is_the_openai_sdks() -> None:
    # openai-python's defaults (src/openai/_constants.py: DEFAULT_MAX_RETRIES = 2, INITIAL_RETRY_DELAY = 0.5,
    # MAX_RETRY_DELAY = 8.0): three tries in all, ceilings 0.5, 1, 2 ... seconds, never above 8.
    policy = RetryPolicy()
    time = FakeTime()
    call = Script(*(ProviderServerError(str(i)) for i in range(10)))

    with pytest.raises(ProviderServerError, match="2"):
        _retry(call, time, policy=policy)

    assert len(call.timeouts) == 3
    assert time.waits == [0.5, 1.0]
    assert [policy.backoff(n, lambda: 1.0) for n in (1, 2, 3, 4, 5, 6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


def test_a_policy_cannot_be_changed_once_made() -> None:
    # One policy object is shared by every request to a provider: a change would leak into all of them.
    policy = RetryPolicy()
    with pytest.raises(AttributeError):
        policy.max_tries = 10  # type: ignore[misc]


def test_negative_delays_are_refused_and_zero_is_allowed() -> None:
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(max_delay_s=-0.5)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(base_delay_s=-0.5)
    assert RetryPolicy(base_delay_s=0.0, max_delay_s=0.0).backoff(3, lambda: 1.0) == 0.0


def test_a_deadline_passed_while_waiting_raises_timeout_without_calling() -> None:
    time = FakeTime()
    call = Script()

    with pytest.raises(ProviderTimeout):
        _retry(call, time, deadline_in=-0.5)

    assert call.timeouts == []


def test_a_wait_ending_exactly_at_the_deadline_is_not_slept() -> None:
    # Sleeping until the deadline would only end in the same error, later.
    time = FakeTime()
    last = ProviderRateLimited("later", "p", 429, 10.0)
    call = Script(last)

    with pytest.raises(ProviderRateLimited) as info:
        _retry(call, time, deadline_in=10.0)

    assert info.value is last and time.waits == [] and time.now == 1000.0


def test_each_retry_is_logged_with_kind_status_and_try_number_but_not_the_providers_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    time = FakeTime()
    call = Script(ProviderRateLimited("echoed sk-secret", "p", 429, 2.5), ProviderServerError("boom", "p", 503))

    with caplog.at_level(logging.INFO, logger="models.remote.retry"):
        assert (
            run(
                with_retries(
                    call,
                    policy=RetryPolicy(max_tries=3, base_delay_s=1.0),
                    deadline=time.now + 100.0,
                    request_timeout_s=30.0,
                    provider="openai",
                    sleep=time.sleep,
                    rand=lambda: 1.0,
                    clock=time.clock,
                )
            )
            == "done"
        )

    lines = [r.getMessage() for r in caplog.records if r.name == "models.remote.retry"]
    assert lines == [
        "openai rate_limited (HTTP 429): try 2 of 3 in 2.50 s",
        "openai server (HTTP 503): try 3 of 3 in 2.00 s",
    ]
    assert "sk-secret" not in caplog.text
