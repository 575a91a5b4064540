import random, time, json
from datetime import date, datetime, timezone, timedelta
from zoneinfo import ZoneInfo
from upstream.generate import write_extract, make_row
from upstream.ingest import load_extract
import psycopg

def test_smoke(upstream_env, warehouse_url):
    rng = random.Random(1)
    tz = ZoneInfo("America/Toronto")
    rows = [make_row(rng, "WPS", f"WPS-2024-{i:06d}", datetime(2024,6,1,8,0,tzinfo=tz)+timedelta(minutes=i)) for i in range(40)]
    import great_expectations
    for d in range(1,6):
        write_extract(upstream_env.landing_dir, "WPS", date(2024,6,d), rows[:40-d])
        t=time.time()
        r = load_extract("WPS", date(2024,6,d), upstream_env)
        print(r.outcome, time.time()-t)
        for p in (upstream_env.gx_dir / "WPS").rglob("*.json"):
            if "expectations" in str(p):
                print(p, len(json.loads(p.read_text())["expectations"]))
