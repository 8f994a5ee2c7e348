"""The pause/resume workflow (Cloud Workflows YAML), built from the stack's values by a pure function, and the
exact IAM permissions its calls need.

Why Workflows and not a Cloud Scheduler HTTP target calling the Google APIs directly with an OAuth token
(https://cloud.google.com/scheduler/docs/http-target-auth): a Scheduler job sends ONE request and does not
wait for the long-running operation it starts, while the pause is several calls in order (each GKE call
must finish before the next: a cluster runs one operation at a time) plus a wait for running tasks. A
Workflows connector call waits for the operation to finish ("This method waits—the workflow execution is
paused—until the operation is complete",
https://cloud.google.com/workflows/docs/reference/googleapis/container/v1/projects.locations.clusters.nodePools/setSize)
and `sys.sleep` waits in between (https://cloud.google.com/workflows/docs/reference/stdlib/sys/sleep).

Waiting for running tasks: the workflow cannot reach the Kubernetes API. Its OAuth tokens are for APIs on
googleapis.com (https://cloud.google.com/workflows/docs/authenticate-from-workflow); the cluster's DNS
endpoint is on gke.goog. It asks Cloud Monitoring instead: GKE's system metric kubernetes.io/container/uptime
has one series per running container (https://cloud.google.com/monitoring/api/metrics_kubernetes), and task
pods run their work in the container `base` (components/airflow/pods.py). No series for `base` in the
namespace over the last 2 minutes means no task is running; the drain stops there or at the deadline.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

# Every call the workflow makes: connector -> (the REST method, the IAM permissions it needs, source).
# A connector call on a long-running operation also polls the operation, which needs its own permission.
CALLS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "googleapis.container.v1.projects.locations.clusters.nodePools.setAutoscaling": (
        "projects.locations.clusters.nodePools.setAutoscaling", ("container.clusters.update", "container.operations.get"),
        "https://cloud.google.com/kubernetes-engine/docs/reference/rest/v1/projects.locations.clusters.nodePools/setAutoscaling "
        "(container.clusters.update); operations.get: https://cloud.google.com/kubernetes-engine/docs/reference/rest/v1/"
        "projects.locations.operations/get (container.operations.get)"),
    "googleapis.container.v1.projects.locations.clusters.nodePools.setSize": (
        "projects.locations.clusters.nodePools.setSize", ("container.clusters.update", "container.operations.get"),
        "https://cloud.google.com/kubernetes-engine/docs/reference/rest/v1/projects.locations.clusters.nodePools/setSize "
        "(container.clusters.update)"),
    "googleapis.sqladmin.v1.instances.patch": (
        "instances.patch", ("cloudsql.instances.update", "cloudsql.instances.get"),
        "https://cloud.google.com/sql/docs/postgres/start-stop-restart-instance (settings.activationPolicy via "
        "instances.patch); https://cloud.google.com/sql/docs/postgres/iam-permissions (patch: "
        "cloudsql.instances.update; \"Get the operations of an instance\": cloudsql.instances.get)"),
    "googleapis.monitoring.v3.projects.timeSeries.list": (
        "projects.timeSeries.list", ("monitoring.timeSeries.list",),
        "https://cloud.google.com/monitoring/access-control (timeSeries.list: monitoring.timeSeries.list)"),
}
# Standard-library calls, no permission (https://cloud.google.com/workflows/docs/reference/stdlib/overview).
STDLIB_CALLS = ("sys.sleep", "sys.now", "time.format")
DRAIN_POLL_SECONDS = 60
DRAIN_LOOKBACK_SECONDS = 120  # GKE system metrics are sampled every 60 s


def permissions(calls: dict = CALLS) -> tuple[str, ...]:
    """The custom role's permissions: exactly those of the calls the workflow makes."""
    return tuple(sorted({p for _, needs, _ in calls.values() for p in needs}))


@dataclass(frozen=True)
class Pool:
    name: str
    min_count: int
    max_count: int


@dataclass(frozen=True)
class PauseTarget:
    project: str
    location: str  # the cluster's location (zone or region)
    cluster: str
    pools: tuple[Pool, ...]
    instance: str  # Cloud SQL instance name
    namespace: str  # where the task pods run
    drain_minutes: int


def _pool_path(target: PauseTarget, pool: Pool) -> str:
    return f"projects/{target.project}/locations/{target.location}/clusters/{target.cluster}/nodePools/{pool.name}"


def _call(step: str, connector: str, **args) -> dict:
    return {step: {"call": connector, "args": args}}


def _sql(target: PauseTarget, policy: str) -> dict:
    return _call(f"database_{policy.lower()}", "googleapis.sqladmin.v1.instances.patch", project=target.project,
                 instance=target.instance, body={"settings": {"activationPolicy": policy}})


def _pause_steps(target: PauseTarget) -> list[dict]:
    steps: list[dict] = []
    if target.drain_minutes > 0:
        steps.append({"drain": {"call": "drain", "args": {"minutes": target.drain_minutes}}})
    for index, pool in enumerate(target.pools):
        # Autoscaling off first: an autoscaler left on would add nodes back for the Pending Airflow pods.
        steps.append(_call(f"pool_{index}_autoscaling_off",
                           "googleapis.container.v1.projects.locations.clusters.nodePools.setAutoscaling",
                           name=_pool_path(target, pool), body={"autoscaling": {"enabled": False}}))
        steps.append(_call(f"pool_{index}_to_zero", "googleapis.container.v1.projects.locations.clusters.nodePools.setSize",
                           name=_pool_path(target, pool), body={"nodeCount": 0}))
    steps.append(_sql(target, "NEVER"))  # last: nothing that could still write is left
    steps.append({"paused": {"return": "paused"}})
    return steps


def _resume_steps(target: PauseTarget) -> list[dict]:
    steps = [_sql(target, "ALWAYS")]  # first: the Airflow pods wait for the database (migrations-wait)
    for index, pool in enumerate(target.pools):
        steps.append(_call(f"pool_{index}_autoscaling_on",
                           "googleapis.container.v1.projects.locations.clusters.nodePools.setAutoscaling",
                           name=_pool_path(target, pool), body={"autoscaling": {
                               "enabled": True, "minNodeCount": pool.min_count, "maxNodeCount": pool.max_count}}))
        if pool.min_count > 0:  # nodes now instead of after the autoscaler's next look at the Pending pods
            steps.append(_call(f"pool_{index}_to_min",
                               "googleapis.container.v1.projects.locations.clusters.nodePools.setSize",
                               name=_pool_path(target, pool), body={"nodeCount": pool.min_count}))
    steps.append({"resumed": {"return": "resumed"}})
    return steps


def _drain(target: PauseTarget) -> dict:
    series_filter = (f'metric.type="kubernetes.io/container/uptime" AND resource.type="k8s_container" AND '
                     f'resource.labels.cluster_name="{target.cluster}" AND '
                     f'resource.labels.namespace_name="{target.namespace}" AND resource.labels.container_name="base"')
    return {"params": ["minutes"], "steps": [
        {"deadline": {"assign": [{"until": "${sys.now() + minutes * 60}"}]}},
        {"running_tasks": {"call": "googleapis.monitoring.v3.projects.timeSeries.list", "args": {
            "name": f"projects/{target.project}", "filter": series_filter, "view": "HEADERS",
            "interval.startTime": f"${{time.format(sys.now() - {DRAIN_LOOKBACK_SECONDS})}}",
            "interval.endTime": "${time.format(sys.now())}"}, "result": "running"}},
        {"done": {"switch": [{"condition": '${not("timeSeries" in running) or sys.now() > until}', "return": "drained"}]}},
        {"wait": {"call": "sys.sleep", "args": {"seconds": DRAIN_POLL_SECONDS}, "next": "running_tasks"}},
    ]}


def workflow_definition(target: PauseTarget) -> str:
    """The workflow's source: `main` takes {"action": "pause"|"resume"} (what the Scheduler jobs send)."""
    main = {"params": ["args"], "steps": [
        {"route": {"switch": [
            {"condition": '${map.get(args, "action") == "pause"}', "next": "pause"},
            {"condition": '${map.get(args, "action") == "resume"}', "next": "resume"}]}},
        {"refuse": {"raise": '${"action must be pause or resume, got " + json.encode_to_string(args)}'}},
        {"pause": {"steps": _pause_steps(target)}},
        {"resume": {"steps": _resume_steps(target)}},
    ]}
    definition = {"main": main}
    if target.drain_minutes > 0:
        definition["drain"] = _drain(target)
    return yaml.safe_dump(definition, sort_keys=False, width=200)


def calls_in(definition: str) -> set[str]:
    """Every `call:` target in a workflow source (for tests and the permission check)."""
    found: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("call"), str):
                found.add(node["call"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load(definition))
    return found
