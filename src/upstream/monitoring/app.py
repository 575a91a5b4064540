"""The program-monitoring web app, mounted in the Airflow API server by plugins/upstream_monitoring.py.

Routes (under the plugin's url_prefix, /upstream-monitoring):

* ``GET /``                   the page: charts and tables for one agency and a period
* ``GET /csv/<view>.csv``     one published view as CSV, same filters (no agency: all agencies)
* ``GET /report/board.html``  the quarterly board report, built only from the release tier
  (``upstream.outcomes.report``: read as role upstream_public); ``/report/board.pdf`` the same as PDF.
  Query parameters ``agency`` and ``quarter=2024-Q3`` (default: the latest quarter)

* ``GET /data-docs/``         the agencies' Data Docs (upstream.validate.datadocs: self-contained pages)
* ``GET /data-docs/<AGENCY>/[<page>.html]``  an agency's Data Docs index, or one validation

Query parameters: ``agency=WPS``, ``from=2024-01``, ``to=2024-06`` (months, inclusive).

Authentication and authorisation: Airflow's own. Plugin apps are *not* behind Airflow's login
by default, so the app carries the API server's dependency
``airflow.api_fastapi.core_api.security.requires_access_view(AccessView.WEBSITE)`` on every
route (``FastAPI(dependencies=...)``). It resolves the user with ``get_user``, which accepts an
``Authorization: Bearer`` token (from ``POST /auth/token``) or the Airflow UI's ``_token`` JWT
cookie, so the page opened from the Airflow menu is authenticated by the same login. No
credentials: 401 (the HTML page redirects a browser to Airflow's login page instead, and
back after login); a user the auth manager does not allow to use the UI: 403. The data is
never read before the dependency has passed. OpenAPI/docs routes are disabled, as they would
not carry the dependency.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from upstream.monitoring import data
from upstream.monitoring.csvout import to_csv
from upstream.monitoring.data import Snapshot, WarehouseUnavailable
from upstream.monitoring.render import render_page
from upstream.monitoring.views import VIEWS, Filters, month_key

log = logging.getLogger(__name__)

URL_PREFIX = "/upstream-monitoring"

SECURITY_HEADERS = {
    # The page has no script at all; styles are inline; charts are inline SVG.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

MonthFrom = Annotated[str | None, Query(alias="from")]
MonthTo = Annotated[str | None, Query(alias="to")]
Agency = Annotated[str | None, Query()]


def auth_dependency():
    """Airflow's own check: authenticated (Bearer token or UI cookie) and allowed to use the UI."""
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view

    return Depends(requires_access_view(AccessView.WEBSITE))


def _now_text() -> str:
    try:
        from upstream.settings import load_settings

        tz = load_settings().timezone
    except Exception:
        tz = UTC
    return datetime.now(tz).strftime("%Y-%m-%d %H:%M %Z")


def _base(request: Request) -> str:
    return (request.scope.get("root_path") or "").rstrip("/")


def _login_redirect(request: Request) -> Response | None:
    """For a browser asking for the page without a login: Airflow's login page, then back."""
    if request.method != "GET" or "text/html" not in request.headers.get("accept", ""):
        return None
    path = request.url.path.rstrip("/")
    if path != _base(request) and not path.startswith(_base(request) + "/data-docs"):
        return None
    try:
        from airflow.api_fastapi.app import get_auth_manager

        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(get_auth_manager().get_url_login(next_url=target),
                                status_code=303, headers=SECURITY_HEADERS)
    except Exception:  # no auth manager (tests) or no login page: plain 401 then
        log.debug("monitoring: no login redirect", exc_info=True)
        return None


def _filename(name: str, filters: Filters) -> str:
    parts = ["upstream", name, filters.agency or "all-agencies"]
    if filters.month_from:
        parts.append("from-" + month_key(filters.month_from))
    if filters.month_to:
        parts.append("to-" + month_key(filters.month_to))
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "_".join(parts)) + ".csv"


def create_app(*, protect: bool = True) -> FastAPI:
    """The monitoring app. ``protect=False`` exists for rendering tests only."""
    app = FastAPI(
        title="Upstream program monitoring",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[auth_dependency()] if protect else [],
    )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 401:
            redirect = _login_redirect(request)
            if redirect is not None:
                return redirect
        response = await http_exception_handler(request, exc)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.get("/", response_class=HTMLResponse)
    async def page(request: Request, agency: Agency = None, month_from: MonthFrom = None,
                   month_to: MonthTo = None) -> HTMLResponse:
        base = _base(request)
        try:
            filters = Filters.parse(agency, month_from, month_to)
        except ValueError as exc:
            html = render_page(Snapshot(Filters()), base=base, generated_at=_now_text(),
                               error=f"Please check the filters: {exc}")
            return HTMLResponse(html, status_code=400, headers=SECURITY_HEADERS)
        try:
            snapshot = await asyncio.to_thread(data.load, filters)
        except WarehouseUnavailable:
            html = render_page(Snapshot(filters), base=base, generated_at=_now_text(),
                               error="The figures cannot be read right now (the warehouse "
                                     "is not reachable). Please try again later.")
            return HTMLResponse(html, status_code=503, headers=SECURITY_HEADERS)
        html = await asyncio.to_thread(render_page, snapshot, base=base,
                                       generated_at=_now_text())
        return HTMLResponse(html, headers=SECURITY_HEADERS)

    @app.get("/csv/{name}.csv")
    async def csv_download(name: str, agency: Agency = None, month_from: MonthFrom = None,
                           month_to: MonthTo = None) -> Response:
        if name not in VIEWS:
            raise HTTPException(404, "no such table")
        try:
            filters = Filters.parse(agency, month_from, month_to)
        except ValueError as exc:
            return PlainTextResponse(str(exc), status_code=400, headers=SECURITY_HEADERS)
        try:
            snapshot = await asyncio.to_thread(data.load, filters, [name], default_agency=False)
        except WarehouseUnavailable:
            return PlainTextResponse("the warehouse is not reachable", status_code=503,
                                     headers=SECURITY_HEADERS)
        if name in snapshot.unavailable:
            return PlainTextResponse(f"{name} is unavailable: {snapshot.unavailable[name]}",
                                     status_code=404, headers=SECURITY_HEADERS)
        body = to_csv(VIEWS[name], snapshot.tables.get(name, []))
        headers = dict(SECURITY_HEADERS)
        headers["Content-Disposition"] = f'attachment; filename="{_filename(name, filters)}"'
        return Response(body.encode("utf-8"), media_type="text/csv; charset=utf-8",
                        headers=headers)

    @app.get("/report/board.{fmt}")
    async def board_report(fmt: str, agency: Agency = None,
                           quarter: Annotated[str | None, Query()] = None) -> Response:
        from upstream.outcomes import report

        if fmt not in ("html", "pdf"):
            raise HTTPException(404, "no such report format")
        try:
            filters = Filters.parse(agency, None, None)
            chosen = report.parse_quarter(quarter)
        except ValueError as exc:
            return PlainTextResponse(str(exc), status_code=400, headers=SECURITY_HEADERS)
        try:
            release = await asyncio.to_thread(report.load_release, filters.agency, chosen)
        except report.ReleaseUnavailable as exc:
            log.error("monitoring: board report unavailable: %s", exc)
            return PlainTextResponse("the release tier cannot be read right now",
                                     status_code=503, headers=SECURITY_HEADERS)
        html = await asyncio.to_thread(report.render_html, release)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", "_".join(
            ["upstream", "board-report", release.agency or "none",
             report.quarter_label(release.quarter).replace(" ", "-")
             if release.quarter else "no-quarter"]))
        headers = dict(SECURITY_HEADERS)
        if fmt == "html":
            headers["Content-Disposition"] = f'inline; filename="{name}.html"'
            return HTMLResponse(html, headers=headers)
        pdf = await asyncio.to_thread(report.render_pdf, html)
        headers["Content-Disposition"] = f'attachment; filename="{name}.pdf"'
        return Response(pdf, media_type="application/pdf", headers=headers)

    @app.get("/data-docs/", response_class=HTMLResponse)
    async def data_docs_home() -> HTMLResponse:
        return HTMLResponse(await asyncio.to_thread(_data_docs_home), headers=SECURITY_HEADERS)

    @app.get("/data-docs/{agency}/", response_class=HTMLResponse)
    @app.get("/data-docs/{agency}/{page}", response_class=HTMLResponse)
    async def data_docs(agency: str, page: str = "index.html") -> Response:
        path = await asyncio.to_thread(_data_docs_file, agency, page)
        if path is None:
            raise HTTPException(404, "no such Data Docs page")
        return HTMLResponse(await asyncio.to_thread(path.read_text, encoding="utf-8"),
                            headers=SECURITY_HEADERS)

    return app


def _data_docs_home() -> str:
    import html

    from upstream.contract import AGENCY_CODE_RE
    from upstream.settings import load_settings
    from upstream.validate import datadocs

    gx_dir = load_settings().validate.gx_dir
    agencies = sorted(p.name for p in gx_dir.iterdir() if AGENCY_CODE_RE.match(p.name)
                      and datadocs.index_path(gx_dir, p.name).is_file()) if gx_dir.is_dir() else []
    items = "".join(f'<li><a href="{a}/">{html.escape(a)}</a></li>' for a in agencies)
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Data Docs</title>'
            '</head><body style="font-family:system-ui,sans-serif;margin:2rem"><h1>Data Docs</h1>'
            + (f"<ul>{items}</ul>" if items else "<p>No validation has run yet.</p>")
            + "</body></html>")


def _data_docs_file(agency: str, page: str):
    """The file for an agency's page, or None: names are checked, never joined blindly."""
    from upstream.contract import AGENCY_CODE_RE
    from upstream.settings import load_settings
    from upstream.validate import datadocs

    if not AGENCY_CODE_RE.match(agency) or not datadocs.PAGE_RE.match(page):
        return None
    folder = datadocs.docs_dir(load_settings().validate.gx_dir, agency)
    path = folder / page
    if path.is_symlink() or not path.is_file() or path.resolve().parent != folder.resolve():
        return None
    return path
