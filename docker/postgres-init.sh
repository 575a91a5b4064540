#!/usr/bin/env bash
# First start of the compose PostgreSQL (empty data volume only): one database and one login
# each for Airflow's metadata and for the warehouse. Neither login can read the other database.
#   upstream_airflow  owns database airflow (the same least-privilege role `make run` uses)
#   upstream          owns database upstream; CREATEROLE so its migrations (003, 004) can
#                     create the task roles (upstream_loader, ...) it then SET ROLEs to
set -euo pipefail
: "${AIRFLOW_DB_PASSWORD:?}" "${UPSTREAM_DB_PASSWORD:?}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v airflow_pw="$AIRFLOW_DB_PASSWORD" -v upstream_pw="$UPSTREAM_DB_PASSWORD" <<'SQL'
CREATE ROLE upstream_airflow LOGIN NOINHERIT PASSWORD :'airflow_pw';
CREATE DATABASE airflow OWNER upstream_airflow;
CREATE ROLE upstream LOGIN CREATEROLE PASSWORD :'upstream_pw';
-- byte-order text (include/sql/warehouse/create_warehouse_database.sql says why)
CREATE DATABASE upstream OWNER upstream TEMPLATE template0 LOCALE_PROVIDER libc LC_COLLATE 'C';
REVOKE ALL ON DATABASE airflow FROM PUBLIC;
SQL
