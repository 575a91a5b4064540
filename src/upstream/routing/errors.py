"""Errors routing raises; each carries a message that is safe to log and alert (no values)."""

from __future__ import annotations


class RoutingError(Exception):
    def __init__(self, public_message: str):
        super().__init__(public_message)
        self.public_message = public_message


class TransientDeliveryError(RoutingError):
    """Some calls got no definitive answer this run; their work stays queued and is retried."""


class OutreachAuthError(RoutingError):
    """401/403: our token or the server's configuration is wrong. Retrying cannot help, so the
    task stops (no Airflow retries) and the data team is alerted."""


class OutreachProtocolError(RoutingError):
    """An answer the contract does not allow for this call (e.g. 404 on POST /v1/referrals)."""
