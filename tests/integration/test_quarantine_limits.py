"""The quarantine limit at the program's real volume (8 rows a day) and at a large file's.

A file is refused only when both the share (UPSTREAM_QUARANTINE_MAX_SHARE, 5%) and the count
(UPSTREAM_QUARANTINE_MAX_ROWS, 5) of bad rows exceed their limits. Each case is one real load
(`ingest.load_extract`: COPY, GX suite, quarantine, merge) against the session's PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.rows import dict_row

from upstream import ingest
from upstream.dev import generate
from upstream.settings import load_settings

pytestmark = pytest.mark.integration

TZ = ZoneInfo("America/Toronto")
LARGE_ROWS = 20_000


@pytest.fixture(scope="module")
def settings(module_env):
    with module_env("quarantine-limits", key="quarantine-limits-key", reset=False, unset=(
            "UPSTREAM_QUARANTINE_MAX_SHARE", "UPSTREAM_QUARANTINE_MAX_ROWS")) as s:
        assert (s.validate.quarantine_max_share, s.validate.quarantine_max_rows) == (0.05, 5)
        yield s


def _small_day(s, d: date, bad: int) -> None:
    """8 calls (the program's daily volume), the first `bad` of them breaking one rule each."""
    rng = random.Random(d.toordinal())
    rows = []
    for k in range(8):
        at = datetime.combine(d, time(6), TZ) + timedelta(minutes=40 * k)
        incident = f"WPS-{d:%Y%m%d}-S{k:03d}"
        rows.append(generate.make_bad_row("bad_enum", rng, "WPS", incident, at) if k < bad
                    else generate.make_row(rng, "WPS", incident, at))
    generate.write_extract(s.landing.dir, "WPS", d, rows)


def _large_day(s, d: date, bad_every: int) -> int:
    """A 20k-row file whose every `bad_every`-th row names another agency. Returns bad rows."""
    path = s.landing.dir / "WPS" / generate.csv_name("WPS", d)
    generate.write_large_extract(path, LARGE_ROWS, seed=d.day, extract_date=d)
    bad = 0

    def spoil(m: re.Match) -> bytes:
        nonlocal bad
        if int(m[2]) % bad_every:
            return m[0]
        bad += 1
        return b"\nLPS," + m[1] + b","

    # Records start with "WPS,WPS-<year>-<n>," (quoted narratives span lines, so no split).
    data = re.sub(rb"\nWPS,(WPS-\d{4}-(\d+)),", spoil, path.read_bytes())
    path.write_bytes(data)
    manifest = path.with_name(generate.manifest_name("WPS", d))
    content = json.loads(manifest.read_text())
    content["sha256"] = hashlib.sha256(data).hexdigest()
    manifest.write_text(json.dumps(content))
    return bad


def _file(s, file_id: int) -> dict:
    with psycopg.connect(s.warehouse.url, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT status, rows_in_file, rows_loaded, rows_quarantined, reason"
            " FROM ops.extract_file WHERE file_id = %s", (file_id,)).fetchone()


def test_one_bad_row_in_a_day_of_eight_is_quarantined(settings) -> None:
    d = date(2024, 7, 1)
    _small_day(settings, d, bad=1)
    result = ingest.load_extract("WPS", d, settings)
    # 12.5% is above the share limit, but one row is not systematic breakage.
    assert (result.outcome, result.rows_loaded, result.rows_quarantined) == ("loaded", 7, 1)
    assert result.quarantined_share == 0.125
    assert _file(settings, result.file_id)["status"] == "loaded"


def test_a_day_of_eight_all_broken_is_refused(settings) -> None:
    d = date(2024, 7, 2)
    _small_day(settings, d, bad=8)
    with pytest.raises(ingest.RefusedFile) as excinfo:
        ingest.load_extract("WPS", d, settings)
    assert excinfo.value.public_message.startswith(
        "WPS 2024-07-02: 8 of 8 rows (100.0%) broke contract rules, above both limits "
        "(5.0% and 5 rows): nothing loaded (top rules: ")
    assert _file(settings, excinfo.value.result.file_id)["status"] == "refused"


def test_large_file_with_systematic_breakage_is_refused(settings) -> None:
    d = date(2024, 7, 3)
    bad = _large_day(settings, d, bad_every=10)
    assert bad == 2000
    with pytest.raises(ingest.RefusedFile) as excinfo:
        ingest.load_extract("WPS", d, settings)
    assert excinfo.value.public_message.startswith(
        "WPS 2024-07-03: 2000 of 20000 rows (10.0%) broke contract rules, above both limits")
    stored = _file(settings, excinfo.value.result.file_id)
    assert (stored["status"], stored["rows_in_file"], stored["rows_loaded"],
            stored["rows_quarantined"]) == ("refused", LARGE_ROWS, 0, 2000)


def test_large_file_with_a_few_bad_rows_loads(settings) -> None:
    d = date(2024, 7, 4)
    bad = _large_day(settings, d, bad_every=500)
    assert bad == 40  # above the count limit, far below the share limit
    result = ingest.load_extract("WPS", d, settings)
    assert (result.outcome, result.rows_loaded, result.rows_quarantined) == (
        "loaded", LARGE_ROWS - 40, 40)
    assert result.quarantine_by_rule == {"agency_code.matches_file": 40}


def test_limits_are_configurable(settings, monkeypatch) -> None:
    monkeypatch.setenv("UPSTREAM_QUARANTINE_MAX_ROWS", "0")
    strict = load_settings()
    assert strict.validate.quarantine_max_rows == 0
    d = date(2024, 7, 5)
    _small_day(settings, d, bad=1)
    with pytest.raises(ingest.RefusedFile, match=r"1 of 8 rows \(12.5%\) .* \(5.0% and 0 rows\)"):
        ingest.load_extract("WPS", d, strict)
