"""Tooling around the pipeline, not part of the nightly run: the `upstream` command line, the
local stack behind `make run` (embedded PostgreSQL, Airflow, the reference outreach service),
the Celery topology for tests and benchmarks, and the demo's synthetic extracts."""
