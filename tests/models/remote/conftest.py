from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.providers import FakeProviders
from tests.models.remote.helpers import RecordingSleep


@pytest.fixture
def fake() -> Iterator[FakeProviders]:
    with FakeProviders() as server:
        yield server


@pytest.fixture
def sleeper() -> RecordingSleep:
    return RecordingSleep()
