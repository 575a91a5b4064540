"""The program-monitoring page inside a real Airflow API server, read by a real browser.

* A database of its own on the test PostgreSQL server holds the seven ``published`` views as
  tables with the contract's columns and known rows (the real views come from
  include/sql/migrations/003_outcomes.sql; `test_published_views_match_the_contract` checks
  them whenever the migrations define them).
* ``airflow api-server`` runs as a subprocess with this repository's plugins folder, pointed at
  that database (UPSTREAM_MONITORING_DATABASE_URL) and at a throw-away least-privilege role.
* HTTP checks: anonymous requests get no data, ``POST /auth/token`` works with the generated
  password and not with a wrong one, the Bearer token reads the CSVs.
* Debian's headless Chromium, driven over the Chrome DevTools Protocol with a small websocket
  client: opening the page sends the browser to Airflow's login page, the test types the
  credentials like a person, and the same session cookie then shows the page; every number
  cell is compared with the rows in the views, the agency filter is used through the form,
  the page is found inside the Airflow UI's plugin view, and a screenshot is taken into the
  test's tmp folder; it replaces the tracked docs/monitoring-screenshot.png only when
  UPSTREAM_REFRESH_SCREENSHOTS=1 (so `make test` leaves the working tree clean).
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql
from support.processes import free_port, stop

from upstream.monitoring import data
from upstream.monitoring.views import (
    COUNT,
    DAY,
    FLAG,
    HOURS,
    INTEGER,
    KEY_ATTRIBUTES,
    MONTH,
    NUMBER,
    SHARE,
    TEXT,
    VIEWS,
    Filters,
)
from upstream.settings import REPO_ROOT
from upstream.warehouse.db import with_database

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DOCS_SCREENSHOT = REPO_ROOT / "docs" / "monitoring-screenshot.png"
HOSTILE_RULE = "<img src=x onerror=alert(1)>"
FORMULA_RULE = '=HYPERLINK("http://example.invalid","click")'
M1, M2, M3, M4, M5, M6 = (date(2024, m, 1) for m in range(1, 7))
D = Decimal
B, E, R, CD, CN = ("baseline", "engaged", "referred_not_engaged", "consent_declined",
                   "consent_not_asked")

# Known rows, exactly as the published views would hold them (the codes 003_outcomes.sql
# uses). None = suppressed; a rate with no base (step 1) is None without a suppressed count.
ROWS: dict[str, list[tuple]] = {
    "calls_monthly": [
        ("WPS", M1, "(all)", 52, 18, 34, 12, 9, 11, 6),
        ("WPS", M2, "(all)", 47, 16, 31, 13, 7, 10, None),
        ("WPS", M3, "(all)", 44, 15, 29, 10, 8, 20, 6),
        ("WPS", M4, "(all)", 57, 21, 36, 14, 9, 34, None),
        ("WPS", M5, "(all)", 61, None, 58, 20, 11, 25, 5),
        ("WPS", M6, "(all)", 49, 20, 29, 15, None, 14, 0),
        ("WPS", M6, "North", 30, 12, 18, 9, 5, 16, None),
        ("WPS", M6, "South", 19, 8, 11, 6, None, None, 0),
        ("RCP", M4, "(all)", 120, 50, 70, 30, 20, 60, 10),
        ("RCP", M5, "(all)", 131, 61, 70, 33, 22, 66, 10),
        ("RCP", M6, "(all)", 98, 40, 58, 25, 18, 45, 10),
    ],
    "calls_daily": [
        ("WPS", date(2024, 6, 1), 5, None, None, None),
        ("WPS", date(2024, 6, 2), 7, 5, None, None),
        ("RCP", date(2024, 6, 1), 9, 5, None, 0),
    ],
    "referral_funnel": [
        ("WPS", M5, 1, "ipv_calls", 61, None),
        ("WPS", M5, 2, "non_charge", 58, D("0.9508")),
        ("WPS", M5, 3, "consent_asked", 31, D("0.5345")),
        ("WPS", M5, 4, "consent_given", 20, D("0.6452")),
        ("WPS", M5, 5, "referred", 19, D("0.9500")),
        ("WPS", M5, 6, "contacted", 12, D("0.6316")),
        ("WPS", M6, 1, "ipv_calls", 49, None),
        ("WPS", M6, 2, "non_charge", 29, D("0.5918")),
        ("WPS", M6, 3, "consent_asked", 24, D("0.8276")),
        ("WPS", M6, 4, "consent_given", 15, D("0.6250")),
        ("WPS", M6, 5, "referred", 15, D("1.0000")),
        ("WPS", M6, 6, "contacted", 11, D("0.7333")),
        ("WPS", M6, 7, "engaged", 7, D("0.6364")),
        ("WPS", M6, 8, "declined", None, None),
        ("RCP", M6, 1, "ipv_calls", 98, None),
        ("RCP", M6, 2, "non_charge", 58, D("0.5918")),
        ("RCP", M6, 3, "consent_asked", 43, D("0.7414")),
        ("RCP", M6, 4, "consent_given", 25, D("0.5814")),
    ],
    "timeliness": [
        ("WPS", M4, "call_to_referral", 14, D("3.5"), D("20.0"), D("0.9286"), D("1.0000")),
        ("WPS", M5, "call_to_referral", 20, D("2.75"), D("16.5"), D("0.9500"), D("1.0000")),
        ("WPS", M6, "call_to_referral", 15, D("4.0"), D("30.25"), D("0.8667"), D("1.0000")),
        ("WPS", M4, "referral_to_first_contact", 11, D("20.5"), D("70.0"), D("0.5455"),
         D("0.9091")),
        ("WPS", M5, "referral_to_first_contact", 12, D("18.25"), D("64.5"), D("0.5833"),
         D("0.9167")),
        ("WPS", M6, "referral_to_first_contact", None, None, None, None, None),
        ("RCP", M6, "call_to_referral", 25, D("1.5"), D("6.0"), D("1.0000"), D("1.0000")),
    ],
    "repeat_contact": [
        ("WPS", B, 182, 412, 87, D("0.2112"), D("0.1743"), D("0.2533"), 31, D("0.0752"), D("0.2112"), D("0.1690"), D("0.2534")),
        ("WPS", E, 182, 118, 19, D("0.1610"), D("0.1057"), D("0.2384"), None, None, D("0.1610"), D("0.1288"), D("0.1932")),
        ("WPS", R, 182, 45, 11, D("0.2444"), D("0.1419"), D("0.3874"), 6, D("0.1333"), D("0.2444"), D("0.1955"), D("0.2933")),
        ("WPS", CD, 182, 64, 15, D("0.2344"), D("0.1474"), D("0.3518"), 6, D("0.0938"), D("0.2344"), D("0.1875"), D("0.2813")),
        ("WPS", CN, 182, None, None, None, None, None, None, None, None, None, None),
        ("WPS", B, 365, 412, 140, D("0.3398"), D("0.2958"), D("0.3866"), 52, D("0.1262"), D("0.3398"), D("0.2718"), D("0.4078")),
        ("WPS", E, 365, 80, 21, D("0.2625"), D("0.1782"), D("0.3690"), 9, D("0.1125"), D("0.2625"), D("0.2100"), D("0.3150")),
        ("RCP", B, 182, 900, 200, D("0.2222"), D("0.1965"), D("0.2503"), 80, D("0.0889"), D("0.2222"), D("0.1778"), D("0.2666")),
    ],
    "repeat_survival": [
        ("WPS", B, 0, 412, 0, D("1.0000"), D("1.0000"), D("1.0000")),
        ("WPS", B, 182, 300, 87, D("0.7888"), D("0.7400"), D("0.8300")),
        ("WPS", E, 0, 118, 0, D("1.0000"), D("1.0000"), D("1.0000")),
        ("WPS", E, 182, 90, 19, D("0.8390"), D("0.7600"), D("0.8900")),
        ("WPS", CN, 182, None, None, None, None, None),
        ("RCP", B, 0, 900, 0, D("1.0000"), D("1.0000"), D("1.0000")),
    ],
    "repeat_logrank": [
        ("WPS", E, 19, D("25.10"), D("1.520"), D("0.2176")),
        ("WPS", CN, None, None, None, None),
        ("RCP", E, 30, D("33.00"), D("0.300"), D("0.5839")),
    ],
    "contact_service_level": [
        ("WPS", M4, 14, D("0.3571"), D("0.5000"), D("0.7857"), 7),
        ("WPS", M5, 20, D("0.3500"), D("0.6000"), D("0.9000"), 8),
        ("WPS", M6, None, None, None, None, None),
        ("RCP", M6, 25, D("0.4000"), D("0.6000"), D("0.8000"), 10),
    ],
    "data_quality_daily": [
        ("WPS", date(2024, 6, 1), 1, 0, 52, 52, 0),
        ("WPS", date(2024, 6, 2), 1, 0, 57, 51, 6),
        ("WPS", date(2024, 6, 3), 1, 1, 48, 0, 0),
        ("WPS", date(2024, 6, 4), 1, 0, 61, 49, 12),
        ("WPS", date(2024, 6, 5), 1, 0, 50, 47, 3),
        ("WPS", date(2024, 6, 6), 0, 0, 0, 0, 0),
        ("WPS", date(2024, 6, 7), 1, 0, 55, 55, 0),
        ("RCP", date(2024, 6, 1), 1, 0, 90, 88, 2),
    ],
    "agency_quality_latest": [
        ("RCP", date(2024, 6, 1), "loaded", 6, 1, 0, 88, 2),
        ("WPS", date(2024, 6, 7), "loaded", 0, 6, 1, 254, 21),
    ],
    "quarantine_by_rule": [
        ("WPS", date(2024, 6, 2), "phone_format", 6),
        ("WPS", date(2024, 6, 4), HOSTILE_RULE, 5),
        ("WPS", date(2024, 6, 4), FORMULA_RULE, 7),
        ("WPS", date(2024, 6, 5), "incident_date_in_future", 3),
        ("RCP", date(2024, 6, 1), "phone_format", None),
    ],
}

# the views with rows over all months carry all_months after the month (False on these rows)
for _name in [n for n, v in VIEWS.items() if v.has_total]:
    ROWS[_name] = [r[:2] + (False,) + r[2:] for r in ROWS[_name]]
# and one such row: every month together, shown whatever the period
ROWS["contact_service_level"].append(("WPS", None, True, 34, D("0.3529"), D("0.5588"),
                                      D("0.8529"), 15))

SQL_TYPES = {FLAG: "boolean", TEXT: "text", MONTH: "date", DAY: "date", COUNT: "int", INTEGER: "int",
             SHARE: "numeric", HOURS: "numeric", NUMBER: "numeric"}


def _rows(view: str) -> list[dict[str, Any]]:
    return [dict(zip(VIEWS[view].column_names, r, strict=True)) for r in ROWS[view]]




def _create_published(conn: psycopg.Connection, fill: bool) -> None:
    conn.execute("CREATE SCHEMA published")
    for view in VIEWS.values():
        cols = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(SQL_TYPES[c.kind]))
            for c in view.columns)
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(
            sql.Identifier("published", view.name), cols))
        if fill:
            insert = sql.SQL("INSERT INTO {} VALUES ({})").format(
                sql.Identifier("published", view.name),
                sql.SQL(", ").join(sql.Placeholder() * len(view.columns)))
            with conn.cursor() as cur:
                cur.executemany(insert, ROWS[view.name])


class Databases:
    def __init__(self, server: str) -> None:
        self.server = server
        tag = uuid.uuid4().hex[:10]
        self.names = {k: f"upstream_monitoring_{k}_{tag}" for k in ("full", "empty", "bare")}
        self.role = f"upstream_monitoring_reader_{tag}"

    def url(self, which: str) -> str:
        return with_database(self.server, self.names[which])


@pytest.fixture(scope="module")
def dbs(server_url: str) -> Iterator[Databases]:
    """Three databases: published views with known rows, empty views, no views at all; and a
    role that may read only the published views (what upstream_analyst is meant to be)."""
    d = Databases(server_url)
    try:
        with psycopg.connect(server_url, autocommit=True) as conn:
            for name in d.names.values():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(d.role)))
        for which, fill in (("full", True), ("empty", False)):
            with psycopg.connect(d.url(which)) as conn:
                _create_published(conn, fill)
                conn.execute("CREATE SCHEMA core")
                conn.execute("CREATE TABLE core.person (name text)")
                conn.execute("INSERT INTO core.person VALUES ('not for the board')")
                conn.execute(sql.SQL("GRANT USAGE ON SCHEMA published TO {}").format(
                    sql.Identifier(d.role)))
                conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA published TO {}")
                             .format(sql.Identifier(d.role)))
        yield d
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            for name in d.names.values():
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(d.role)))


# ----------------------------------------------------------------------------- expectations

def _text(kind: str, value: Any, row: dict[str, Any], view: str) -> str:
    """What a cell must read, written independently of the renderer."""
    if kind == COUNT:
        return "<5" if value is None else f"{value:,}"
    if value is None:
        counts = [c.name for c in VIEWS[view].columns if c.kind == COUNT]
        return "suppressed" if any(row[c] is None for c in counts) else "–"
    if kind == SHARE:
        return f"{float(value) * 100:.1f}%"
    if kind == HOURS:
        return f"{float(value):,.1f}"
    return str(value)


def _raw(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _key(view: str, row: dict[str, Any]) -> tuple:
    v = VIEWS[view]
    parts = [("agency", row["agency_code"])]
    for k in v.keys:
        value = row[k]
        if v.column(k).kind == MONTH and row.get("all_months"):
            value = "all"
        elif v.column(k).kind == MONTH:
            value = value.isoformat()[:7]
        elif isinstance(value, date):
            value = value.isoformat()
        parts.append((KEY_ATTRIBUTES[k], str(value)))
    return (view, tuple(parts))


def expected_cells(agency: str, months: tuple[date, date] | None = None) -> dict:
    out = {}
    for name, view in VIEWS.items():
        for row in _rows(name):
            if row["agency_code"] != agency and not view.all_agencies:
                continue
            if months and view.period_column and not row.get("all_months"):
                day = row[view.period_column]
                if not months[0] <= day.replace(day=1) <= months[1]:
                    continue
            for c in view.columns:
                if c.name in ("agency_code", "step_order", *view.keys) or c.kind == FLAG:
                    continue
                out[(*_key(name, row), c.name)] = (_raw(row[c.name]),
                                                   _text(c.kind, row[c.name], row, name))
    return out


class _CellParser(HTMLParser):
    """The data-col cells of a page fetched over HTTP, as the browser's dataset would give."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[dict[str, str]] = []
        self._cell: dict[str, str] | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if "data-table" in a and "data-col" in a:
            self._cell = {k[5:]: v for k, v in a.items() if k.startswith("data-")}
            self._cell["text"] = ""

    def handle_data(self, text):
        if self._cell is not None:
            self._cell["text"] += text

    def handle_endtag(self, tag):
        if self._cell is not None and tag in ("td", "th"):
            self._cell["text"] = self._cell["text"].strip()
            self.cells.append(self._cell)
            self._cell = None


def page_cells(html: str) -> list[dict[str, str]]:
    parser = _CellParser()
    parser.feed(html)
    return parser.cells


def actual_cells(cells: list[dict[str, str]]) -> dict:
    out = {}
    for cell in cells:
        view = VIEWS[cell["table"]]
        parts = [("agency", cell["agency"])]
        parts += [(KEY_ATTRIBUTES[k], cell[KEY_ATTRIBUTES[k]]) for k in view.keys]
        key = (cell["table"], tuple(parts), cell["col"])
        assert key not in out, f"two cells for {key}"
        out[key] = (cell["value"], cell["text"])
    return out


# ----------------------------------------------------------------------------- in-process

@pytest.mark.server
def test_reads_published_views_read_only_as_the_analyst_role(dbs, monkeypatch):
    monkeypatch.setenv("UPSTREAM_MONITORING_DB_ROLE", dbs.role)
    seen: dict[str, str] = {}
    real_agencies = data._agencies

    def probe(conn):
        seen["user"] = conn.execute("SELECT current_user AS u").fetchone()["u"]
        seen["ro"] = conn.execute("SHOW transaction_read_only").fetchone()["transaction_read_only"]
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute("SELECT * FROM core.person")
        return real_agencies(conn)

    monkeypatch.setattr(data, "_agencies", probe)
    snap = data.load(Filters(), url=dbs.url("full"))
    assert seen == {"user": dbs.role, "ro": "on"}
    assert snap.role == dbs.role and snap.agencies == ["RCP", "WPS"]
    assert snap.filters.agency == "WPS"  # the configured agency (UPSTREAM_AGENCIES=WPS) first
    assert snap.unavailable == {}
    assert snap.tables["calls_monthly"] == [r for r in _rows("calls_monthly")
                                            if r["agency_code"] == "WPS"]
    # A period keeps the months (and days) inside it; a hostile agency is only a parameter.
    snap = data.load(Filters("WPS", M5, M5), url=dbs.url("full"))
    assert {r["month"] for r in snap.tables["calls_monthly"]} == {M5}
    assert snap.tables["data_quality_daily"] == []
    assert len(snap.tables["repeat_contact"]) == 7  # cohorts: no period
    snap = data.load(Filters("x'); DROP TABLE published.timeliness; --"), url=dbs.url("full"))
    assert all(rows == [] for name, rows in snap.tables.items()
               if not VIEWS[name].all_agencies)
    # the at-a-glance table lists every agency whichever one is chosen
    assert snap.tables["agency_quality_latest"] == _rows("agency_quality_latest")
    assert data.load(Filters("WPS"), url=dbs.url("full")).tables["timeliness"]


@pytest.mark.server
def test_missing_role_missing_and_empty_views_are_tolerated(dbs, monkeypatch):
    monkeypatch.setenv("UPSTREAM_MONITORING_DB_ROLE", "no_such_role_" + uuid.uuid4().hex[:6])
    empty = data.load(Filters(), url=dbs.url("empty"))
    assert empty.role is None and empty.unavailable == {} and empty.agencies == []
    assert all(rows == [] for rows in empty.tables.values())
    bare = data.load(Filters("WPS"), url=dbs.url("bare"))
    assert set(bare.unavailable) == set(VIEWS)
    assert set(bare.unavailable.values()) == {"not published yet"}
    from upstream.monitoring.render import render_page

    assert "unavailable: not published yet" in render_page(bare)
    assert "No data for this selection" in render_page(empty)


def test_published_views_match_the_contract(warehouse_url, monkeypatch):
    """Once a migration defines the published views, they have the columns the page reads, and
    the page reads them as upstream_analyst when the login may switch to it."""
    with psycopg.connect(warehouse_url) as conn:
        found = conn.execute(
            "SELECT table_name, array_agg(column_name::text ORDER BY ordinal_position)"
            " FROM information_schema.columns WHERE table_schema = 'published'"
            " GROUP BY table_name").fetchall()
        switchable = conn.execute(
            "SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles"
            " WHERE rolname = 'upstream_analyst'").fetchone()
    if not found:
        pytest.skip("no published views in the migrations yet (003_outcomes.sql)")
    columns = dict(found)
    for name, view in VIEWS.items():
        assert name in columns, f"published.{name} is missing"
        missing = set(view.column_names) - set(columns[name])
        assert not missing, f"published.{name} lacks {sorted(missing)}"
    monkeypatch.delenv("UPSTREAM_MONITORING_DB_ROLE", raising=False)
    snap = data.load(Filters(), url=warehouse_url)
    assert snap.unavailable == {}
    if switchable and switchable[0]:
        assert snap.role == "upstream_analyst"


# ----------------------------------------------------------------------------- API server

def _free_port() -> int:
    return free_port()


def _stop(proc: subprocess.Popen) -> None:
    stop(proc, grace=15)


class Server:
    def __init__(self, base: str, log: Path, password: str) -> None:
        self.base = base
        self.log = log
        self.password = password
        self.client = httpx.Client(base_url=base, timeout=30, trust_env=False)

    def token(self) -> str:
        got = self.client.post("/auth/token", json={"username": "datateam",
                                                    "password": self.password})
        assert got.status_code == 201, got.text
        return got.json()["access_token"]


@pytest.fixture(scope="module")
def api_server(dbs, airflow_db, tmp_path_factory) -> Iterator[Server]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("api-server") / "api-server.log"
    env = dict(os.environ)
    env.update({
        "AIRFLOW__API__BASE_URL": base,
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
        "UPSTREAM_MONITORING_DATABASE_URL": dbs.url("full"),
        "UPSTREAM_MONITORING_DB_ROLE": dbs.role,
        "PYTHONWARNINGS": "ignore",
    })
    password = json.loads(Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
                          .read_text())["datateam"]
    airflow = str(Path(sys.executable).parent / "airflow")
    with log.open("wb") as out:
        proc = subprocess.Popen([airflow, "api-server", "--host", "127.0.0.1", "--port",
                                 str(port), "--workers", "1"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"api-server exited {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{base}/api/v2/monitor/health", timeout=2,
                             trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"api-server not healthy after 90 s:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
        server = Server(base, log, password)
        yield server
        server.client.close()
    finally:
        _stop(proc)


def _assert_no_data(response: httpx.Response) -> None:
    body = response.text
    for needle in ("WPS", "RCP", "calls", "phone_format", "57", "data-col"):
        assert needle not in body, (needle, body[:300])


def test_anonymous_requests_get_no_data(api_server):
    c = api_server.client
    for path in ("/upstream-monitoring/", "/upstream-monitoring/?agency=WPS",
                 "/upstream-monitoring/csv/calls_monthly.csv?agency=WPS",
                 "/upstream-monitoring/csv/quarantine_by_rule.csv",
                 "/upstream-monitoring/report/board.pdf?agency=WPS&quarter=2024-Q3"):
        got = c.get(path)
        assert got.status_code == 401, (path, got.status_code)
        _assert_no_data(got)
        for headers in ({"Authorization": "Bearer not-a-token"}, {"Cookie": "_token=forged"}):
            got = c.get(path, headers=headers)
            assert got.status_code in (401, 403), (path, headers, got.status_code)
            _assert_no_data(got)
    # A browser asking for the page is sent to Airflow's login, and back afterwards.
    got = c.get("/upstream-monitoring/?agency=WPS", headers={"Accept": "text/html"})
    assert got.status_code == 303
    assert got.headers["location"] == (
        "/auth/login?next=%2Fupstream-monitoring%2F%3Fagency%3DWPS")
    _assert_no_data(got)


def test_airflow_api_and_ui_need_login(api_server):
    """The REST API refuses anonymous and wrong-password callers; the generated login works."""
    c = api_server.client
    for path in ("/api/v2/dags", "/api/v2/dags/upstream_nightly/dagRuns",
                 "/api/v2/connections", "/api/v2/variables"):
        assert c.get(path).status_code in (401, 403), path
        assert c.get(path, headers={"Authorization": "Bearer forged"}).status_code in (401, 403)
    auth = {"Authorization": f"Bearer {api_server.token()}"}
    listed = c.get("/api/v2/dags", headers=auth)
    assert listed.status_code == 200 and "dags" in listed.json()


def test_token_login_and_csv_downloads(api_server):
    c = api_server.client
    wrong = c.post("/auth/token", json={"username": "datateam", "password": "wrong-password"})
    assert wrong.status_code == 401 and "access_token" not in wrong.text
    assert c.post("/auth/token", json={"username": "nobody",
                                       "password": api_server.password}).status_code == 401
    auth = {"Authorization": f"Bearer {api_server.token()}"}

    # The board report's route is mounted and logged in; this database has no release tier
    # (tests/integration/test_evaluation.py renders the report from a real one): a clear 503.
    got = c.get("/upstream-monitoring/report/board.pdf?agency=WPS&quarter=2024-Q3", headers=auth)
    assert got.status_code == 503 and got.text == "the release tier cannot be read right now"

    got = c.get("/upstream-monitoring/csv/calls_monthly.csv", params={"agency": "WPS"},
                headers=auth)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/csv")
    assert got.headers["content-disposition"] == (
        'attachment; filename="upstream_calls_monthly_WPS.csv"')
    rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert rows[0] == list(VIEWS["calls_monthly"].column_names)
    expected = [[("<5" if v is None else str(v).lower() if isinstance(v, bool) else str(v))
                 for v in r] for r in ROWS["calls_monthly"] if r[0] == "WPS"]
    assert rows[1:] == expected

    # Same filters as the page: a period, and no agency = every agency.
    got = c.get("/upstream-monitoring/csv/referral_funnel.csv",
                params={"from": "2024-06", "to": "2024-06"}, headers=auth)
    rows = list(csv.DictReader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert {(r["agency_code"], r["month"]) for r in rows} == {("WPS", "2024-06-01"),
                                                             ("RCP", "2024-06-01")}
    wps = [r for r in rows if r["agency_code"] == "WPS"]
    assert [r["count"] for r in wps] == ["49", "29", "24", "15", "15", "11", "7", "<5"]
    assert [r["rate"] for r in wps][0] == "–"  # step 1 has no base: not a suppression
    assert [r["rate"] for r in wps][-1] == "suppressed"

    got = c.get("/upstream-monitoring/csv/quarantine_by_rule.csv", params={"agency": "WPS"},
                headers=auth)
    rules = [r["rule"] for r in csv.DictReader(io.StringIO(got.content.decode("utf-8-sig")))]
    assert "'" + FORMULA_RULE in rules and FORMULA_RULE not in rules and HOSTILE_RULE in rules

    assert c.get("/upstream-monitoring/csv/pg_authid.csv", headers=auth).status_code == 404
    assert c.get("/upstream-monitoring/csv/timeliness.csv", params={"from": "May"},
                 headers=auth).status_code == 400

    # The page with the token: the period filter keeps only its months.
    page = c.get("/upstream-monitoring/", params={"agency": "WPS", "from": "2024-05",
                                                  "to": "2024-06"}, headers=auth)
    assert page.status_code == 200
    assert actual_cells(page_cells(page.text)) == expected_cells("WPS", (M5, M6))
    months = set(re.findall(r'data-table="calls_monthly"[^>]*data-month="([^"]+)"', page.text))
    assert months == {"2024-05", "2024-06"}
    assert "default-src 'none'" in page.headers["content-security-policy"]

    # Airflow lists the plugin: the app under /upstream-monitoring and the menu entry.
    plugins = c.get("/api/v2/plugins", headers=auth).json()["plugins"]
    mine = next(p for p in plugins if p["name"] == "upstream_monitoring")
    assert mine["fastapi_apps"][0]["url_prefix"] == "/upstream-monitoring"
    view = mine["external_views"][0]
    assert (view["name"], view["destination"], view["href"]) == (
        "Program monitoring", "nav", "upstream-monitoring/")


# ----------------------------------------------------------------------------- browser

class Chrome:
    """Just enough of the Chrome DevTools Protocol, over the websockets package."""

    def __init__(self, profile: Path) -> None:
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-default-browser-check", "--remote-debugging-port=0",
             "--remote-debugging-address=127.0.0.1", f"--user-data-dir={profile}",
             "--window-size=1280,1000", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", trust_env=False).json()
        page = next(t for t in targets if t["type"] == "page")
        from websockets.sync.client import connect

        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(connect(page["webSocketDebuggerUrl"], max_size=None,
                                                    proxy=None, open_timeout=10))
        self.events: list[dict] = []
        self._id = 0
        self.send("Page.enable")
        self.send("Runtime.enable")

    def send(self, method: str, params: dict | None = None, timeout: float = 30) -> dict:
        self._id += 1
        mid = self._id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]
            self.events.append(msg)

    def eval(self, expression: str) -> Any:
        got = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                             "awaitPromise": True})
        if "exceptionDetails" in got:
            raise RuntimeError(f"{expression}: {got['exceptionDetails']}")
        return got["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.eval(expression)
            except RuntimeError:  # the page is navigating
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                where = self.eval("location.href + ' :: ' + document.title")
                raise AssertionError(f"timed out waiting for {expression} at {where}")
            time.sleep(0.2)

    def go(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})

    def type_into(self, selector: str, text: str) -> None:
        self.eval(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", {"text": text})

    def click(self, selector: str) -> None:
        box = self.eval(f"""(() => {{ const r = document.querySelector({json.dumps(selector)})
            .getBoundingClientRect(); return {{x: r.x + r.width / 2, y: r.y + r.height / 2}}; }})()""")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": box["x"], "y": box["y"],
                                                   "button": "left", "clickCount": 1})

    def cells(self) -> list[dict[str, str]]:
        return self.eval("""Array.from(document.querySelectorAll('[data-table][data-col]'))
            .map(e => Object.assign({}, e.dataset, {text: e.textContent.trim()}))""")

    def screenshot(self, path: Path) -> None:
        self.send("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 1000,
                                                         "deviceScaleFactor": 1, "mobile": False})
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        shot = self.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": 1280, "height": size["height"], "scale": 1}})
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        try:
            self._stack.close()
        finally:
            _stop(self.proc)


@pytest.fixture
def chrome(tmp_path) -> Iterator[Chrome]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    browser = Chrome(tmp_path / "chromium-profile")
    try:
        yield browser
    finally:
        browser.close()


def test_browser_login_then_page_numbers_filter_and_screenshot(api_server, chrome, tmp_path):
    base = api_server.base
    # Opening the page without a session lands on Airflow's own login page.
    chrome.go(f"{base}/upstream-monitoring/?agency=WPS")
    chrome.wait_for("location.pathname.startsWith('/auth/login') && "
                    "!!document.querySelector('input[name=password]')")
    assert "next=" in chrome.eval("location.search")
    assert chrome.eval("document.cookie.includes('_token=')") is False
    chrome.type_into("input[name=username]", "datateam")
    chrome.type_into("input[name=password]", api_server.password)
    chrome.click("button[type=submit]")
    # Back on the page, authenticated by the session cookie the login set.
    chrome.wait_for("location.pathname === '/upstream-monitoring/' && "
                    "!!document.querySelector('td[data-col]')")
    assert chrome.eval("new URLSearchParams(location.search).get('agency')") == "WPS"

    assert actual_cells(chrome.cells()) == expected_cells("WPS")
    assert chrome.eval("""document.querySelector('td[data-table="calls_monthly"]'
        + '[data-month="2024-05"][data-zone="(all)"][data-col="cleared_by_charge"]')
        .textContent""") == "<5"
    # Hostile text from the database is shown as text: no element, no dialog.
    assert chrome.eval("document.querySelectorAll('img, script').length") == 0
    assert chrome.eval(f"Array.from(document.querySelectorAll('th')).some("
                       f"e => e.textContent === {json.dumps(HOSTILE_RULE)})")
    shot = tmp_path / "monitoring-screenshot.png"
    chrome.screenshot(shot)
    assert shot.stat().st_size > 20_000
    if os.environ.get("UPSTREAM_REFRESH_SCREENSHOTS") == "1":  # README's picture, on request
        shutil.copyfile(shot, DOCS_SCREENSHOT)

    # The agency filter, used through the form, changes the numbers.
    chrome.eval("document.querySelector('select[name=agency]').value = 'RCP'")
    chrome.click("form.filters button[type=submit]")
    chrome.wait_for("new URLSearchParams(location.search).get('agency') === 'RCP' && "
                    "!!document.querySelector('td[data-agency=\"RCP\"]')")
    rcp = actual_cells(chrome.cells())
    assert rcp == expected_cells("RCP")
    may = ("calls_monthly", (("agency", "RCP"), ("month", "2024-05"), ("zone", "(all)")), "calls")
    assert rcp[may] == ("131", "131")

    # The menu entry: the Airflow UI frames the same page, authenticated by the same cookie.
    chrome.go(f"{base}/plugin/upstream-monitoring")
    frame_cells = ("(() => { const f = document.querySelector('iframe'); const d = f && "
                   "f.contentDocument; return d ? d.querySelectorAll('td[data-col]').length "
                   ": 0; })()")
    assert chrome.wait_for(frame_cells, timeout=45) > 0
    assert chrome.eval("document.querySelector('iframe').title") == "Program monitoring"
    chrome.click("button[aria-label=Browse]")
    chrome.wait_for("Array.from(document.querySelectorAll('[role=menuitem]'))"
                    ".some(e => e.textContent.includes('Program monitoring'))")
    assert not [e for e in chrome.events if e.get("method") == "Page.javascriptDialogOpening"]


def _login(chrome: Chrome, server: Server, url: str, ready: str) -> None:
    chrome.go(url)
    chrome.wait_for("!!document.querySelector('input[name=password]')")
    chrome.type_into("input[name=username]", "datateam")
    chrome.type_into("input[name=password]", server.password)
    chrome.click("button[type=submit]")
    chrome.wait_for(ready)


def test_data_docs_offline_behind_login(api_server, chrome):
    """Data Docs (upstream.validate.datadocs) served by the plugin: login required, no external asset."""
    from types import SimpleNamespace

    from upstream.settings import load_settings
    from upstream.validate import datadocs

    # A checkpoint result's shape (the pages are rendered from real GX runs in test_history).
    checks = [SimpleNamespace(success=ok, result={"observed_value": n},
                              expectation_config=SimpleNamespace(
                                  meta={"rule": rule, "column": rule.split(".")[0]},
                                  description=f"{rule} holds"))
              for rule, ok, n in (("incident_id.unique_in_file", False, 2),
                                  ("call_type.enum", True, 0))]
    result = SimpleNamespace(run_results={"v": SimpleNamespace(results=checks)})
    page = datadocs.write_validation(load_settings().validate.gx_dir, "WPS", "WPS_2024-06-01_ui",
                                     "WPS 2024-06-01", result)
    url = f"/upstream-monitoring/data-docs/WPS/{page.name}"
    assert api_server.client.get(url).status_code == 401
    assert api_server.client.get("/upstream-monitoring/data-docs/WPS/..%2F..%2Fsecret.html",
                                 headers={"Authorization": f"Bearer {api_server.token()}"}
                                 ).status_code == 404
    assert api_server.client.get(url, headers={"Authorization": f"Bearer {api_server.token()}"}
                                 ).status_code == 200

    _login(chrome, api_server, f"{api_server.base}{url}",
           "location.pathname.endsWith('.html') && !!document.querySelector('td')")
    assert chrome.eval("document.querySelectorAll('script, link, img').length") == 0
    assert chrome.eval("performance.getEntriesByType('resource').filter("
                       "e => !e.name.startsWith(location.origin)).length") == 0
    assert chrome.eval("Array.from(document.querySelectorAll('td')).some("
                       "e => e.textContent === 'incident_id.unique_in_file')")
    # the index, then the agencies list, link to it
    chrome.click("a[href='index.html']")
    chrome.wait_for(f"!!document.querySelector('a[href=\"{page.name}\"]')")
    chrome.go(f"{api_server.base}/upstream-monitoring/data-docs/")
    chrome.wait_for("!!document.querySelector('a[href=\"WPS/\"]')")
    # and the Airflow UI frames it from its Browse menu
    chrome.go(f"{api_server.base}/plugin/upstream-data-docs")
    assert chrome.wait_for("(() => { const f = document.querySelector('iframe'); const d = f && "
                           "f.contentDocument; return !!(d && d.querySelector('a[href=\"WPS/\"]')); })()",
                           timeout=45)
