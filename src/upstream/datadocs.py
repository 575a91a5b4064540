"""Data Docs that work offline and cost the same every night.

GX's own site (UpdateDataDocsAction) rebuilt its index from every validation result ever
stored (measured +0.018 s a night per stored result: 4.7 s after 145 nights) and loads jQuery,
bootstrap-table and vega from CDNs, so on a closed network its index listed nothing. Instead,
each validation writes one self-contained page (inline CSS, no script, no external URL) from
the checkpoint's result, and the index lists the last INDEX_LIMIT pages from a small JSON
list: one page render and one bounded index per validation, whatever the history. Retention
(`purge_data_docs`) deletes pages and GX results older than UPSTREAM_GX_RESULT_RETENTION_DAYS.

Pages carry rule names, columns, descriptions and counts only; the suite excludes unexpected
values, so no value from a file can reach them.
"""

from __future__ import annotations

import html
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

INDEX_LIMIT = 200
PAGE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,200}\.html$")

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;color:#1a202c}
h1{font-size:1.4rem}table{border-collapse:collapse;margin-top:1rem}
th,td{border:1px solid #cbd5e0;padding:.3rem .6rem;text-align:left;font-size:.9rem}
th{background:#edf2f7}.ok{color:#276749}.fail{color:#c53030;font-weight:600}
.meta{color:#4a5568;font-size:.85rem}
"""


def docs_dir(gx_dir: Path, agency: str) -> Path:
    return gx_dir / agency / "docs"


def index_path(gx_dir: Path, agency: str) -> Path:
    return docs_dir(gx_dir, agency) / "index.html"


def _safe_name(run_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", run_name)[:190] + ".html"


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
            f"<body>{body}</body></html>")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_validation(gx_dir: Path, agency: str, run_name: str, label: str,
                     checkpoint_result: Any) -> Path:
    """One page for this validation and the bounded index. Returns the page's path."""
    rows = []
    failed = 0
    for validation_result in checkpoint_result.run_results.values():
        for r in validation_result.results:
            meta = r.expectation_config.meta or {}
            observed = r.result.get("observed_value") if r.result else None
            failed += not r.success
            rows.append((meta.get("rule", "?"), meta.get("column", "?"),
                         r.expectation_config.description or "", bool(r.success),
                         observed if isinstance(observed, int) else 0))
    rows.sort(key=lambda x: (x[3], x[0]))
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = [f"<p class=\"meta\"><a href=\"index.html\">All validations of {html.escape(agency)}</a></p>",
            f"<h1>{html.escape(agency)}: {html.escape(label)}</h1>",
            f"<p class=\"meta\">Suite of {len(rows)} contract rules, validated {now}. "
            f"{'All rules passed.' if not failed else f'{failed} rule(s) failed.'} "
            "Counts and rule names only; no value from the file.</p>",
            "<table><thead><tr><th>Rule</th><th>Column</th><th>Description</th><th>Result</th>"
            "<th>Failing rows</th></tr></thead><tbody>"]
    for rule, column, description, success, n in rows:
        result = "<span class=\"ok\">passed</span>" if success else "<span class=\"fail\">failed</span>"
        body.append(f"<tr><td>{html.escape(rule)}</td><td>{html.escape(column)}</td>"
                    f"<td>{html.escape(description)}</td><td>{result}</td><td>{n}</td></tr>")
    body.append("</tbody></table>")
    folder = docs_dir(gx_dir, agency)
    folder.mkdir(parents=True, exist_ok=True)
    page = folder / _safe_name(run_name)
    _atomic_write(page, _page(f"{agency} {label}", "".join(body)))
    entries = _entries(folder)
    entries = [e for e in entries if e["page"] != page.name]
    entries.insert(0, {"page": page.name, "label": label, "at": now, "failed": failed,
                       "rules": len(rows)})
    _write_index(folder, agency, entries[:INDEX_LIMIT])
    return page


def _entries(folder: Path) -> list[dict]:
    try:
        return json.loads((folder / "index.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return []


def _write_index(folder: Path, agency: str, entries: list[dict]) -> None:
    _atomic_write(folder / "index.json", json.dumps(entries))
    body = [f"<h1>Data Docs: {html.escape(agency)}</h1>",
            f"<p class=\"meta\">The last {len(entries)} validation(s), newest first "
            f"(at most {INDEX_LIMIT} are listed; older ones are removed by retention).</p>",
            "<table><thead><tr><th>Validation</th><th>When</th><th>Result</th></tr></thead><tbody>"]
    for e in entries:
        result = ("<span class=\"ok\">all rules passed</span>" if not e["failed"] else
                  f"<span class=\"fail\">{int(e['failed'])} rule(s) failed</span>")
        body.append(f"<tr><td><a href=\"{html.escape(e['page'])}\">{html.escape(e['label'])}</a></td>"
                    f"<td>{html.escape(e['at'])}</td><td>{result}</td></tr>")
    body.append("</tbody></table>")
    _atomic_write(folder / "index.html", _page(f"Data Docs {agency}", "".join(body)))


def purge(gx_dir: Path, older_than: datetime) -> dict[str, int]:
    """Delete Data Docs pages and GX validation results last written before `older_than`,
    and drop deleted pages from each index. Never follows a symlink."""
    cutoff = older_than.timestamp()
    removed = {"pages": 0, "results": 0}
    if not gx_dir.is_dir():
        return removed
    for project in sorted(p for p in gx_dir.iterdir() if p.is_dir() and not p.is_symlink()):
        folder = project / "docs"
        if folder.is_dir() and not folder.is_symlink():
            gone = set()
            for page in folder.iterdir():
                if (PAGE_RE.match(page.name) and page.name != "index.html" and page.is_file()
                        and not page.is_symlink() and page.stat().st_mtime < cutoff):
                    page.unlink()
                    gone.add(page.name)
            if gone:
                removed["pages"] += len(gone)
                _write_index(folder, project.name,
                             [e for e in _entries(folder) if e["page"] not in gone])
        results = project / "gx" / "uncommitted" / "validations"
        if results.is_dir() and not results.is_symlink():
            for root, dirs, files in os.walk(results, topdown=False, followlinks=False):
                for name in files:
                    f = Path(root) / name
                    if not f.is_symlink() and f.stat().st_mtime < cutoff:
                        f.unlink()
                        removed["results"] += 1
                for name in dirs:
                    d = Path(root) / name
                    if not d.is_symlink() and not any(d.iterdir()):
                        d.rmdir()
    return removed
