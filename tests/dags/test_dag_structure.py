"""Each DAG's exact tasks and edges (Airflow best practices, "unit test a Dag structure"), and
tags from the one vocabulary (upstream.airflow.tags). Parses dags/ only: no database, no run."""

from __future__ import annotations

import pytest

# task id -> the ids directly downstream of it (the test settings have one agency: WPS)
EXPECTED = {
    "upstream_nightly": {
        "WPS.wait_for_manifest": {"WPS.verify_manifest"},
        "WPS.verify_manifest": {"WPS.validate_and_load"},
        "WPS.validate_and_load": {"WPS.publish_loaded_calls"},
        "WPS.publish_loaded_calls": set(),
    },
    "upstream_routing": {
        "plan_referrals": {"deliver_referrals"},
        "deliver_referrals": {"propagate_withdrawals"},
        "propagate_withdrawals": {"sync_referral_events"},
        "sync_referral_events": set(),
    },
    "upstream_outcomes": {
        "rebuild_outcome_tables": {"check_contact_service_level"},
        "check_contact_service_level": set(),
    },
    # independent: one failing purge must not hold back the others
    "upstream_retention": {
        "purge_contacts": set(),
        "purge_quarantine": set(),
        "delete_extract_files": set(),
        "purge_task_logs": set(),
        "purge_data_docs": set(),
    },
    "upstream_history_import": {
        "import_history": set(),
    },
}


def test_every_dag_in_dags_is_described_here(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == set(EXPECTED)


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_tasks_and_edges(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    edges = {task.task_id: set(task.downstream_task_ids) for task in dag.tasks}
    assert edges == EXPECTED[dag_id]


def test_tags_come_from_the_vocabulary(dagbag):
    from upstream.airflow.tags import Tag

    vocabulary = {tag.value for tag in Tag}
    for dag_id in dagbag.dag_ids:
        tags = set(dagbag.dags[dag_id].tags)
        assert Tag.UPSTREAM.value in tags, dag_id
        assert tags <= vocabulary, f"{dag_id}: {sorted(tags - vocabulary)} not in Tag"


def test_a_tag_outside_the_vocabulary_is_refused():
    from upstream.airflow.tags import Tag, dag_tags

    assert dag_tags(Tag.ROUTING, Tag.UPSTREAM, Tag.ROUTING) == ["upstream", "routing"]
    with pytest.raises(ValueError, match="not in upstream.airflow.tags.Tag"):
        dag_tags("routnig")  # type: ignore[arg-type]
