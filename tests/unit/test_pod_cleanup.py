"""Failed task pods are kept for debugging, then deleted: the executor leaves them
(delete_worker_pods_on_failure False) and an hourly `airflow kubernetes cleanup-pods` CronJob removes those
older than failedPodRetentionHours (components/airflow/pod_cleanup.py)."""

from __future__ import annotations

import pytest

from components.airflow.connections import budget_from_manifests
from tests.conftest import run_stack

NAME = "airflow-pod-cleanup"


def objects(capture) -> list[dict]:
    return [m for _, m in capture.kubernetes_objects()]


def cronjob(capture) -> dict | None:
    return next((o for o in objects(capture) if o["kind"] == "CronJob" and o["metadata"]["name"] == NAME), None)


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def executor_env(capture) -> dict[str, str]:
    deployment = next(o for o in objects(capture) if o["kind"] == "Deployment" and o["metadata"]["name"] == "airflow")
    scheduler = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "scheduler")
    return {e["name"]: e.get("value") for e in scheduler["env"]}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_failed_pods_are_kept_and_then_deleted_hourly(request, stack):
    capture = request.getfixturevalue(stack)
    job = cronjob(capture)
    assert job is not None
    assert job["spec"]["schedule"].split()[1:] == ["*", "*", "*", "*"]  # every hour
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    argv = [*container.get("command", []), *container.get("args", [])]
    assert argv[:4] == ["airflow", "kubernetes", "cleanup-pods", "--namespace"]
    namespace = job["metadata"]["namespace"]
    assert flag(argv, "--namespace") == namespace
    assert int(flag(argv, "--min-completed-minutes")) == 72 * 60  # the declared default retention
    assert int(flag(argv, "--min-pending-minutes")) >= 30
    env = executor_env(capture)
    assert env["AIRFLOW__KUBERNETES_EXECUTOR__DELETE_WORKER_PODS"] == "True"  # successes go at once
    assert env["AIRFLOW__KUBERNETES_EXECUTOR__DELETE_WORKER_PODS_ON_FAILURE"] == "False"  # failures stay


def test_the_cleanup_runs_as_the_account_allowed_to_delete_pods_and_holds_no_secrets(dev):
    job = cronjob(dev)
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    account = pod["serviceAccountName"]
    assert pod["automountServiceAccountToken"] is True
    bindings = [o for o in objects(dev) if o["kind"] == "RoleBinding"
                and any(s["name"] == account for s in o["subjects"])]
    roles = {o["metadata"]["name"]: o for o in objects(dev) if o["kind"] == "Role"}
    verbs = {verb for b in bindings for rule in roles[b["roleRef"]["name"]]["rules"]
             if "pods" in rule["resources"] for verb in rule["verbs"]}
    assert {"list", "delete"} <= verbs
    [container] = pod["containers"]
    assert not [e for e in container["env"] if "valueFrom" in e]  # no DB URL, fernet key or API secrets
    assert "initContainers" not in pod  # no proxy: never in the connection budget


def test_retention_follows_config_and_zero_deletes_failures_at_once():
    capture = run_stack("dev", failedPodRetentionHours="6")
    argv = cronjob(capture)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert int(flag(argv, "--min-completed-minutes")) == 6 * 60
    off = run_stack("dev", failedPodRetentionHours="0")
    assert cronjob(off) is None
    assert executor_env(off)["AIRFLOW__KUBERNETES_EXECUTOR__DELETE_WORKER_PODS_ON_FAILURE"] == "True"


def test_the_cleanup_cronjob_is_not_counted_as_a_database_job(dev):
    with_cleanup = budget_from_manifests(objects(dev))
    without = budget_from_manifests([o for o in objects(dev) if o["metadata"].get("name") != NAME])
    assert with_cleanup == without
