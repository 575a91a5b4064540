#!/usr/bin/env bash
# First start of the compose PostgreSQL: one database and owner each for Airflow and Upstream.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username postgres \
  -v airflow_pw="$AIRFLOW_DB_PASSWORD" -v upstream_pw="$UPSTREAM_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_pw';
CREATE DATABASE airflow OWNER airflow;
CREATE ROLE upstream LOGIN PASSWORD :'upstream_pw';
CREATE DATABASE upstream OWNER upstream;
SQL
