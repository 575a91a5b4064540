"""The outreach service as a resource: one interface, an HTTP implementation, where it lives.

`OutreachClient` has the three calls of shared/contracts/outreach-api-v1.md. Each makes ONE
request and returns an `Answer`; retrying is the policy's job (routing/policy.py), so every
implementation (HTTP here, the in-memory fake in routing/fake.py) is retried the same way.
Shaped like dagster's `HNClient` resource in examples/project_fully_featured.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Protocol

import httpx

from upstream.settings import Settings, outreach_token

log = logging.getLogger(__name__)

OUTREACH_CONN_ID = "upstream_outreach"
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})


@dataclass(frozen=True)
class Answer:
    """One request's outcome. `status` None: no answer at all (timeout, refused, dropped)."""

    status: int | None
    body: Any = None
    retry_after: float | None = None
    error: str | None = None  # transport error class name, for logs (never a value)

    @property
    def unknown(self) -> bool:
        """Nothing is known: the server may or may not have done the work (contract)."""
        return self.status is None or self.status in TRANSIENT_STATUSES

    @property
    def throttled(self) -> bool:
        return self.status == 429

    def describe(self) -> str:
        return f"transport: {self.error}" if self.status is None else f"HTTP {self.status}"


class OutreachClient(Protocol):
    def send(self, payload: dict) -> Answer:
        """POST /v1/referrals with Idempotency-Key = payload's referral_id."""

    def withdraw(self, referral_id: str) -> Answer:
        """POST /v1/referrals/{referral_id}/withdrawal."""

    def events(self, cursor: str | None, limit: int) -> Answer:
        """GET /v1/referral-events?after=cursor&limit=limit."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class OutreachEndpoint:
    base_url: str
    token: str
    source: str  # "airflow connection upstream_outreach" or "environment"


def _retry_after_seconds(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None  # an HTTP-date: the policy uses its default pause


def http_date(moment: datetime) -> str:
    """RFC 9110 IMF-fixdate, e.g. 'Tue, 07 May 2024 04:00:00 GMT'."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


class HttpOutreachClient:
    """`date`: sent as the HTTP `Date` of every request (replays: the routing clock's "now",
    which a server may follow, see outreach_ref's clock_follows_client); None sends none."""

    def __init__(self, endpoint: OutreachEndpoint, timeout_seconds: float,
                 transport: httpx.BaseTransport | None = None, date: datetime | None = None):
        headers = {"Authorization": f"Bearer {endpoint.token}"}
        if date is not None:
            headers["Date"] = http_date(date)
        self._http = httpx.Client(
            base_url=endpoint.base_url,
            headers=headers,
            timeout=timeout_seconds,
            transport=transport,
        )

    def _request(self, method: str, path: str, **kwargs) -> Answer:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:  # timeout, refused, dropped: nothing is known
            return Answer(None, error=type(exc).__name__)
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None  # a proxy's HTML error page: the status says enough
        return Answer(response.status_code, body, _retry_after_seconds(response))

    def send(self, payload: dict) -> Answer:
        return self._request("POST", "/v1/referrals", json=payload,
                             headers={"Idempotency-Key": payload["referral_id"]})

    def withdraw(self, referral_id: str) -> Answer:
        return self._request("POST", f"/v1/referrals/{referral_id}/withdrawal")

    def events(self, cursor: str | None, limit: int) -> Answer:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["after"] = cursor
        return self._request("GET", "/v1/referral-events", params=params)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HttpOutreachClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _airflow_connection():
    """The `upstream_outreach` Airflow connection, or None when Airflow has none (or is not
    installed where this runs). Inside a task this goes through the task SDK, so secrets
    backends and the UI's connections work; outside, AIRFLOW_CONN_UPSTREAM_OUTREACH does."""
    try:
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException
    except ImportError:
        return None
    try:
        return BaseHook.get_connection(OUTREACH_CONN_ID)
    except AirflowNotFoundException:
        return None


def _url_of(conn) -> str:
    host = (conn.host or "").rstrip("/")
    if "://" in host:
        base = host
    else:
        scheme = conn.schema or "http"  # HTTP connections keep the scheme in `schema`
        base = f"{scheme}://{host}"
    if conn.port and f":{conn.port}" not in base.split("://", 1)[1]:
        base = f"{base}:{conn.port}"
    return base


def resolve_endpoint(settings: Settings, *, use_airflow: bool) -> OutreachEndpoint:
    """Where the outreach service is and its token: the Airflow connection `upstream_outreach`
    (an HTTP connection, token as its password) first when `use_airflow`, else (or when there
    is none) UPSTREAM_OUTREACH_URL / UPSTREAM_OUTREACH_TOKEN."""
    if use_airflow:
        conn = _airflow_connection()
        if conn is not None and conn.host:
            if not conn.password:
                raise ValueError(f"Airflow connection {OUTREACH_CONN_ID} has no password "
                                 "(the outreach API token)")
            return OutreachEndpoint(_url_of(conn), conn.password,
                                    f"airflow connection {OUTREACH_CONN_ID}")
    return OutreachEndpoint(settings.outreach.url, outreach_token(), "environment")


def http_client(settings: Settings, *, use_airflow: bool = False,
                date: datetime | None = None) -> HttpOutreachClient:
    endpoint = resolve_endpoint(settings, use_airflow=use_airflow)
    log.info("outreach service at %s (from %s)%s", endpoint.base_url, endpoint.source,
             f", requests dated {date.isoformat()} (routing clock)" if date else "")
    return HttpOutreachClient(endpoint, settings.outreach.timeout_seconds, date=date)
