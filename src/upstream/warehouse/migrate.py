"""Numbered migrations (include/sql/migrations/NNN_name.sql), applied once each, checksummed."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

from upstream.settings import SQL_DIR
from upstream.warehouse.connect import collation_advice, connect
from upstream.warehouse.locks import MIGRATION_LOCK
from upstream.warehouse.sql import read_sql

log = logging.getLogger(__name__)


_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


def migration_files() -> list[Path]:
    files = sorted(p for p in (SQL_DIR / "migrations").glob("*.sql"))
    for f in files:
        if not _MIGRATION_NAME.match(f.name):
            raise ValueError(f"migration {f.name} does not follow NNN_name.sql")
    return files


def migrate(url: str | None = None) -> list[str]:
    """Apply numbered migrations not yet applied, each in its own transaction. Returns names."""
    applied_now: list[str] = []
    with connect(url) as conn:
        advice = collation_advice(conn)
        if advice:
            log.warning("%s", advice)
        conn.execute(read_sql("warehouse/create_migration_table.sql"))
        conn.commit()
        # One migrator at a time (parallel test workers, two `make run`s).
        conn.execute(read_sql("warehouse/lock.sql"), (MIGRATION_LOCK,))
        try:
            done = {
                r["version"]: r["checksum"]
                for r in conn.execute(read_sql("warehouse/applied_migrations.sql"))
            }
            for path in migration_files():
                text = path.read_text(encoding="utf-8")
                checksum = hashlib.sha256(text.encode()).hexdigest()
                if path.name in done:
                    if done[path.name] != checksum:
                        raise RuntimeError(
                            f"migration {path.name} changed after it was applied; add a new one"
                        )
                    continue
                with conn.transaction():
                    conn.execute(text)
                    conn.execute(read_sql("warehouse/record_migration.sql"), (path.name, checksum))
                applied_now.append(path.name)
                log.info("applied migration %s", path.name)
        finally:
            conn.execute(read_sql("warehouse/unlock.sql"), (MIGRATION_LOCK,))
            conn.commit()
    return applied_now
