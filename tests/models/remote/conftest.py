from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from PIL import Image

from tests.fakes.providers import FakeProviders
from tests.models.remote.helpers import RecordingSleep


@pytest.fixture
def fake() -> Iterator[FakeProviders]:
    with FakeProviders() as server:
        yield server


@pytest.fixture(scope="session")
def bomb() -> bytes:
    """A PNG of about 8 KB that declares 7999x7999 pixels (64 MP, ~190 MB once decoded to RGB)."""
    buf = io.BytesIO()
    Image.new("1", (7999, 7999)).save(buf, format="PNG")
    assert len(buf.getvalue()) < 16_000
    return buf.getvalue()


@pytest.fixture
def sleeper() -> RecordingSleep:
    return RecordingSleep()
