"""Program monitoring inside Airflow: a FastAPI app that draws the published views.

Modules: ``views`` (the published-view contract and the filters), ``data`` (read-only
database access), ``svg`` and ``charts`` (inline SVG), ``tables`` and ``sections`` (the
page's parts), ``render`` (the HTML page from ``templates/``), ``csvout`` (CSV downloads),
``app`` (the FastAPI app, protected by Airflow's auth). The Airflow plugin that mounts it is
``plugins/upstream_monitoring.py``. Only ``app`` imports Airflow.
"""
