"""The PostgreSQL warehouse: connections as least-privilege roles, numbered migrations, the
embedded server, the statement files under include/sql/ (db.py) and the per-agency locks."""
