"""ingest.manifest.verify_manifests: the parallel manifest checks of a history batch give, day by
day and in day order, what verify_manifest gives for that day alone."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from upstream.dev import generate
from upstream.ingest.manifest import verify_manifest, verify_manifests
from upstream.ingest.outcome import ManifestMissing, RefusedFile


def test_outcomes_in_day_order_equal_one_by_one(tmp_path: Path) -> None:
    start = date(2019, 3, 1)
    days = [start + timedelta(days=i) for i in range(30)]
    generate.generate(tmp_path, days[0], days[-1], ["WPS"], seed=11)
    folder = tmp_path / "WPS"
    (folder / generate.manifest_name("WPS", days[3])).unlink()            # not arrived
    (folder / generate.manifest_name("WPS", days[7])).write_text("{not json")  # refused
    (folder / generate.csv_name("WPS", days[12])).write_bytes(b"changed")  # sha256 differs
    days.append(days[-1] + timedelta(days=5))                               # nothing at all

    got = verify_manifests(tmp_path, "WPS", days, readers=4)

    assert len(got) == len(days)
    for d, outcome in zip(days, got, strict=True):
        try:
            alone = verify_manifest(tmp_path, "WPS", d)
        except (ManifestMissing, RefusedFile) as exc:
            assert type(outcome) is type(exc) and str(outcome) == str(exc), d
        else:
            assert outcome == alone, d
    kinds = [type(o).__name__ for o in got]
    assert kinds.count("ManifestMissing") == 2 and kinds.count("RefusedFile") == 2
