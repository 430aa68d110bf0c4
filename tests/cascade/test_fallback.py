"""The fallback loop on plain asyncio tasks: no Ray needed to pin down its rules."""

from __future__ import annotations

import asyncio
import time

import pytest

from cascade.errors import BackendBusy, BackendFailed, Declined, JobRejected, Refused
from cascade.fallback import Skipped, Step, run_chain
from cascade.types import Attempt, ImageResult

IMAGE = ImageResult(b"png", "image/png", 8, 8, 1, "fake")


def _task(coro_fn):
    return lambda: asyncio.ensure_future(coro_fn())


async def _ok() -> ImageResult:
    return IMAGE


async def _raise() -> ImageResult:
    raise ValueError("bad weights")


async def _busy() -> ImageResult:
    raise BackendBusy("queue full")


def _run(steps, budget_s: float = 10.0):
    return asyncio.run(run_chain(steps, time.monotonic() + budget_s))


def test_first_success_serves_and_later_steps_are_not_called() -> None:
    called = []

    async def later() -> ImageResult:
        called.append("later")
        return IMAGE

    chain = _run([Step("a", 1, _task(_raise)), Step("b", 1, _task(_ok)), Step("c", 1, _task(later))])
    assert chain.result is IMAGE and chain.backend == "b"
    assert [(a.backend, a.outcome) for a in chain.attempts] == [("a", "error"), ("b", "ok")]
    assert chain.attempts[0].error == "ValueError: bad weights"
    assert called == []


def test_skip_reasons_cost_nothing_and_busy_moves_on() -> None:
    gpu = Step("gpu", 5, _task(_ok), lambda: "not deployed")
    chain = _run([gpu, Step("q", 5, _task(_busy)), Step("p", 5, _task(_ok))])
    assert [(a.backend, a.outcome, a.error) for a in chain.attempts[:2]] == [
        ("gpu", "skipped", "not deployed"),
        ("q", "busy", "queue full"),
    ]
    assert chain.attempts[0].elapsed_ms < 1


def test_a_hung_step_costs_its_timeout_and_is_cancelled() -> None:
    cancelled = []

    async def hang() -> ImageResult:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return IMAGE

    async def scenario():
        chain = await run_chain([Step("h", 0.2, _task(hang)), Step("ok", 1, _task(_ok))], time.monotonic() + 10)
        await asyncio.sleep(0)  # let the cancellation land
        return chain

    chain = asyncio.run(scenario())
    hung = chain.attempts[0]
    assert (hung.outcome, hung.error) == ("timeout", "no answer in 0.2 s")
    assert 200 <= hung.elapsed_ms < 1000
    assert cancelled == [True]


def test_each_step_gets_at_most_the_time_left_in_the_request() -> None:
    async def slow() -> ImageResult:
        await asyncio.sleep(60)
        return IMAGE

    chain = _run([Step("slow", 30, _task(slow)), Step("after", 30, _task(_ok))], budget_s=0.3)
    assert chain.attempts[0].outcome == "timeout" and chain.attempts[0].elapsed_ms < 1000
    assert (chain.attempts[1].outcome, chain.attempts[1].error) == ("skipped", "request deadline passed")
    assert chain.result is None


def test_an_instant_last_resort_still_runs_when_the_time_is_up() -> None:
    async def slow() -> ImageResult:
        await asyncio.sleep(60)
        return IMAGE

    chain = _run([Step("slow", 30, _task(slow)), Step("svg", 5, _task(_ok), instant=True)], budget_s=0.2)
    assert [(a.backend, a.outcome) for a in chain.attempts] == [("slow", "timeout"), ("svg", "ok")]


def test_health_counts_backend_faults_but_not_the_request_s_own() -> None:
    async def rejects() -> ImageResult:
        raise JobRejected("class_label 7 is out of range")

    async def hang() -> ImageResult:
        await asyncio.sleep(60)
        return IMAGE

    steps = [
        Step("bad_option", 5, _task(rejects)),
        Step("broken", 5, _task(_raise)),
        Step("hung", 0.1, _task(hang)),
        Step("full", 5, _task(_busy)),
        Step("gpu", 5, _task(_ok), lambda: "not deployed"),
        Step("ok", 5, _task(_ok)),
    ]
    chain = _run(steps)
    assert chain.attempts[0].outcome == "error"  # reported to the caller as what happened...
    assert chain.health == {"broken": "error", "hung": "timeout", "full": "busy", "ok": "ok"}  # ...not blamed


def test_a_declined_step_moves_on_at_once_and_is_not_a_failure() -> None:
    async def declines() -> ImageResult:
        raise Declined("needs ~95 s at the measured speed, 40 s left before the deadline")

    started = time.monotonic()
    chain = _run([Step("qwen", 60, _task(declines)), Step("p", 5, _task(_ok))])
    assert time.monotonic() - started < 1
    assert [(a.backend, a.outcome) for a in chain.attempts] == [("qwen", "declined"), ("p", "ok")]
    assert chain.attempts[0].error == "needs ~95 s at the measured speed, 40 s left before the deadline"
    assert chain.health == {"qwen": "declined", "p": "ok"}


def test_a_step_whose_call_says_skipped_is_reported_skipped_and_not_counted_against_its_backend() -> None:
    async def over_budget() -> ImageResult:
        raise Skipped("daily remote spend limit ($1) reached: $0 left")

    chain = _run([Step("remote", 5, _task(over_budget)), Step("p", 5, _task(_ok))])
    assert [(a.backend, a.outcome, a.error) for a in chain.attempts] == [
        ("remote", "skipped", "daily remote spend limit ($1) reached: $0 left"),
        ("p", "ok", None),
    ]
    assert chain.health == {"remote": "skipped", "p": "ok"} and chain.backend == "p"


def test_declined_survives_pickling_as_ray_sends_it() -> None:
    import pickle

    again = pickle.loads(pickle.dumps(Declined("needs ~95 s")))
    assert isinstance(again, Declined) and str(again) == "needs ~95 s" and again.status == 503


def test_a_refusal_ends_the_chain_and_inner_attempts_stand_in_for_the_step() -> None:
    inner = (Attempt("remote:openai", "error", "refused: policy", 3.0),)

    async def refuse() -> ImageResult:
        raise Refused("refused: policy", inner)

    chain = _run([Step("remote", 5, _task(refuse)), Step("svg", 5, _task(_ok))])
    assert chain.result is None and chain.refused is not None
    assert chain.attempts == inner


def test_failed_backend_with_inner_attempts_reports_them() -> None:
    inner = (Attempt("remote:fal", "skipped", "no FAL_KEY set", 0.0), Attempt("remote:gemini", "error", "x", 5.0))

    async def fail() -> ImageResult:
        raise BackendFailed("all providers failed", inner)

    chain = _run([Step("remote", 5, _task(fail)), Step("svg", 5, _task(_ok))])
    assert [a.backend for a in chain.attempts] == ["remote:fal", "remote:gemini", "svg"]


def test_a_start_that_raises_is_an_error_not_a_crash() -> None:
    def start():
        raise RuntimeError("handle gone")

    chain = _run([Step("x", 1, start), Step("ok", 1, _task(_ok))])
    assert chain.attempts[0].outcome == "error" and "handle gone" in (chain.attempts[0].error or "")


@pytest.mark.parametrize("n", [1, 3])
def test_every_step_failing_gives_no_result_and_all_attempts(n: int) -> None:
    chain = _run([Step(f"s{i}", 1, _task(_raise)) for i in range(n)])
    assert chain.result is None and len(chain.attempts) == n
