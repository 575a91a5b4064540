"""Which days wait for their manifest, and the lock key per agency (no Airflow run needed)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from upstream.dates import manifest_deadline
from upstream.locks import agency_key

TORONTO = ZoneInfo("America/Toronto")


def test_deadline_is_the_next_mornings_run_plus_the_grace_in_local_time():
    # 03:00 EDT on 2024-05-11 + 6 h = 09:00 EDT = 13:00 UTC
    assert manifest_deadline(date(2024, 5, 10), TORONTO, 6 * 3600) == datetime(
        2024, 5, 11, 13, 0, tzinfo=UTC)
    # across the autumn DST change: 03:00 EST on 2024-11-04 = 08:00 UTC
    assert manifest_deadline(date(2024, 11, 3), TORONTO, 0) == datetime(
        2024, 11, 4, 8, 0, tzinfo=UTC)


@pytest.fixture
def landing(tmp_path, monkeypatch):
    monkeypatch.setenv("UPSTREAM_LANDING_DIR", str(tmp_path))
    monkeypatch.setenv("UPSTREAM_TIMEZONE", "America/Toronto")
    monkeypatch.setenv("UPSTREAM_MANIFEST_DEADLINE_SECONDS", str(6 * 3600))
    return tmp_path


def _context(day: date) -> dict:
    return {"params": {"extract_date": day.isoformat()}, "logical_date": None,
            "dag_run": SimpleNamespace(run_after=None)}


def test_a_day_whose_deadline_is_ahead_waits(landing):
    from upstream.orchestration import manifest_arrived

    day = date(2024, 5, 10)
    deadline = manifest_deadline(day, TORONTO, 6 * 3600)
    assert manifest_arrived("WPS", _context(day), now=deadline - timedelta(seconds=1)) is False


def test_a_day_whose_deadline_passed_fails_at_once_naming_the_folder(landing):
    from airflow.sdk.exceptions import AirflowFailException

    from upstream.orchestration import manifest_arrived

    day = date(2024, 5, 10)
    deadline = manifest_deadline(day, TORONTO, 6 * 3600)
    with pytest.raises(AirflowFailException) as failed:
        manifest_arrived("WPS", _context(day), now=deadline)
    message = str(failed.value)
    assert message == (f"WPS 2024-05-10: the manifest did not arrive by the deadline "
                       f"(2024-05-11 09:00 EDT); looked in {landing / 'WPS'}")
    assert failed.value.public_message == message  # what the alert carries


def test_agency_lock_keys_are_distinct_and_fit_int4():
    codes = ["WPS", "LPS", "RCP", "AB", "ZZZZZZ", "A"]
    keys = [agency_key(c) for c in codes]
    assert len(set(keys)) == len(keys)
    assert all(0 < k < 2**31 for k in keys)
    assert agency_key("wps") == agency_key("WPS")
    with pytest.raises(ValueError):
        agency_key("W-1")


def test_airflow_uses_the_agencies_time_zone(tmp_path, monkeypatch):
    """UPSTREAM_TIMEZONE becomes Airflow's default time zone (naive CLI dates, log times)."""
    from upstream import devenv
    from upstream.config import load_settings

    monkeypatch.setenv("UPSTREAM_HOME", str(tmp_path))
    monkeypatch.setenv("UPSTREAM_TIMEZONE", "America/Winnipeg")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg://unused/x")
    monkeypatch.delenv("AIRFLOW__CORE__DEFAULT_TIMEZONE", raising=False)
    env = devenv.airflow_env(load_settings())
    assert env["AIRFLOW__CORE__DEFAULT_TIMEZONE"] == "America/Winnipeg"
    monkeypatch.setenv("AIRFLOW__CORE__DEFAULT_TIMEZONE", "UTC")  # an explicit choice wins
    assert "AIRFLOW__CORE__DEFAULT_TIMEZONE" not in devenv.airflow_env(load_settings())
