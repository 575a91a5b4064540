#!/usr/bin/env bash
# airflow-init (docker-compose.yml): runs once before every other Airflow service starts.
# Idempotent: safe on every `docker compose up` (migrations skip what is applied).
set -euo pipefail
echo "Airflow $(airflow version): migrating the metadata database"
airflow db migrate
echo "Upstream: migrating the warehouse"
upstream db migrate
# Users from secrets: SimpleAuthManager's passwords file, written from the compose secret.
passwords="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?}"
mkdir -p "$(dirname "$passwords")"
umask 077
python - "$passwords" <<'PY'
import json, sys
from pathlib import Path
password = Path("/run/secrets/airflow_admin_password").read_text().strip()
if not password:
    sys.exit("secret airflow_admin_password is empty: set AIRFLOW_ADMIN_PASSWORD in .env")
Path(sys.argv[1]).write_text(json.dumps({"datateam": password}))
PY
echo "Airflow login datateam written from secret airflow_admin_password"
