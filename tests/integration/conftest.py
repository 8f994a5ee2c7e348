"""Fixtures for the real-Airflow tests (tests/integration): see harness.py for what each sets up."""

from __future__ import annotations

import pytest

from .harness import SetupError, make_pod, prepare_database, render_dev
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
