"""docker-compose.yml without a Docker engine (there is none here): the Compose spec's schema,
every path it names, one image and one configuration for every Airflow service, no inline
secret. tests/integration/test_celery_stack.py runs the same topology natively."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
AIRFLOW_SERVICES = ("airflow-init", "airflow-apiserver", "airflow-scheduler",
                    "airflow-dag-processor", "airflow-triggerer", "airflow-worker")
# Settings that must be identical in every Airflow service (a different JWT secret fails task
# runs with "Invalid auth token"; a different Fernet key cannot read stored connections).
SHARED_SETTINGS = ("AIRFLOW__CORE__EXECUTOR", "AIRFLOW__CELERY__BROKER_URL",
                   "AIRFLOW__CELERY__RESULT_BACKEND", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                   "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET",
                   "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
                   "UPSTREAM_DATABASE_URL", "UPSTREAM_OUTREACH_TOKEN", "UPSTREAM_AGENCIES")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY$")
REQUIRED_VAR = re.compile(r"\$\{([A-Z0-9_]+):\?[^}]*\}")


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _services() -> dict:
    return _compose()["services"]


def test_validates_against_the_compose_specification():
    checker = Path(sys.executable).parent / "check-jsonschema"
    done = subprocess.run([str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_official_celery_topology():
    services = _services()
    assert set(AIRFLOW_SERVICES) | {"postgres", "redis", "outreach"} <= set(services)
    assert services["airflow-worker"]["command"] == "celery worker"
    # `--scale airflow-worker=N` needs replicas without a fixed name or a published host port
    assert "container_name" not in services["airflow-worker"]
    assert "ports" not in services["airflow-worker"]
    init = services["airflow-init"]["command"]
    assert init[-1] == "/opt/upstream/docker/airflow-init.sh"
    script = (ROOT / "docker" / "airflow-init.sh").read_text()
    assert "airflow db migrate" in script and "upstream db migrate" in script
    assert "/run/secrets/airflow_admin_password" in script


def test_every_service_restarts_and_every_long_running_one_has_a_health_check():
    for name, svc in _services().items():
        assert svc.get("restart"), name
        if name != "airflow-init":  # one-shot: others wait for service_completed_successfully
            assert svc["healthcheck"]["test"], name


def test_airflow_services_share_image_secrets_and_settings():
    services = _services()
    first = services[AIRFLOW_SERVICES[0]]
    for name in AIRFLOW_SERVICES:
        svc = services[name]
        assert svc["image"] == first["image"] and svc["build"] == first["build"], name
        assert svc["secrets"] == first["secrets"], name
        env = svc["environment"]
        for key in SHARED_SETTINGS:
            assert env[key] == first["environment"][key], (name, key)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/")
        # Airflow's metadata and the warehouse: separate databases, separate logins
        assert "//upstream_airflow:" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres:5432/airflow")
        assert env["UPSTREAM_DATABASE_URL"].startswith("postgresql://upstream:")
        assert env["UPSTREAM_DATABASE_URL"].endswith("@postgres:5432/upstream")
        if name != "airflow-init":
            deps = svc["depends_on"]
            assert deps["airflow-init"]["condition"] == "service_completed_successfully"
            assert deps["postgres"]["condition"] == deps["redis"]["condition"] == "service_healthy"
    # the outreach service is the same image; its token is the one Upstream sends
    outreach = services["outreach"]
    assert outreach["image"] == first["image"]
    assert (outreach["environment"]["OUTREACH_TOKEN"]
            == first["environment"]["UPSTREAM_OUTREACH_TOKEN"])


def _secret_values(node, path=""):
    """(path, value) of every mapping entry whose key names a secret, anywhere in the file."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}"
            if isinstance(value, str | int) and SECRET_NAME.search(str(key)):
                yield here, str(value)
            yield from _secret_values(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _secret_values(value, f"{path}[{i}]")


def test_no_secret_is_inline():
    found = list(_secret_values(_compose()))
    assert len(found) >= 10
    for where, value in found:
        if where.endswith("PASSWORDS_FILE") or where.endswith("_KEY_FILE"):
            continue  # paths to secret files, not secrets
        assert REQUIRED_VAR.fullmatch(value), (where, value)
    # credentials inside URLs come from .env as well
    for url in re.findall(r"\w+(?:\+\w+)*://[^\s\"']+@", COMPOSE.read_text()):
        assert re.search(r"://[a-z_]+:\$\{[A-Z_]+:\?", url), url
    # the file's own secrets come from environment variables, never from files in the repo
    for name, secret in _compose()["secrets"].items():
        assert set(secret) == {"environment"}, name


def test_env_example_names_every_required_variable_with_no_value():
    required = set(REQUIRED_VAR.findall(COMPOSE.read_text()))
    example = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            example[key] = value
    secrets = {"AIRFLOW_ADMIN_PASSWORD", "UPSTREAM_PSEUDONYM_KEY"} | {
        k for k in required if SECRET_NAME.search(k)}
    assert required | secrets <= set(example)
    for key in secrets:
        assert example[key] == "", f".env.example must not carry a value for {key}"
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert ignored.returncode == 0, ".env must be git-ignored"


def test_every_path_build_context_and_script_exists():
    compose = _compose()
    for name, svc in compose["services"].items():
        build = svc.get("build")
        if build:
            context = ROOT / build["context"]
            assert context.is_dir(), name
            assert (context / build["dockerfile"]).is_file(), name
        for volume in svc.get("volumes", []):
            source = re.match(r"(\$\{[^}]*\}|[^:]+)", volume).group(1)
            default = re.fullmatch(r"\$\{[A-Z_]+:-(.+)\}", source)
            if default:  # a host directory the user may choose; the default is created at run
                assert default.group(1).startswith("./"), source
            elif source.startswith("./"):
                assert (ROOT / source).exists(), (name, source)
            else:
                assert source in compose["volumes"], (name, source)
    assert (ROOT / "docker" / "postgres-init.sh").stat().st_mode & 0o111
    # what the Dockerfile copies exists, and the init script the compose file runs is copied
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = []
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            parts = [p for p in line.split()[1:] if not p.startswith("--")]
            for source in parts[:-1]:
                assert (ROOT / source).exists(), source
            copied.append((parts[:-1], parts[-1]))
    assert (["docker/airflow-init.sh"], "/opt/upstream/docker/airflow-init.sh") in copied


def test_image_pins_the_airflow_of_the_lock():
    lock = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().split())
    base = re.search(r"^FROM apache/airflow:(\S+)-python(\S+)$",
                     (ROOT / "Dockerfile").read_text(), re.M)
    assert base and base.group(1) == lock["apache-airflow"]
    assert base.group(2) == "3.11"  # pyproject: requires-python 3.11
    assert "apache-airflow-providers-celery" in lock


@pytest.mark.parametrize("script", ["docker/postgres-init.sh", "docker/airflow-init.sh"])
def test_scripts_are_valid_bash(script):
    assert subprocess.run(["bash", "-n", str(ROOT / script)]).returncode == 0
