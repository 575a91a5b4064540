"""The settings object against the README's configuration tables, and its sections.

Every UPSTREAM_* variable `upstream.settings` reads is in a README table with its default, and
every UPSTREAM_* variable a README table names is read by the settings (no database, no Airflow).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from upstream import settings as settings_module
from upstream.settings import (
    READS,
    REPO_ROOT,
    load_settings,
    node_name,
    outreach_token,
    pseudonym_key,
)

README = REPO_ROOT / "README.md"
VAR = re.compile(r"(?<![A-Z0-9_])UPSTREAM_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_]*\*)")  # not `UPSTREAM_MONITORING_*`
LAZY = ("retention", "outcomes", "monitoring")


def _clean_env(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    for name in list(os.environ):
        if name.startswith("UPSTREAM_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("UPSTREAM_HOME", str(home))


def _read_everything() -> dict[str, str]:
    """Load the settings and read every value, so READS names every variable read."""
    READS.clear()
    s = load_settings()
    for section in LAZY:
        obj = getattr(s, section)
        for name, value in vars(type(obj)).items():
            if isinstance(value, settings_module.cached_property):
                getattr(obj, name)
    outreach_token()
    pseudonym_key()
    node_name()
    return dict(READS)


def _readme_rows() -> list[tuple[set[str], str]]:
    """(variables named in the first cell, default cell) of every configuration table row."""
    rows = []
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 3 and "UPSTREAM_" in cells[0]:
            names = set(VAR.findall(cells[0]))
            if names:
                rows.append((names, re.sub(r"[`*]", "", cells[1]).strip()))
    return rows


def test_every_variable_read_is_in_the_readme_with_its_default(monkeypatch, tmp_path):
    _clean_env(monkeypatch, tmp_path)
    reads = _read_everything()
    rows = _readme_rows()
    assert len(reads) >= 30  # the walk above really read the settings
    missing, wrong = [], []
    for name, default in sorted(reads.items()):
        cells = [cell for names, cell in rows if name in names]
        if not cells:
            missing.append(name)
        elif not any(c == default or c.startswith(default + " ") for c in cells):
            wrong.append(f"{name}: settings {default!r}, README {cells}")
    assert missing == [], f"read by upstream.settings but not in README tables: {missing}"
    assert wrong == [], "README default differs from the settings: " + "; ".join(wrong)


def test_every_variable_in_the_readme_tables_is_read(monkeypatch, tmp_path):
    _clean_env(monkeypatch, tmp_path)
    reads = _read_everything()
    documented = set().union(*(names for names, _ in _readme_rows()))
    assert {"UPSTREAM_HOME", "UPSTREAM_RELEASE_MIN_CELL"} <= documented
    assert sorted(documented - set(reads)) == []


def test_no_other_module_reads_upstream_variables():
    """upstream.settings is the only reader of UPSTREAM_* (and of AIRFLOW_CONN_*) variables."""
    reader = re.compile(r"(os\.environ(\.get)?\s*[\[(]|os\.getenv\()\s*[\"'](UPSTREAM_|AIRFLOW_CONN_)")
    offenders = [str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "src" / "upstream").rglob("*.py")
                 if p.name != "settings.py" and reader.search(p.read_text())]
    assert offenders == []


def test_sections_and_lazy_values(monkeypatch, tmp_path):
    _clean_env(monkeypatch, tmp_path)
    s = load_settings()
    assert s.warehouse.embedded and s.warehouse.source == "embedded"
    assert s.landing.dir == (tmp_path / "landing").resolve()
    assert (s.validate.quarantine_max_share, s.outreach.batch_size, s.routing.clock) == (
        0.05, 500, "wall")
    # a bad retention value fails only the value that uses it, not load_settings()
    monkeypatch.setenv("UPSTREAM_CONTACT_RETENTION_DAYS", "0")
    monkeypatch.setenv("UPSTREAM_QUARANTINE_RETENTION_DAYS", "a year")
    bad = load_settings()
    with pytest.raises(ValueError, match="UPSTREAM_CONTACT_RETENTION_DAYS must be at least 1 day"):
        _ = bad.retention.contact_days
    with pytest.raises(ValueError, match="UPSTREAM_QUARANTINE_RETENTION_DAYS must be a whole"):
        _ = bad.retention.quarantine_days
    assert bad.retention.task_log_days == 30
    monkeypatch.setenv("UPSTREAM_MONITORING_DB_ROLE", "")
    assert load_settings().monitoring.db_role is None  # set but empty: no role switch


def test_with_changes_copies_sections(monkeypatch, tmp_path):
    _clean_env(monkeypatch, tmp_path)
    s = load_settings()
    c = s.with_changes(landing__dir=tmp_path / "x", warehouse__url="dbname=x",
                       retention__contact_days=7, agencies=("ABC",))
    assert (c.landing.dir, c.warehouse.url, c.retention.contact_days, c.agencies) == (
        tmp_path / "x", "dbname=x", 7, ("ABC",))
    assert (s.landing.dir, s.warehouse.url, s.retention.contact_days, s.agencies) == (
        (tmp_path / "landing").resolve(), None, 90, ("WPS",))
    assert c.landing.manifest_poke_seconds == s.landing.manifest_poke_seconds
    with pytest.raises(TypeError):
        s.with_changes(landing__no_such_field=1)


def test_outside_a_task_airflow_connection_is_not_used(monkeypatch, tmp_path):
    """CLI commands and DAG parsing use UPSTREAM_DATABASE_URL (or the embedded server); the
    `upstream_warehouse` connection is resolved by Airflow inside tasks only (integration
    test: tests/integration/test_settings_airflow.py)."""
    _clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv("AIRFLOW_CONN_UPSTREAM_WAREHOUSE", "postgres://u:p@elsewhere:5432/w")
    assert load_settings().warehouse.url is None
    monkeypatch.setenv("UPSTREAM_DATABASE_URL", "postgresql://u@here/w")
    w = load_settings().warehouse
    assert (w.url, w.source) == ("postgresql://u@here/w", "UPSTREAM_DATABASE_URL")
