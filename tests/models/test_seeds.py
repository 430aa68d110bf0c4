"""The prompt-derived seed every model uses when the request names none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from models.seeds import MAX_SEED, stable_seed


def test_the_seed_is_in_range_and_depends_on_the_prompt() -> None:
    seeds = {stable_seed(f"prompt {i}") for i in range(200)}
    assert all(0 <= s <= MAX_SEED for s in seeds)
    assert len(seeds) == 200


def test_the_seed_is_the_same_in_another_process() -> None:
    # Unlike hash(), which is salted per process.
    out = subprocess.run(
        [sys.executable, "-c", "from models.seeds import stable_seed; print(stable_seed('a lighthouse'))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert int(out.stdout) == stable_seed("a lighthouse")


def test_odd_prompts_have_seeds_too() -> None:
    assert stable_seed("") != stable_seed(" ")
    assert 0 <= stable_seed("\ud800 lone surrogate") <= MAX_SEED
