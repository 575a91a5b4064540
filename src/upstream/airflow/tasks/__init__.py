"""Task bodies of the four DAGs, one module per DAG (nightly, routing, outcomes, retention,
history), every one behind `upstream.airflow.body.task_body`.

The DAG files import these lazily inside their tasks, so pandas, GX and psycopg never load
while the scheduler parses DAGs. Importing this package imports the per-DAG modules, which
import their domain packages only inside the bodies (nightly aside: it needs `ingest`).
"""

from __future__ import annotations

from upstream.airflow.body import mask_runtime_secrets, task_body, task_failure
from upstream.airflow.tasks.nightly import (
    NOISY_LOGGERS,
    _record_refusal,
    manifest_arrived,
    quiet_library_logs,
    validate_and_load,
    verify_manifest,
)
from upstream.airflow.tasks.routing import (
    deliver_referrals,
    plan_referrals,
    propagate_withdrawals,
    sync_referral_events,
)

__all__ = [
    "NOISY_LOGGERS", "_record_refusal", "deliver_referrals", "manifest_arrived",
    "mask_runtime_secrets", "plan_referrals", "propagate_withdrawals", "quiet_library_logs",
    "sync_referral_events", "task_body", "task_failure", "validate_and_load", "verify_manifest",
]
