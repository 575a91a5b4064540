"""Database access in one import (``from upstream.warehouse import db``): the names of
connect.py (URLs, roles, connections), migrate.py, embedded.py and sql.py (``db.read_sql``,
the one cached statement loader)."""

from __future__ import annotations

from upstream.warehouse.connect import (
    AIRFLOW_DB,
    ANALYST,
    LOADER,
    OUTCOMES,
    ROUTER,
    WAREHOUSE_DB,
    collation_advice,
    connect,
    create_database,
    ensure_database,
    pg_tool,
    role_options,
    roles_enabled,
    server_url,
    sqlalchemy_url,
    warehouse_url,
    with_database,
)
from upstream.warehouse.embedded import embedded_server
from upstream.warehouse.migrate import migrate, migration_files
from upstream.warehouse.sql import read_sql

__all__ = ["AIRFLOW_DB", "ANALYST", "LOADER", "OUTCOMES", "ROUTER", "WAREHOUSE_DB",
           "collation_advice", "connect", "create_database", "embedded_server",
           "ensure_database", "migrate", "migration_files", "pg_tool", "read_sql", "role_options",
           "roles_enabled", "server_url", "sqlalchemy_url", "warehouse_url", "with_database"]
