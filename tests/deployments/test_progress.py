from __future__ import annotations

import asyncio

from deployments.progress import ProgressBoard


def _board() -> ProgressBoard:
    # The class under the decorator: its methods are plain coroutines, no Serve needed.
    return ProgressBoard.func_or_class()


def _step(step: int) -> dict[str, object]:
    return {"backend": "qwen_image", "request_id": "r1", "replica": "a", "step": step, "total": 10}


def test_a_step_that_arrives_after_its_jobs_end_does_not_bring_it_back() -> None:
    async def run() -> list[dict[str, object]]:
        board = _board()
        await board.post("a:r1", _step(3))
        await board.post("a:r1", None)
        await board.post("a:r1", _step(4))  # sent before the end, delivered after it
        return await board.jobs()

    assert asyncio.run(run()) == []


def test_a_running_job_shows_its_latest_step_and_other_jobs_are_untouched() -> None:
    async def run() -> list[dict[str, object]]:
        board = _board()
        await board.post("a:r0", None)
        await board.post("a:r1", _step(3))
        await board.post("a:r1", _step(5))
        return await board.jobs()

    jobs = asyncio.run(run())
    assert [(j["request_id"], j["step"]) for j in jobs] == [("r1", 5)]
