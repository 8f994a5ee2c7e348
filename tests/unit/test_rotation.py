"""Secrets never churn on their own; rotating one is a config change that rolls the pods."""

from __future__ import annotations

import pytest

from tests.conftest import run_stack

RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"


def secret_data(capture) -> dict:
    return capture.one("kubernetes:core/v1:Secret", "airflow-secrets").inputs["stringData"]


def pod_checksum(capture) -> str:
    deployment = next(m for _, m in capture.kubernetes_objects() if m["kind"] == "Deployment")
    return deployment["spec"]["template"]["metadata"]["annotations"]["checksum/secrets"]


def keepers(capture) -> dict:
    return {r.name: r.inputs.get("keepers") for r in capture.of_type(RANDOM_PASSWORD)}


def test_same_config_same_secrets_and_pods(dev):
    again = run_stack("dev")
    assert keepers(again) == keepers(dev)
    assert secret_data(again) == secret_data(dev)
    assert pod_checksum(again) == pod_checksum(dev)


@pytest.fixture(scope="module")
def rotated():
    return run_stack("dev", secretsVersion="2")


@pytest.mark.parametrize("key", ["jwt-secret", "api-secret-key", "admin-password"])
def test_secrets_version_rotates_airflow_secrets(dev, rotated, key):
    assert secret_data(rotated)[key] != secret_data(dev)[key]


def test_secrets_version_keeps_fernet_key_and_database_password(dev, rotated):
    # Rotating the fernet key needs `airflow rotate-fernet-key`; the DB password has its own version.
    for key in ("fernet-key", "sql-alchemy-conn"):
        assert secret_data(rotated)[key] == secret_data(dev)[key]


def test_rotation_rolls_the_pods(dev, rotated):
    assert pod_checksum(rotated) != pod_checksum(dev)


def test_db_password_version_rotates_user_and_connection_together(dev):
    rotated = run_stack("dev", dbPasswordVersion="2")
    user = rotated.one("gcp:sql/user:User")
    conn = secret_data(rotated)["sql-alchemy-conn"]
    assert conn != secret_data(dev)["sql-alchemy-conn"]
    assert f":{user.inputs['password']}@127.0.0.1:5432/" in conn
    assert user.inputs["password"] != dev.one("gcp:sql/user:User").inputs["password"]
    assert pod_checksum(rotated) != pod_checksum(dev)
