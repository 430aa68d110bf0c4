"""Shared fixtures: tiny random networks written in the release's pickle layout (CPU, single thread).

`tiny_pkl` is what a 2021 release run writes (protocol 4, numpy 1.x module names); `tiny_cond_pkl` a conditional
network as a numpy 2.x, protocol 3 re-save would be.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from models.stylegan3.generator import Generator
from models.stylegan3.testing import tiny_generator, write_network_pickle


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # The suite shares two cores with other work: oversubscribed BLAS threads make CPU convolutions crawl.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_g() -> Generator:
    return tiny_generator(c_dim=0, seed=1)


@pytest.fixture(scope="session")
def tiny_cond_g() -> Generator:
    return tiny_generator(c_dim=4, seed=2)


@pytest.fixture(scope="session")
def tiny_pkl(tmp_path_factory: pytest.TempPathFactory, tiny_g: Generator) -> Path:
    path = tmp_path_factory.mktemp("nets") / "tiny.pkl"
    # A different G next to G_ema: loading the wrong one must show.
    decoy = tiny_generator(c_dim=0, seed=99)
    write_network_pickle(path, tiny_g, G=decoy)
    return path


@pytest.fixture(scope="session")
def tiny_cond_pkl(tmp_path_factory: pytest.TempPathFactory, tiny_cond_g: Generator) -> Path:
    path = tmp_path_factory.mktemp("nets") / "tiny_cond.pkl"
    write_network_pickle(path, tiny_cond_g, protocol=3, numpy_layout="numpy2")
    return path
