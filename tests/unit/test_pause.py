"""The pause schedule (activeHours / paused): the workflow it runs, the Scheduler jobs, the accounts' exact
permissions, what `pulumi up` leaves to the workflow, and the config refusals."""

from __future__ import annotations

import base64
import json

import pytest
import yaml

import components.cluster as cluster_module
import components.database as database_module
from components.config import ConfigError
from components.pause_workflow import CALLS, STDLIB_CALLS, PauseTarget, Pool, calls_in, permissions, workflow_definition
from rehearse.drift import check_drift, load_drift_rules
from rehearse.graph import Graph
from tests.conftest import run_stack, stack_settings

BERLIN = "Mon-Fri 08:00-18:00 Europe/Berlin"
WORKFLOW = "gcp:workflows/workflow:Workflow"
JOB = "gcp:cloudscheduler/job:Job"
ROLE = "gcp:projects/iAMCustomRole:IAMCustomRole"
MEMBER = "gcp:projects/iAMMember:IAMMember"
POOL = "gcp:container/nodePool:NodePool"
SQL = "gcp:sql/databaseInstance:DatabaseInstance"
TARGET = PauseTarget(project="p", location="europe-west1-b", cluster="c", instance="db", namespace="airflow",
                     drain_minutes=30, pools=(Pool("main", 1, 3), Pool("spot", 0, 5)))


@pytest.fixture(scope="module")
def scheduled():
    return run_stack("dev", activeHours=BERLIN)


def steps_of(definition: str, block: str) -> list[tuple[str, str, dict]]:
    """(step name, call, args) of the `pause` or `resume` block of main."""
    main = yaml.safe_load(definition)["main"]["steps"]
    inner = next(step[block]["steps"] for step in main if block in step)
    return [(name, body.get("call", ""), body.get("args", {})) for step in inner for name, body in step.items()]


# ---- the workflow ----------------------------------------------------------------------------------
def test_pause_drains_then_stops_autoscaling_then_pools_then_the_database():
    steps = steps_of(workflow_definition(TARGET), "pause")
    assert [name for name, _, _ in steps] == [
        "drain", "pool_0_autoscaling_off", "pool_0_to_zero", "pool_1_autoscaling_off", "pool_1_to_zero",
        "database_never", "paused"]
    assert steps[1][2] == {"name": "projects/p/locations/europe-west1-b/clusters/c/nodePools/main",
                           "body": {"autoscaling": {"enabled": False}}}
    assert steps[2][2]["body"] == {"nodeCount": 0}
    assert steps[5][1] == "googleapis.sqladmin.v1.instances.patch"
    assert steps[5][2] == {"project": "p", "instance": "db", "body": {"settings": {"activationPolicy": "NEVER"}}}


def test_resume_starts_the_database_first_then_restores_each_pool():
    steps = steps_of(workflow_definition(TARGET), "resume")
    assert [name for name, _, _ in steps] == [
        "database_always", "pool_0_autoscaling_on", "pool_0_to_min", "pool_1_autoscaling_on", "resumed"]
    assert steps[0][2]["body"] == {"settings": {"activationPolicy": "ALWAYS"}}
    assert steps[1][2]["body"] == {"autoscaling": {"enabled": True, "minNodeCount": 1, "maxNodeCount": 3}}
    assert steps[2][2]["body"] == {"nodeCount": 1}
    assert steps[3][2]["body"]["autoscaling"] == {"enabled": True, "minNodeCount": 0, "maxNodeCount": 5}


def test_drain_polls_task_containers_until_none_or_the_deadline():
    definition = yaml.safe_load(workflow_definition(TARGET))
    drain = definition["drain"]
    query = next(step["running_tasks"] for step in drain["steps"] if "running_tasks" in step)
    assert query["call"] == "googleapis.monitoring.v3.projects.timeSeries.list"
    for clause in ('resource.labels.namespace_name="airflow"', 'resource.labels.container_name="base"',
                   'resource.labels.cluster_name="c"', 'metric.type="kubernetes.io/container/uptime"'):
        assert clause in query["args"]["filter"]
    assert {"drain": {"call": "drain", "args": {"minutes": 30}}} in definition["main"]["steps"][2]["pause"]["steps"]
    no_drain = workflow_definition(PauseTarget(**{**TARGET.__dict__, "drain_minutes": 0}))
    assert "drain" not in yaml.safe_load(no_drain) and "drain" not in calls_in(no_drain)


def test_the_workflow_calls_only_cited_connectors():
    used = calls_in(workflow_definition(TARGET))
    assert used - {"drain"} <= set(CALLS) | set(STDLIB_CALLS)
    assert set(CALLS) <= used  # and nothing cited goes unused (its permission would be granted for nothing)
    assert all(source.startswith("https://") for _, _, source in CALLS.values())


def test_an_unknown_action_is_refused():
    main = yaml.safe_load(workflow_definition(TARGET))["main"]["steps"]
    assert main[0]["route"]["switch"][0]["next"] == "pause" and "raise" in main[1]["refuse"]


# ---- the stack's resources -------------------------------------------------------------------------
def test_no_schedule_no_pause_resources(dev):
    assert not dev.of_type(WORKFLOW) and not dev.of_type(JOB) and not dev.of_type(ROLE)
    services = {r.inputs["service"] for r in dev.of_type("gcp:projects/service:Service")}
    assert not services & {"cloudscheduler.googleapis.com", "workflows.googleapis.com"}


def test_the_workflow_account_holds_exactly_the_permissions_of_its_calls(scheduled):
    role = scheduled.one(ROLE)
    source = scheduled.one(WORKFLOW).inputs["sourceContents"]
    needed = {p for call in calls_in(source) if call in CALLS for p in CALLS[call][1]}
    assert sorted(role.inputs["permissions"]) == sorted(needed) == list(permissions())
    assert set(needed) == {"container.clusters.update", "container.operations.get", "cloudsql.instances.update",
                           "cloudsql.instances.get", "monitoring.timeSeries.list"}
    runner = scheduled.one(WORKFLOW).inputs["serviceAccount"]
    runner_grants = [m.inputs["role"] for m in scheduled.of_type(MEMBER) if m.inputs["member"] == f"serviceAccount:{runner}"]
    assert runner_grants == [role.outputs["name"]]


def test_scheduler_jobs_start_the_workflow_at_the_window_edges_in_its_zone(scheduled):
    workflow = scheduled.one(WORKFLOW)
    jobs = {job.inputs["name"]: job.inputs for job in scheduled.of_type(JOB)}
    assert set(jobs) == {"airflow-pause", "airflow-resume"}
    assert (jobs["airflow-resume"]["schedule"], jobs["airflow-pause"]["schedule"]) == ("0 8 * * 1,2,3,4,5", "0 18 * * 1,2,3,4,5")
    trigger = None
    for action in ("pause", "resume"):
        job = jobs[f"airflow-{action}"]
        assert job["timeZone"] == "Europe/Berlin" and job["paused"] is False
        target = job["httpTarget"]
        assert target["uri"] == ("https://workflowexecutions.googleapis.com/v1/projects/my-airflow-project/"
                                 "locations/us-central1/workflows/airflow-pause/executions")
        body = json.loads(base64.b64decode(target["body"]))
        assert json.loads(body["argument"]) == {"action": action}
        trigger = target["oauthToken"]["serviceAccountEmail"]
    assert trigger != workflow.inputs["serviceAccount"]
    trigger_grants = [m.inputs["role"] for m in scheduled.of_type(MEMBER) if m.inputs["member"] == f"serviceAccount:{trigger}"]
    assert trigger_grants == ["roles/workflows.invoker"]


def test_paused_holds_the_resume_job_and_pauses_every_hour():
    capture = run_stack("dev", activeHours=BERLIN, paused="true")
    jobs = {job.inputs["name"]: job.inputs for job in capture.of_type(JOB)}
    assert jobs["airflow-resume"]["paused"] is True
    assert jobs["airflow-pause"]["schedule"] == "0 * * * *" and jobs["airflow-pause"]["paused"] is False
    holiday = run_stack("dev", paused="true")  # no window: a pause job only
    assert [job.inputs["name"] for job in holiday.of_type(JOB)] == ["airflow-pause"]


# ---- pulumi up while paused --------------------------------------------------------------------------
def test_under_a_schedule_pulumi_up_leaves_pool_size_and_activation_to_the_workflow(scheduled, dev):
    for pool in scheduled.of_type(POOL):
        assert {"autoscaling", "nodeCount"} <= set(pool.ignore_changes)
    assert "settings.activationPolicy" in scheduled.one(SQL).ignore_changes
    assert "settings.activationPolicy" not in dev.one(SQL).ignore_changes  # always on: the program keeps ALWAYS
    assert check_drift(Graph.from_capture(scheduled), load_drift_rules()) == []


def test_without_the_ignore_changes_the_drift_rules_flag_both(monkeypatch):
    monkeypatch.setattr(database_module, "ACTIVATION_POLICY_PATH", "settings.diskSize")
    monkeypatch.setattr(cluster_module, "PAUSE_MANAGED_POOL_FIELDS", [])
    capture = run_stack("dev", activeHours=BERLIN, spotPool="true")
    found = sorted((v.rule_id, v.resource) for v in check_drift(Graph.from_capture(capture), load_drift_rules()))
    assert found == [("node-pool-autoscaling-under-pause", "airflow-pool"),
                     ("node-pool-autoscaling-under-pause", "airflow-spot"),
                     ("sql-activation-policy-under-pause", "airflow-pg")]


def test_the_drift_rules_do_not_fire_without_a_workflow(monkeypatch, dev):
    monkeypatch.setattr(database_module, "ACTIVATION_POLICY_PATH", "settings.diskSize")
    assert check_drift(Graph.from_capture(dev), load_drift_rules()) == []


# ---- config ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, key", [
    ({"activeHours": BERLIN}, "activeHours"),
    ({"paused": "true"}, "paused"),
])
def test_prod_refuses_a_pause_unless_allowed(overrides, key):
    with pytest.raises(ConfigError) as error:
        stack_settings("prod", **overrides)
    assert f"airflow-gke:{key}" in str(error.value) and "pulumi config set airflow-gke:allowPauseOnProd true" in str(error.value)
    assert stack_settings("prod", allowPauseOnProd="true", **overrides).pause.enabled


@pytest.mark.parametrize("value, says", [
    ("Mon-Fri 22:00-06:00 Europe/Berlin", "overnight"),
    ("Mon-Fri 08:00-08:00 Europe/Berlin", "empty"),
    ("Mon-Fri 08:00-18:00 Europe/Berln", "not an IANA time zone"),
    ("weekdays", "three parts"),
])
def test_a_bad_window_fails_before_any_resource_naming_the_key(value, says):
    with pytest.raises(ConfigError) as error:
        run_stack("dev", activeHours=value)
    assert "airflow-gke:activeHours" in str(error.value) and says in str(error.value)
    assert "pulumi config set airflow-gke:activeHours 'Mon-Fri 08:00-18:00 Europe/Berlin'" in str(error.value)


def test_drain_minutes_are_bounded():
    with pytest.raises(ConfigError, match="pauseDrainMinutes"):
        stack_settings("dev", activeHours=BERLIN, pauseDrainMinutes="500")
    assert stack_settings("dev", activeHours=BERLIN, pauseDrainMinutes="0").pause.drain_minutes == 0
