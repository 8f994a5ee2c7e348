"""Fixtures for the real-Airflow tests (tests/integration): see harness.py for what each sets up."""

from __future__ import annotations

import pytest

import subprocess

from .harness import AIRFLOW_CONTAINERS, HELLO_DAG, SetupError, airflow_running, make_pod, prepare_database, render_dev, \
    sync_dags
from .pod import LocalPod


def pytest_collection_modifyitems(items):
    for item in items:
        if "/tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def rendered() -> list[dict]:
    try:
        return render_dev()
    except SetupError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def database(rendered) -> dict:
    try:
        return prepare_database(rendered)
    except SetupError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def airflow_pod(rendered, database) -> LocalPod:
    return make_pod(rendered, "Deployment", "airflow", "airflow-pod")


@pytest.fixture(scope="session")
def migration_job(rendered) -> LocalPod:
    return make_pod(rendered, "Job", None, "migration-job")


@pytest.fixture(scope="session")
def migrated(migration_job, database) -> list[subprocess.CompletedProcess]:
    """Runs the rendered `db-migrate` container twice: on the empty database, then as a no-op."""
    overrides = {"AIRFLOW__LOGGING__REMOTE_LOGGING": "False"}
    return [migration_job.run("db-migrate", overrides) for _ in range(2)]


@pytest.fixture(scope="session")
def admin_runs(migration_job, migrated) -> list[subprocess.CompletedProcess]:
    overrides = {"AIRFLOW__LOGGING__REMOTE_LOGGING": "False"}
    return [migration_job.run("create-admin-user", overrides) for _ in range(2)]


@pytest.fixture(scope="session")
def running(airflow_pod, migrated, admin_runs):
    """api-server, dag-processor, triggerer and scheduler started from their rendered commands, with the
    Kubernetes API emulator and local kubelet running their task pods; shared by the test modules."""
    repo, sync = sync_dags(airflow_pod, "dags-repo", {"hello_dag.py": HELLO_DAG})
    try:
        with airflow_running(airflow_pod, dag_repo=repo) as api:
            yield airflow_pod, api, (repo, sync)
    finally:
        sync.stop()
        for name in AIRFLOW_CONTAINERS:
            print(f"--- {name} log tail ---\n{airflow_pod.log_tail(name, 15)}")
