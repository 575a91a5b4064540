"""Tooling around the pipeline, not part of the nightly run: the `upstream` command line
(``cli``), the local stack behind `make run` (``server``, ``env``: embedded PostgreSQL, Airflow,
the reference outreach service), the demo's calendar (``demo``), the Celery topology for tests
and benchmarks (``stack``), ``status``, and the synthetic extracts (``generate``, a package
split by concern)."""
