-- Any other database on the embedded server (Airflow's metadata): the server's defaults.
CREATE DATABASE {database}
