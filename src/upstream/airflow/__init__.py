"""Airflow glue, in one place: task bodies of the four DAGs (tasks/, one module per DAG), the
one wrapper every body goes through (body.py: secrets masked, safe errors become safe task
failures), the arguments every DAG shares (dag_args.py), the tag vocabulary (tags.py), assets,
which extract day a run is about (dates.py) and running a DAG in-process (run.py). The DAG
files under dags/ are wiring; at parse time they import only dag_args, tags, assets and the
settings, never pandas, GX or a database driver."""
