"""Reference implementation of the Outreach intake API v1, used as the test double.

Start it in tests with :func:`outreach_ref.testing.run_server`; run it by hand with
``python -m outreach_ref --host 127.0.0.1 --port 8765`` (configuration from ``OUTREACH_*``).
"""

from .config import ServiceConfig

__all__ = ["ServiceConfig", "create_app"]


def __getattr__(name: str):
    # create_app pulls in FastAPI; import it lazily so `from outreach_ref import ServiceConfig`
    # stays cheap (e.g. in an Airflow DAG file or a conftest).
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
