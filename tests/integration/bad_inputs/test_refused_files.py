"""Refused files of the bad-input catalogue, each with the exact outcome.

`RefusedFile` (or `ManifestMissing`) with a message naming the problem, nothing in core/contact
changed, the refusal recorded (for files that got past the manifest), no value of the file in the
message or anywhere in the warehouse, no staging table left. Builders: tests/support/bad_inputs.py.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from support.bad_inputs import (
    AGENCY,
    CANARY,
    DELETE,
    FIELDS,
    KINDS,
    NARRATIVE_CANARY,
    Env,
    assert_no_leak,
    charged_row,
    connect,
    declined_row,
    deliver,
    extract_files,
    find_text,
    fmt,
    given_row,
    incident,
    load,
    manifest_doc,
    quarantine,
    render,
    snapshot,
)

from upstream.ingest import LoadResult, ManifestMissing, RefusedFile, verify_manifest
from upstream.settings import Settings

pytestmark = pytest.mark.integration

# ---------------------------------------------------------------------------------------------
# Refused files


def small_rows(d: date) -> list[dict[str, Any]]:
    """Three valid rows, every name the canary (nothing of a refused file may be kept)."""
    return [declined_row(d, 1), KINDS["given"](d, 2), charged_row(d, 3, narrative=None)]


def good(d: date, **render_kwargs: Any) -> bytes:
    return render(small_rows(d), **render_kwargs)


def _lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 5  # header + 3 rows, no embedded line breaks
    return lines


def _flip_one_character(data: bytes) -> bytes:
    i = data.index(b"ipv_threats")
    return data[:i] + b"ipv_threatz" + data[i + len(b"ipv_threats"):]


def _truncated_mid_quote(d: date) -> bytes:
    data = good(d)
    # The first row's narrative is quoted (it holds commas): cut inside it.
    start = data.index(f'"{NARRATIVE_CANARY}'.encode())
    return data[: start + 12]


def _drop_last_field(d: date) -> bytes:
    lines = _lines(good(d))
    assert lines[3].endswith(b",")  # the charged row: narrative empty
    lines[3] = lines[3][:-1]
    return b"\n".join(lines)


def _extra_field(d: date) -> bytes:
    lines = _lines(good(d))
    lines[3] = lines[3] + b",surplus"
    return b"\n".join(lines)


def _blank_line_between_rows(d: date) -> bytes:
    lines = _lines(good(d))
    return b"\n".join([*lines[:2], b"", *lines[2:]])


def _mixed_line_endings(d: date) -> bytes:
    lines = _lines(good(d))
    return lines[0] + b"\r\n" + b"\n".join(lines[1:])


def _latin1_name(d: date) -> bytes:
    return good(d).replace(f",{CANARY},{CANARY},".encode(), ",Zo\xeb,Tremblay,".encode("latin-1"), 1)


def _nul_byte(d: date) -> bytes:
    return good(d).replace(b"W1037", b"W10\x0037", 1)


def _stray_quote(d: date) -> bytes:
    return good(d).replace(b",W1037,", b',W10"37,', 1)


def _bad_header_byte(d: date) -> bytes:
    return good(d).replace(b"narrative", b"narrativ\xe9", 1)


def _long_header(d: date) -> bytes:
    return render(small_rows(d), (*FIELDS, "x" * 70_000))


def _recanary(rows: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    """The rows with this case's own canaries (a case that leaks by a known bug must not spoil
    the module-wide canary checks of the cases after it)."""
    return [{k: v.replace(CANARY, f"{tag}NAME").replace(NARRATIVE_CANARY, f"{tag}NARR")
             if isinstance(v, str) else v for k, v in r.items()} for r in rows]


def _headerless_full_row(d: date) -> bytes:
    row = given_row(d, 1, "HEADLESSNAME", "HEADLESSNAME", children_present=False,
                    substance_involved=False, consent_officer_id="W1037",
                    responding_officer_id="W1037", accused_person_id="MNI-7001",
                    narrative="HEADLESSNARR at scene")
    assert all(fmt(v) for v in row.values())  # every field filled: no empty "column name"
    return render([row], header=False)


def _json_instead_of_csv(d: date) -> bytes:
    rows = _recanary(small_rows(d), "JSONLEAK")
    return json.dumps([{k: fmt(v) for k, v in r.items()} for r in rows]).encode()


HEADER_ECHO_BUG = ("ingest.read_header: when the first line is not a header (a JSON export, a "
                   "file without its header row), 'header repeats column(s): ...' quotes the "
                   "repeated cells, i.e. values from the file (names, narrative) go into the "
                   "message and ops.extract_file.reason")


@dataclass(frozen=True)
class Refusal:
    id: str
    write: Callable[[Settings, date], None]
    match: str                      # regex searched in the message, after "WPS <date>: "
    stage: str = "load"            # manifest: refused before the file is registered
    error: type[Exception] = RefusedFile
    bug: str | None = None
    secrets: tuple[str, ...] = ()   # this case's own canaries, besides the module's


def _m(**overrides: Any) -> Callable[[Settings, date], None]:
    """Good data, manifest with the given overrides."""
    return lambda s, d: deliver(s, d, good(d), 3, **overrides)


def _data(make: Callable[[date], bytes], rows: int = 3, **kw: Any) -> Callable[[Settings, date], None]:
    """Bytes from make(d) with a manifest matching them (sha256 right; rows as given)."""
    return lambda s, d: deliver(s, d, make(d), rows, **kw)


REFUSALS: list[Refusal] = [
    # --- the manifest -------------------------------------------------------------------------
    Refusal("manifest_missing", lambda s, d: deliver(s, d, good(d), 3, manifest=False),
            r"manifest WPS_ipv_calls_\S+\.manifest\.json has not arrived", "manifest",
            ManifestMissing),
    Refusal("manifest_without_data_file", lambda s, d: deliver(s, d, None, 3, sha_of=good(d)),
            r"manifest present but data file WPS_ipv_calls_\S+\.csv is missing", "manifest"),
    Refusal("manifest_not_json", _m(manifest_bytes=b"{'rows': 3, 'sha256': 'x'}"),
            r"manifest \S+ is not valid JSON \(JSONDecodeError\)", "manifest"),
    Refusal("manifest_truncated_json",
            lambda s, d: deliver(s, d, good(d), 3, manifest_bytes=json.dumps(
                manifest_doc(d, good(d), 3)).encode()[:60]),
            r"is not valid JSON \(JSONDecodeError\)", "manifest"),
    Refusal("manifest_utf16",
            lambda s, d: deliver(s, d, good(d), 3, manifest_bytes=json.dumps(
                manifest_doc(d, good(d), 3)).encode("utf-16")),
            r"is not valid JSON \(UnicodeDecodeError\)", "manifest"),
    Refusal("manifest_empty", _m(manifest_bytes=b""),
            r"is not valid JSON \(JSONDecodeError\)", "manifest"),
    Refusal("manifest_is_a_list", _m(manifest_bytes=b"[]"),
            r"manifest is not a JSON object$", "manifest"),
    Refusal("manifest_lacks_sha256", _m(sha256=DELETE), r"manifest lacks sha256$", "manifest"),
    Refusal("manifest_lacks_rows_and_generated_at", _m(rows=DELETE, generated_at=DELETE),
            r"manifest lacks rows, generated_at$", "manifest"),
    Refusal("manifest_extract_version_2", _m(extract_version="2"),
            r"manifest extract_version is not '1': this pipeline reads v1 only$", "manifest"),
    Refusal("manifest_wrong_agency", _m(agency_code="LPS"),
            r"manifest agency_code does not match the landing folder's agency$", "manifest"),
    Refusal("manifest_agency_lower_case", _m(agency_code="wps"),
            r"manifest agency_code does not match", "manifest"),
    Refusal("manifest_wrong_date", lambda s, d: deliver(
                s, d, good(d), 3, extract_date=(d - timedelta(days=1)).isoformat()),
            r"manifest extract_date does not match the file name's date$", "manifest"),
    Refusal("manifest_date_other_format", lambda s, d: deliver(
                s, d, good(d), 3, extract_date=d.strftime("%d/%m/%Y")),
            r"manifest extract_date does not match", "manifest"),
    Refusal("manifest_names_other_file", _m(file="WPS_ipv_calls_2024-01-01.csv"),
            r"manifest names another data file than WPS_ipv_calls_\S+\.csv$", "manifest"),
    Refusal("manifest_rows_negative", _m(rows=-1),
            r"manifest rows is not a non-negative integer$", "manifest"),
    Refusal("manifest_rows_string", _m(rows="3"),
            r"manifest rows is not a non-negative integer$", "manifest"),
    Refusal("manifest_rows_float", _m(rows=3.0),
            r"manifest rows is not a non-negative integer$", "manifest"),
    Refusal("manifest_rows_boolean", _m(rows=True),
            r"manifest rows is not a non-negative integer$", "manifest"),
    Refusal("manifest_sha256_not_hex", _m(sha256="z" * 64),
            r"manifest sha256 is not a 64-digit hex digest$", "manifest"),
    Refusal("manifest_sha256_is_md5", _m(sha256="0123456789abcdef" * 2),
            r"manifest sha256 is not a 64-digit hex digest$", "manifest"),
    Refusal("manifest_generated_at_without_offset", _m(generated_at="2024-07-02T01:05:00"),
            r"manifest generated_at is not an ISO 8601 timestamp with offset$", "manifest"),
    Refusal("manifest_generated_at_not_a_time", _m(generated_at="last night"),
            r"manifest generated_at is not an ISO 8601 timestamp with offset$", "manifest"),
    Refusal("manifest_generated_at_epoch_number", _m(generated_at=1719896700),
            r"manifest generated_at is not an ISO 8601 timestamp with offset$", "manifest"),
    Refusal("checksum_mismatch",
            lambda s, d: deliver(s, d, _flip_one_character(good(d)), 3, sha_of=good(d)),
            r"sha256 of the data file does not match the manifest "
            r"\(truncated or corrupted transfer\)$", "manifest"),
    Refusal("truncated_transfer",
            lambda s, d: deliver(s, d, good(d)[:-40], 3, sha_of=good(d)),
            r"sha256 of the data file does not match the manifest", "manifest"),
    # --- row count ----------------------------------------------------------------------------
    Refusal("row_count_manifest_says_more", _data(lambda d: good(d), rows=4),
            r"manifest says 4 rows, data file has 3 \(truncated or corrupted transfer\)$"),
    Refusal("row_count_manifest_says_fewer", _data(lambda d: good(d), rows=2),
            r"manifest says 2 rows, data file has 3 \(truncated or corrupted transfer\)$"),
    Refusal("truncated_at_row_boundary",
            _data(lambda d: b"\n".join(_lines(good(d))[:3]) + b"\n", rows=3),
            r"manifest says 3 rows, data file has 2 \(truncated or corrupted transfer\)$"),
    Refusal("header_only_but_manifest_says_rows", _data(lambda d: render([]), rows=3),
            r"manifest says 3 rows, data file has 0"),
    # --- bytes and CSV structure --------------------------------------------------------------
    Refusal("truncated_mid_quoted_field", _data(_truncated_mid_quote),
            r"data file ends inside a quoted field \(truncated file\?\) at line 2$"),
    Refusal("stray_quote_in_unquoted_field", _data(_stray_quote),
            r"data file ends inside a quoted field \(truncated file\?\) at line \d+$"),
    Refusal("more_fields_than_header", _data(_extra_field),
            r"data file has a row with more fields than the header at line 4$"),
    Refusal("fewer_fields_than_header", _data(_drop_last_field),
            r"data file has a row with fewer fields than the header at line 4$"),
    Refusal("blank_line_between_rows", _data(_blank_line_between_rows),
            r"data file has a row with fewer fields than the header at line 3$"),
    Refusal("trailing_blank_line", _data(lambda d: good(d) + b"\n"),
            r"data file has a row with fewer fields than the header at line 5$"),
    Refusal("mixed_line_endings", _data(_mixed_line_endings),
            r"data file mixes line endings outside quoted fields at line 2$"),
    Refusal("cr_only_line_endings", _data(lambda d: good(d).replace(b"\n", b"\r")),
            r"line end"),
    Refusal("invalid_utf8_in_row", _data(_latin1_name),
            r"data file is not valid UTF-8 \(or contains a NUL byte\) at line 2$"),
    Refusal("nul_byte_in_row", _data(_nul_byte),
            r"data file is not valid UTF-8 \(or contains a NUL byte\) at line 2$"),
    Refusal("invalid_utf8_in_header", _data(_bad_header_byte),
            r"header row is not valid UTF-8$"),
    Refusal("utf16_encoded_file", _data(lambda d: good(d).decode().encode("utf-16")),
            r"header row is not valid UTF-8$"),
    Refusal("gzip_compressed_file", _data(lambda d: gzip.compress(good(d), mtime=0)),
            r"header row is not valid UTF-8$"),
    Refusal("empty_file_0_bytes", _data(lambda d: b"", rows=0),
            r"data file is empty: not even a header row$"),
    Refusal("bom_only", _data(lambda d: b"\xef\xbb\xbf", rows=0),
            r"data file is empty: not even a header row$"),
    Refusal("blank_lines_only", _data(lambda d: b"\r\n\n", rows=0),
            r"data file is empty: not even a header row$"),
    # --- the header ---------------------------------------------------------------------------
    Refusal("missing_required_column",
            _data(lambda d: good(d, columns=[c for c in FIELDS if c != "patrol_zone"])),
            r"missing required column\(s\): patrol_zone$"),
    Refusal("missing_several_required_columns",
            _data(lambda d: good(d, columns=[c for c in FIELDS
                                             if c not in ("consent_status", "incident_id")])),
            r"missing required column\(s\): incident_id, consent_status$"),
    Refusal("header_in_other_case",
            _data(lambda d: good(d).replace(b"incident_id", b"Incident_ID", 1)),
            r"missing required column\(s\): incident_id$"),
    Refusal("header_repeats_column", _data(lambda d: good(d, columns=(*FIELDS, "weapon"))),
            r"header repeats column\(s\): weapon$"),
    Refusal("header_empty_column_name", _data(lambda d: good(d, columns=(*FIELDS, ""))),
            r"header row has an empty column name$"),
    Refusal("header_longer_than_64k", _data(_long_header),
            r"header row is longer than 64 KiB$"),
    Refusal("semicolon_separated", _data(lambda d: good(d, delimiter=";")),
            r"the file looks semicolon-delimited \(;\); the contract requires commas$"),
    Refusal("tab_separated", _data(lambda d: good(d, delimiter="\t")),
            r"the file looks tab-delimited \(\\t\); the contract requires commas$"),
    Refusal("pipe_separated", _data(lambda d: good(d, delimiter="|")),
            r"the file looks pipe-delimited \(\|\); the contract requires commas$"),
    Refusal("html_error_page_instead_of_csv",
            _data(lambda d: b"<html><body><h1>502 Bad Gateway</h1></body></html>\n", rows=0),
            r"missing required column\(s\): agency_code, incident_id, "),
    Refusal("json_instead_of_csv", _data(_json_instead_of_csv),
            r"(missing required column\(s\)|empty column name)", secrets=("JSONLEAKNAME", "JSONLEAKNARR")),
    Refusal("headerless_file", _data(lambda d: good(d, header=False), rows=3),
            r"missing required column\(s\): agency_code, incident_id"),
    Refusal("headerless_file_full_first_row", _data(_headerless_full_row, rows=1),
            r"^WPS \S+: (?!.*(W1037|false|MNI-|ADDR-))",
            secrets=("HEADLESSNAME", "HEADLESSNARR")),
]


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=f"bug: {c.bug}")]
                  if c.bug else []) for c in REFUSALS])
def test_refused_file(env: Env, baseline: LoadResult, case: Refusal) -> None:
    d = date(2023, 1, 1) + timedelta(days=REFUSALS.index(case))
    case.write(env.settings, d)
    with connect(env) as conn:
        before = snapshot(conn)
        assert before["core.call"], "baseline missing"
    with pytest.raises(case.error) as excinfo:
        load(env, d)
    message = str(excinfo.value)
    assert message.startswith(f"{AGENCY} {d.isoformat()}: "), message
    with connect(env) as conn:
        for secret in case.secrets:
            assert secret not in message
            assert find_text(conn, secret) == []
    assert re.search(case.match, message.split(": ", 1)[1] if case.match[0] != "^" else message), \
        message
    if isinstance(excinfo.value, RefusedFile):
        assert excinfo.value.public_message == message
    with connect(env) as conn:
        assert snapshot(conn) == before
        files = extract_files(conn, d)
        if case.stage == "manifest":
            assert files == []  # refused before the file was registered
        else:
            assert [(f["status"], f["reason"]) for f in files] == [("refused", message)]
            assert quarantine(conn, files[0]["file_id"]) == set()
        assert_no_leak(env, conn, message)
        # Nothing of this file reached a table.
        assert find_text(conn, incident(d, 1)) == []


def test_verify_manifest_missing(env: Env) -> None:
    d = date(2024, 6, 30)
    deliver(env.settings, d, good(d), 3, manifest=False)
    with pytest.raises(ManifestMissing, match=r"^WPS 2024-06-30: manifest WPS_ipv_calls_2024-06-30"
                                               r"\.manifest\.json has not arrived$"):
        verify_manifest(env.settings.landing.dir, AGENCY, d)
    # Once the manifest lands, the same delivery verifies.
    deliver(env.settings, d, good(d), 3)
    delivery = verify_manifest(env.settings.landing.dir, AGENCY, d)
    assert (delivery.rows, delivery.sha256) == (3, hashlib.sha256(good(d)).hexdigest())
