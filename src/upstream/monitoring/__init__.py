"""Program monitoring inside Airflow: a FastAPI app that draws the published views.

Modules: ``views`` (the published-view contract and the filters), ``data`` (read-only
database access), ``charts`` (inline SVG), ``render`` (the HTML page), ``csvout`` (CSV
downloads), ``app`` (the FastAPI app, protected by Airflow's auth). The Airflow plugin that
mounts it is ``plugins/upstream_monitoring.py``. Only ``app`` imports Airflow.
"""
