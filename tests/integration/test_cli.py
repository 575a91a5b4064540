"""The data team's command line, run as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

UPSTREAM = str(Path(sys.executable).parent / "upstream")


def _run(args, env) -> subprocess.CompletedProcess:
    return subprocess.run([UPSTREAM, *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def cli_env(upstream_env):
    return dict(os.environ)


def test_generate_then_validate_good_and_bad_files(cli_env, upstream_env):
    landing = upstream_env.landing_dir
    out = _run(["generate", "--start", "2024-06-01", "--end", "2024-06-02", "--seed", "5"], cli_env)
    assert out.returncode == 0, out.stderr
    assert "wrote 2 extract(s)" in out.stdout
    good = _run(["validate", str(landing / "WPS" / "WPS_ipv_calls_2024-06-01.csv")], cli_env)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "OK: all" in good.stdout

    bad_file = landing / "WPS" / "WPS_ipv_calls_2024-06-02.csv"
    lines = bad_file.read_text(encoding="utf-8").splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    fields = lines[1].rstrip("\n").split(",")
    fields[header.index("call_source")] = "carrier_pigeon"
    bad_file.write_text("".join([lines[0], ",".join(fields) + "\n", *lines[2:]]), encoding="utf-8")
    bad_file.with_name(bad_file.name[:-4] + ".manifest.json").unlink()
    bad = _run(["validate", str(bad_file)], cli_env)
    assert bad.returncode == 1
    assert "call_source.enum: 1 row(s), rows 1" in bad.stdout
    assert "no manifest beside the file" in bad.stdout
    assert "carrier_pigeon" not in bad.stdout + bad.stderr


def test_validate_refuses_unparseable_name(cli_env, tmp_path):
    odd = tmp_path / "calls.csv"
    odd.write_text("a,b\n1,2\n")
    out = _run(["validate", str(odd)], cli_env)
    assert out.returncode == 1
    assert "file name is not <AGENCY>_ipv_calls_<YYYY-MM-DD>.csv" in out.stdout
