"""Airflow glue, in one place: task bodies (tasks.py), the arguments every DAG shares
(dag_args.py), assets, which extract day a run is about (dates.py) and running a DAG in-process
(run.py). The DAG files under dags/ are wiring; at parse time they import only dag_args, assets
and the settings, never pandas, GX or a database driver."""
