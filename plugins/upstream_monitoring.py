"""Airflow plugin: the program-monitoring page, inside the Airflow UI.

Mounts the FastAPI app from ``upstream.monitoring.app`` at /upstream-monitoring in the API
server and adds "Program monitoring" to the Browse menu (shown in the UI at
/plugin/upstream-monitoring, framing /upstream-monitoring/). Every route of the app requires
an Airflow login (Bearer token or the UI's session cookie); see the app's docstring.

Airflow imports every .py file in plugins/ as a top-level module, so this file only wires;
the code lives in src/upstream/monitoring/.
"""

from __future__ import annotations

import base64

from airflow.plugins_manager import AirflowPlugin

from upstream.monitoring.app import URL_PREFIX, create_app

# A data URI: a path would be resolved against the UI's <base href> and need a static route.
_ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" '
    'stroke="#4a5568" stroke-width="2" stroke-linecap="round"><path d="M4 20h16"/>'
    '<path d="M7 16v-5"/><path d="M12 16V6"/><path d="M17 16v-8"/></svg>'
)
ICON_DATA_URI = "data:image/svg+xml;base64," + base64.b64encode(_ICON.encode()).decode("ascii")


class UpstreamMonitoringPlugin(AirflowPlugin):
    name = "upstream_monitoring"

    fastapi_apps = [
        {
            "app": create_app(),
            "url_prefix": URL_PREFIX,
            "name": "Program monitoring",
        }
    ]

    external_views = [
        {
            "name": "Program monitoring",
            # Relative to the UI's base URL, so a deployment under a sub-path keeps working.
            "href": URL_PREFIX.lstrip("/") + "/",
            "destination": "nav",
            "category": "browse",
            "url_route": "upstream-monitoring",
            "icon": ICON_DATA_URI,
        },
        {
            # Validation results (upstream.datadocs), behind the same login.
            "name": "Data Docs",
            "href": URL_PREFIX.lstrip("/") + "/data-docs/",
            "destination": "nav",
            "category": "browse",
            "url_route": "upstream-data-docs",
            "icon": ICON_DATA_URI,
        },
    ]
