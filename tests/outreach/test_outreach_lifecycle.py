"""Restarts, crashes, configuration and the ways of starting the server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from outreach_helpers import TOKEN, all_events, make_referral, post_referral

from outreach_ref import ServiceConfig
from outreach_ref.testing import run_server


def test_restart_keeps_data_cursor_and_simulation(tmp_path):
    config = ServiceConfig(token=TOKEN, db_path=str(tmp_path / "o.sqlite3"), seed=5)
    t0 = datetime(2024, 6, 2, tzinfo=UTC)
    with run_server(config) as server:
        with server.client() as api:
            server.set_clock(now=t0)
            for i in range(5):
                assert post_referral(api, make_referral(f"r_rs_{i}")).status_code == 201
            api.post("/v1/referrals/r_rs_0/withdrawal")
            server.simulate(t0 + timedelta(hours=20))
            before, cursor = all_events(api)
            first_pid = server.pid

            server.restart()
            assert server.pid != first_pid
            assert len(server.referrals()) == 5
            assert server.referral("r_rs_0")["contact_present"] is False
            assert post_referral(api, make_referral("r_rs_1")).status_code == 200  # replay
            assert api.get("/v1/referral-events", params={"after": cursor}).json() == {
                "events": [],
                "next_cursor": cursor,
            }
            again, _ = all_events(api)
            assert again == before

            server.kill()  # crash
            with pytest.raises(httpx.ConnectError):
                api.get("/v1/referral-events")
            server.start()
            server.simulate(t0 + timedelta(days=60))
            after, _ = all_events(api, after=cursor)
            assert after and not {e["event_id"] for e in after} & {e["event_id"] for e in before}
            assert not [e for e in after if e["referral_id"] == "r_rs_0"]


def test_hard_restart_mid_batch_with_a_retrying_client(tmp_path):
    config = ServiceConfig(token=TOKEN, db_path=str(tmp_path / "o.sqlite3"))
    with run_server(config) as server:
        ids = [f"r_batch_{i:03d}" for i in range(120)]
        statuses: dict[str, list] = {}

        def send_all() -> None:
            with server.client(timeout=5) as api:
                for rid in ids:
                    body = make_referral(rid)
                    seen = statuses.setdefault(rid, [])
                    for _attempt in range(100):
                        try:
                            response = post_referral(api, body)
                        except httpx.TransportError:
                            seen.append("transport")
                            time.sleep(0.02)
                            continue
                        seen.append(response.status_code)
                        if response.status_code in (200, 201):
                            break

        worker = threading.Thread(target=send_all)
        worker.start()
        while len(statuses) < 30:
            time.sleep(0.005)
        server.restart(hard=True)
        worker.join(30)
        assert not worker.is_alive()
        assert all(seen[-1] in (200, 201) for seen in statuses.values())
        held = server.referrals()
        assert sorted(r["referral_id"] for r in held) == ids
        with server.client() as api:
            events, _ = all_events(api)
        received = [e["referral_id"] for e in events if e["type"] == "received"]
        assert sorted(received) == ids  # exactly once each


def test_thread_mode_and_restart():
    with run_server(ServiceConfig(token=TOKEN), mode="thread") as server:
        with server.client() as api:
            assert post_referral(api, make_referral("r_thread")).status_code == 201
            server.restart()
            assert post_referral(api, make_referral("r_thread")).status_code == 200
            server.set_faults(drop_connection_rate=1.0)
            with pytest.raises(httpx.TransportError):
                post_referral(api, make_referral("r_thread_2"))


def test_config_from_env_round_trip():
    env = {
        "OUTREACH_TOKEN": "abc",
        "OUTREACH_DB_PATH": "/tmp/x.sqlite3",
        "OUTREACH_RATE_LIMIT_PER_SECOND": "2.5",
        "OUTREACH_ERROR_RATE": "0.1",
        "OUTREACH_ERROR_AFTER_COMMIT_RATE": "0.05",
        "OUTREACH_DROP_CONNECTION_RATE": "0.02",
        "OUTREACH_LATENCY_MS": "20",
        "OUTREACH_FAULT_ROUTES": "create,withdraw",
        "OUTREACH_SEED": "42",
        "OUTREACH_ADMIN_ENABLED": "false",
        "OUTREACH_TIMEZONE": "America/Toronto",
        "UNRELATED": "x",
    }
    config = ServiceConfig.from_env(env)
    assert config.token == "abc" and config.db_path == "/tmp/x.sqlite3"
    assert config.rate_limit_per_second == 2.5 and config.error_rate == 0.1
    assert config.error_after_commit_rate == 0.05 and config.drop_connection_rate == 0.02
    assert config.latency_ms == 20 and config.seed == 42 and config.admin_enabled is False
    assert config.fault_routes == ("create", "withdraw")
    assert ServiceConfig.from_env(config.to_env()) == config
    with pytest.raises(ValueError):
        ServiceConfig.from_env({})
    with pytest.raises(ValueError):
        ServiceConfig.from_env({"OUTREACH_TOKEN": "a", "OUTREACH_ERROR_RATE": "lots"})
    with pytest.raises(ValueError):
        ServiceConfig(token="a", error_rate=0.7, error_after_commit_rate=0.7)
    with pytest.raises(ValueError):
        ServiceConfig(token="a", fault_routes=("everything",))


def test_admin_can_be_disabled_and_has_its_own_token():
    config = ServiceConfig(token=TOKEN, admin_token="admin-secret", timezone="America/Toronto")
    with run_server(config, mode="thread") as server:
        assert (
            httpx.get(
                f"{server}/_admin/referrals", headers={"Authorization": f"Bearer {TOKEN}"}
            ).status_code
            == 401
        )
        assert server.referrals() == []
        with server.client() as api:
            post_referral(api, make_referral("r_tz"))
            event = api.get("/v1/referral-events").json()["events"][0]
        assert event["occurred_at"][-6:] in ("-04:00", "-05:00")
    with run_server(ServiceConfig(token=TOKEN, admin_enabled=False), mode="thread") as server:
        response = httpx.get(
            f"{server}/_admin/referrals", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert response.status_code == 404


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_command_line_entry_point(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    env.update(OUTREACH_TOKEN=TOKEN, OUTREACH_DB_PATH=str(tmp_path / "cli.sqlite3"))
    log = open(tmp_path / "cli.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "outreach_ref", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        headers = {"Authorization": f"Bearer {TOKEN}"}
        while True:
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/v1/referrals",
                    json=make_referral("r_cli"),
                    headers={**headers, "Idempotency-Key": "r_cli"},
                )
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        assert response.status_code == 201
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
    text = (tmp_path / "cli.log").read_text()
    assert "POST /v1/referrals 201" in text
    assert "Avelina" not in text

    bad = subprocess.run(
        [sys.executable, "-m", "outreach_ref"],
        env={**env, "OUTREACH_TOKEN": ""},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2 and "OUTREACH_TOKEN" in bad.stderr


def test_schema_file_is_package_data():
    """store.py reads its SQLite schema from schema.sql beside it; pyproject ships that file."""
    import fnmatch
    import tomllib
    from pathlib import Path

    from outreach_ref import store

    repo_root = Path(__file__).resolve().parents[2]
    pyproject = tomllib.loads((repo_root / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["outreach_ref"]
    assert any(fnmatch.fnmatch("schema.sql", g) for g in globs)
    assert "CREATE TABLE IF NOT EXISTS referrals" in store.SCHEMA
