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
    for outcome in ("error", "timeout", "ok", "timeout", "error"):
        assert breaker.skip_reason() is None
        breaker.record(outcome)
    assert breaker.state == "closed"
    breaker.record("timeout")
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
def test_busy_declined_or_skipped_by_a_limit_is_not_a_failure_and_frees_the_probe(outcome: Outcome) -> None:
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


def test_timeouts_count_as_failures_so_a_hung_backend_opens_its_circuit() -> None:
    breaker = CircuitBreaker(3, 10, Clock())
    for _ in range(3):
        assert breaker.skip_reason() is None
        breaker.record("timeout")
    assert breaker.state == "open" and breaker.failures == 3


def test_busy_and_skipped_neither_count_nor_reset_the_failures() -> None:
    breaker = CircuitBreaker(3, 10, Clock())
    breaker.record("error")
    breaker.record("error")
    breaker.record("busy")
    breaker.record("skipped")
    assert (breaker.state, breaker.failures) == ("closed", 2)
    breaker.record("timeout")
    assert breaker.state == "open"


def test_open_says_how_long_until_the_next_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker(2, 10, clock)
    breaker.record("error")
    breaker.record("error")
    clock.now += 2.5
    assert breaker.skip_reason() == "circuit open after 2 consecutive failures (retry in 7.5 s)"
    clock.now += 7.4
    assert (
        breaker.state == "open"
        and breaker.skip_reason() == "circuit open after 2 consecutive failures (retry in 0.1 s)"
    )


def test_a_failed_probe_opens_the_circuit_for_a_full_cool_down_from_its_failure() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 10, clock)
    breaker.record("error")
    clock.now += 10
    assert breaker.skip_reason() is None  # the probe, at 110
    clock.now += 4
    breaker.record("error")  # it fails at 114
    assert breaker.failures == 2
    clock.now += 9.9
    assert breaker.state == "open" and "retry in 0.1 s" in (breaker.skip_reason() or "")
    clock.now += 0.1
    assert breaker.state == "half_open" and breaker.skip_reason() is None


def test_a_probe_in_flight_holds_others_off_for_one_cool_down() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 10, clock)
    breaker.record("error")
    clock.now += 12
    assert breaker.skip_reason() is None  # the probe, at 112
    clock.now += 9.9
    assert breaker.skip_reason() == "circuit open after 1 consecutive failures (probe in flight)"
    clock.now += 0.1
    assert breaker.skip_reason() is None  # given up on: another request probes
    assert breaker.skip_reason() is not None


def test_a_success_closes_and_forgets_everything() -> None:
    clock = Clock()
    breaker = CircuitBreaker(2, 10, clock)
    breaker.record("error")
    breaker.record("error")
    clock.now += 10
    assert breaker.skip_reason() is None
    breaker.record("ok")
    assert (breaker.state, breaker.failures) == ("closed", 0)
    breaker.record("error")
    assert breaker.state == "closed"  # counting starts again from zero


def test_half_open_lasts_until_a_probe_is_granted_however_late_the_next_request() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 10, clock)
    breaker.record("error")
    clock.now += 9.9
    assert breaker.state == "open"
    clock.now += 60
    assert breaker.state == "half_open" and breaker.skip_reason() is None
    clock.now += 25  # that probe was lost long ago
    assert breaker.skip_reason() is None


def test_a_failure_reported_while_open_restarts_the_cool_down() -> None:
    # Requests already in flight when the circuit opened may fail later: the backend is no healthier for it.
    clock = Clock()
    breaker = CircuitBreaker(2, 10, clock)
    breaker.record("error")
    breaker.record("error")  # opens at 100
    clock.now += 5
    breaker.record("timeout")  # a call made before it opened, failing at 105
    clock.now += 6
    assert breaker.state == "open" and "retry in 4.0 s" in (breaker.skip_reason() or "")


def test_a_probe_in_flight_keeps_others_out_until_it_reports() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 10, clock)
    breaker.record("error")
    clock.now += 10
    assert breaker.skip_reason() is None
    assert "probe in flight" in (breaker.skip_reason() or "")
