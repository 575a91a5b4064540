"""The data team's command line, run as a real subprocess."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import psycopg
import pytest

from upstream.dev import generate

pytestmark = pytest.mark.integration

UPSTREAM = str(Path(sys.executable).parent / "upstream")


def _run(args, env) -> subprocess.CompletedProcess:
    return subprocess.run([UPSTREAM, *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def cli_env(upstream_env):
    return dict(os.environ)


def _break_row(csv_path, data_row: int) -> int:
    """Give the data_row-th row (1-based) an unknown call_source; returns its editor line."""
    with csv_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        rows = [next(reader)]
        starts = []
        for row in reader:
            starts.append(reader.line_num - sum(f.count("\n") for f in row))
            rows.append(row)
    rows[data_row][rows[0].index("call_source")] = "carrier_pigeon"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    return starts[data_row - 1]


def test_generate_then_validate_good_and_bad_files(cli_env, upstream_env):
    # One test, one GX project: its first validation builds the suite (the slow part).
    landing = upstream_env.landing.dir
    out = _run(["generate", "--start", "2024-06-01", "--end", "2024-06-02", "--seed", "5"], cli_env)
    assert out.returncode == 0, out.stderr
    assert "wrote 2 extract(s)" in out.stdout
    good_file = landing / "WPS" / "WPS_ipv_calls_2024-06-01.csv"
    good = _run(["validate", str(good_file)], cli_env)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "OK: all" in good.stdout and "INCOMPLETE" not in good.stdout

    # Without its manifest a good file is incomplete (exit 1); --no-manifest checks it alone.
    good_file.with_name(good_file.name[:-4] + ".manifest.json").unlink()
    strict = _run(["validate", str(good_file)], cli_env)
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "INCOMPLETE: no manifest WPS_ipv_calls_2024-06-01.manifest.json" in strict.stdout
    assert "--no-manifest" in strict.stdout

    bad_file = landing / "WPS" / "WPS_ipv_calls_2024-06-02.csv"
    line = _break_row(bad_file, 6)
    assert line >= 7  # header is line 1; more when an earlier row has a quoted line break
    bad = _run(["validate", "--no-manifest", str(bad_file)], cli_env)  # manifest now stale
    assert bad.returncode == 1
    assert "INCOMPLETE" not in bad.stdout
    assert "LOADABLE WITH QUARANTINE: 1 of" in bad.stdout
    assert f"call_source.enum: 1 row(s), line {line}\n" in bad.stdout
    assert ("rule: call_source is one of: 911, non_emergency, officer_initiated, third_party, "
            "online") in bad.stdout
    assert "carrier_pigeon" not in bad.stdout + bad.stderr


def test_validate_names_the_delimiter(cli_env, upstream_env):
    generate.generate(upstream_env.landing.dir, date(2024, 6, 4), date(2024, 6, 4), ["WPS"], seed=5)
    csv_path = upstream_env.landing.dir / "WPS" / "WPS_ipv_calls_2024-06-04.csv"
    with csv_path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, delimiter=";", lineterminator="\n").writerows(rows)
    out = _run(["validate", "--no-manifest", str(csv_path)], cli_env)
    assert out.returncode == 1
    assert ("REFUSED: WPS 2024-06-04: the file looks semicolon-delimited (;); the contract "
            "requires commas") in out.stdout
    assert "missing required column" not in out.stdout


def test_generate_help_describes_every_option_and_default(cli_env):
    out = _run(["generate", "--help"], cli_env)
    assert out.returncode == 0
    entries: dict[str, str] = {}  # option -> its help text, argparse's line wrapping undone
    option = None
    for line in out.stdout.split("options:", 1)[1].splitlines():
        if line.startswith("  -"):
            option = line.split()[0].rstrip(",")
            entries[option] = line
        elif option:
            entries[option] += " " + line.strip()
    expected = {"--start": "2024-05-06", "--end": "2024-05-26",
                "--agencies": "the UPSTREAM_AGENCIES setting", "--seed": "7",
                "--landing": "the UPSTREAM_LANDING_DIR setting", "--bad-rows-share": "0.0",
                "--bad-files": "off"}
    assert set(entries) == {"-h", *expected}
    for name, default in expected.items():
        text = " ".join(entries[name].split())
        assert f"(default: {default}" in text, text
        assert len(text.split("(default:")[0].split()) > 2, text  # a description, not a bare flag


STATUS_FILES = [  # agency, day, status, rows, loaded, quarantined, reason
    ("WPS", "2024-06-01", "superseded", 9, 9, 0, None),
    ("WPS", "2024-06-01", "loaded", 8, 7, 1, None),
    ("WPS", "2024-06-02", "refused", 8, 0, 0,
     "WPS 2024-06-02: manifest says 9 rows, data file has 8 (truncated or corrupted transfer)"),
    ("WPS", "2024-06-04", "loaded", 6, 6, 0, None),
    ("LPS", "2024-06-02", "loaded", 5, 5, 0, None),
]


def test_status_lists_every_agency_and_day(cli_env, upstream_env, warehouse_url):
    with psycopg.connect(warehouse_url) as conn:
        for i, (agency, day, status, rows, loaded, quarantined, reason) in enumerate(STATUS_FILES):
            conn.execute(
                "INSERT INTO ops.extract_file (agency_code, extract_date, file_name, sha256,"
                " status, reason, rows_in_file, rows_loaded, rows_quarantined)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (agency, day, f"{agency}_ipv_calls_{day}.csv", f"{i:064x}", status, reason,
                 rows, loaded, quarantined))
    env = dict(cli_env, UPSTREAM_AGENCIES="WPS,LPS", COLUMNS="200")

    machine = _run(["status", "--json"], env)
    assert machine.returncode == 0, machine.stderr
    doc = json.loads(machine.stdout)
    by_day = {(d["agency_code"], d["extract_date"]): d for d in doc["days"]}
    assert {k: v["status"] for k, v in by_day.items()} == {
        ("WPS", "2024-06-01"): "loaded", ("WPS", "2024-06-02"): "refused",
        ("WPS", "2024-06-03"): "missing", ("WPS", "2024-06-04"): "loaded",
        ("LPS", "2024-06-01"): "missing", ("LPS", "2024-06-02"): "loaded",
        ("LPS", "2024-06-03"): "missing", ("LPS", "2024-06-04"): "missing",
    }
    assert (by_day[("WPS", "2024-06-01")]["rows_in_file"], by_day[("WPS", "2024-06-01")]
            ["rows_quarantined"], by_day[("WPS", "2024-06-01")]["files"]) == (8, 1, 2)
    assert "truncated or corrupted transfer" in by_day[("WPS", "2024-06-02")]["reason"]
    assert doc["counts"] == {"loaded": 3, "refused": 1, "missing": 4}
    assert (doc["first_day"], doc["last_day"]) == ("2024-06-01", "2024-06-04")

    human = _run(["status"], env)
    assert human.returncode == 0, human.stderr
    table = [line for line in human.stdout.splitlines() if "2024-06-" in line]
    assert len(table) == 8
    assert table[0].split("│")[1:4] == [" 2024-06-04 ", " LPS    ", " missing "]
    refused = next(line for line in table if "refused" in line)
    assert "WPS" in refused and "manifest says 9 rows, data file has 8" in refused
    assert "3 loaded, 4 missing, 1 refused" in human.stdout


def test_validate_refuses_unparseable_name(cli_env, tmp_path):
    odd = tmp_path / "calls.csv"
    odd.write_text("a,b\n1,2\n")
    out = _run(["validate", str(odd)], cli_env)
    assert out.returncode == 1
    assert "file name is not <AGENCY>_ipv_calls_<YYYY-MM-DD>.csv" in out.stdout
