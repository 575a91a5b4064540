"""Pull, verify, validate and load one agency-day extract.

Privacy: the raw file lives in a per-load staging table only inside `load_extract`, which
drops it in a `finally` (and `drop_stale_staging` sweeps what a killed worker left). Error
messages name files, rows, columns and rules, never a value from the file.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import hmac
import io
import json
import logging
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from upstream.contract import (
    COLUMNS,
    EXTRACT_VERSION,
    INCIDENT_ID_RE,
    REQUIRED_COLUMNS,
    data_file_name,
    manifest_file_name,
)
from upstream.settings import Settings, load_settings, pseudonym_key
from upstream.warehouse import db

log = logging.getLogger(__name__)

BOM = codecs.BOM_UTF8
COPY_BLOCK = 1 << 20
LOAD_LOCK_NAMESPACE = 4711
# Per agency: nightly loads take it shared (they may run side by side), a history import
# exclusive (upstream.ingest.history), so the two never merge the same agency at once.
AGENCY_LOCK_NAMESPACE = 4712
MAX_HEADER_BYTES = 64 * 1024


class RefusedFile(Exception):
    """The whole file is refused. `public_message` is safe to log, alert and store."""

    def __init__(self, public_message: str, *, agency: str | None = None,
                 extract_date: date | None = None):
        super().__init__(public_message)
        self.public_message = public_message
        self.agency = agency
        self.extract_date = extract_date
        self.result: LoadResult | None = None  # set when the file got as far as being registered


class ManifestMissing(Exception):
    """The data file (or its manifest) has not arrived yet."""


@dataclass(frozen=True)
class Delivery:
    agency_code: str
    extract_date: date
    csv_path: Path
    manifest_path: Path
    sha256: str
    rows: int
    generated_at: datetime

    def to_xcom(self) -> dict[str, Any]:
        d = asdict(self)
        d["extract_date"] = self.extract_date.isoformat()
        d["csv_path"] = str(self.csv_path)
        d["manifest_path"] = str(self.manifest_path)
        d["generated_at"] = self.generated_at.isoformat()
        return d


@dataclass
class LoadResult:
    agency_code: str
    extract_date: str
    outcome: str  # loaded | already_loaded | ignored_older | refused
    file_id: int | None = None
    rows_in_file: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_stale: int = 0
    quarantined_share: float = 0.0
    quarantine_by_rule: dict[str, int] = field(default_factory=dict)
    unknown_columns: list[str] = field(default_factory=list)
    data_docs_path: str | None = None
    reason: str | None = None

    _HEADLINES = {"loaded": "LOADED", "already_loaded": "ALREADY LOADED, nothing to do",
                  "ignored_older": "IGNORED, a later extract of this day is loaded",
                  "refused": "REFUSED, nothing loaded"}

    def outcome_line(self) -> str:
        """One line with everything the data team looks for first (task logs, CLI)."""
        where = f"{self.agency_code} {self.extract_date}"
        line = (f"{where}: {self._HEADLINES.get(self.outcome, self.outcome)}: "
                f"{self.rows_in_file} rows in file, {self.rows_loaded} loaded, "
                f"{self.rows_quarantined} quarantined, {self.rows_stale} stale")
        if self.outcome == "refused" and self.reason:
            line += "; reason: " + self.reason.removeprefix(where + ": ")
        if self.data_docs_path:
            line += "; Data Docs: " + Path(self.data_docs_path).as_uri()
        return line


def delivery_paths(landing_dir: Path, agency: str, extract_date: date) -> tuple[Path, Path]:
    folder = landing_dir / agency
    return folder / data_file_name(agency, extract_date), folder / manifest_file_name(agency, extract_date)


def manifest_present(landing_dir: Path, agency: str, extract_date: date) -> bool:
    """The sensor's test: a manifest is written after its data file is complete."""
    return delivery_paths(landing_dir, agency, extract_date)[1].is_file()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(COPY_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def _parse_generated_at(raw: Any) -> datetime:
    if not isinstance(raw, str):
        raise ValueError
    value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError
    return value


def verify_manifest(landing_dir: Path, agency: str, extract_date: date) -> Delivery:
    """Check the manifest against the contract and the data file's bytes (sha256).

    The row count is checked during the load, where the CSV is parsed anyway.
    """
    csv_path, manifest_path = delivery_paths(landing_dir, agency, extract_date)
    return verify_delivery_files(agency, extract_date, csv_path, manifest_path)


def verify_delivery_files(agency: str, extract_date: date, csv_path: Path,
                          manifest_path: Path) -> Delivery:
    where = f"{agency} {extract_date.isoformat()}"

    def refuse(msg: str) -> RefusedFile:
        return RefusedFile(f"{where}: {msg}", agency=agency, extract_date=extract_date)

    if not manifest_path.is_file():
        raise ManifestMissing(f"{where}: manifest {manifest_path.name} has not arrived")
    if not csv_path.is_file():
        raise refuse(f"manifest present but data file {csv_path.name} is missing")
    try:
        manifest = json.loads(manifest_path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise refuse(f"manifest {manifest_path.name} is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(manifest, dict):
        raise refuse("manifest is not a JSON object")
    missing = [k for k in ("extract_version", "agency_code", "extract_date", "file", "rows",
                           "sha256", "generated_at") if k not in manifest]
    if missing:
        raise refuse(f"manifest lacks {', '.join(missing)}")
    if str(manifest["extract_version"]) != EXTRACT_VERSION:
        raise refuse(f"manifest extract_version is not {EXTRACT_VERSION!r}: this pipeline reads v1 only")
    if manifest["agency_code"] != agency:
        raise refuse("manifest agency_code does not match the landing folder's agency")
    if manifest["extract_date"] != extract_date.isoformat():
        raise refuse("manifest extract_date does not match the file name's date")
    if manifest["file"] != csv_path.name:
        raise refuse(f"manifest names another data file than {csv_path.name}")
    rows = manifest["rows"]
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        raise refuse("manifest rows is not a non-negative integer")
    declared_sha = manifest["sha256"]
    if not isinstance(declared_sha, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", declared_sha):
        raise refuse("manifest sha256 is not a 64-digit hex digest")
    try:
        generated_at = _parse_generated_at(manifest["generated_at"])
    except ValueError:
        raise refuse("manifest generated_at is not an ISO 8601 timestamp with offset") from None
    # A manifest from the future would let future calls pass and beat every later re-extract.
    if generated_at > datetime.now(UTC) + timedelta(hours=1):
        raise refuse("manifest generated_at is in the future")
    if generated_at.date() < extract_date:
        raise refuse("manifest generated_at is before the extract day")
    actual_sha = file_sha256(csv_path)
    if actual_sha != declared_sha.lower():
        raise refuse("sha256 of the data file does not match the manifest "
                     "(truncated or corrupted transfer)")
    return Delivery(agency, extract_date, csv_path, manifest_path, actual_sha, rows, generated_at)


# --- header --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    columns: list[str]       # as in the file, in order
    unknown: list[str]       # ignored, reported
    missing_optional: list[str]
    header_bytes: int        # bytes of the header record, BOM included
    has_bom: bool


_OTHER_DELIMITERS = {";": "semicolon-delimited (;)", "\t": "tab-delimited (\\t)",
                     "|": "pipe-delimited (|)"}


def _other_delimiter(header_line: str) -> str | None:
    """Names the delimiter when the header splits into contract columns on another one."""
    for delimiter, described in _OTHER_DELIMITERS.items():
        if delimiter in header_line:
            names = next(csv.reader(io.StringIO(header_line), delimiter=delimiter), [])
            if sum(n.strip() in REQUIRED_COLUMNS for n in names) >= 2:
                return described
    return None


def read_header(csv_path: Path, refuse) -> Header:
    with csv_path.open("rb") as fh:
        head = fh.read(MAX_HEADER_BYTES)
    has_bom = head.startswith(BOM)
    body = head[len(BOM):] if has_bom else head
    if not body.strip():
        raise refuse("data file is empty: not even a header row")
    # The header is the first record; column names never contain line breaks in practice, but
    # parse it as CSV so quoted names work.
    end = body.find(b"\n")
    if end < 0:
        if len(head) == MAX_HEADER_BYTES:
            raise refuse("header row is longer than 64 KiB")
        end = len(body)
        line = body
    else:
        line = body[: end + 1]
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise refuse("header row is not valid UTF-8") from None
    if "\r" in text.rstrip("\r\n") or (end == len(body) and "\r" in text):
        raise refuse("header row is not followed by a \\n or \\r\\n line end "
                     "(old Mac \\r-only line ends?)")
    try:
        names = next(csv.reader(io.StringIO(text)), [])
    except csv.Error:
        raise refuse("header row is not valid RFC 4180 CSV") from None
    names = [n.strip() for n in names]
    # Required columns first: a file without a real header would otherwise have its first
    # data row (personal data) quoted back as "column names".
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        delimiter = _other_delimiter(text)
        if delimiter:
            raise refuse(f"the file looks {delimiter}; the contract requires commas")
        raise refuse(f"missing required column(s): {', '.join(missing)}")
    if any(n == "" for n in names):
        raise refuse("header row has an empty column name")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        named = [d for d in dupes if d in COLUMNS]
        others = len(dupes) - len(named)
        raise refuse("header repeats column(s): " + ", ".join(named)
                     + (f"{', ' if named else ''}{others} other name(s)" if others else ""))
    unknown = [n for n in names if n not in COLUMNS]
    missing_optional = [c for c in COLUMNS if c not in names and c not in REQUIRED_COLUMNS]
    return Header(names, unknown, missing_optional,
                  len(line) + (len(BOM) if has_bom else 0), has_bom)


# --- staging ---------------------------------------------------------------------------------


def _staging_names(file_id: int | str) -> tuple[sql.Identifier, sql.Identifier]:
    return (sql.Identifier("staging", f"load_{file_id}_raw"),
            sql.Identifier("staging", f"load_{file_id}_typed"))


def suspect_table(file_id: int | str) -> sql.Identifier:
    return sql.Identifier("staging", f"load_{file_id}_suspect")


def drop_staging(conn: psycopg.Connection, file_id: int | str) -> None:
    raw, typed = _staging_names(file_id)
    # CASCADE: GX's stable view over the suspect table goes with it.
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}, {}, {} CASCADE").format(
        raw, typed, suspect_table(file_id)))


def drop_stale_staging(conn: psycopg.Connection) -> int:
    """Drop staging tables whose load is not running (a killed worker's leftovers)."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'staging' AND c.relkind = 'r'"
    ).fetchall()
    for r in rows:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier("staging", r["relname"])))
    conn.commit()
    return len(rows)


_LINE_RE = re.compile(r"line (\d+)")


def _copy_failure_message(exc: psycopg.Error) -> str:
    """A COPY error as a safe message: PostgreSQL's CONTEXT quotes the offending value, so
    only the primary message's kind and the line number are kept."""
    diag = exc.diag
    primary = diag.message_primary or type(exc).__name__
    line = None
    m = _LINE_RE.search(diag.context or "")
    if m:
        line = int(m.group(1))
    if isinstance(exc, psycopg.errors.CharacterNotInRepertoire) or "invalid byte sequence" in primary:
        kind = "is not valid UTF-8 (or contains a NUL byte)"
    elif "unterminated CSV quoted field" in primary:
        kind = "ends inside a quoted field (truncated file?)"
    elif "extra data after last expected column" in primary:
        kind = "has a row with more fields than the header"
    elif "missing data for column" in primary:
        kind = "has a row with fewer fields than the header"
    elif "carriage return" in primary or "newline" in primary:
        kind = "mixes line endings outside quoted fields"
    else:
        kind = "is not valid RFC 4180 CSV"
    where = f" at line {line}" if line else ""
    return f"data file {kind}{where}"


def copy_to_staging(conn: psycopg.Connection, file_id: int | str, csv_path: Path, header: Header,
                    refuse) -> tuple[int, str]:
    """COPY the file (after its BOM) into an all-text staging table. Returns rows and sha256."""
    raw, _ = _staging_names(file_id)
    cols = [sql.Identifier(c if c in COLUMNS else f"extra_{i}") for i, c in enumerate(header.columns)]
    all_cols = cols + [sql.Identifier(c) for c in header.missing_optional]
    conn.execute(sql.SQL(
        "CREATE UNLOGGED TABLE {raw} (row_number integer GENERATED ALWAYS AS IDENTITY, {cols})"
    ).format(raw=raw, cols=sql.SQL(", ").join(sql.SQL("{} text").format(c) for c in all_cols)))
    digest = hashlib.sha256()
    # FORCE_NULL: a quoted empty field ("") is null too, as the contract says.
    copy_stmt = sql.SQL(
        "COPY {raw} ({cols}) FROM STDIN WITH (FORMAT csv, HEADER true, ENCODING 'UTF8',"
        " FORCE_NULL ({cols}))"
    ).format(raw=raw, cols=sql.SQL(", ").join(cols))
    try:
        with conn.cursor() as cur:
            with cur.copy(copy_stmt) as copy, csv_path.open("rb") as fh:
                first = True
                for block in iter(lambda: fh.read(COPY_BLOCK), b""):
                    digest.update(block)
                    if first and header.has_bom:
                        block = block[len(BOM):]
                    first = False
                    copy.write(block)
            rows = cur.rowcount
    except psycopg.errors.DataError as exc:
        conn.rollback()
        raise refuse(_copy_failure_message(exc)) from None
    except psycopg.errors.InternalError_ as exc:  # e.g. COPY's "malformed" failures
        conn.rollback()
        raise refuse(_copy_failure_message(exc)) from None
    return rows, digest.hexdigest()


def failed_rules_expression() -> sql.Composable:
    """ARRAY of the names of the rules a row breaks: every predicate of upstream.rules, once."""
    from upstream.rules import RULES

    cases = sql.SQL(", ").join(
        sql.SQL("CASE WHEN ({}) THEN {} END").format(sql.SQL(r.failing), sql.Literal(r.name))
        for r in RULES)
    return sql.SQL("array_remove(ARRAY[{}]::text[], NULL)").format(cases)


_PAD_SETTING = "upstream.hmac_{}"


def build_typed_table(conn: psycopg.Connection, file_id: int | str, agency: str,
                      delivery: Delivery) -> None:
    raw, typed = _staging_names(file_id)
    template = db.read_sql("validate/typed_table.sql")
    # The HMAC pads travel as bind parameters into transaction-local settings, which the
    # parallel workers of the CREATE TABLE AS inherit; they end with this transaction.
    inner, outer = hmac_pads(pseudonym_key())
    conn.execute("SELECT set_config(%s, %s, true), set_config(%s, %s, true)",
                 (_PAD_SETTING.format("inner"), inner.hex(), _PAD_SETTING.format("outer"), outer.hex()))
    pad = "(SELECT decode(current_setting({}), 'hex'))"
    conn.execute(sql.SQL(template).format(
        raw=raw, typed=typed,
        expected_agency=sql.Literal(agency),
        latest_allowed_at=sql.Literal(delivery.generated_at),
        extract_year=sql.Literal(delivery.extract_date.year),
        failed_rules=failed_rules_expression(),
        inner_key=sql.SQL(pad).format(sql.Literal(_PAD_SETTING.format("inner"))),
        outer_key=sql.SQL(pad).format(sql.Literal(_PAD_SETTING.format("outer"))),
    ))
    conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (row_number)").format(typed))
    conn.execute(sql.SQL(db.read_sql("validate/suspect_rows.sql")).format(
        suspect=suspect_table(file_id), typed=typed))


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC-SHA-256 inner/outer padded keys (RFC 2104), for core.hmac_sha256_hex."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def pseudonym(key: bytes, kind: str, agency: str, identifier: str) -> str:
    """The same pseudonym the load computes in SQL (for tests and routing)."""
    return hmac.new(key, f"{kind}:{agency}:{identifier}".encode(), hashlib.sha256).hexdigest()


# --- the load --------------------------------------------------------------------------------


def _register_file(conn: psycopg.Connection, d: Delivery) -> tuple[int, str | None]:
    row = conn.execute(
        "INSERT INTO ops.extract_file (agency_code, extract_date, file_name, sha256, manifest_rows,"
        " generated_at, status) VALUES (%s, %s, %s, %s, %s, %s, 'loading')"
        " ON CONFLICT (agency_code, extract_date, sha256) DO UPDATE SET manifest_rows = EXCLUDED.manifest_rows"
        " RETURNING file_id, (xmax <> 0) AS existed",
        (d.agency_code, d.extract_date, d.csv_path.name, d.sha256, d.rows, d.generated_at),
    ).fetchone()
    prior = None
    if row["existed"]:
        prior = conn.execute("SELECT status FROM ops.extract_file WHERE file_id = %s",
                             (row["file_id"],)).fetchone()["status"]
    conn.commit()
    return row["file_id"], prior


def _finish(conn: psycopg.Connection, file_id: int, status: str, result: LoadResult) -> None:
    conn.execute(
        "UPDATE ops.extract_file SET status = %s, reason = %s, rows_in_file = %s,"
        " rows_loaded = %s, rows_quarantined = %s, rows_stale = %s, unknown_columns = %s,"
        " data_docs_path = %s, finished_at = now() WHERE file_id = %s",
        (status, result.reason, result.rows_in_file, result.rows_loaded, result.rows_quarantined,
         result.rows_stale, result.unknown_columns, result.data_docs_path, file_id),
    )
    conn.commit()


class AgencyBusy(RuntimeError):
    def __init__(self, public_message: str):
        super().__init__(public_message)
        self.public_message = public_message


def lock_agency(conn: psycopg.Connection, agency: str, *, shared: bool) -> None:
    """Session-level advisory lock on the agency, released when the connection closes (or by
    unlock_agency). Fails at once with a message naming the agency."""
    fn = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
    ok = conn.execute(sql.SQL("SELECT {}(%s, hashtext(%s)) AS ok").format(sql.Identifier(fn)),
                      (AGENCY_LOCK_NAMESPACE, agency)).fetchone()["ok"]
    conn.commit()
    if not ok:
        raise AgencyBusy(
            f"{agency}: a history import of this agency is running; the nightly load cannot "
            "run at the same time (it is retried)" if shared else
            f"{agency}: a nightly load of this agency is running; the history import cannot "
            "run at the same time (start it again when the load ends)")


def unlock_agency(conn: psycopg.Connection, agency: str, *, shared: bool) -> None:
    fn = "pg_advisory_unlock_shared" if shared else "pg_advisory_unlock"
    conn.execute(sql.SQL("SELECT {}(%s, hashtext(%s))").format(sql.Identifier(fn)),
                 (AGENCY_LOCK_NAMESPACE, agency))
    conn.commit()


def load_extract(agency: str, extract_date: date, settings: Settings | None = None,
                 *, url: str | None = None, run_name: str | None = None) -> LoadResult:
    """Verify, validate (GX) and load one agency-day. Idempotent; see module docstring.

    Raises RefusedFile (after recording it) when the file is refused as a whole.
    """
    settings = settings or load_settings()
    delivery = verify_manifest(settings.landing.dir, agency, extract_date)
    where = f"{agency} {extract_date.isoformat()}"

    def refuse(msg: str) -> RefusedFile:
        return RefusedFile(f"{where}: {msg}", agency=agency, extract_date=extract_date)

    result = LoadResult(agency, extract_date.isoformat(), outcome="loaded")
    with db.connect(url or db.warehouse_url(settings), role=db.LOADER) as conn:
        conn.execute("SET temp_buffers = '256MB'")  # before this session's first temp table
        # The duplicate check's hash and the merge's sort of a large file stay in memory.
        conn.execute("SET work_mem = '128MB'")
        # Shared, until this connection closes: a history import of the agency excludes it.
        lock_agency(conn, agency, shared=True)
        file_id, prior = _register_file(conn, delivery)
        result.file_id = file_id
        # One loader per file: a second worker on the same file must not touch the first
        # one's staging tables. Session-level lock, released when this connection closes.
        if not conn.execute("SELECT pg_try_advisory_lock(%s, %s) AS ok",
                            (LOAD_LOCK_NAMESPACE, file_id)).fetchone()["ok"]:
            raise RuntimeError(f"{where}: this file is being loaded by another worker right now")
        conn.commit()
        if prior in ("loaded", "superseded", "ignored_older"):
            stored = conn.execute("SELECT * FROM ops.extract_file WHERE file_id = %s", (file_id,)).fetchone()
            result.outcome = "already_loaded" if prior != "ignored_older" else "ignored_older"
            result.rows_in_file = stored["rows_in_file"] or 0
            result.rows_loaded = stored["rows_loaded"] or 0
            result.rows_quarantined = stored["rows_quarantined"] or 0
            result.rows_stale = stored["rows_stale"] or 0
            result.data_docs_path = stored["data_docs_path"]
            log.debug("%s: file already processed (%s); nothing to do", where, prior)
            return result
        newer = conn.execute(
            "SELECT file_id FROM ops.extract_file WHERE agency_code = %s AND extract_date = %s"
            " AND status = 'loaded' AND file_id <> %s AND generated_at >= %s",
            (agency, extract_date, file_id, delivery.generated_at)).fetchone()
        if newer:
            result.outcome = "ignored_older"
            result.reason = "an extract of this day generated later is already loaded"
            _finish(conn, file_id, "ignored_older", result)
            return result
        try:
            return _validate_and_merge(conn, url or db.warehouse_url(settings), settings,
                                       delivery, file_id, result, refuse, run_name)
        except RefusedFile as exc:
            conn.rollback()
            result.outcome = "refused"
            result.reason = exc.public_message
            _finish(conn, file_id, "refused", result)
            exc.result = result  # the caller's outcome line reports the counts too
            raise
        except BaseException:
            conn.rollback()
            result.reason = "load failed unexpectedly; see the task log"
            _finish(conn, file_id, "refused", result)
            raise
        finally:
            conn.rollback()
            drop_staging(conn, file_id)
            conn.commit()


def _validate_and_merge(conn, url: str, settings, delivery: Delivery, file_id: int, result: LoadResult,
                        refuse, run_name: str | None) -> LoadResult:
    from upstream.validate import (
        suite as validation,  # GX is heavy: import only when a file is validated
    )

    agency, extract_date = delivery.agency_code, delivery.extract_date
    header = read_header(delivery.csv_path, refuse)
    result.unknown_columns = header.unknown
    if header.unknown:
        log.warning("%s %s: ignoring unknown column(s): %s", agency, extract_date,
                    ", ".join(header.unknown[:20]))
    drop_staging(conn, file_id)
    rows, sha = copy_to_staging(conn, file_id, delivery.csv_path, header, refuse)
    if sha != delivery.sha256:
        raise refuse("data file changed while it was being loaded")
    if rows != delivery.rows:
        raise refuse(f"manifest says {delivery.rows} rows, data file has {rows} "
                     "(truncated or corrupted transfer)")
    result.rows_in_file = rows
    build_typed_table(conn, file_id, agency, delivery)
    conn.execute("DELETE FROM ops.quarantine_row WHERE file_id = %s", (file_id,))
    conn.commit()  # GX reads the typed table through its own connection

    report = validation.validate_staged_file(
        conn, settings, file_id=file_id, agency=agency, extract_date=extract_date,
        run_name=run_name or f"{agency}_{extract_date.isoformat()}_{file_id}", db_url=url,
    )
    result.data_docs_path = report.data_docs_path
    result.quarantine_by_rule = report.failures_by_rule
    if report.failures_by_rule:
        result.rows_quarantined = validation.quarantine_failing_rows(conn, file_id)
    result.quarantined_share = (result.rows_quarantined / rows) if rows else 0.0
    if quarantine_refuses(settings, result.rows_quarantined, rows):
        conn.commit()  # keep the quarantine report of a refused file
        raise refuse(
            f"{quarantine_refusal(settings, result.rows_quarantined, rows)}: nothing loaded "
            f"(top rules: {_top_rules(report.failures_by_rule)})")
    _merge(conn, file_id, delivery, result)
    _finish(conn, file_id, "loaded", result)
    return result


def quarantine_refuses(settings: Settings, bad_rows: int, rows: int) -> bool:
    """Systematic breakage refuses the file; a few bad rows are quarantined and the rest loads.

    Both limits must be exceeded: the share alone misjudges small files (at the program's ~8
    calls a day one bad row is 12%), the count alone misjudges large ones.
    """
    share = bad_rows / rows if rows else 0.0
    return bad_rows > settings.validate.quarantine_max_rows and share > settings.validate.quarantine_max_share


def quarantine_refusal(settings: Settings, bad_rows: int, rows: int) -> str:
    share = bad_rows / rows if rows else 0.0
    return (f"{bad_rows} of {rows} rows ({share:.1%}) broke contract rules, above both limits "
            f"({settings.validate.quarantine_max_share:.1%} and {settings.validate.quarantine_max_rows} rows)")


def _top_rules(failures: dict[str, int]) -> str:
    top = sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    return ", ".join(f"{name} x{count}" for name, count in top)


def _merge(conn: psycopg.Connection, file_id: int, delivery: Delivery, result: LoadResult) -> None:
    """One transaction: supersede an older extract of the day, add this file's versions,
    re-derive the current calls and the contact details of the incidents involved."""
    _, typed = _staging_names(file_id)
    params = {"file_id": file_id, "extract_date": delivery.extract_date,
              "agency": delivery.agency_code}
    with conn.transaction():
        # The incidents whose current call may change: this file's valid rows (unique: a
        # repeated incident id is quarantined) and those of an extract of the day it replaces.
        # No key on this table: a 1M-row key build cost more than every join that reads it.
        conn.execute("CREATE TEMP TABLE affected_incident (agency_code text, incident_id text)"
                     " ON COMMIT DROP")
        conn.execute(sql.SQL("INSERT INTO affected_incident SELECT agency_code, incident_id"
                             " FROM {} WHERE cardinality(failed_rules) = 0").format(typed))
        superseded = [r["file_id"] for r in conn.execute(
            "UPDATE ops.extract_file SET status = 'superseded', superseded_by = %(file_id)s"
            " WHERE agency_code = %(agency)s AND extract_date = %(extract_date)s"
            " AND status = 'loaded' AND file_id <> %(file_id)s RETURNING file_id", params)]
        if superseded:
            conn.execute(
                "INSERT INTO affected_incident SELECT DISTINCT v.agency_code, v.incident_id"
                " FROM core.call_version v WHERE v.file_id = ANY(%s) AND NOT EXISTS ("
                " SELECT 1 FROM affected_incident a WHERE a.agency_code = v.agency_code"
                " AND a.incident_id = v.incident_id)", (superseded,))
            conn.execute("DELETE FROM core.call_version WHERE file_id = ANY(%s)", (superseded,))
        cur = conn.execute(sql.SQL(db.read_sql("load/insert_call_versions.sql")).format(typed=typed), params)
        result.rows_loaded = cur.rowcount
        # Temp tables are never auto-analysed and a fresh warehouse looks empty to the
        # planner: without statistics the next statements pick nested loops.
        conn.execute("ANALYZE pg_temp.affected_incident")
        conn.execute("SELECT core.analyze_for_load('call_version')")  # see migration 006
        conn.execute(db.read_sql("load/current_winners.sql"))
        conn.execute("ANALYZE pg_temp.current_winner")
        conn.execute(db.read_sql("load/update_current_calls.sql"))
        conn.execute(db.read_sql("load/insert_current_calls.sql"))
        # The contact and stale-row statements join core.call, just rewritten: with the old
        # statistics a large first load was planned as a nested loop (minutes at 1M rows).
        conn.execute("SELECT core.analyze_for_load('call')")
        conn.execute(db.read_sql("load/drop_orphaned_current_calls.sql"))
        conn.execute(db.read_sql("load/refresh_contacts.sql"))
        conn.execute(sql.SQL(db.read_sql("load/upsert_contacts.sql")).format(typed=typed), params)
        broken = conn.execute(db.read_sql("load/check_integrity.sql"), params).fetchone()
        broken = {name: n for name, n in broken.items() if n}
        if broken:  # a bug, not bad data: nothing of this merge may stay
            raise RuntimeError(f"{delivery.agency_code} {delivery.extract_date}: merge left broken "
                               f"references {broken}; rolled back")
        result.rows_stale = conn.execute(
            "SELECT count(*) AS n FROM core.call_version v JOIN core.call c"
            " USING (agency_code, incident_id) WHERE v.file_id = %s AND c.file_id <> %s",
            (file_id, file_id)).fetchone()["n"]
    conn.commit()


def incident_id_if_wellformed(value: str | None) -> str | None:
    return value if value and INCIDENT_ID_RE.fullmatch(value) else None
