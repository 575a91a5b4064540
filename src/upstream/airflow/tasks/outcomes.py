"""The outcomes DAG's task bodies (upstream_outcomes): rebuild the tables, check service levels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from upstream.airflow.body import task_body


@task_body
def rebuild_outcome_tables(context: Mapping) -> dict[str, Any]:
    from upstream import outcomes

    return outcomes.rebuild_outcomes()


@task_body
def check_contact_service_level(context: Mapping) -> dict[str, Any]:
    from upstream.outcomes import service_level

    return service_level.check_uncontacted_48h()
