"""A streamed, constant-memory extract of any size, for the benchmarks."""

from __future__ import annotations

import csv
import hashlib
import io
import random
from datetime import date, timedelta
from pathlib import Path

from upstream.contract import INCIDENT_ID_RE, manifest_name_for
from upstream.dev.generate.clock import day_bounds, default_generated_at
from upstream.dev.generate.files import COLUMNS, atomic_write, fmt, manifest_doc
from upstream.dev.generate.rows import build_row


def write_large_extract(
    path: Path,
    n_rows: int,
    seed: int = 1,
    agency_code: str = "WPS",
    extract_date: date = date(2024, 6, 1),
) -> Path:
    """Stream n_rows valid rows to `path` in constant memory and write the manifest beside it.

    Name `path` by the contract (<AGENCY>_ipv_calls_<date>.csv) if a pipeline is to read it.
    Rows cycle through a pool of 1024 pre-rendered valid rows; only incident_id changes per row
    (so victims, addresses and timestamps repeat; every row is still valid on its own).
    """
    if n_rows < 0:
        raise ValueError("n_rows must not be negative")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path = path.with_name(manifest_name_for(path.name))
    manifest_path.unlink(missing_ok=True)

    rng = random.Random(f"large:{seed}:{agency_code}:{extract_date.isoformat()}")
    start, end = day_bounds(extract_date)
    length = int((end - start).total_seconds())
    assert COLUMNS[:2] == ("agency_code", "incident_id")
    # The pool rows are rendered by csv.writer once (quoting included); per row only the
    # incident_id is formatted, and it never needs quoting (A-Z 0-9 - only).
    pool = []
    for _ in range(1024):
        changed = start + timedelta(seconds=rng.randrange(length))
        call = changed - timedelta(seconds=rng.randint(900, 6 * 3600))
        row = build_row(rng, agency_code, "X", call, None, changed, {})
        buf = io.StringIO(newline="")
        csv.writer(buf, lineterminator="\n").writerow([fmt(row[c]) for c in COLUMNS[2:]])
        pool.append(buf.getvalue())
    width = max(6, len(str(n_rows)))
    prefix = f"{agency_code},{agency_code}-{extract_date.year}-"
    assert INCIDENT_ID_RE.match(f"{agency_code}-{extract_date.year}-{n_rows:0{width}d}")

    digest = hashlib.sha256()
    header = io.StringIO(newline="")
    csv.writer(header, lineterminator="\n").writerow(COLUMNS)
    chunk = 50_000
    with path.open("wb") as fh:
        data = header.getvalue().encode("utf-8")
        digest.update(data)
        fh.write(data)
        for lo in range(0, n_rows, chunk):
            # 7919 is odd, so i * 7919 walks the whole 1024-row pool before repeating.
            text = "".join(
                f"{prefix}{i:0{width}d},{pool[(i * 7919) & 1023]}"
                for i in range(lo, min(lo + chunk, n_rows))
            )
            data = text.encode("utf-8")
            digest.update(data)
            fh.write(data)
    atomic_write(
        manifest_path,
        manifest_doc(
            agency_code,
            extract_date,
            path.name,
            n_rows,
            digest.hexdigest(),
            default_generated_at(extract_date),
            None,
        ),
    )
    return path
