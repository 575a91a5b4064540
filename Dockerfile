# The one image of every Airflow service and the reference outreach service in
# docker-compose.yml (and the image a Helm-chart deployment would use: docs/operations.md).
# The Airflow version here must match apache-airflow in requirements.txt.
FROM apache/airflow:3.3.2-python3.11

USER root
# pango and a font for WeasyPrint (the board report's PDF); backups use the postgres
# container's own pg_dump, which matches its server (runbook)
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/outreach /opt/airflow/upstream \
 && chown 50000:0 /var/lib/outreach /opt/airflow/upstream \
 && chmod 2775 /var/lib/outreach /opt/airflow/upstream
# (named volumes start as a copy of these directories: owned by the airflow user, group 0,
# so any AIRFLOW_UID in group 0 can write, as in Airflow's own image)
USER airflow

COPY --chown=airflow:root requirements.txt requirements-nodeps.txt pyproject.toml /opt/upstream/
# The exact lock of this repository (pip check fails the build on a conflict); lifelines
# declares pandas<3 but runs on pandas 3, so it comes without its declared dependencies.
RUN pip install --no-cache-dir -r /opt/upstream/requirements.txt && pip check \
 && pip install --no-cache-dir --no-deps -r /opt/upstream/requirements-nodeps.txt
COPY --chown=airflow:root src /opt/upstream/src
COPY --chown=airflow:root include /opt/upstream/include
COPY --chown=airflow:root docker/airflow-init.sh /opt/upstream/docker/airflow-init.sh
RUN pip install --no-cache-dir --no-deps -e /opt/upstream
