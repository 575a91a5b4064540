import random, time, json, hashlib, dataclasses
from datetime import date, datetime, timezone, timedelta
from zoneinfo import ZoneInfo
from upstream.generate import write_extract, make_row
from upstream.ingest import load_extract, RefusedFile
import psycopg
tz = ZoneInfo("America/Toronto")

def test_explore(upstream_env, warehouse_url):
    rng = random.Random(1)
    def rows(d):
        return [make_row(rng, "WPS", f"WPS-{d:%m%d}-{i:06d}", datetime(d.year,d.month,d.day,8,0,tzinfo=tz)+timedelta(minutes=i), narrative="n", clearance_status="cleared_by_charge") for i in range(3)]
    cases = {}
    d = date(2024,7,1); r = rows(d); r[0]["record_version"] = "9999999999"; cases[d] = (r, {})
    d = date(2024,7,2); r = rows(d); r[0]["charges_laid"] = "9999999999"; cases[d] = (r, {})
    d = date(2024,7,3); r = rows(d); r[0]["call_received_at"] = "2090-01-01T00:00:00Z"; r[0]["cleared_at"]=None; cases[d] = (r, {"generated_at": "2099-01-01T00:00:00Z"})
    d = date(2024,7,4); r = rows(d); r[0]["record_version"] = "+1"; cases[d] = (r, {})
    for d, (r, mo) in cases.items():
        write_extract(upstream_env.landing_dir, "WPS", d, r, manifest_overrides=mo)
        try:
            res = load_extract("WPS", d, dataclasses.replace(upstream_env, gx_dir=upstream_env.gx_dir / d.isoformat()))
            print(d, "LOADED", res.outcome, res.rows_in_file, res.rows_quarantined, res.quarantine_by_rule)
        except RefusedFile as e:
            print(d, "REFUSED", e)
        except Exception as e:
            print(d, "OTHER", type(e), e)
    with psycopg.connect(warehouse_url) as c:
        print(c.execute("select file_id, status, reason from ops.extract_file").fetchall())
        print(c.execute("select count(*) from pg_tables where schemaname='staging'").fetchall())
        print(c.execute("select incident_id, record_version, call_received_at from core.call order by 1").fetchall())
