"""Outcome tables and published views on a small hand-built history, on real PostgreSQL.

The scenario (built once for the module, see `_build_scenario`):

* 2023-03-15, before the program launch (2024-05-06): 13 non-charge calls (baseline), one of
  them charged later by a record_version 2 correction; repeat calls of 7 of those victims.
* 2024-06-10, zone Z1: 45 calls, no small cell anywhere (exact numbers in every view):
  10 charged; 20 consent given (G1-G20, all referred), 5 declined, 5 not asked, 5 unable to
  ask. Outreach: G1-G15 contacted (G1, G2 without a separate attempt event), G1-G10 engaged,
  G11-G15 declined, G16-G20 unreachable.
* 2024-07-10, zones Z1 and Z2: the complementary-suppression case (a 2 x 2 table whose small
  cells would otherwise follow from the totals).
* 2024-08-10: 3 referrals (small cells in the funnel and timeliness).
* repeat calls of June victims from 2024-09 to 2024-12; the last call on 2025-07-15 makes the
  reference date 2025-07-15 (182-day windows elapsed for calls up to mid-January 2025, 365-day
  windows for calls up to mid-July 2024).
* data quality: a bad row quarantined in the 2024-08-31 file and a refused file on 2025-07-16.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from support.rows import load

from upstream import ingest, outcomes
from upstream.dev import generate

pytestmark = pytest.mark.integration

TZ = ZoneInfo("America/Toronto")
REPO = Path(__file__).resolve().parents[2]
MONTH_MEASURES = ("calls", "cleared_by_charge", "non_charge", "consent_given", "consent_declined",
                  "consent_not_asked", "consent_unable_to_ask")
DAY_MEASURES = ("calls", "cleared_by_charge", "non_charge", "consent_given")


def at(y: int, m: int, d: int, hh: int = 9, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


class Calls:
    """Rows for the extracts, each with its own incident number and (by default) victim."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, when: datetime, *, zone: str = "Z1", charged: bool = False,
                 consent: str = "not_asked", victim: str | None = None, **extra) -> dict:
        self.n += 1
        overrides: dict = {"patrol_zone": zone,
                           "victim_person_id": victim or f"MNI-U{self.n}"}
        if charged:
            overrides["clearance_status"] = "cleared_by_charge"
        else:
            overrides.update(clearance_status="cleared_otherwise_complainant_request",
                             charges_laid=0, consent_status=consent)
        overrides.update(extra)
        return generate.make_row(random.Random(self.n), "WPS",
                                 f"WPS-{when.year}-{self.n:06d}", when, **overrides)


def _build_scenario(settings, url: str) -> dict:
    c = Calls()
    # --- 2023: baseline -----------------------------------------------------------------------
    baseline = [c(at(2023, 3, 15, 10, i), victim=f"MNI-B{i}") for i in range(1, 14)]
    f1 = list(baseline)
    f1 += [c(at(2023, 5, 1), charged=True, victim=f"MNI-B{i}") for i in range(1, 7)]
    f1.append(c(at(2023, 12, 1), charged=True, victim="MNI-B7"))  # 261 days: 365 only
    load(settings, date(2023, 12, 31), f1)

    # --- 2024-06 .. 2024-08 ----------------------------------------------------------------------
    june = [c(at(2024, 6, 10, 9, i), charged=True) for i in range(10)]
    given = [c(at(2024, 6, 10, 10, 0), consent="given", victim=f"MNI-G{k}") for k in range(1, 21)]
    june += given
    june += [c(at(2024, 6, 10, 11, i), consent="declined") for i in range(5)]
    not_asked = [c(at(2024, 6, 10, 12, i), consent="not_asked", victim=f"MNI-N{i}")
                 for i in range(1, 6)]
    not_asked += [c(at(2024, 6, 10, 13, i), consent="unable_to_ask", victim=f"MNI-N{i}")
                  for i in range(6, 11)]
    june += not_asked
    july = [c(at(2024, 7, 10, 9, i), zone="Z1", charged=True) for i in range(5)]
    july += [c(at(2024, 7, 10, 10, i), zone="Z1", consent="given") for i in range(5)]
    july += [c(at(2024, 7, 10, 11, i), zone="Z2", charged=True) for i in range(6)]
    july += [c(at(2024, 7, 10, 12, i), zone="Z2", consent="declined") for i in range(3)]
    august = [c(at(2024, 8, 10, 9, i), charged=True) for i in range(5)]
    aug_given = [c(at(2024, 8, 10, 10, i), consent="given") for i in range(3)]
    august += aug_given
    august += [c(at(2024, 8, 10, 11, i), consent="declined") for i in range(5)]
    august += [c(at(2024, 8, 10, 12, i), consent="not_asked") for i in range(5)]
    bad = generate.make_bad_row("record_version_zero", random.Random(99), "WPS",
                                "WPS-2024-999999", at(2024, 8, 10, 14))
    load(settings, date(2024, 8, 31), june + july + august + [bad])

    # --- later calls: repeats of June victims, the B13 correction, the last call ----------------
    f3 = [c(at(2024, 9, 15), charged=True, victim=f"MNI-G{k}") for k in range(1, 6)]
    f3.append(c(at(2024, 9, 15), consent="withdrawn", victim="MNI-G6"))
    f3.append(c(at(2024, 12, 27, 11), charged=True, victim="MNI-G7"))  # 200 days after
    f3 += [c(at(2024, 10, 1), charged=True, victim=f"MNI-G{k}") for k in range(11, 16)]
    f3 += [c(at(2024, 11, 20), charged=True, victim=f"MNI-N{i}") for i in range(1, 4)]
    f3 += [c(at(2024, 11, 20), consent="withdrawn", victim=f"MNI-N{i}") for i in range(4, 8)]
    b13 = dict(baseline[12], record_version=2, clearance_status="cleared_by_charge",
               charges_laid=1, consent_status="not_applicable", consent_recorded_at=None,
               consent_officer_id=None)
    f3.append(b13)
    f3.append(c(at(2025, 7, 15), charged=True))
    load(settings, date(2025, 7, 15), f3)

    # --- a refused delivery (manifest and file disagree) -----------------------------------------
    with pytest.raises(ingest.RefusedFile):
        load(settings, date(2025, 7, 16), [c(at(2025, 7, 16), charged=True)],
              manifest_overrides={"rows": 2})

    # --- referrals and outreach events (direct, as routing would have stored them) --------------
    referrals, events = [], []

    def ev(rid: str, kind: str, when: datetime) -> None:
        events.append((f"e_{uuid.uuid4().hex}", rid, kind, when))

    for k, row in enumerate(given, start=1):
        rid = f"r_test_g{k}"
        delivered = row["call_received_at"] + timedelta(hours=2 * k)
        referrals.append((rid, row["incident_id"], delivered))
        ev(rid, "received", delivered)
        if k >= 3:
            ev(rid, "contact_attempted", delivered + timedelta(hours=1))
        if k <= 15:
            contacted = delivered + timedelta(hours=12 * k)
            ev(rid, "contacted", contacted)
            ev(rid, "engaged" if k <= 10 else "declined", contacted + timedelta(hours=2))
            ev(rid, "closed", contacted + timedelta(days=3))
        else:
            ev(rid, "contact_attempted", delivered + timedelta(hours=30))
            ev(rid, "unreachable", delivered + timedelta(hours=100))
    ev("r_test_g1", "contacted", referrals[0][2] + timedelta(hours=500))  # only the first counts
    for k, row in enumerate(aug_given, start=1):
        rid = f"r_test_a{k}"
        delivered = row["call_received_at"] + timedelta(hours=5)
        referrals.append((rid, row["incident_id"], delivered))
        for offset, kind in enumerate(("received", "contact_attempted", "contacted", "engaged")):
            ev(rid, kind, delivered + timedelta(hours=offset))
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO routing.referral (referral_id, agency_code, incident_id, status,"
                " delivered_at, delivered_version) VALUES (%s, 'WPS', %s, 'delivered', %s, 1)",
                referrals)
            cur.executemany(
                "INSERT INTO routing.referral_event (event_id, referral_id, event_type,"
                " occurred_at) VALUES (%s, %s, %s, %s)", events)
    return {"calls": c.n}


@pytest.fixture(scope="module")
def scenario(module_env, warehouse_url):
    """The scenario loaded and the outcome tables built (module scope: loads cost seconds)."""
    with module_env("outcomes", key="outcomes-test-key-" + uuid.uuid4().hex,
                    unset=("UPSTREAM_PROGRAM_LAUNCH_DATE",)) as settings:
        info = _build_scenario(settings, warehouse_url)
        info["build"] = outcomes.rebuild_outcomes(warehouse_url)
        yield info


def _rows(url: str, query: str, *params) -> list[dict]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(query, params).fetchall()


def _dec(x) -> Decimal | None:
    return None if x is None else Decimal(str(x))


def _wilson(k: int, n: int) -> tuple[Decimal, Decimal]:
    lo, hi = outcomes.wilson_interval(k, n)
    return round(Decimal(lo), 4), round(Decimal(hi), 4)


# ------------------------------------------------------------------------------------------------
# Exact numbers


def test_build_reports_reference_date_and_counts(scenario, warehouse_url):
    build = scenario["build"]
    assert build["reference_date"] == "2025-07-15"
    assert build["program_launch_date"] == "2024-05-06"
    assert build["rows"]["repeat_contact"] == 14  # 6 cohorts + the total x 2 windows, one agency
    # the rebuild's work table (victim pseudonyms) is empty once a rebuild has committed
    assert _rows(warehouse_url, "SELECT count(*) AS n FROM outcomes.work_repeat_victim") == [
        {"n": 0}]
    info = _rows(warehouse_url, "SELECT * FROM published.build_info")
    assert info == [{"reference_date": date(2025, 7, 15), "program_launch_date": date(2024, 5, 6),
                     "repeat_windows_days": [182, 365], "time_zone": "America/Toronto"}]


def test_calls_monthly_and_daily(scenario, warehouse_url):
    monthly = {(r["month"], r["patrol_zone"]): r for r in _rows(
        warehouse_url, "SELECT * FROM published.calls_monthly WHERE agency_code = 'WPS'")}

    def cells(month, zone):
        r = monthly[(month, zone)]
        return tuple(r[m] for m in MONTH_MEASURES)

    exact = {(r["month"], r["patrol_zone"]): tuple(r[m] for m in MONTH_MEASURES) for r in _rows(
        warehouse_url, "SELECT * FROM outcomes.calls_monthly WHERE agency_code = 'WPS'")}
    # June: nothing small, one zone (exact; published as is or hidden as a complement of the
    # totals over all months, which the scenario's small months force)
    for zone in ("(all)", "Z1"):
        assert exact[(date(2024, 6, 1), zone)] == (45, 10, 35, 20, 5, 5, 5)
        assert all(p in (e, None) for p, e in zip(cells(date(2024, 6, 1), zone),
                                                   exact[(date(2024, 6, 1), zone)], strict=True))
    assert cells(date(2024, 6, 1), "(all)")[:3] == (45, 10, 35)
    # August: consent_given 3 hidden, consent_declined 5 hidden with it (else 13 - 5 - 0 - 3)
    assert cells(date(2024, 8, 1), "(all)") == (18, 5, 13, None, None, 5, 0)
    # months without calls between the first and the last call are zero rows, not gaps
    assert cells(date(2024, 2, 1), "(all)") == (0, 0, 0, 0, 0, 0, 0)
    assert (date(2024, 2, 1), "Z1") not in monthly
    # March 2023 after the correction: B13 is charged now
    exact = _rows(warehouse_url, "SELECT calls, cleared_by_charge, non_charge FROM"
                  " outcomes.calls_monthly WHERE month = '2023-03-01' AND patrol_zone = '(all)'")
    assert exact == [{"calls": 13, "cleared_by_charge": 1, "non_charge": 12}]

    daily = {r["day"]: r for r in _rows(
        warehouse_url, "SELECT * FROM published.calls_daily WHERE agency_code = 'WPS'")}
    assert (daily[date(2024, 6, 10)]["calls"], daily[date(2024, 6, 10)]["cleared_by_charge"],
            daily[date(2024, 6, 10)]["non_charge"]) == (45, 10, 35)
    # the month's only day: hidden with the month's cell when that is a complement
    assert daily[date(2024, 6, 10)]["consent_given"] == cells(date(2024, 6, 1), "(all)")[3]
    assert [daily[date(2024, 7, 10)][m] for m in DAY_MEASURES] == [19, 11, 8, None]
    assert [daily[date(2024, 6, 11)][m] for m in DAY_MEASURES] == [0, 0, 0, 0]
    assert min(daily) == date(2023, 3, 15) and max(daily) == date(2025, 7, 15)
    assert len(daily) == (date(2025, 7, 15) - date(2023, 3, 15)).days + 1


def test_referral_funnel(scenario, warehouse_url):
    funnel = defaultdict(dict)
    for r in _rows(warehouse_url, "SELECT * FROM published.referral_funnel ORDER BY step_order"):
        funnel[r["month"]][r["step"]] = (r["step_order"], r["count"], _dec(r["rate"]))
    exact_funnel = defaultdict(dict)
    for r in _rows(warehouse_url, "SELECT * FROM outcomes.referral_funnel ORDER BY step_order"):
        exact_funnel[r["month"]][r["step"]] = (r["step_order"], r["count"], _dec(r["rate"]))
    # June's exact funnel (published as is, or hidden as complements of the all-months totals)
    for step, (order, count, rate) in funnel[date(2024, 6, 1)].items():
        assert (order, count, rate) in ((order, *exact_funnel[date(2024, 6, 1)][step][1:]),
                                        (order, None, None),
                                        (order, exact_funnel[date(2024, 6, 1)][step][1], None))
    june = exact_funnel[date(2024, 6, 1)]
    d = Decimal
    assert june == {
        "ipv_calls": (1, 45, None),
        "non_charge": (2, 35, d("0.7778")),
        "consent_asked": (3, 25, d("0.7143")),
        "consent_given": (4, 20, d("0.8000")),
        "referred": (5, 20, d("1.0000")),
        "contact_attempted": (6, 20, d("1.0000")),   # G1, G2: contacted without an attempt event
        "contacted": (7, 15, d("0.7500")),
        "engaged": (8, 10, d("0.6667")),             # vs contacted
        "declined": (9, 5, d("0.3333")),             # vs contacted
        "unreachable": (10, 5, d("0.2500")),         # vs referred
        "withdrawn": (11, 0, d("0.0000")),           # vs referred
        "not_referred_outside_window": (12, 0, d("0.0000")),  # vs consent given
    }
    august = funnel[date(2024, 8, 1)]
    assert {k: v[1:] for k, v in august.items()} == {
        "ipv_calls": (18, None), "non_charge": (13, d("0.7222")),
        "consent_asked": (8, d("0.6154")),
        # 3 referrals: hidden, and every rate built on them
        "consent_given": (None, None), "referred": (None, None),
        "contact_attempted": (None, None), "contacted": (None, None), "engaged": (None, None),
        "declined": (0, None), "unreachable": (0, None), "withdrawn": (0, None),
        "not_referred_outside_window": (0, None),
    }
    # the restricted table keeps the exact counts
    exact = {r["step"]: r["count"] for r in _rows(
        warehouse_url, "SELECT step, count FROM outcomes.referral_funnel WHERE month = %s",
        date(2024, 8, 1))}
    assert exact["referred"] == exact["engaged"] == exact["consent_given"] == 3


def test_timeliness(scenario, warehouse_url):
    rows = {(r["month"], r["measure"]): r for r in _rows(
        warehouse_url, "SELECT * FROM published.timeliness")}
    exact_rows = {(r["month"], r["measure"]): r for r in _rows(
        warehouse_url, "SELECT * FROM outcomes.timeliness")}
    c2r = exact_rows[(date(2024, 6, 1), "call_to_referral")]
    # delivered 2, 4, ..., 40 hours after the call
    assert (c2r["n"], c2r["median_hours"], c2r["p90_hours"], c2r["share_within_24h"],
            c2r["share_within_7d"]) == (20, Decimal("21.00"), Decimal("36.20"),
                                        Decimal("0.6000"), Decimal("1.0000"))
    r2c = exact_rows[(date(2024, 6, 1), "referral_to_first_contact")]
    # first contact 12, 24, ..., 180 hours after delivery; only 2 within 24 h: that share is
    # hidden (it would give away a count of 2)
    assert (r2c["n"], r2c["median_hours"], r2c["p90_hours"], r2c["share_within_7d"],
            r2c["share_24h_hidden"]) == (15, Decimal("96.00"), Decimal("163.20"),
                                         Decimal("0.9333"), True)
    assert rows[(date(2024, 6, 1), "referral_to_first_contact")]["share_within_24h"] is None
    for measure in ("call_to_referral", "referral_to_first_contact"):
        aug = rows[(date(2024, 8, 1), measure)]
        assert (aug["n"], aug["median_hours"], aug["p90_hours"], aug["share_within_24h"],
                aug["share_within_7d"]) == (None, None, None, None, None)
        july = rows[(date(2024, 7, 1), measure)]
        assert (july["n"], july["median_hours"]) == (0, None)
    exact = _rows(warehouse_url, "SELECT n, median_hours FROM outcomes.timeliness"
                  " WHERE month = '2024-08-01' AND measure = 'call_to_referral'")
    assert exact == [{"n": 3, "median_hours": Decimal("5.00")}]


def test_repeat_contact(scenario, warehouse_url):
    got = {(r["cohort"], r["window_days"]): r for r in _rows(
        warehouse_url, "SELECT * FROM published.repeat_contact WHERE agency_code = 'WPS'")}
    assert {k[0] for k in got} == {"engaged", "referred_not_engaged", "consent_declined",
                                   "consent_not_asked", "consent_given_not_delivered",
                                   "baseline", "all"}

    def expect(cohort, window, n, rep, chg):
        r = got[(cohort, window)]
        rate = round(Decimal(rep) / n, 4)
        lo, hi = _wilson(rep, n)
        chg_rate = None if chg is None else round(Decimal(chg) / n, 4)
        assert (r["index_calls"], r["with_repeat"], r["repeat_rate"], r["ci_low"], r["ci_high"],
                r["with_charged_repeat"], r["charged_repeat_rate"]) == (
            n, rep, rate, lo, hi, chg, chg_rate), (cohort, window)

    # June G1-G10 + August A1-A3 (August only for 182 days: 365 not elapsed by 2025-07-15)
    expect("engaged", 182, 13, 6, None)     # 5 charged: hidden with not-asked's 3 (total)
    expect("engaged", 365, 10, 7, 6)        # + G7's call 200 days later
    expect("referred_not_engaged", 182, 10, 5, 5)
    expect("referred_not_engaged", 365, 10, 5, None)  # hidden with not-asked's 3
    expect("consent_declined", 182, 13, 0, 0)  # June 5 + July 3 + August 5
    expect("consent_declined", 365, 8, 0, 0)
    expect("consent_not_asked", 182, 15, 7, None)  # 3 charged repeats: hidden
    expect("consent_not_asked", 365, 10, 7, None)
    expect("baseline", 182, 12, 6, 6)       # B13 was corrected to a charge: not an index call
    expect("baseline", 365, 12, 7, 7)
    exact = {(r["cohort"], r["window_days"]): (r["index_calls"], r["with_charged_repeat"])
             for r in _rows(warehouse_url, "SELECT * FROM outcomes.repeat_contact")}
    assert exact[("consent_not_asked", 182)] == (15, 3)
    # consent given but never referred (July), withdrawn consent (repeat calls)
    expect("consent_given_not_delivered", 182, 10, 0, 0)
    expect("consent_given_not_delivered", 365, 5, 0, 0)
    # the total: every index call is in exactly one cohort
    expect("all", 182, 73, 24, 19)
    expect("all", 365, 55, 26, 21)


def test_data_quality(scenario, warehouse_url):
    dq = {r["extract_date"]: tuple(r[k] for k in ("files_received", "files_refused",
                                                  "rows_in_files", "rows_loaded",
                                                  "rows_quarantined"))
          for r in _rows(warehouse_url, "SELECT * FROM published.data_quality_daily")}
    assert dq == {
        date(2023, 12, 31): (1, 0, 20, 20, 0),
        date(2024, 8, 31): (1, 0, 83, 82, 1),
        date(2025, 7, 15): (1, 0, 21, 21, 0),
        date(2025, 7, 16): (1, 1, 0, 0, 0),
    }
    rules = _rows(warehouse_url, "SELECT agency_code, extract_date, rule, rows"
                  " FROM published.quarantine_by_rule")
    assert rules == [{"agency_code": "WPS", "extract_date": date(2024, 8, 31),
                      "rule": "record_version.integer_min_1", "rows": 1}]


# ------------------------------------------------------------------------------------------------
# Suppression


def test_complementary_suppression_of_the_constructed_case(scenario, warehouse_url):
    """July 2024. Exact: Z1 = 5 charged + 5 consent given, Z2 = 6 charged + 3 declined.
    The 3s are small; hiding only them would let anyone compute them back (Z2 calls 9 minus 6
    charged; agency non-charge 8 minus consent given 5). The published table hides a 2 x 2
    block instead: every hidden cell has at least one other hidden cell in each relation."""
    rows = {r["patrol_zone"]: tuple(r[m] for m in MONTH_MEASURES) for r in _rows(
        warehouse_url, "SELECT * FROM published.calls_monthly WHERE month = '2024-07-01'")}
    assert rows == {
        #        calls charged non_ch given declined not_asked unable
        "(all)": (19, 11, 8, None, None, 0, 0),
        "Z1": (10, None, None, None, 0, 0, 0),
        "Z2": (9, None, None, 0, None, 0, 0),
    }
    # What the published totals still allow: Z1 charged = a, Z1 non-charge = 10 - a,
    # Z2 charged = 11 - a, Z2 non-charge = a - 2 (sums to 8 for every a). Non-negative counts
    # leave a in 2..10, so Z2's non-charge / declined count (truly 3) could be 0..8.
    fits = [a for a in range(0, 20) if min(a, 10 - a, 11 - a, a - 2) >= 0]
    assert fits == list(range(2, 11))
    day = _rows(warehouse_url, "SELECT * FROM published.calls_daily WHERE day = '2024-07-10'")
    assert [day[0][m] for m in DAY_MEASURES] == [19, 11, 8, None]  # same cell as the month
    reasons = {(r["patrol_zone"], r["measure"]): r["reason"] for r in _rows(
        warehouse_url, "SELECT * FROM outcomes.suppressed_cell WHERE grain = 'month'"
        " AND period = '2024-07-01'")}
    assert reasons[("Z2", "non_charge")] == "small_cell"
    assert reasons[("Z2", "cleared_by_charge")] == "complementary"
    assert reasons[("(all)", "consent_given")] == "complementary"
    funnel = {r["step"]: (r["count"], _dec(r["rate"])) for r in _rows(
        warehouse_url, "SELECT * FROM published.referral_funnel WHERE month = '2024-07-01'")}
    assert funnel["consent_asked"] == (8, Decimal("1.0000"))
    assert funnel["consent_given"] == (None, None)  # shared with calls_monthly: hidden there too
    assert funnel["referred"] == (0, None)           # its base is hidden


def _published(url: str):
    monthly = _rows(url, "SELECT * FROM published.calls_monthly")
    daily = _rows(url, "SELECT * FROM published.calls_daily")
    funnel = _rows(url, "SELECT * FROM published.referral_funnel")
    return monthly, daily, funnel


def test_no_published_total_gives_a_hidden_cell_away(scenario, warehouse_url):
    """Every exact additive relation between published cells has 0 or >= 2 hidden terms, and
    no visible count is 1..4."""
    monthly, daily, funnel = _published(warehouse_url)
    relations: list[list] = []
    for r in monthly:
        relations.append([r["calls"], r["cleared_by_charge"], r["non_charge"]])
        relations.append([r["non_charge"], r["consent_given"], r["consent_declined"],
                          r["consent_not_asked"], r["consent_unable_to_ask"]])
    by_month = defaultdict(list)
    for r in monthly:
        by_month[(r["agency_code"], r["month"])].append(r)
    for rows in by_month.values():
        for m in MONTH_MEASURES:
            relations.append([r[m] for r in rows])  # (all) and its zones
    days_of = defaultdict(list)
    for r in daily:
        relations.append([r["calls"], r["cleared_by_charge"], r["non_charge"]])
        days_of[(r["agency_code"], r["day"].replace(day=1))].append(r)
    totals = {(r["agency_code"], r["month"]): r for r in monthly if r["patrol_zone"] == "(all)"}
    for key, days in days_of.items():
        for m in DAY_MEASURES:
            relations.append([totals[key][m]] + [d[m] for d in days])
    steps = defaultdict(dict)
    for r in funnel:
        steps[(r["agency_code"], r["month"])][r["step"]] = r["count"]
    for key, s in steps.items():
        t = totals[key]
        relations.append([s["non_charge"], s["consent_asked"], t["consent_not_asked"],
                          t["consent_unable_to_ask"]])
        relations.append([s["consent_asked"], s["consent_given"], t["consent_declined"]])
        assert (s["ipv_calls"], s["non_charge"], s["consent_given"]) == (
            t["calls"], t["non_charge"], t["consent_given"])
    assert relations
    for terms in relations:
        assert sum(1 for x in terms if x is None) != 1, terms
    visible = [r[m] for r in monthly for m in MONTH_MEASURES] + \
              [r[m] for r in daily for m in DAY_MEASURES] + [r["count"] for r in funnel]
    visible += [r["n"] for r in _rows(warehouse_url, "SELECT n FROM published.timeliness")]
    for r in _rows(warehouse_url, "SELECT * FROM published.repeat_contact"):
        visible += [r["index_calls"], r["with_repeat"], r["with_charged_repeat"]]
    assert not [x for x in visible if x is not None and 1 <= x <= 4]


def test_published_values_are_the_exact_values_or_null(scenario, warehouse_url):
    pub = {(r["month"], r["patrol_zone"]): r for r in _rows(
        warehouse_url, "SELECT * FROM published.calls_monthly")}
    for r in _rows(warehouse_url, "SELECT * FROM outcomes.calls_monthly"):
        p = pub[(r["month"], r["patrol_zone"])]
        for m in MONTH_MEASURES:
            assert p[m] == (None if m in r["hidden"] else r[m])
    hidden = _rows(warehouse_url, "SELECT count(*) AS n FROM outcomes.suppressed_cell")[0]["n"]
    assert hidden > 0


# ------------------------------------------------------------------------------------------------
# Determinism, atomicity


def _dump(url: str, **connect_kwargs) -> dict:
    out = {}
    with psycopg.connect(url, **connect_kwargs) as conn:
        for schema, names in (("outcomes", outcomes.OUTCOME_TABLES + ("build_info",)),
                              ("published", outcomes.PUBLISHED_VIEWS)):
            for name in names:
                # the same rows, in a total order (a key can have more than four columns)
                out[f"{schema}.{name}"] = sorted(conn.execute(
                    f"SELECT * FROM {schema}.{name}").fetchall(), key=repr)  # noqa: S608
    return out


def test_rebuild_is_deterministic(scenario, warehouse_url):
    first = _dump(warehouse_url)
    second_build = outcomes.rebuild_outcomes(warehouse_url)
    assert _dump(warehouse_url) == first
    assert second_build["rows"] == scenario["build"]["rows"]
    # an explicit reference date equal to the default gives the same tables
    outcomes.rebuild_outcomes(warehouse_url, reference_date=date(2025, 7, 15))
    assert _dump(warehouse_url) == first


def test_readers_see_the_old_or_the_new_build_never_a_mix(scenario, warehouse_url):
    # an older reference date: fewer elapsed windows (a different "old" build)
    outcomes.rebuild_outcomes(warehouse_url, reference_date=date(2025, 1, 31))
    old = _dump(warehouse_url)
    seen: dict[str, dict] = {}

    def peek(_conn) -> None:
        # The new build is complete but uncommitted: another session reads without waiting
        # (a lock wait would hit the timeout) and sees the old build, whole.
        def read():
            seen["during"] = _dump(warehouse_url, options="-c statement_timeout=5000")

        t = threading.Thread(target=read)
        t.start()
        t.join(30)

    outcomes.rebuild_outcomes(warehouse_url, before_commit=peek)
    new = _dump(warehouse_url)
    assert seen["during"] == old
    assert new != old
    assert new["published.repeat_contact"] != old["published.repeat_contact"]
    ref = _rows(warehouse_url, "SELECT reference_date FROM outcomes.build_info")
    assert ref == [{"reference_date": date(2025, 7, 15)}]


def test_concurrent_reader_never_sees_a_partial_build(scenario, warehouse_url):
    """A reader polling in a loop during two rebuilds sees only complete builds."""
    complete = {r["n"] for r in _rows(
        warehouse_url, "SELECT count(*) AS n FROM published.referral_funnel")}
    stop = threading.Event()
    counts: list[tuple] = []

    def poll():
        with psycopg.connect(warehouse_url, autocommit=True) as conn:
            while not stop.is_set():
                counts.append(conn.execute(
                    "SELECT (SELECT count(*) FROM published.referral_funnel),"
                    " (SELECT count(*) FROM published.calls_daily),"
                    " (SELECT count(*) FROM published.repeat_contact)").fetchone())

    t = threading.Thread(target=poll)
    t.start()
    try:
        outcomes.rebuild_outcomes(warehouse_url)
        outcomes.rebuild_outcomes(warehouse_url)
    finally:
        stop.set()
        t.join(30)
    assert counts
    assert {c[0] for c in counts} <= complete
    assert all(c[1] > 0 and c[2] == 14 for c in counts)


def test_two_rebuilds_at_once_take_turns(scenario, warehouse_url):
    before = _dump(warehouse_url)
    results, errors = [], []

    def run():
        try:
            results.append(outcomes.rebuild_outcomes(warehouse_url)["rows"])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(results) == 2 and results[0] == results[1]
    assert _dump(warehouse_url) == before


def test_rebuild_of_an_empty_warehouse(server_url):
    from upstream.warehouse import db

    name = f"upstream_empty_{uuid.uuid4().hex[:8]}"
    url = db.create_database(server_url, name, warehouse=True)
    try:
        db.migrate(url)
        build = outcomes.rebuild_outcomes(url)
        assert build["reference_date"] is None
        assert all(v == 0 for k, v in build["rows"].items() if k != "suppression_rounds")
        with psycopg.connect(url, user="upstream_analyst") as conn:
            assert conn.execute("SELECT count(*) FROM published.calls_monthly").fetchone() == (0,)
            assert conn.execute("SELECT reference_date FROM published.build_info").fetchall() == [
                (None,)]
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ------------------------------------------------------------------------------------------------
# Access


def test_analyst_reads_published_views_only(scenario, warehouse_url):
    with psycopg.connect(warehouse_url, user="upstream_analyst", autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == "upstream_analyst"
        for view in outcomes.PUBLISHED_VIEWS + ("build_info",):
            rows = conn.execute(f"SELECT * FROM published.{view}").fetchall()  # noqa: S608
            assert rows, view
        for relation in ("core.call", "core.call_version", "contact.victim_contact",
                         "routing.referral", "routing.referral_event", "ops.extract_file",
                         "ops.quarantine_row", "public.schema_migration",
                         *(f"outcomes.{t}" for t in outcomes.OUTCOME_TABLES)):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT 1 FROM {relation} LIMIT 1")  # noqa: S608
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT outcomes.wilson_low(1, 2)")
        for statement in ("DELETE FROM published.calls_monthly",
                          "CREATE VIEW published.x AS SELECT 1"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    columns = _rows(warehouse_url, "SELECT table_name, column_name FROM"
                    " information_schema.columns WHERE table_schema = 'published'")
    names = {r["column_name"] for r in columns}
    assert not names & {"victim_key", "address_key", "accused_key", "incident_id",
                        "referral_id", "victim_person_id"}
    expected = {
        "calls_monthly": ["agency_code", "month", "all_months", "patrol_zone", *MONTH_MEASURES],
        "calls_daily": ["agency_code", "day", *DAY_MEASURES],
        "referral_funnel": ["agency_code", "month", "all_months", "step_order", "step", "count",
                            "rate"],
        "timeliness": ["agency_code", "month", "all_months", "measure", "n", "median_hours",
                       "p90_hours",
                       "share_within_24h", "share_within_7d"],
        "repeat_contact": ["agency_code", "cohort", "window_days", "index_calls", "with_repeat",
                           "repeat_rate", "ci_low", "ci_high", "with_charged_repeat",
                           "charged_repeat_rate", "standardised_rate", "std_ci_low",
                           "std_ci_high"],
        "data_quality_daily": ["agency_code", "extract_date", "files_received", "files_refused",
                               "rows_in_files", "rows_loaded", "rows_quarantined"],
        "quarantine_by_rule": ["agency_code", "extract_date", "rule", "rows"],
    }
    typed = _rows(warehouse_url, "SELECT table_name, column_name, data_type FROM"
                  " information_schema.columns WHERE table_schema = 'published'"
                  " ORDER BY table_name, ordinal_position")
    for view, cols in expected.items():
        assert [r["column_name"] for r in typed if r["table_name"] == view] == cols, view
    types = {(r["table_name"], r["column_name"]): r["data_type"] for r in typed}
    assert types[("calls_monthly", "calls")] == "integer"
    assert types[("referral_funnel", "rate")] == "numeric"
    assert types[("timeliness", "month")] == "date"
    assert types[("repeat_contact", "window_days")] == "integer"


# ------------------------------------------------------------------------------------------------
# The DAG


def test_outcomes_dag_runs(scenario, warehouse_url, airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    before = _dump(warehouse_url)
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors
    dag = bag.get_dag("upstream_outcomes")
    assert [t.task_id for t in dag.tasks] == ["rebuild_outcome_tables",
                                              "check_contact_service_level"]
    assert dag.max_active_runs == 1
    run = dag.test()
    assert str(getattr(run.state, "value", run.state)) == "success"
    assert _dump(warehouse_url) == before
