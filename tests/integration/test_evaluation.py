"""The evaluation measures (issue 13) on real PostgreSQL: time to repeat contact (Kaplan-Meier,
log-rank), standardised repeat rates, contact against service levels and its alert, totals
that add up with suppression that cannot be undone, and the public release tier.

Three kinds of check:

* textbook data run through the rebuild's own SQL (the Freireich 6-MP leukaemia trial for
  Kaplan-Meier and the log-rank test; a hand-computed standardisation), against the values
  printed in the textbooks and against lifelines;
* the scenario of test_outcomes.py rebuilt, against an independent Python computation from
  core.call (durations per index call) fed to lifelines;
* the published and release views read as the roles that read them.
"""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.integration import test_outcomes
from upstream import outcomes
from upstream.outcomes import service_level
from upstream.warehouse import db

pytestmark = [pytest.mark.integration,
              # lifelines 0.30.3 on pandas 3 (requirements-nodeps.txt): its own call style
              pytest.mark.filterwarnings("ignore:Starting with pandas version 4.0")]

# test_outcomes.py's scenario, loaded and built again for this module (module scope)
scenario = test_outcomes.scenario

TZ = ZoneInfo("America/Toronto")
LAUNCH = date(2024, 5, 6)
COHORTS = ("engaged", "referred_not_engaged", "consent_declined", "consent_not_asked",
           "consent_given_not_delivered", "baseline")

# Freireich et al. (1963), remission times in weeks (Kleinbaum & Klein, Survival Analysis,
# chapter 2): the 6-MP arm (events and censored) and the placebo arm (all events).
SIX_MP_EVENTS = [6, 6, 6, 7, 10, 13, 16, 22, 23]
SIX_MP_CENSORED = [6, 9, 10, 11, 17, 19, 20, 25, 32, 32, 34, 35]
PLACEBO_EVENTS = [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]
# The textbook's KM table for 6-MP: time -> (at risk, events, S(t)) and log-rank chi2 16.79.
SIX_MP_TABLE = {6: (21, 3, 0.857), 7: (17, 1, 0.807), 10: (15, 1, 0.753), 13: (12, 1, 0.690),
                16: (11, 1, 0.627), 22: (7, 1, 0.538), 23: (6, 1, 0.448)}


def _rows(url: str, query: str, *params) -> list[dict]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(query, params).fetchall()


def _as(url: str, role: str) -> psycopg.Connection:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["user"] = role
    info.pop("password", None)
    return psycopg.connect(psycopg.conninfo.make_conninfo(**info), row_factory=dict_row)


# ------------------------------------------------------------------------------------------------
# Textbook data through the rebuild's SQL


def _run_survival_sql(url: str, arms: dict[str, tuple[list[int], list[int]]]) -> dict:
    """Feed (events, censored) times per cohort to 03b_survival.sql as its input tables.

    An event at t: an index call 40 days before the reference date with its next call t days
    later. Censored at c: an index call c days before the reference date, no later call."""
    ref = date(2025, 1, 1)
    with psycopg.connect(url, row_factory=dict_row) as conn:
        conn.execute("CREATE TEMP TABLE t_calls_monthly AS SELECT 'WPS'::text AS agency_code,"
                     " date '2024-12-01' AS month, '(all)'::text AS patrol_zone")
        conn.execute("CREATE TEMP TABLE t_index_day (agency_code text, day date, cohort text,"
                     " n int)")
        conn.execute("CREATE TEMP TABLE t_followup_cohort (agency_code text, day date,"
                     " cohort text, gap_days int)")
        with conn.cursor() as cur:
            for cohort, (events, censored) in arms.items():
                cur.execute("INSERT INTO t_index_day VALUES ('WPS', %s, %s, %s)",
                            (ref - timedelta(days=40), cohort, len(events)))
                cur.executemany("INSERT INTO t_followup_cohort VALUES ('WPS', %s, %s, %s)",
                                [(ref - timedelta(days=40), cohort, t) for t in events])
                cur.executemany("INSERT INTO t_index_day VALUES ('WPS', %s, %s, 1)",
                                [(ref - timedelta(days=c), cohort) for c in censored])
        conn.execute(outcomes._script("outcomes/03b_survival.sql", {"reference_date": ref}))
        outcomes._logrank_p_values(conn)
        out = {
            "curve": conn.execute("SELECT * FROM t_km_curve WHERE events > 0 OR censored > 0"
                                  " ORDER BY cohort, day").fetchall(),
            "logrank": conn.execute("SELECT *, (observed - expected) ^ 2 / variance AS chi"
                                    " FROM t_logrank WHERE variance > 0").fetchall(),
        }
        conn.rollback()
    return out


@pytest.fixture(scope="module")
def freireich(warehouse_url):
    return _run_survival_sql(warehouse_url, {"engaged": (SIX_MP_EVENTS, SIX_MP_CENSORED),
                                             "baseline": (PLACEBO_EVENTS, [])})


def test_kaplan_meier_matches_the_textbook(freireich):
    curve = {r["day"]: r for r in freireich["curve"] if r["cohort"] == "engaged"}
    for t, (at_risk, events, s) in SIX_MP_TABLE.items():
        assert (curve[t]["at_risk"], curve[t]["events"]) == (at_risk, events), t
        assert round(curve[t]["survival"], 3) == s, t
    # censored-only days keep the estimate; after the last event it stays at 0.448
    assert round(curve[35]["survival"], 3) == 0.448 and curve[35]["events"] == 0
    placebo = {r["day"]: r["survival"] for r in freireich["curve"] if r["cohort"] == "baseline"}
    assert placebo[23] == 0.0 and round(placebo[8], 3) == round(8 / 21, 3)


def test_kaplan_meier_and_greenwood_bands_match_lifelines(freireich):
    from lifelines import KaplanMeierFitter

    for cohort, events, censored in (("engaged", SIX_MP_EVENTS, SIX_MP_CENSORED),
                                     ("all", SIX_MP_EVENTS + PLACEBO_EVENTS, SIX_MP_CENSORED)):
        km = KaplanMeierFitter().fit(events + censored,
                                     [1] * len(events) + [0] * len(censored))
        ci = km.confidence_interval_
        rows = [r for r in freireich["curve"] if r["cohort"] == cohort]
        assert rows
        for r in rows:
            t = float(r["day"])
            assert r["survival"] == pytest.approx(km.survival_function_.loc[t].iloc[0], abs=1e-12)
            assert r["at_risk"] == km.event_table.loc[t, "at_risk"]
            if 0 < r["survival"] < 1:
                bounds = sorted(ci.loc[t])
                assert [r["ci_low"], r["ci_high"]] == pytest.approx(bounds, abs=1e-9), t


def test_log_rank_matches_the_textbook_and_lifelines(freireich):
    from lifelines.statistics import logrank_test

    (row,) = freireich["logrank"]
    assert row["cohort"] == "engaged" and row["observed"] == 9
    assert round(row["expected"], 2) == 19.25 and round(row["chi"], 2) == 16.79
    ref = logrank_test(SIX_MP_EVENTS + SIX_MP_CENSORED, PLACEBO_EVENTS,
                       [1] * 9 + [0] * 12, [1] * len(PLACEBO_EVENTS))
    assert row["chi"] == pytest.approx(ref.test_statistic, rel=1e-12)
    assert row["p_value"] == pytest.approx(ref.p_value, rel=1e-9)
    assert outcomes.chi_square_p_value(3.841458820694124) == pytest.approx(0.05, abs=1e-12)


def test_standardised_rate_by_hand(warehouse_url):
    """Direct standardisation to the baseline's prior-call mix (weights 0.6 / 0.3 / 0.1).

    engaged: 2/10, 6/20, 10/20 -> 0.6 x 0.2 + 0.3 x 0.3 + 0.1 x 0.5 = 0.26 (crude 18/50 = 0.36);
    var = 0.36 x 0.2 x 0.8 / 10 + 0.09 x 0.3 x 0.7 / 20 + 0.01 x 0.5 x 0.5 / 20 = 0.00683.
    consent_declined has no index call with 2+ prior calls: no standardised rate."""
    text = outcomes.db.read_sql("outcomes/03_repeat_contact.sql")
    statement = text[text.index("CREATE TEMP TABLE t_repeat ON COMMIT DROP AS"):]
    strata = [("baseline", 0, 60, 6), ("baseline", 1, 30, 6), ("baseline", 2, 10, 4),
              ("engaged", 0, 10, 2), ("engaged", 1, 20, 6), ("engaged", 2, 20, 10),
              ("consent_declined", 0, 10, 1), ("consent_declined", 1, 5, 1),
              ("consent_declined", 2, 0, 0)]
    with psycopg.connect(warehouse_url, row_factory=dict_row) as conn:
        conn.execute("CREATE TEMP TABLE t_repeat_strata (agency_code text, cohort text,"
                     " window_days int, prior int, index_calls int, with_repeat int,"
                     " with_charged_repeat int)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO t_repeat_strata VALUES ('WPS', %s, 182, %s, %s, %s, 0)",
                            strata)
        conn.execute(statement)
        got = {r["cohort"]: r for r in conn.execute("SELECT * FROM t_repeat")}
        conn.rollback()
    assert got["baseline"]["standardised_rate"] == pytest.approx(0.16)   # = its crude rate
    e = got["engaged"]
    assert (e["index_calls"], e["with_repeat"]) == (50, 18)
    assert e["standardised_rate"] == pytest.approx(0.26)
    half = 1.959963984540054 * math.sqrt(0.00683)
    assert (e["std_ci_low"], e["std_ci_high"]) == pytest.approx((0.26 - half, 0.26 + half))
    assert got["consent_declined"]["standardised_rate"] is None
    assert got["all"]["index_calls"] == 165


# ------------------------------------------------------------------------------------------------
# The scenario against an independent computation


def _reference(url: str) -> dict:
    """Per index call, from core.call and the referrals: cohort, duration, event, prior calls."""
    ref = _rows(url, "SELECT reference_date FROM outcomes.build_info")[0]["reference_date"]
    calls = _rows(url, "SELECT incident_id, victim_key, call_received_at, clearance_status,"
                  " consent_status FROM core.call")
    refs = {r["incident_id"]: r["engaged"] for r in _rows(
        url, "SELECT r.incident_id, coalesce(bool_or(e.event_type = 'engaged'), false) AS engaged"
        " FROM routing.referral AS r LEFT JOIN routing.referral_event AS e USING (referral_id)"
        " WHERE r.delivered_at IS NOT NULL GROUP BY r.incident_id")}
    times = defaultdict(list)
    for c in calls:
        times[c["victim_key"]].append(c["call_received_at"].astimezone(TZ))
    out = []
    for c in calls:
        at = c["call_received_at"].astimezone(TZ)
        day = at.date()
        if c["clearance_status"] == "cleared_by_charge" or day > ref:
            continue
        if day < LAUNCH:
            cohort = "baseline"
        elif c["incident_id"] in refs:
            cohort = "engaged" if refs[c["incident_id"]] else "referred_not_engaged"
        elif c["consent_status"] == "declined":
            cohort = "consent_declined"
        elif c["consent_status"] in ("not_asked", "unable_to_ask"):
            cohort = "consent_not_asked"
        else:
            cohort = "consent_given_not_delivered"
        later = [t for t in times[c["victim_key"]] if t > at]
        nxt = min(later) if later else None
        censor = min(365, (ref - day).days)
        gap = (nxt.date() - day).days if nxt else None
        event = gap is not None and gap <= censor
        prior = sum(1 for t in times[c["victim_key"]] if at - timedelta(days=365) <= t < at)
        out.append({"cohort": cohort, "day": day, "duration": gap if event else censor,
                    "event": event, "prior": min(prior, 2), "next": nxt, "at": at})
    return {"ref": ref, "calls": out}


def test_survival_of_the_scenario_matches_lifelines(scenario, warehouse_url):
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import logrank_test

    reference = _reference(warehouse_url)
    curve = defaultdict(dict)
    for r in _rows(warehouse_url, "SELECT * FROM outcomes.repeat_survival"):
        curve[r["cohort"]][r["day"]] = r
    groups = defaultdict(list)
    for c in reference["calls"]:
        groups[c["cohort"]].append(c)
        groups["all"].append(c)
    assert set(curve) == set(groups) == {*COHORTS, "all"}
    for cohort, calls in groups.items():
        km = KaplanMeierFitter().fit([c["duration"] for c in calls], [c["event"] for c in calls])
        table = km.event_table
        assert sorted(curve[cohort]) == [int(t) for t in table.index
                                         if table.loc[t, "removed"] > 0], cohort
        for day, r in curve[cohort].items():
            assert r["at_risk"] == table.loc[float(day), "at_risk"], (cohort, day)
            assert r["events"] == table.loc[float(day), "observed"], (cohort, day)
            assert r["survival"] == pytest.approx(
                km.survival_function_.loc[float(day)].iloc[0], abs=1e-12), (cohort, day)
    base = groups["baseline"]
    logrank = {r["cohort"]: r for r in _rows(warehouse_url, "SELECT * FROM outcomes.repeat_logrank")}
    assert set(logrank) == set(COHORTS) - {"baseline"}
    for cohort, r in logrank.items():
        test = logrank_test([c["duration"] for c in groups[cohort]], [c["duration"] for c in base],
                            [c["event"] for c in groups[cohort]], [c["event"] for c in base])
        assert r["chi_square"] == pytest.approx(test.test_statistic, rel=1e-9), cohort
        assert r["p_value"] == pytest.approx(test.p_value, rel=1e-9), cohort
        assert r["observed"] == sum(c["event"] for c in groups[cohort])


def test_repeat_counts_by_prior_calls_match_the_reference(scenario, warehouse_url):
    reference = _reference(warehouse_url)
    expected = defaultdict(lambda: [0, 0])
    for c in reference["calls"]:
        for w in (182, 365):
            if c["day"] + timedelta(days=w) > reference["ref"]:
                continue
            key = (c["cohort"], w, "2+" if c["prior"] == 2 else str(c["prior"]))
            expected[key][0] += 1
            if c["next"] is not None and c["next"] <= c["at"] + timedelta(days=w):
                expected[key][1] += 1
    got = {(r["cohort"], r["window_days"], r["prior_calls"]): [r["index_calls"], r["with_repeat"]]
           for r in _rows(warehouse_url, "SELECT * FROM outcomes.repeat_by_prior")}
    assert {k: v for k, v in got.items() if v != [0, 0]} == dict(expected)
    # the scenario's prior calls: G6 and N4-N7 call again with consent withdrawn
    assert got[("consent_given_not_delivered", 182, "1")] == [5, 0]


def test_published_survival_and_logrank(scenario, warehouse_url):
    pub = {(r["cohort"], r["day"]): r for r in _rows(
        warehouse_url, "SELECT * FROM published.repeat_survival")}
    assert {c for c, _ in pub} == {*COHORTS, "all"}
    assert {d for _, d in pub} == {0, 7, 30, 60, 90, 120, 150, 182, 210, 240, 270, 300, 330, 365}
    assert (pub[("all", 0)]["at_risk"], pub[("all", 0)]["survival"]) == (73, 1)
    # engaged and not-asked: 3 each still at risk at day 365 -> hidden, survival with them
    for cohort in ("engaged", "consent_not_asked"):
        r = pub[(cohort, 365)]
        assert (r["at_risk"], r["survival"], r["ci_low"]) == (None, None, None), cohort
    assert pub[("engaged", 182)]["at_risk"] == 7
    lr = {r["cohort"]: r for r in _rows(warehouse_url, "SELECT * FROM published.repeat_logrank")}
    assert lr["engaged"]["observed"] == 7 and lr["engaged"]["p_value"] is not None
    # observed = the repeats by day 365: one number, hidden in both places or neither
    for cohort, r in lr.items():
        assert (r["observed"] is None) == (pub[(cohort, 365)]["cum_events"] is None) or \
            pub[(cohort, 0)]["at_risk"] is None, cohort
        if pub[(cohort, 365)]["cum_events"] is not None and r["observed"] is not None:
            assert r["observed"] == pub[(cohort, 365)]["cum_events"]


# ------------------------------------------------------------------------------------------------
# Contact against service levels


def test_contact_service_level(scenario, warehouse_url):
    """June: delivered k x 2 h after the call, first contact 12 k h after delivery (k <= 15):
    within 24 h k = 1, 2; within 48 h k <= 4; within 7 days (168 h) k <= 14; 16 of 20 without a
    contact 48 h after delivery. August: 3 referrals contacted after 2 h."""
    exact = {r["month"]: r for r in _rows(
        warehouse_url, "SELECT * FROM outcomes.contact_service_level WHERE referred > 0")}
    june, aug = exact[date(2024, 6, 1)], exact[date(2024, 8, 1)]
    assert (june["referred"], june["contacted_24h"], june["contacted_48h"], june["contacted_7d"],
            june["uncontacted_48h"]) == (20, 2, 4, 14, 16)
    assert (aug["referred"], aug["contacted_24h"], aug["uncontacted_48h"]) == (3, 3, 0)
    pub = {r["month"]: r for r in _rows(warehouse_url,
                                        "SELECT * FROM published.contact_service_level")}
    # June: 2 and 4 are small counts (their shares hidden); the others are shown, or hidden
    # as complements of the totals over all months
    june_pub = {k: pub[date(2024, 6, 1)][k] for k in ("referred", "share_24h", "share_48h",
                                                      "share_7d", "uncontacted_48h")}
    assert june_pub["share_24h"] is None and june_pub["share_48h"] is None
    assert june_pub["referred"] in (20, None) and june_pub["uncontacted_48h"] in (16, None)
    assert june_pub["share_7d"] in (Decimal("0.7000"), None)
    # August's 3 referrals are the funnel's hidden 'referred' cell: hidden here too
    assert pub[date(2024, 8, 1)]["referred"] is None
    assert pub[date(2024, 8, 1)]["share_24h"] is None
    assert pub[date(2024, 7, 1)]["referred"] == 0


@pytest.fixture
def webhook(monkeypatch):
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    monkeypatch.setenv("UPSTREAM_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/a")
    monkeypatch.delenv("UPSTREAM_ALERT_EMAIL_TO", raising=False)
    yield received
    server.shutdown()
    server.server_close()


def test_uncontacted_referrals_alert_the_data_team(scenario, warehouse_url, webhook, monkeypatch):
    now = datetime(2025, 7, 20, 12, 0, tzinfo=TZ)
    ids = [f"r_alert_{uuid.uuid4().hex[:8]}" for _ in range(4)]
    rows = [(ids[0], now - timedelta(hours=49)), (ids[1], now - timedelta(hours=72)),
            (ids[2], now - timedelta(days=9)), (ids[3], now - timedelta(hours=47))]
    with psycopg.connect(warehouse_url) as conn:
        conn.cursor().executemany(
            "INSERT INTO routing.referral (referral_id, agency_code, incident_id, status,"
            " delivered_at, delivered_version) VALUES (%s, 'WPS', %s, 'delivered', %s, 1)",
            [(rid, f"WPS-ALERT-{rid}", at) for rid, at in rows])
        # one of them was reported unreachable: no longer waiting for a contact
        conn.execute("INSERT INTO routing.referral_event (event_id, referral_id, event_type,"
                     " occurred_at) VALUES (%s, %s, 'unreachable', %s)",
                     (f"e_{uuid.uuid4().hex}", ids[2], now - timedelta(days=1)))
    try:
        # the scenario's own referrals all have an outcome; 47 h is not yet overdue
        assert service_level.uncontacted_48h(warehouse_url, now) == {"WPS": 2}
        quiet = service_level.check_uncontacted_48h(warehouse_url, now, level=2)
        assert quiet["alerts"] == {} and not webhook
        monkeypatch.setenv("UPSTREAM_UNCONTACTED_48H_ALERT", "1")
        loud = service_level.check_uncontacted_48h(warehouse_url, now)
        assert loud["level"] == 1 and loud["alerts"] == {"WPS": {"email": "skipped: not configured",
                                                                  "webhook": "sent"}}
        (alert,) = webhook
        assert alert["severity"] == "warning" and alert["agency"] == "WPS"
        assert "2 referrals delivered more than 48 hours ago have no contact yet" in \
            alert["summary"]
        text = json.dumps(alert)
        assert "r_alert" not in text and "WPS-ALERT" not in text and "MNI-" not in text
        monkeypatch.setenv("UPSTREAM_UNCONTACTED_48H_ALERT", "0")   # off
        assert service_level.check_uncontacted_48h(warehouse_url, now)["alerts"] == {}
        monkeypatch.setenv("UPSTREAM_UNCONTACTED_48H_ALERT", "many")
        with pytest.raises(ValueError, match="UPSTREAM_UNCONTACTED_48H_ALERT"):
            service_level.check_uncontacted_48h(warehouse_url, now)
    finally:
        with psycopg.connect(warehouse_url) as conn:
            conn.execute("DELETE FROM routing.referral_event WHERE referral_id = ANY(%s)", (ids,))
            conn.execute("DELETE FROM routing.referral WHERE referral_id = ANY(%s)", (ids,))


# ------------------------------------------------------------------------------------------------
# Totals that add up, suppression that cannot be undone


def _breakdowns(url: str) -> list[tuple[str, list[tuple[str, object]]]]:
    """Every published breakdown with its total: (name, [(cell label, value)]) where the first
    cell is the total and the others its parts."""
    out = []
    monthly = _rows(url, "SELECT * FROM published.calls_monthly")
    by_month = defaultdict(list)
    for r in monthly:
        by_month[(r["agency_code"], r["month"])].append(r)
    measures = ("calls", "cleared_by_charge", "non_charge", "consent_given", "consent_declined",
                "consent_not_asked", "consent_unable_to_ask")
    for (agency, month), rows in by_month.items():
        if month is None:   # the totals over all months: their zones below
            total = next(r for r in rows if r["patrol_zone"] == "(all)")
            for m in measures:
                out.append((f"zones {agency} all-months {m}",
                            [("(all)", total[m])] +
                            [(z["patrol_zone"], z[m]) for z in rows if z is not total]))
            continue
        total = next(r for r in rows if r["patrol_zone"] == "(all)")
        zones = [r for r in rows if r["patrol_zone"] != "(all)"]
        for m in measures:   # zones add up to the agency
            out.append((f"zones {agency} {month} {m}",
                        [("(all)", total[m])] + [(z["patrol_zone"], z[m]) for z in zones]))
    daily = _rows(url, "SELECT * FROM published.calls_daily")
    days_of = defaultdict(list)
    for r in daily:
        days_of[(r["agency_code"], r["day"].replace(day=1))].append(r)
    for (agency, month), days in days_of.items():
        total = next(r for r in by_month[(agency, month)] if r["patrol_zone"] == "(all)")
        for m in ("calls", "cleared_by_charge", "non_charge", "consent_given"):  # days -> month
            out.append((f"days {agency} {month} {m}",
                        [("month", total[m])] + [(str(d["day"]), d[m]) for d in days]))
    repeat = defaultdict(dict)
    for r in _rows(url, "SELECT * FROM published.repeat_contact"):
        repeat[(r["agency_code"], r["window_days"])][r["cohort"]] = r
    for (agency, window), cohorts in repeat.items():
        for m in ("index_calls", "with_repeat", "with_charged_repeat"):   # cohorts -> 'all'
            out.append((f"cohorts {agency} {window} {m}",
                        [("all", cohorts["all"][m])] +
                        [(c, cohorts[c][m]) for c in COHORTS]))
    # totals over all months = the sum of the months, per zone and measure (calls), per step
    # (funnel) and per count (service levels, timeliness n)
    for agency, zone in {(r["agency_code"], r["patrol_zone"]) for r in monthly}:
        rows = [r for r in monthly if (r["agency_code"], r["patrol_zone"]) == (agency, zone)]
        total = next(r for r in rows if r["all_months"])
        for m in measures:
            out.append((f"months calls {agency} {zone} {m}",
                        [("all months", total[m])] +
                        [(str(r["month"]), r[m]) for r in rows if not r["all_months"]]))
    for view, key, cols in (("referral_funnel", "step", ("count",)),
                            ("timeliness", "measure", ("n",)),
                            ("contact_service_level", None, ("referred", "uncontacted_48h"))):
        groups = defaultdict(list)
        for r in _rows(url, f"SELECT * FROM published.{view}"):  # noqa: S608
            groups[(r["agency_code"], r[key] if key else "")].append(r)
        for (agency, k), rows in groups.items():
            total = next(r for r in rows if r["all_months"])
            for c in cols:
                out.append((f"months {view} {agency} {k} {c}",
                            [("all months", total[c])] +
                            [(str(r["month"]), r[c]) for r in rows if not r["all_months"]]))
    surv = defaultdict(dict)
    for r in _rows(url, "SELECT * FROM published.repeat_survival"):
        surv[(r["agency_code"], r["day"])][r["cohort"]] = r
    for (agency, day), cohorts in surv.items():
        for m in ("at_risk", "cum_events"):
            out.append((f"survival {agency} day {day} {m}",
                        [("all", cohorts["all"][m])] + [(c, cohorts[c][m]) for c in COHORTS]))
    return out


def test_every_breakdown_has_its_total_and_every_cohort(scenario, warehouse_url):
    breakdowns = _breakdowns(warehouse_url)
    kinds = {name.split()[0] for name, _ in breakdowns}
    assert kinds == {"zones", "days", "cohorts", "survival", "months"}
    # where every cell is shown, the parts add up to the total exactly
    complete = [cells for _, cells in breakdowns if all(v is not None for _, v in cells)]
    assert complete
    for cells in complete:
        assert cells[0][1] == sum(v for _, v in cells[1:])
    exact = {(r["cohort"], r["window_days"]): r["index_calls"] for r in _rows(
        warehouse_url, "SELECT * FROM outcomes.repeat_contact")}
    for w in (182, 365):
        assert exact[("all", w)] == sum(exact[(c, w)] for c in COHORTS)


def test_no_suppressed_cell_is_total_minus_the_published_others(scenario, warehouse_url):
    breakdowns = _breakdowns(warehouse_url)
    hidden_somewhere = {name.split()[0] for name, cells in breakdowns
                        if any(v is None for _, v in cells)}
    # the scenario hides cells in every kind of breakdown (zones and days in July 2024,
    # charged repeats across cohorts, at-risk counts at day 365)
    assert hidden_somewhere == {"zones", "days", "cohorts", "survival", "months"}
    # across months: the funnel, the timeliness n and the service levels too
    hidden_months = {name.split()[1] for name, cells in breakdowns
                     if name.startswith("months") and any(v is None for _, v in cells)}
    assert hidden_months == {"calls", "referral_funnel", "timeliness", "contact_service_level"}
    for name, cells in breakdowns:
        for i, (label, value) in enumerate(cells):
            if value is not None:
                continue
            others = [v for j, (_, v) in enumerate(cells) if j != i]
            assert any(v is None for v in others), f"{name}: {label} = total - the others"


# ------------------------------------------------------------------------------------------------
# The release tier


def test_public_role_reads_the_release_views_only(scenario, warehouse_url):
    with _as(warehouse_url, "upstream_public") as conn:
        conn.autocommit = True
        assert conn.execute("SELECT current_user AS u").fetchone()["u"] == "upstream_public"
        for view in outcomes.RELEASE_VIEWS:
            assert conn.execute(f"SELECT * FROM release.{view}").fetchall(), view  # noqa: S608
        for relation in ("core.call", "contact.victim_contact", "routing.referral",
                         "ops.extract_file", "public.schema_migration", "outcomes.release_key",
                         "outcomes.release_calls_quarterly", "outcomes.calls_monthly",
                         *(f"published.{v}" for v in outcomes.PUBLISHED_VIEWS)):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT 1 FROM {relation} LIMIT 1")  # noqa: S608
        for statement in ("DELETE FROM release.calls_quarterly",
                          "CREATE VIEW release.x AS SELECT 1",
                          "SELECT outcomes.round_base5(7, 'k', 'c')"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    with _as(warehouse_url, "upstream_analyst") as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT 1 FROM release.calls_quarterly")


def test_release_counts_are_rounded_to_base_5_and_small_ones_hidden(scenario, warehouse_url):
    released = {r["quarter"]: r for r in _rows(
        warehouse_url, "SELECT * FROM release.calls_quarterly")}
    counts = ("calls", "cleared_by_charge", "non_charge", "consent_given", "consent_declined",
              "consent_other", "referred", "contacted", "engaged")
    values = [r[c] for r in released.values() for c in counts if r[c] is not None]
    assert values and all(v % 5 == 0 for v in values)
    # 2024 Q3 exact: calls 43, charged 21, non-charge 22, consent given 8 (5 + 3): below 10
    q3 = released[date(2024, 7, 1)]
    assert q3["calls"] in (40, 45) and q3["cleared_by_charge"] in (20, 25)
    assert q3["non_charge"] in (20, 25) and q3["consent_given"] is None
    q2 = released[date(2024, 4, 1)]   # June: 45 / 10 / 35 / 20, multiples of 5 stay
    assert (q2["calls"], q2["cleared_by_charge"], q2["non_charge"], q2["consent_given"]) == (
        45, 10, 35, 20)
    rep = {(r["cohort"], r["window_days"]): r for r in _rows(
        warehouse_url, "SELECT * FROM release.repeat_contact")}
    # baseline 182: 12 index calls, 6 repeats (below 10: hidden, and the rate with it)
    assert rep[("baseline", 182)]["index_calls"] in (10, 15)
    assert rep[("baseline", 182)]["with_repeat"] is None
    assert rep[("baseline", 182)]["repeat_rate"] is None
    assert rep[("all", 182)]["with_repeat"] in (20, 25)
    r = rep[("all", 182)]
    assert r["repeat_rate"] == round(Decimal(r["with_repeat"]) / r["index_calls"], 3)  # rounded
    surv = {(r["cohort"], r["day"]): r for r in _rows(
        warehouse_url, "SELECT * FROM release.repeat_survival")}
    assert surv[("referred_not_engaged", 182)]["at_risk"] is None        # 5 at risk
    assert surv[("referred_not_engaged", 182)]["survival"] is None
    assert surv[("all", 182)]["survival"] == Decimal("0.671")


def test_release_rounding_is_stable_unbiased_and_keyed(scenario, warehouse_url):
    before = _rows(warehouse_url, "SELECT * FROM release.calls_quarterly ORDER BY 1, 2")
    outcomes.rebuild_outcomes(warehouse_url)
    assert _rows(warehouse_url, "SELECT * FROM release.calls_quarterly ORDER BY 1, 2") == before
    (row,) = _rows(
        warehouse_url,
        "SELECT avg(outcomes.round_base5(7, 'secret-a', 'cell ' || i)) AS mean_a,"
        " count(DISTINCT outcomes.round_base5(7, 'secret-a', 'cell ' || i)) AS distinct_a,"
        " avg(outcomes.round_base5(13, 'secret-a', 'cell ' || i)) AS mean_13,"
        " count(*) FILTER (WHERE outcomes.round_base5(7, 'secret-a', 'cell ' || i)"
        "                  <> outcomes.round_base5(7, 'secret-b', 'cell ' || i)) AS differ,"
        " count(*) FILTER (WHERE outcomes.round_base5(7, 'secret-a', 'cell ' || i)"
        "                  <> outcomes.round_base5(7, 'secret-a', 'cell ' || i)) AS unstable,"
        " count(*) FILTER (WHERE outcomes.round_base5(20, 'secret-a', 'cell ' || i) <> 20)"
        "     AS moved_20"
        " FROM generate_series(1, 4000) AS i")
    # 7 = 5 + 2 rounds up with probability 2/5: mean 7 (sd of the mean about 0.04)
    assert float(row["mean_a"]) == pytest.approx(7, abs=0.2)
    assert float(row["mean_13"]) == pytest.approx(13, abs=0.2)
    assert row["distinct_a"] == 2 and row["unstable"] == 0 and row["moved_20"] == 0
    assert row["differ"] > 1000        # another key rounds other cells the other way


def test_release_minimum_is_configurable(monkeypatch):
    monkeypatch.delenv("UPSTREAM_RELEASE_MIN_CELL", raising=False)
    assert outcomes.release_min_cell() == 10
    monkeypatch.setenv("UPSTREAM_RELEASE_MIN_CELL", "20")
    assert outcomes.release_min_cell() == 20
    for bad in ("3", "ten", "-1"):
        monkeypatch.setenv("UPSTREAM_RELEASE_MIN_CELL", bad)
        with pytest.raises(ValueError, match="UPSTREAM_RELEASE_MIN_CELL"):
            outcomes.release_min_cell()


def test_release_minimum_applies_to_the_build(scenario, warehouse_url, monkeypatch):
    monkeypatch.setenv("UPSTREAM_RELEASE_MIN_CELL", "50")
    try:
        outcomes.rebuild_outcomes(warehouse_url)
        q2 = _rows(warehouse_url, "SELECT * FROM release.calls_quarterly"
                   " WHERE quarter = '2024-04-01'")[0]
        assert (q2["calls"], q2["non_charge"]) == (None, None)   # 45 and 35 < 50
    finally:
        monkeypatch.delenv("UPSTREAM_RELEASE_MIN_CELL")
        outcomes.rebuild_outcomes(warehouse_url)


def test_the_release_needs_its_rounding_key(scenario, warehouse_url):
    with db.connect(warehouse_url, role=db.OUTCOMES) as conn:
        (key,) = conn.execute("SELECT secret FROM outcomes.release_key").fetchall()
        assert len(key["secret"]) == 64
    before = _rows(warehouse_url, "SELECT * FROM release.calls_quarterly ORDER BY 1, 2")
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute("DELETE FROM outcomes.release_key")
    try:
        with pytest.raises(RuntimeError, match="release_key"):
            outcomes.rebuild_outcomes(warehouse_url)
        # nothing was replaced: the failed rebuild rolled back
        assert _rows(warehouse_url, "SELECT * FROM release.calls_quarterly ORDER BY 1, 2") == \
            before
    finally:
        with psycopg.connect(warehouse_url, autocommit=True) as conn:
            conn.execute("INSERT INTO outcomes.release_key (secret) VALUES (%s)",
                         (key["secret"],))


# ------------------------------------------------------------------------------------------------
# The quarterly board report (release tier only), HTML and PDF, looked at page by page


@pytest.fixture(scope="module")
def board_report(scenario, warehouse_url, tmp_path_factory):
    from upstream.outcomes import report

    release = report.load_release("WPS", report.parse_quarter("2024-Q2"), url=warehouse_url)
    html = report.render_html(release)
    pdf = report.render_pdf(html)
    out = tmp_path_factory.mktemp("board")
    (out / "board.pdf").write_bytes(pdf)
    return {"release": release, "html": html, "pdf": pdf, "dir": out}


def test_board_report_reads_the_release_tier_only(scenario, warehouse_url, board_report):
    from upstream.outcomes import report

    release = board_report["release"]
    assert release.agency == "WPS" and release.quarter == date(2024, 4, 1)
    assert set(release.tables) == {"calls_quarterly", "service_level_quarterly",
                                   "repeat_contact", "repeat_survival", "repeat_logrank"}
    for rows in release.tables.values():
        for r in rows:
            for k, v in r.items():
                if isinstance(v, int) and not isinstance(v, bool) \
                        and k not in ("window_days", "day"):
                    assert v % 5 == 0, (k, v)   # every count is a rounded one
    # a login that may not act as upstream_public gets no report at all
    info = psycopg.conninfo.conninfo_to_dict(warehouse_url)
    info["user"] = "upstream_analyst"
    info.pop("password", None)
    with pytest.raises(report.ReleaseUnavailable, match="upstream_public"):
        report.load_release("WPS", url=psycopg.conninfo.make_conninfo(**info))
    info["user"] = "upstream_public"
    own = report.load_release("WPS", url=psycopg.conninfo.make_conninfo(**info))
    assert own.tables == release.tables and own.quarter == date(2025, 7, 1)  # latest quarter
    with pytest.raises(ValueError, match="2024-Q3"):
        report.parse_quarter("2024-13")


def test_board_report_html(board_report):
    html = board_report["html"]
    assert "Program board report: 2024 Q2" in html
    # 2024 Q2 = June 2024: 45 calls, 35 not charged, 20 consented, 20 referred, 15 contacted,
    # 10 engaged (multiples of 5 stay as they are)
    for figure, what in (("45", "calls"), ("35", "not charged"), ("20", "consented to a referral"),
                         ("15", "contacted"), ("10", "engaged with services")):
        assert f"<b>{figure}</b>{what}" in html
    for chart in ("report-calls", "report-service", "report-survival"):
        assert f'id="{chart}"' in html
    assert "Campbell Collaboration" in html and "withheld" in html
    assert "MNI-" not in html and "WPS-20" not in html


def test_board_report_pdf_pages(board_report):
    """pdftoppm renders every page; each is an A4 page with ink on it, and the text is there."""
    import subprocess

    from PIL import Image

    out = board_report["dir"]
    assert board_report["pdf"].startswith(b"%PDF-")
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(out / "board.pdf"), str(out / "page")],
                   check=True, timeout=60)
    pages = sorted(out.glob("page*.png"))
    assert len(pages) >= 2
    for page in pages:
        with Image.open(page) as img:
            w, h = img.size
            assert abs(w / h - 210 / 297) < 0.01          # A4 portrait
            grey = img.convert("L")
            inked = sum(1 for v in grey.get_flattened_data() if v < 200)
            assert inked > 0.005 * w * h, page.name
    colours = set()
    for page in pages:
        with Image.open(page) as img:
            colours |= {px[:3] for px in img.convert("RGB").get_flattened_data()}
    # the charts' colours (blue and orange bars) made it to the pages
    assert any(abs(r - 0x00) < 40 and abs(g - 0x72) < 40 and abs(b - 0xB2) < 40
               for r, g, b in colours)
    assert any(abs(r - 0xE6) < 40 and abs(g - 0x9F) < 40 and abs(b - 0x00) < 40
               for r, g, b in colours)
    text = subprocess.run(["pdftotext", "-layout", str(out / "board.pdf"), "-"], check=True,
                          capture_output=True, text=True, timeout=60).stdout
    for phrase in ("Program board report: 2024 Q2", "Time to repeat police contact",
                   "Time to first contact against service levels", "Reading these numbers",
                   "page 1 of"):
        assert phrase in text, phrase


def test_board_report_download_from_the_monitoring_app(scenario, warehouse_url, monkeypatch):
    import asyncio

    import httpx

    from upstream.monitoring import app as app_module

    monkeypatch.setenv("UPSTREAM_MONITORING_DATABASE_URL", warehouse_url)
    app = app_module.create_app(protect=False)

    async def get(path):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://test") as client:
            return await client.get(path)

    page = asyncio.run(get("/?agency=WPS"))
    assert page.status_code == 200
    assert 'href="/report/board.pdf?agency=WPS"' in page.text
    for section in ('id="survival"', 'id="service"', 'id="chart-survival"', 'id="board"'):
        assert section in page.text, section
    # the README's request (the app is mounted at /upstream-monitoring in Airflow)
    pdf = asyncio.run(get("/report/board.pdf?agency=WPS&quarter=2024-Q3"))
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    assert "upstream_board-report_WPS_2024-Q3.pdf" in pdf.headers["content-disposition"]
    html = asyncio.run(get("/report/board.html?agency=WPS"))
    assert html.status_code == 200 and "Program board report: 2025 Q3" in html.text
    assert asyncio.run(get("/report/board.pdf?quarter=soon")).status_code == 400
    assert asyncio.run(get("/report/board.doc")).status_code == 404


# ------------------------------------------------------------------------------------------------
# Totals over all months


def test_totals_over_all_months_are_the_sums_of_the_exact_months(scenario, warehouse_url):
    for table, key, counts in (
            ("calls_monthly", ("agency_code", "patrol_zone"),
             ("calls", "cleared_by_charge", "non_charge", "consent_given", "consent_declined",
              "consent_withdrawn", "consent_not_asked", "consent_unable_to_ask")),
            ("referral_funnel", ("agency_code", "step"), ("count", "base_count")),
            ("timeliness", ("agency_code", "measure"), ("n", "within_24h", "within_7d")),
            ("contact_service_level", ("agency_code",),
             ("referred", "contacted_24h", "contacted_48h", "contacted_7d", "uncontacted_48h"))):
        rows = _rows(warehouse_url, f"SELECT * FROM outcomes.{table}")  # noqa: S608
        totals = {tuple(r[k] for k in key): r for r in rows if r["all_months"]}
        months = defaultdict(list)
        for r in rows:
            assert (r["month"] is None) == r["all_months"], table
            if not r["all_months"]:
                months[tuple(r[k] for k in key)].append(r)
        assert set(totals) == set(months), table   # one total row per key, and only one
        for k, total in totals.items():
            for c in counts:
                parts = [r[c] for r in months[k]]
                want = None if None in parts else sum(parts)   # step 1 has no base
                assert total[c] == want, (table, k, c)
    funnel = {r["step"]: r for r in _rows(
        warehouse_url, "SELECT * FROM outcomes.referral_funnel WHERE all_months")}
    assert funnel["referred"]["count"] == 23 and funnel["contacted"]["count"] == 18
    assert funnel["engaged"]["rate"] == round(Decimal(13) / 18, 4)   # of the summed counts
    sl = _rows(warehouse_url, "SELECT * FROM outcomes.contact_service_level WHERE all_months")
    assert [(r["referred"], r["contacted_24h"], r["share_24h"]) for r in sl] == [
        (23, 5, round(Decimal(5) / 23, 4))]


def test_timeliness_over_all_months_is_the_median_of_every_referral(scenario, warehouse_url):
    """Recomputed in Python from routing and core.call: not a combination of monthly medians."""
    import statistics

    refs = _rows(warehouse_url,
                 "SELECT c.call_received_at, r.delivered_at, (SELECT min(e.occurred_at) FROM"
                 " routing.referral_event AS e WHERE e.referral_id = r.referral_id AND"
                 " e.event_type = 'contacted') AS first_contact FROM routing.referral AS r JOIN"
                 " core.call AS c USING (agency_code, incident_id)"
                 " WHERE r.delivered_at IS NOT NULL AND r.agency_code = 'WPS'")
    hours = {
        "call_to_referral": [(r["delivered_at"] - r["call_received_at"]).total_seconds() / 3600
                             for r in refs],
        "referral_to_first_contact": [(r["first_contact"] - r["delivered_at"]).total_seconds()
                                      / 3600 for r in refs if r["first_contact"]],
    }
    got = {r["measure"]: r for r in _rows(
        warehouse_url, "SELECT * FROM outcomes.timeliness WHERE all_months AND agency_code = 'WPS'")}
    for measure, xs in hours.items():
        xs.sort()
        k = 0.9 * (len(xs) - 1)
        p90 = xs[int(k)] + (xs[min(int(k) + 1, len(xs) - 1)] - xs[int(k)]) * (k - int(k))
        r = got[measure]
        assert r["n"] == len(xs)
        assert r["median_hours"] == round(Decimal(statistics.median(xs)), 2), measure
        assert float(r["p90_hours"]) == pytest.approx(p90, abs=0.006), measure
        assert r["within_24h"] == sum(1 for x in xs if x <= 24)
    monthly = [r["median_hours"] for r in _rows(
        warehouse_url, "SELECT median_hours FROM outcomes.timeliness WHERE NOT all_months"
        " AND measure = 'call_to_referral' AND median_hours IS NOT NULL")]
    assert got["call_to_referral"]["median_hours"] not in monthly   # 23 referrals, not 2 months
    pub = {r["measure"]: r for r in _rows(
        warehouse_url, "SELECT * FROM published.timeliness WHERE all_months")}
    assert set(pub) == set(hours) and all(r["month"] is None for r in pub.values())


def test_release_and_report_show_the_totals_over_all_quarters(scenario, warehouse_url,
                                                              board_report):
    for view in ("calls_quarterly", "service_level_quarterly"):
        rows = _rows(warehouse_url, f"SELECT * FROM release.{view}")  # noqa: S608
        totals = [r for r in rows if r["all_quarters"]]
        assert len(totals) == 1 and totals[0]["quarter"] is None, view
        assert all(r["quarter"] is not None for r in rows if not r["all_quarters"])
    (calls,) = _rows(warehouse_url, "SELECT * FROM release.calls_quarterly WHERE all_quarters")
    # 122 calls in all: rounded on its own to 120 or 125; consent given 28 -> 25 or 30
    assert calls["calls"] in (120, 125) and calls["consent_given"] in (25, 30)
    assert calls["referred"] in (20, 25)
    (sl,) = _rows(warehouse_url, "SELECT * FROM release.service_level_quarterly"
                  " WHERE all_quarters")
    assert sl["referred"] in (20, 25)
    assert sl["share_24h"] is None      # 5 contacted within 24 h: below the minimum of 10
    assert sl["uncontacted_48h"] in (15, 20)
    assert board_report["html"].count("<th>All quarters</th>") == 2
