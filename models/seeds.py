"""One way to turn a prompt into a seed, shared by every model so "no seed given" means the same everywhere."""

from __future__ import annotations

import hashlib

MAX_SEED = 2**31 - 1


def stable_seed(prompt: str) -> int:
    """A seed in 0..2**31-1 that depends only on the prompt (unlike `hash()`, stable across processes)."""
    digest = hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") & MAX_SEED
