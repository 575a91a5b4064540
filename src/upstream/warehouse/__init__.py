"""The PostgreSQL warehouse: connections as least-privilege roles (connect.py), numbered
migrations (migrate.py), the embedded server (embedded.py), the one statement loader for
include/sql/ (sql.py), staging table names (staging.py) and the advisory lock registry
(locks.py). db.py re-exports the common names."""
