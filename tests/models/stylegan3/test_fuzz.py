"""Fuzz the network-pickle reader: mutated release-layout pickles and random opcode streams, loaded in a child
process so that a crash fails the test. Only the loader's own errors may come out; memory stays bounded.

Deterministic: the same seeds give the same inputs everywhere (`fuzz_cases`). CI runs CASCADE_FUZZ_SECONDS (default
20) of cases after the child's start-up, well inside 60 s; set it higher locally to go further, and
CASCADE_FUZZ_FIRST_SEED to explore other seeds. A failure names its seed: `fuzz_case(seed)` gives the bytes back.
"""

from __future__ import annotations

import os

from tests.models.stylegan3.load_child import run_child

SECONDS = float(os.environ.get("CASCADE_FUZZ_SECONDS", "20"))
FIRST_SEED = int(os.environ.get("CASCADE_FUZZ_FIRST_SEED", "0"))


def test_fuzzed_pickles_end_in_the_loaders_own_errors() -> None:
    report = run_child({"fuzz": {"first_seed": FIRST_SEED, "seconds": SECONDS}}, timeout_s=SECONDS + 120)
    assert report.crashed is None, (
        f"the child died on {report.crashed}: {report.outcome(report.crashed)}\n{report.stderr}"
    )
    escaped = {name: r["error"] for name, r in report.results.items() if r["outcome"] == "escaped"}
    assert not escaped, escaped
    outcomes = [r["outcome"] for r in report.results.values()]
    assert len(outcomes) >= 100, f"only {len(outcomes)} cases ran"  # a stalled reader shows here
    assert outcomes.count("refused") > len(outcomes) // 2
    assert report.peak_rss_mb < 1500, report.peak_rss_mb
