"""The leak scan: canary values in every personal field, the whole pipeline through Airflow
(load, route, sync, outcomes, retention), then a search for every canary everywhere.

Consented rows' contact details may exist only in contact.victim_contact and at the outreach
service; non-consented rows' personal data, narratives and quarantined rows' values nowhere.
"""

from __future__ import annotations

import os
import random
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import sql

from upstream import ingest
from upstream.airflow.run import load_dag, run_nightly_for
from upstream.dev import generate

pytestmark = pytest.mark.integration

TZ = ZoneInfo("America/Toronto")
DAY = date(2024, 6, 3)


def _canaries(tag: str, n: int) -> dict[str, str]:
    return {
        "victim_given_name": f"Qzx{tag}Given{n}",
        "victim_family_name": f"Qzx{tag}Family{n}",
        "victim_phone": f"+1519{ {'C': 7, 'N': 8, 'B': 9}[tag] }{n:06d}".replace(" ", ""),
        "victim_email": f"qzx{tag.lower()}{n}@canary.example.org",
        "victim_postal_code": f"N9{tag if tag != 'C' else 'A'} {n % 10}Z{n % 10}",
        "victim_safe_contact_notes": f"Qzx{tag}Notes{n}, no voicemail",
        "narrative": f"Qzx{tag}Narrative{n} said things",
    }


def _row(n: int, state: str, canaries: dict[str, str]) -> dict:
    at = datetime(2024, 6, 3, 8, 0, tzinfo=TZ) + timedelta(minutes=9 * n)
    base = {"clearance_status": "cleared_otherwise_complainant_request", "charges_laid": 0,
            "consent_status": "given"}
    if state == "charged":
        base = {"clearance_status": "cleared_by_charge", "charges_laid": 1,
                "consent_status": "not_applicable"}
    elif state != "given":
        base["consent_status"] = state
    row = generate.make_row(random.Random(n), "WPS", f"WPS-2024-{n:06d}", at,
                            consent_status="given", clearance_status="not_cleared",
                            charges_laid=0)
    row.update(base)
    row.update(canaries)
    return row


def _search_database(url: str, pattern: str, skip_schemas: tuple[str, ...]) -> list[str]:
    hits = []
    with psycopg.connect(url) as conn:
        relations = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND n.nspname <> ALL(%s)", (list(skip_schemas),)).fetchall()
        for schema, name in relations:
            found = conn.execute(sql.SQL("SELECT count(*) FROM {} AS t WHERE t::text ~ %s").format(
                sql.Identifier(schema, name)), (pattern,)).fetchone()[0]
            if found:
                hits.append(f"{schema}.{name}: {found} row(s)")
    return hits


def _search_files(folder: Path, pattern: str) -> list[str]:
    rx = re.compile(pattern)
    hits = []
    if folder.is_dir():
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink():
                if rx.search(path.read_bytes().decode("utf-8", errors="ignore")):
                    hits.append(str(path))
    return hits


def test_no_canary_escapes(upstream_env, airflow_db, outreach, warehouse_url, capfd):
    from upstream.settings import load_settings

    settings = load_settings()
    consented = {n: _canaries("C", n) for n in (1, 2, 3)}
    others = {n: _canaries("N", n) for n in (4, 5, 6, 7)}
    rows = [_row(n, "given", c) for n, c in consented.items()]
    rows += [_row(4, "declined", others[4]), _row(5, "not_asked", others[5]),
             _row(6, "charged", others[6]), _row(7, "unable_to_ask", others[7])]
    # one quarantined row (its personal values must go nowhere either) among enough good rows
    bad = _row(8, "given", _canaries("B", 8))
    bad["call_source"] = "carrier_pigeon"
    filler = [_row(n, "charged", {}) for n in range(20, 40)]
    remarks = "QzxNUnknownColumnRemark"  # an unknown extra column is ignored, never stored
    all_rows = [{**r, "officer_remarks": remarks} for r in (*rows, bad, *filler)]
    generate.write_extract(settings.landing.dir, "WPS", DAY, all_rows,
                           columns=[*generate.COLUMNS, "officer_remarks"])
    assert run_nightly_for(DAY) == "success"
    for dag_id in ("upstream_routing", "upstream_outcomes", "upstream_retention"):
        dag_run = load_dag(dag_id).test()
        assert str(getattr(dag_run.state, "value", dag_run.state)) == "success", dag_id
    outreach.simulate(datetime.now(TZ) + timedelta(days=20))
    assert load_dag("upstream_routing").test() is not None  # sync the simulated events

    consented_values = [v for c in consented.values() for k, v in c.items() if k != "narrative"]
    forbidden = [v for c in others.values() for v in c.values()]
    forbidden += [c["narrative"] for c in consented.values()]
    forbidden += list(_canaries("B", 8).values()) + [remarks]
    everything = "|".join(re.escape(v) for v in consented_values + forbidden)
    nothing_allowed = "|".join(re.escape(v) for v in forbidden)

    # 1. the warehouse outside the contact-details schema: no canary at all
    assert _search_database(warehouse_url, everything, skip_schemas=("contact",)) == []
    # the scanner finds what is there (positive control)
    assert any(h.startswith("contact.victim_contact")
               for h in _search_database(warehouse_url, everything, skip_schemas=()))
    # 2. the contact schema: consented rows only
    assert _search_database(warehouse_url, nothing_allowed, skip_schemas=()) == []
    with psycopg.connect(warehouse_url) as conn:
        names = {r[0] for r in conn.execute("SELECT given_name FROM contact.victim_contact")}
    assert names == {c["victim_given_name"] for c in consented.values()}
    # 3. Airflow's metadata database: XComs, task instances, run conf, rendered fields, logs
    airflow_url = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace(
        "postgresql+psycopg://", "postgresql://")
    assert _search_database(airflow_url, everything, skip_schemas=()) == []
    # 4. task logs on disk and everything the runs printed
    logs = Path(os.environ.get("AIRFLOW__LOGGING__BASE_LOG_FOLDER")
                or Path(os.environ["AIRFLOW_HOME"]) / "logs")
    assert _search_files(logs, everything) == []
    out, err = capfd.readouterr()
    assert "validate_and_load" in out + err  # the runs' logs were captured
    assert not re.search(everything, out + err)
    # 5. GX Data Docs and validation results
    assert _search_files(settings.validate.gx_dir, everything) == []
    # 6. the outreach service: its log never; its store only the consented contact details
    assert not re.search(everything, outreach.log_text())
    held = outreach.referrals()
    assert not re.search(nothing_allowed, repr(held))
    consented_names = "|".join(c["victim_given_name"] for c in consented.values())
    assert len(set(re.findall(consented_names, repr(held)))) == 3
    assert {r["referral_id"] for r in held}
    # 7. a refused file's error message carries no value from the file
    broken = _row(9, "declined", _canaries("N", 9))
    path = generate.write_extract(settings.landing.dir, "WPS", DAY + timedelta(days=1),
                                  [broken]).csv_path
    path.write_bytes(path.read_bytes()[:-15])
    with pytest.raises(ingest.RefusedFile) as refused:
        ingest.load_extract("WPS", DAY + timedelta(days=1), settings)
    assert "Qzx" not in str(refused.value)
