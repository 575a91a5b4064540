"""Airflow Assets that Upstream's DAGs publish and schedule on."""

from airflow.sdk import Asset

# Updated whenever a night's load changed core.call; routing and outcomes schedule on it.
LOADED_CALLS = Asset(name="upstream_loaded_calls", uri="upstream://warehouse/core/call",
                     group="upstream")
