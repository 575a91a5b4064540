"""The one vocabulary of DAG tags (after mozilla/telemetry-airflow `utils/tags.py`).

A DAG names its tags as members of `Tag` through `dag_tags(...)`, so a typo fails at parse
time instead of adding a new filter to the UI; tests/dags/test_dag_structure.py checks that
every DAG's tags are in this vocabulary. Standard library only: DAG files import it.
"""

from __future__ import annotations

from enum import StrEnum


class Tag(StrEnum):
    """Allowed tags: what the DAG is about (stage) and what it touches."""

    UPSTREAM = "upstream"  # every DAG of this project
    INGEST = "ingest"
    NIGHTLY = "nightly"
    HISTORY = "history"
    ROUTING = "routing"
    OUTREACH = "outreach"  # talks to the outreach organisation's API
    OUTCOMES = "outcomes"
    MONITORING = "monitoring"
    RETENTION = "retention"
    PRIVACY = "privacy"  # deletes or guards personal data


def dag_tags(*tags: Tag) -> list[str]:
    """The DAG's tags: always `upstream` first, then the given ones (members of Tag only)."""
    for tag in tags:
        if not isinstance(tag, Tag):
            raise ValueError(f"DAG tag {tag!r} is not in upstream.airflow.tags.Tag")
    ordered = [Tag.UPSTREAM, *(t for t in tags if t is not Tag.UPSTREAM)]
    return [str(t.value) for t in dict.fromkeys(ordered)]
