"""Airflow Assets that Upstream's DAGs publish and schedule on."""

from airflow.sdk import Asset

# Updated whenever a night's load changed core.call; routing and outcomes schedule on it.
LOADED_CALLS = Asset(name="upstream_loaded_calls", uri="upstream://warehouse/core/call",
                     group="upstream")

# Updated whenever routing's status sync stored the outreach service's referral events in
# routing.referral_event; outcomes schedule on it (funnel, time to first contact).
REFERRAL_EVENTS = Asset(name="upstream_referral_events",
                        uri="upstream://warehouse/routing/referral_event", group="upstream")
