"""Reading the published views: read-only, as the least-privileged role available.

Where the page connects: ``UPSTREAM_MONITORING_DATABASE_URL`` (a libpq URL) if set, else the
warehouse (``upstream.warehouse.db.warehouse_url()``: ``UPSTREAM_DATABASE_URL`` or the embedded server).

How it is kept to reading published figures:

* every request runs in one ``READ ONLY`` transaction with a statement timeout;
* if the role ``upstream_analyst`` exists (or the one named by ``UPSTREAM_MONITORING_DB_ROLE``)
  and the login user is a member of it, the transaction runs ``SET LOCAL ROLE`` to it first,
  so whatever the login user may do, the queries run with only that role's grants. The role is
  meant to have ``USAGE`` on schema ``published`` and ``SELECT`` on its views and nothing on
  ``core``/``contact``/``routing`` (row-level person data). Best of all, give the page its own
  login (``UPSTREAM_MONITORING_DATABASE_URL``) that is a member of that role only;
* the queries name only views listed in ``views.VIEWS``, through ``psycopg.sql.Identifier``,
  with every filter value passed as a parameter.

Everything here blocks; the FastAPI app calls it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from upstream.monitoring.views import SCHEMA, TOTAL_COLUMN, VIEWS, Filters

log = logging.getLogger(__name__)

DEFAULT_ROLE = "upstream_analyst"
STATEMENT_TIMEOUT_MS = 30_000

_url_lock = threading.Lock()
_warehouse_url: str | None = None
_role_notes: set[str] = set()


class WarehouseUnavailable(RuntimeError):
    """The warehouse could not be reached (shown as 503, without details)."""


def database_url() -> str:
    from upstream.settings import load_monitoring

    explicit = load_monitoring().database_url
    if explicit:
        return explicit
    global _warehouse_url
    with _url_lock:
        if _warehouse_url is None:
            from upstream.warehouse.db import warehouse_url

            _warehouse_url = warehouse_url()
        return _warehouse_url


def reader_role() -> str | None:
    """The role to read as; '' in UPSTREAM_MONITORING_DB_ROLE turns the switch off."""
    from upstream.settings import load_monitoring

    return load_monitoring().db_role


@dataclass
class Snapshot:
    """Everything one page (or one CSV) shows."""

    filters: Filters
    agencies: list[str] = field(default_factory=list)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)  # view -> short reason
    role: str | None = None  # the role the queries ran as, if switched
    # published.build_info (reference_date, program_launch_date, repeat_windows_days): what
    # the build was judged against; None when unavailable (the page then says less)
    build: dict[str, Any] | None = None


def _note_once(message: str, *args: object) -> None:
    key = message % args
    if key not in _role_notes:
        _role_notes.add(key)
        log.warning(message, *args)


def _assume_role(conn: psycopg.Connection) -> str | None:
    role = reader_role()
    if role is None:
        return None
    row = conn.execute(
        "SELECT pg_has_role(current_user, oid, 'MEMBER') AS member FROM pg_roles"
        " WHERE rolname = %s",
        (role,),
    ).fetchone()
    if row is None:
        _note_once("monitoring: role %s does not exist; reading as the login user", role)
        return None
    if not row["member"]:
        _note_once("monitoring: login user is not a member of role %s; reading as itself", role)
        return None
    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
    return role


def _select(view_name: str, filters: Filters) -> tuple[sql.Composed, dict[str, Any]]:
    view = VIEWS[view_name]
    where: list[sql.Composable] = []
    params: dict[str, Any] = {}
    if filters.agency is not None and not view.all_agencies:
        where.append(sql.SQL("agency_code = %(agency)s"))
        params["agency"] = filters.agency
    # a row over all months (month NULL) is shown whatever the period: it says "All months"
    either = sql.SQL(" OR {}").format(sql.Identifier(TOTAL_COLUMN)) if view.has_total \
        else sql.SQL("")
    if view.period_column and filters.month_from:
        where.append(sql.SQL("({} >= %(start)s{})").format(sql.Identifier(view.period_column),
                                                          either))
        params["start"] = filters.month_from
    if view.period_column and filters.month_to:
        where.append(sql.SQL("({} < %(end)s{})").format(sql.Identifier(view.period_column),
                                                       either))
        params["end"] = filters.end_exclusive
    query = sql.SQL("SELECT {cols} FROM {view}{where} ORDER BY {order}").format(
        cols=sql.SQL(", ").join(sql.Identifier(c) for c in view.column_names),
        view=sql.Identifier(SCHEMA, view.name),
        where=(sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where)) if where else sql.SQL(""),
        order=sql.SQL(", ").join(sql.Identifier(c) for c in view.order_by),
    )
    return query, params


def _agencies(conn: psycopg.Connection) -> list[str]:
    query = sql.SQL("SELECT DISTINCT agency_code FROM {} WHERE agency_code IS NOT NULL"
                    " ORDER BY 1").format(sql.Identifier(SCHEMA, "calls_monthly"))
    return [r["agency_code"] for r in conn.execute(query)]


def _unavailable_reason(exc: psycopg.Error) -> str:
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return "not published yet"
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return "no permission to read it"
    if isinstance(exc, psycopg.errors.UndefinedColumn):
        return "its columns differ from what this page expects"
    return "could not be read"


def load(filters: Filters, views: Iterable[str] = tuple(VIEWS), *,
         default_agency: bool = True, url: str | None = None) -> Snapshot:
    """Read the views for these filters in one read-only transaction.

    With ``default_agency`` (the page), the agency list is read too and, with no agency
    chosen, the first agency is picked (figures are per agency: medians and rates cannot be
    added up across agencies). A view that is missing or
    unreadable is reported in ``unavailable`` instead of failing the page.
    """
    names = [v for v in views if v in VIEWS]
    try:
        conn = psycopg.connect(url or database_url(), row_factory=dict_row, autocommit=True,
                               connect_timeout=10, application_name="upstream-monitoring")
    except psycopg.OperationalError as exc:
        log.error("monitoring: cannot connect to the warehouse: %s", exc)
        raise WarehouseUnavailable("the warehouse is not reachable") from exc
    try:
        with conn:
            return _read(conn, filters, names, default_agency)
    except psycopg.OperationalError as exc:  # lost connection, statement timeout
        log.error("monitoring: reading the published views failed: %s", exc)
        raise WarehouseUnavailable("the warehouse did not answer") from exc


def _read(conn: psycopg.Connection, filters: Filters, names: list[str],
          default_agency: bool) -> Snapshot:
    conn.read_only = True  # every transaction below starts READ ONLY
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(
            sql.Literal(STATEMENT_TIMEOUT_MS)))
        snapshot = Snapshot(filters=filters, role=_assume_role(conn))
        if default_agency:
            try:
                with conn.transaction():
                    snapshot.agencies = _agencies(conn)
            except psycopg.Error as exc:
                log.warning("monitoring: agency list unavailable: %s", exc)
            if filters.agency is None and snapshot.agencies:
                filters = Filters(_preferred_agency(snapshot.agencies), filters.month_from,
                                  filters.month_to)
                snapshot.filters = filters
        snapshot.build = _build_info(conn)
        for name in names:
            query, params = _select(name, filters)
            try:
                with conn.transaction():  # a savepoint: one missing view spoils nothing else
                    snapshot.tables[name] = conn.execute(query, params).fetchall()
            except (psycopg.errors.UndefinedTable, psycopg.errors.InsufficientPrivilege,
                    psycopg.errors.UndefinedColumn, psycopg.errors.InvalidSchemaName) as exc:
                log.warning("monitoring: %s.%s unavailable: %s", SCHEMA, name, exc)
                snapshot.unavailable[name] = _unavailable_reason(exc)
                snapshot.tables[name] = []
    return snapshot


def _build_info(conn: psycopg.Connection) -> dict[str, Any] | None:
    """What the published figures were judged against (one row, no counts of people)."""
    query = sql.SQL("SELECT reference_date, program_launch_date, repeat_windows_days"
                    " FROM {}").format(sql.Identifier(SCHEMA, "build_info"))
    try:
        with conn.transaction():
            return conn.execute(query).fetchone()
    except (psycopg.errors.UndefinedTable, psycopg.errors.InsufficientPrivilege,
            psycopg.errors.UndefinedColumn, psycopg.errors.InvalidSchemaName) as exc:
        # not published yet, or not readable: the page says less
        log.info("monitoring: %s.build_info unavailable: %s", SCHEMA, type(exc).__name__)
        return None


def _preferred_agency(available: list[str]) -> str:
    """The first configured agency (UPSTREAM_AGENCIES) that has figures, else the first one."""
    try:
        from upstream.settings import load_settings

        configured = load_settings().agencies
    except Exception:  # a bad setting elsewhere must not take the page down
        configured = ()
    for agency in configured:
        if agency in available:
            return agency
    return available[0]
