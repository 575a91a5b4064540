"""The refusal rule for bad rows: both the share and the count must exceed their limits."""

from __future__ import annotations

import pytest

from upstream.ingest import quarantine_refusal, quarantine_refuses
from upstream.settings import load_settings


@pytest.fixture
def settings(monkeypatch):
    for name in ("UPSTREAM_QUARANTINE_MAX_SHARE", "UPSTREAM_QUARANTINE_MAX_ROWS",
                 "UPSTREAM_QUARANTINE_WARN_SHARE"):
        monkeypatch.delenv(name, raising=False)
    return load_settings()


@pytest.mark.parametrize(("bad", "rows", "refused"), [
    (1, 8, False),            # the program's volume: 12.5%, but one row
    (5, 8, False),            # at the count limit
    (6, 8, True),             # most of a day: systematic
    (0, 0, False),            # a header-only day
    (5, 100, False),          # 5%: at the share limit
    (6, 100, True),           # from 100 rows on the share rule alone decides, as before
    (40, 20_000, False),      # a few bad rows in a large file
    (50_001, 1_000_000, True),
])
def test_both_limits_must_be_exceeded(settings, bad, rows, refused):
    assert (settings.validate.quarantine_max_share, settings.validate.quarantine_max_rows) == (0.05, 5)
    assert quarantine_refuses(settings, bad, rows) is refused


def test_refusal_names_both_limits(settings):
    assert quarantine_refusal(settings, 8, 8) == (
        "8 of 8 rows (100.0%) broke contract rules, above both limits (5.0% and 5 rows)")
    strict = settings.with_changes(validate__quarantine_max_rows=0)
    assert quarantine_refuses(strict, 1, 8)


@pytest.mark.parametrize("raw", ["-1", "five", "2.5"])
def test_max_rows_setting_is_checked(monkeypatch, raw):
    monkeypatch.setenv("UPSTREAM_QUARANTINE_MAX_ROWS", raw)
    with pytest.raises(ValueError, match="UPSTREAM_QUARANTINE_MAX_ROWS"):
        load_settings()


def test_max_rows_setting(monkeypatch):
    monkeypatch.setenv("UPSTREAM_QUARANTINE_MAX_ROWS", "25")
    assert load_settings().validate.quarantine_max_rows == 25
