"""What the history-import tests share: the warehouse as comparable data, and one file loaded
the way the nightly DAG's tasks load it."""

from __future__ import annotations

from datetime import date

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from upstream import ingest
from upstream.airflow import tasks as orchestration
from upstream.settings import Settings

BOOKKEEPING = {"file_id", "superseded_by", "loaded_at", "first_seen_at", "finished_at",
               "recorded_at", "stored_at", "data_docs_path"}


def dump(url: str) -> dict[str, list[tuple]]:
    """Every warehouse table outside staging, bookkeeping aside; file ids replaced by the
    file's (agency, day, sha256), which do not depend on the order files were registered."""
    out = {}
    with psycopg.connect(url, row_factory=dict_row) as conn:
        key = {r["file_id"]: (r["agency_code"], r["extract_date"], r["sha256"]) for r in
               conn.execute("SELECT file_id, agency_code, extract_date, sha256 FROM ops.extract_file")}
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_type = 'BASE TABLE' AND table_schema NOT IN"
            " ('pg_catalog', 'information_schema', 'staging', 'public')"
            " AND table_schema NOT LIKE 'pg_%' ORDER BY 1, 2").fetchall()
        for t in tables:
            rows = []
            for r in conn.execute(sql.SQL("SELECT * FROM {}").format(
                    sql.Identifier(t["table_schema"], t["table_name"]))):
                rows.append(tuple(sorted(
                    (k, repr(key.get(v) if k in ("file_id", "superseded_by") else v))
                    for k, v in r.items() if k not in BOOKKEEPING - {"file_id", "superseded_by"})))
            out[f"{t['table_schema']}.{t['table_name']}"] = sorted(rows)
    return out


def truncate(url: str) -> None:
    from support.env import reset_warehouse

    reset_warehouse(url)


def nightly(settings: Settings, agency: str, d: date) -> None:
    """What the nightly DAG's verify_manifest and validate_and_load tasks do for one file."""
    try:
        ingest.verify_manifest(settings.landing.dir, agency, d)
    except ingest.ManifestMissing:
        return
    except ingest.RefusedFile as exc:
        orchestration._record_refusal(agency, d, exc)
        return
    try:
        ingest.load_extract(agency, d, settings)
    except ingest.RefusedFile:
        pass


