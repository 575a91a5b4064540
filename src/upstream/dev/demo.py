"""The demo's calendar: shared by the CLI defaults and the local stack (`make run`).

Its own module so that neither imports the other (dev.cli <-> dev.server was a cycle).
"""

from __future__ import annotations

from datetime import date

DEMO_START = date(2024, 5, 6)  # the program's launch
DEMO_DAYS = 21
DEMO_HISTORY_DAYS = 365  # pre-launch history imported for the monitoring baseline
