"""Fernet key rotation on real Airflow 3.3.2 + PostgreSQL: a connection written under the old key reads
under the rotation config (`new,old`, as fernetKeyVersion+1 renders it), `airflow rotate-fernet-key`
re-encrypts it, and it then reads with the new key alone (what the bump after renders)."""

from __future__ import annotations

import json

from preview.harness import run_program

from .pod import AIRFLOW_VENV, find, secret_data

AIRFLOW = str(AIRFLOW_VENV / "bin" / "airflow")
CONN_ID = "fernet_rotation_probe"


def rendered_fernet_key(version: int) -> str:
    capture = run_program("dev", {**_dev_config(), "airflow-gke:fernetKeyVersion": str(version)})
    secret = capture.one("kubernetes:core/v1:Secret", "airflow-secrets").inputs["stringData"]
    return secret["fernet-key"]


def _dev_config() -> dict[str, str]:
    from tests.conftest import stack_config
    return stack_config("dev")


def test_rotation_keeps_connections_readable(migration_job, migrated, rendered):
    old = secret_data(find(rendered, "Secret", "airflow-secrets"))["fernet-key"]
    rotation = rendered_fernet_key(2)
    new, previous = rotation.split(",")
    assert previous == old

    def airflow(key: str, *args: str):
        result = migration_job.run("db-migrate", {"AIRFLOW__CORE__FERNET_KEY": key,
                                                  "AIRFLOW__LOGGING__REMOTE_LOGGING": "False"},
                                   argv=[AIRFLOW, *args], timeout=60)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    def password(key: str) -> str:
        return json.loads(airflow(key, "connections", "get", CONN_ID, "-o", "json"))[0]["password"]

    migration_job.run("db-migrate", {"AIRFLOW__CORE__FERNET_KEY": old}, argv=[AIRFLOW, "connections", "delete",
                                                                             CONN_ID], timeout=60)
    airflow(old, "connections", "add", CONN_ID, "--conn-type", "http", "--conn-password", "s3cret")
    assert password(rotation) == "s3cret"  # the rollout onto `new,old`: still readable
    airflow(rotation, "rotate-fernet-key")
    assert password(new) == "s3cret"  # re-encrypted: the next bump may drop the old key
    result = migration_job.run("db-migrate", {"AIRFLOW__CORE__FERNET_KEY": old}, argv=[
        AIRFLOW, "connections", "get", CONN_ID, "-o", "json"], timeout=60)
    assert result.returncode != 0 or "s3cret" not in result.stdout  # the old key alone no longer reads it
