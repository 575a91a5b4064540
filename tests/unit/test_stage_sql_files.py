"""Every statement file that upstream.airflow, alerts, retention and outcomes read exists
(read_sql("...") literals, and the `_SQL + "..."` prefixes of outcomes/report)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("airflow", "alerts", "retention", "outcomes")
_LITERAL = re.compile(r"""read_sql\(\s*"([^"]+\.sql)"\s*\)""")
_PREFIX = re.compile(r"""^_SQL = "([^"]+/)"$""", re.MULTILINE)
_PREFIXED = re.compile(r"""read_sql\(\s*_SQL \+ "([^"]+\.sql)"\s*\)""")


def test_every_referenced_statement_file_exists():
    referenced = set()
    for package in PACKAGES:
        for module in (ROOT / "src" / "upstream" / package).rglob("*.py"):
            text = module.read_text()
            referenced |= set(_LITERAL.findall(text))
            prefix = _PREFIX.search(text)
            prefixed = _PREFIXED.findall(text)
            assert prefix or not prefixed, module
            referenced |= {prefix.group(1) + name for name in prefixed} if prefix else set()
    assert len(referenced) > 20
    missing = sorted(r for r in referenced if not (ROOT / "include" / "sql" / r).is_file())
    assert missing == []
