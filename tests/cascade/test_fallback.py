"""The fallback loop on plain asyncio tasks: no Ray needed to pin down its rules."""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import FrozenInstanceError

import pytest

from cascade.errors import BackendBusy, BackendFailed, Declined, JobRejected, Refused
from cascade.fallback import Call, Skipped, Step, run_chain
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


def test_a_hung_step_costs_its_timeout_and_is_cancelled_before_the_next_step_runs() -> None:
    events: list[str] = []

    async def hang() -> ImageResult:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            events.append("hung step cancelled")
            raise
        return IMAGE

    async def next_step() -> ImageResult:
        events.append("next step started")
        return IMAGE

    chain = _run([Step("h", 0.2, _task(hang)), Step("ok", 1, _task(next_step))])
    hung = chain.attempts[0]
    assert (hung.outcome, hung.error) == ("timeout", "no answer in 0.2 s")
    assert 200 <= hung.elapsed_ms < 1000
    # Seen from inside the chain, not after it: asyncio.run cancels whatever is left when it shuts down.
    assert events == ["hung step cancelled", "next step started"]


class _Remote:
    """Stands for a DeploymentResponse: awaiting it waits for the far side, and only `cancel()` stops the far side
    (cancelling whoever awaits it does not). Like Serve's, a cancelled one may end with an error of its own."""

    def __init__(self, error_when_cancelled: bool = False) -> None:
        self.cancelled = False
        self._error_when_cancelled = error_when_cancelled
        self._answer: asyncio.Future[ImageResult] = asyncio.get_running_loop().create_future()

    async def _wait(self) -> ImageResult:
        try:
            return await self._answer
        except asyncio.CancelledError:
            if self._error_when_cancelled:
                raise RuntimeError("RequestCancelledError") from None
            raise

    def __await__(self):
        return self._wait().__await__()

    def cancel(self) -> None:
        self.cancelled = True


@pytest.mark.parametrize("error_when_cancelled", [False, True])
def test_a_timed_out_call_is_cancelled_and_leaves_nothing_behind(error_when_cancelled: bool) -> None:
    async def scenario() -> tuple[_Remote, list[dict], set[asyncio.Task]]:
        problems: list[dict] = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: problems.append(context))
        remote = _Remote(error_when_cancelled)
        steps = [Step("remote", 0.05, lambda: remote), Step("svg", 1, _task(_ok))]
        chain = await run_chain(steps, time.monotonic() + 5)
        assert chain.backend == "svg" and chain.attempts[0].outcome == "timeout"
        await asyncio.sleep(0.05)
        left = asyncio.all_tasks() - {asyncio.current_task()}
        gc.collect()  # an exception nobody retrieved is reported when its task is collected
        await asyncio.sleep(0)
        return remote, problems, left

    remote, problems, left = asyncio.run(scenario())
    assert remote.cancelled  # the far side is told to stop...
    assert left == set()  # ...nothing keeps waiting for its answer...
    assert problems == []  # ...and its late error is nobody's problem


def test_a_request_given_up_by_its_caller_cancels_the_step_it_is_waiting_for() -> None:
    events: list[str] = []

    async def hang() -> ImageResult:
        events.append("started")
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise
        return IMAGE

    async def never() -> ImageResult:
        events.append("next step started")
        return IMAGE

    async def scenario() -> None:
        chain = asyncio.ensure_future(
            run_chain([Step("h", 30, _task(hang)), Step("next", 30, _task(never))], time.monotonic() + 60)
        )
        while not events:
            await asyncio.sleep(0.01)
        chain.cancel()  # the client went away: the gateway's request task is cancelled
        with pytest.raises(asyncio.CancelledError):
            await chain
        assert events == ["started", "cancelled"]  # at once, not when asyncio.run tidies up

    asyncio.run(scenario())


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


def test_a_handle_refusing_at_submit_time_is_busy_and_the_chain_moves_on() -> None:
    def full() -> Call:
        raise BackendBusy("queue full (max_queued_requests=4)")

    chain = _run([Step("gpu", 5, full), Step("cpu", 5, _task(_ok))])
    assert [(a.backend, a.outcome, a.error) for a in chain.attempts] == [
        ("gpu", "busy", "queue full (max_queued_requests=4)"),
        ("cpu", "ok", None),
    ]
    assert chain.health == {"gpu": "busy", "cpu": "ok"} and chain.backend == "cpu"


class _Ticks:
    """A clock that moves 0.25 s each time it is read, whatever really happens."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 0.25
        return self.now - 0.25


def test_a_step_reached_exactly_at_the_deadline_is_skipped_and_costs_what_the_clock_says() -> None:
    async def never() -> ImageResult:
        raise AssertionError("called after the deadline")

    clock = _Ticks(100.0)
    chain = asyncio.run(run_chain([Step("gpu", 5, _task(never))], deadline=100.0, clock=clock))
    assert chain.attempts == (Attempt("gpu", "skipped", "request deadline passed", 250.0),)
    assert chain.health == {}


def test_a_step_gets_the_time_left_when_it_is_less_than_its_timeout() -> None:
    async def slow() -> ImageResult:
        await asyncio.sleep(60)
        return IMAGE

    # Read at 100.0 when the step starts: 0.3 s left of the request, against the step's own 30 s.
    chain = asyncio.run(run_chain([Step("slow", 30, _task(slow))], deadline=100.3, clock=_Ticks(100.0)))
    assert chain.attempts == (Attempt("slow", "timeout", "no answer in 0.3 s", 250.0),)
    assert chain.health == {"slow": "timeout"}


def test_a_backend_s_inner_attempts_stand_in_for_it_when_it_serves_too() -> None:
    inner = (Attempt("remote:fal", "skipped", "no FAL_KEY set", 0.0), Attempt("remote:openai", "ok", None, 900.0))
    served = ImageResult(b"png", "image/png", 8, 8, 1, "openai:gpt-image-1", attempts=inner)

    async def remote() -> ImageResult:
        return served

    chain = _run([Step("remote", 5, _task(remote)), Step("svg", 5, _task(_ok))])
    assert (chain.result, chain.backend, chain.attempts) == (served, "remote", inner)


def test_a_refusal_is_not_held_against_the_backend() -> None:
    async def refuse() -> ImageResult:
        raise Refused("refused: policy")

    chain = _run([Step("remote", 5, _task(refuse)), Step("svg", 5, _task(_ok))])
    assert chain.health == {} and chain.backend is None
    assert [(a.backend, a.outcome, a.error) for a in chain.attempts] == [("remote", "error", "refused: policy")]


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (ValueError("bad weights\n  at line 2"), "ValueError: bad weights"),  # first line, with its type
        (BackendFailed("all providers failed"), "all providers failed"),  # ours speak for themselves
        (BackendBusy(""), "BackendBusy"),  # never an empty error
        (KeyError("x"), "KeyError: 'x'"),
        (RuntimeError("x" * 300), "RuntimeError: " + "x" * 285 + "…"),  # cut to 300 characters
        (BackendFailed("y" * 300), "y" * 300),  # exactly at the limit: whole
        (BackendFailed("y" * 301), "y" * 299 + "…"),
    ],
)
def test_errors_are_reported_in_one_short_line(error: Exception, shown: str) -> None:
    async def fail() -> ImageResult:
        raise error

    chain = _run([Step("x", 5, _task(fail))])
    assert chain.attempts[0].error == shown and len(shown) <= 300


def test_steps_and_results_are_frozen_values() -> None:
    chain = _run([Step("ok", 1, _task(_ok))])
    for value, name in ((chain, "backend"), (Step("x", 1, _task(_ok)), "timeout_s")):
        with pytest.raises(FrozenInstanceError):
            setattr(value, name, None)


class _Watcher:
    def __init__(self) -> None:
        self.heard: list[tuple[str, str]] = []

    def started(self, backend: str) -> None:
        self.heard.append(("started", backend))

    def ended(self, attempt: Attempt) -> None:
        self.heard.append((attempt.outcome, attempt.backend))


def test_a_watcher_hears_each_attempt_as_it_happens_and_skips_without_a_start() -> None:
    watcher = _Watcher()
    seen_when_b_runs: list[list[tuple[str, str]]] = []

    async def b() -> ImageResult:
        seen_when_b_runs.append(list(watcher.heard))
        return IMAGE

    steps = [Step("gpu", 1, _task(_ok), lambda: "not deployed"), Step("a", 1, _task(_raise)), Step("b", 1, _task(b))]
    asyncio.run(run_chain(steps, time.monotonic() + 10, watcher=watcher))
    assert watcher.heard == [("skipped", "gpu"), ("started", "a"), ("error", "a"), ("started", "b"), ("ok", "b")]
    assert seen_when_b_runs == [watcher.heard[:4]]  # live, not after the fact


def test_a_watcher_hears_each_skip_itself_when_it_comes_after_other_attempts() -> None:
    watcher = _Watcher()
    steps = [
        Step("a", 1, _task(_raise)),
        Step("gpu", 1, _task(_ok), lambda: "not deployed"),
        Step("qwen", 1, _task(_ok), lambda: "circuit open"),
        Step("b", 1, _task(_ok)),
    ]
    asyncio.run(run_chain(steps, time.monotonic() + 10, watcher=watcher))
    assert watcher.heard == [
        ("started", "a"),
        ("error", "a"),
        ("skipped", "gpu"),
        ("skipped", "qwen"),
        ("started", "b"),
        ("ok", "b"),
    ]


def test_a_start_that_says_skipped_before_any_call_is_a_skip_and_the_chain_moves_on() -> None:
    def over_budget() -> Call:
        raise Skipped("daily remote spend limit ($1) reached: $0 left")  # a limit checked before the handle call

    chain = _run([Step("remote", 5, over_budget), Step("p", 5, _task(_ok))])
    assert [(a.backend, a.outcome, a.error) for a in chain.attempts] == [
        ("remote", "skipped", "daily remote spend limit ($1) reached: $0 left"),
        ("p", "ok", None),
    ]
    assert chain.health == {"remote": "skipped", "p": "ok"} and chain.backend == "p"
