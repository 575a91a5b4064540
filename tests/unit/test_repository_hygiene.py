"""Repository-wide checks: no secrets committed, no SQL built from data by string formatting."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:  # not a git checkout: fall back to the source folders
        return [p for p in ROOT.rglob("*") if p.is_file() and ".venv" not in p.parts]
    return [ROOT / line for line in out.stdout.splitlines() if line]


def test_local_secrets_are_not_in_the_repository():
    """The generated secrets (pseudonym key, outreach token, Airflow passwords, JWT secret)
    live under UPSTREAM_HOME, which git ignores; their values must not appear in any file."""
    ignored = (ROOT / ".gitignore").read_text()
    assert ".upstream/" in ignored
    secrets_dir = ROOT / ".upstream" / "secrets"
    values = []
    if secrets_dir.is_dir():
        for f in secrets_dir.iterdir():
            text = f.read_text().strip()
            values += re.findall(r"[A-Za-z0-9_\-]{16,}", text)
    values = [v for v in values if v not in ("datateam",)]
    for path in _tracked_files():
        if path.suffix in (".png", ".jpg") or not path.is_file():
            continue
        content = path.read_text(errors="ignore")
        for value in values:
            assert value not in content, f"a local secret appears in {path.relative_to(ROOT)}"
        assert not re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", content), path


# upper-case statement shapes, so English ("from", "where") in messages does not count
_SQL_WORDS = r"(SELECT\b[^\"'\n]*\bFROM|INSERT INTO|UPDATE\s+[\w.\"]+\s+SET|DELETE FROM|CREATE \w+|DROP \w+)\b"
# f-strings, %-formatting or .format() that put something into a SQL statement text
_FORMATTED_SQL = [
    re.compile(r"""f["'][^"'\n]*\b""" + _SQL_WORDS + r"""[^"'\n]*\{"""),
    re.compile(r"""["'][^"'\n]*\b""" + _SQL_WORDS + r"""[^"'\n]*%s?["']\s*%\s*[\(\w]"""),
    re.compile(r"""["'][^"'\n]*\b""" + _SQL_WORDS + r"""[^"'\n]*\{\}[^"'\n]*["']\.format\("""),
]
# Reviewed exceptions: the GX query template, whose only inserted part is a rule predicate
# (a constant of upstream.rules), and GX's own {batch} placeholder.
_ALLOWED = ("noqa: S608",)


def test_no_sql_is_built_by_string_formatting():
    offenders = []
    for path in _tracked_files():
        if path.suffix != ".py" or "tests" in path.relative_to(ROOT).parts[:1]:
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if any(a in line for a in _ALLOWED):
                continue
            if any(p.search(line) for p in _FORMATTED_SQL):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == [], "SQL built by string formatting:\n" + "\n".join(offenders)
