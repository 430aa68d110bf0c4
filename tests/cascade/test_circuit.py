from __future__ import annotations

import pytest

from cascade.circuit import CircuitBreaker
from cascade.types import Outcome


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_and_a_success_resets_the_count() -> None:
    breaker = CircuitBreaker(3, 10, Clock())
    for outcome in ("error", "timeout", "ok", "error", "error"):
        assert breaker.skip_reason() is None
        breaker.record(outcome)
    assert breaker.state == "closed"
    breaker.record("error")
    assert breaker.state == "open"
    assert "circuit open after 3 consecutive failures" in (breaker.skip_reason() or "")


def test_half_open_lets_exactly_one_probe_through_and_its_result_decides() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 10, clock)
    breaker.record("error")
    clock.now += 10
    assert breaker.state == "half_open"
    assert breaker.skip_reason() is None  # the probe
    assert "probe in flight" in (breaker.skip_reason() or "")
    breaker.record("error")
    assert breaker.state == "open"
    clock.now += 10
    assert breaker.skip_reason() is None
    breaker.record("ok")
    assert breaker.state == "closed" and breaker.skip_reason() is None


@pytest.mark.parametrize("outcome", ["busy", "declined", "skipped"])
def test_busy_or_declined_is_not_a_failure_and_frees_the_probe(outcome: Outcome) -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 10, clock)
    for _ in range(5):
        breaker.record(outcome)
    assert breaker.state == "closed"
    breaker.record("error")
    clock.now += 10
    assert breaker.skip_reason() is None
    breaker.record(outcome)
    assert breaker.skip_reason() is None  # the next request may probe


def test_a_lost_probe_does_not_keep_the_circuit_half_open_forever() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 10, clock)
    breaker.record("error")
    clock.now += 10
    assert breaker.skip_reason() is None  # probe granted, never reported
    clock.now += 10
    assert breaker.skip_reason() is None
