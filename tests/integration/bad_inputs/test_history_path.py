"""The bad-input catalogue through the history import: the same outcome as night by night.

The import COPYs runs of small files as one tagged stream (upstream.ingest.history.stream) and
falls back to one COPY per file when a group's COPY fails or a file cannot be tagged exactly.
Every refused and every unusual-but-valid file of the catalogue is delivered on its own day,
between good days, so each lands in a group with good files: the warehouse the import leaves
(refusal reasons included) must equal loading the same files night by night.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from support.bad_inputs import (
    AGENCY,
    Env,
    declined_row,
    filler_rows,
    truncate_warehouse,
    write_rows,
)
from support.history import dump, nightly
from test_refused_files import REFUSALS, small_rows
from test_unusual_valid_files import UNUSUAL

from upstream.ingest import history
from upstream.ingest.history import stream

pytestmark = pytest.mark.integration

FIRST = date(2022, 3, 1)


def _one_bad_row(s, d: date) -> None:
    """1 of 4 rows breaks a rule: 25% is above the share limit, 1 row is not above the count
    limit, so the row is quarantined and the file loads (both limits must be exceeded)."""
    write_rows(s, d, [*small_rows(d), declined_row(d, 4, call_source="9-1-1")])


def _mostly_bad_rows(s, d: date) -> None:
    """7 of 10 rows break a rule: both limits exceeded, the file is refused."""
    write_rows(s, d, [*filler_rows(d, 3, seed=7, prefix="Q"),
                      *(declined_row(d, 10 + i, call_source="9-1-1") for i in range(7))])


def _deliver_catalogue(env: Env) -> list[date]:
    """good, case, good, case, ..., good: one file a day."""
    days: list[date] = []
    writers = [lambda s, d, c=c: c.write(s, d) for c in REFUSALS if not c.bug]
    writers += [lambda s, d, c=c: c.write(s, d, c.rows(d)) for c in UNUSUAL if not c.bug]
    writers += [_one_bad_row, _mostly_bad_rows]
    d = FIRST
    for write in writers:
        write_rows(env.settings, d, small_rows(d))
        write(env.settings, d + timedelta(days=1))
        days += [d, d + timedelta(days=1)]
        d += timedelta(days=2)
    write_rows(env.settings, d, small_rows(d))
    return [*days, d]


def test_catalogue_through_the_import_equals_night_by_night(env: Env) -> None:
    days = _deliver_catalogue(env)
    truncate_warehouse(env.url)
    for d in days:
        nightly(env.settings, AGENCY, d)
    by_night = dump(env.url)

    truncate_warehouse(env.url)
    summary = history.import_history(days[0], days[-1], [AGENCY], settings=env.settings,
                                     url=env.url, batch_files=len(days))
    bulk = dump(env.url)
    # every case was delivered and judged: most refusals, the unusual files loaded
    assert len(summary.refused) >= 50 and summary.files_loaded > len(UNUSUAL), summary.render()
    assert "7 of 10 rows (70.0%) broke contract rules, above both limits" in summary.render()
    assert summary.quarantined_by_rule["call_source.enum"] == 1 + 7
    assert bulk.keys() == by_night.keys()
    for table in bulk:
        assert bulk[table] == by_night[table], table


def test_tagging_finds_records_by_quote_parity() -> None:
    body = b'a,"x\ny",1\nb,"say ""hi""",2\n'
    tagged, n = stream.tag_records(body, 7)
    assert n == 2 and tagged == b'7,a,"x\ny",1\n7,b,"say ""hi""",2\n'
    crlf, n = stream.tag_records(b"a,1\r\nb,2\r\n", 12, crlf=True)
    assert n == 2 and crlf == b"12,a,1\r\n12,b,2\r\n"
    # line ends other than the header's: left to the per-file COPY, which refuses the file
    assert stream.tag_records(b"a,1\nb,2\n", 12, crlf=True) is None
    assert stream.tag_records(b"a,1\r\nb,2\r\n", 12) is None
    assert stream.tag_records(b"a,1\nb,2", 3) == (b"3,a,1\n3,b,2\n", 2)  # no final line end
    assert stream.tag_records(b'a,"open\n', 3) is None  # ends inside a quoted field
    assert stream.tag_records(b"", 3) == (b"", 0)  # header-only day
