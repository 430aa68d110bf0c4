from __future__ import annotations

import pytest

from cascade.index.urls import engine_url, redacted


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u:p@ep-cool-1.eu-central-1.aws.neon.tech/neondb?sslmode=require", "postgresql+psycopg"),
        ("postgres://postgres.abc:p@aws-0-eu-central-1.pooler.supabase.com:6543/postgres", "postgresql+psycopg"),
        ("postgresql+psycopg2://u:p@h/db", "postgresql+psycopg"),
        ("sqlite:///generated_images/cascade.sqlite3", "sqlite"),
    ],
)
def test_urls_as_providers_hand_them_out_open_with_psycopg_3_or_sqlite(given: str, driver: str) -> None:
    url = engine_url(given)
    assert url.drivername == driver
    assert url.query == engine_url(given).query  # sslmode and friends pass through to libpq


@pytest.mark.parametrize("bad", ["sqlite://", "sqlite:///:memory:", "mysql://u:p@h/db", "not a url", ""])
def test_unusable_urls_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(ValueError, match="database URL"):
        engine_url(bad)


def test_passwords_never_show() -> None:
    shown = redacted(engine_url("postgresql://u:s3cret@h/db?sslmode=require&password=other"))
    assert "s3cret" not in shown and "other" not in shown and "sslmode=require" in shown
