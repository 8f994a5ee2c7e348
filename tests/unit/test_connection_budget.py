"""The worst-case connection budget (components/config/connection_budget.py) against the Cloud SQL tier limit."""

from __future__ import annotations

import json

import pytest

from components.airflow.connections import budget_from_manifests
from components.config.connection_budget import (SUPERUSER_RESERVED_CONNECTIONS, connection_budget, max_connections)
from components.config import ConfigError
from tests.conftest import run_stack, stack_config
from tests.unit.test_config import assert_valid_set_command, load, load_error, problem_for


def manifests(capture) -> list[dict]:
    return [m for _, m in capture.kubernetes_objects()]


@pytest.mark.parametrize("tier, flags, expected", [
    ("db-f1-micro", {}, 25), ("db-g1-small", {}, 50), ("db-custom-1-3840", {}, 100),
    ("db-custom-2-7680", {}, 400), ("db-custom-1-6144", {}, 200), ("db-custom-16-122880", {}, 1000),
    ("db-g1-small", {"max_connections": "80"}, 80), ("db-perf-optimized-n-2", {}, None),
])
def test_tier_limits_follow_cloud_sql_defaults_and_the_flag(tier, flags, expected):
    assert max_connections(tier, flags) == expected


def test_budget_counts_pools_probes_surge_and_jobs():
    # 5 pools (scheduler, dag-processor, triggerer, 1 api-server worker x sync + async engine) x 3 + 3 exec
    # probes + 1 operator session, 2 pods, 2 Jobs x 2
    assert connection_budget(1, 2, 1).total == 2 * (5 * 3 + 3 + 1) + 4
    assert connection_budget(2, 2, 1).pods == 3
    assert connection_budget(1, 5, 10).total > connection_budget(1, 2, 1).total


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_rendered_budget_fits_each_stack_tier(request, stack):
    capture = request.getfixturevalue(stack)
    values = stack_config(stack)
    flags = json.loads(values.get("airflow-gke:dbFlags") or "{}")
    limit = max_connections(values["airflow-gke:dbTier"], flags)
    budget = budget_from_manifests(manifests(capture))
    assert budget.total <= limit - SUPERUSER_RESERVED_CONNECTIONS, budget.describe(limit)


def test_rendered_budget_equals_the_validated_one(dev):
    settings = load().airflow
    assert budget_from_manifests(manifests(dev)) == connection_budget(
        settings.replicas, settings.db_pool_size, settings.db_pool_max_overflow)


def test_rendered_pools_follow_config():
    capture = run_stack("dev", dbPoolSize="3", dbPoolMaxOverflow="0")
    budget = budget_from_manifests(manifests(capture))
    assert budget == connection_budget(1, 3, 0)


def test_config_refuses_a_budget_over_the_tier_limit():
    problem = problem_for(load_error(dbTier="db-g1-small", dbPoolSize="5", dbPoolMaxOverflow="10"),
                          "airflow-gke:dbPoolSize")
    assert "db-g1-small" in problem and "50" in problem
    argv = assert_valid_set_command(problem, "airflow-gke:dbFlags.max_connections")
    needed = int(argv[-1])
    # the fix it proposes is enough: the same stack with that flag validates
    load(dbTier="db-g1-small", dbPoolSize="5", dbPoolMaxOverflow="10", dbFlags=f'{{"max_connections": "{needed}"}}')
    with pytest.raises(ConfigError):
        load(dbTier="db-g1-small", dbPoolSize="5", dbPoolMaxOverflow="10",
             dbFlags=f'{{"max_connections": "{needed - 1}"}}')


def test_more_replicas_can_exceed_a_small_tier():
    load(dbTier="db-g1-small", replicas="1")
    problem_for(load_error(dbTier="db-g1-small", replicas="3"), "airflow-gke:dbPoolSize")



def test_git_bundle_mode_counts_the_dag_processor_pod_once(prod):
    """prod runs git-bundle mode: the dag-processor has its own Deployment (1 replica, Recreate), so it
    is counted once, not in every pod of the rollout."""
    budget = budget_from_manifests(manifests(prod))
    assert budget == connection_budget(2, 5, 5, separate_dag_processor=True)
    assert budget.dag_processor_pod == 5 + 5 + 1
    assert budget.total < connection_budget(2, 5, 5).total


def test_each_api_server_worker_counts_its_sync_and_async_pools():
    """3.3.2 settings._configure_async_session gives the api-server a second engine with the same pool
    settings (used by the async sessions of the API): one more worker is two more full pools per pod."""
    one, two = connection_budget(1, 2, 1, api_workers=1), connection_budget(1, 2, 1, api_workers=2)
    assert two.per_pod - one.per_pod == 2 * (2 + 1)
    assert two.total - one.total == two.pods * 2 * (2 + 1)


def test_pooling_off_is_refused_by_the_budget(dev):
    """Without pooling (NullPool) neither engine is bounded: the budget must not pretend to count it."""
    objects = manifests(dev)
    for obj in objects:
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "airflow":
            for container in obj["spec"]["template"]["spec"]["containers"]:
                if container["name"] == "scheduler":
                    container["env"].append({"name": "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_ENABLED", "value": "False"})
    with pytest.raises(ValueError, match="POOL_ENABLED"):
        budget_from_manifests(objects)
