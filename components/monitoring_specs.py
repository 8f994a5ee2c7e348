"""What the Monitoring component declares, as pure data: the alert conditions (PromQL over the metrics
Managed Service for Prometheus ingests from the PodMonitoring, filters over Google's own metrics) and the
dashboard's charts. docs/operations.md says what each alert means and what to check first.

Airflow metric names come from the exporter's mapping (components/airflow/pod/metrics_exporter.py), so a
renamed mapping cannot leave a query behind (tests/unit/test_monitoring.py); Google's metric types are
checked against tests/data/gcp_metrics.yaml, a list taken from Google's metric reference."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Optional

from .airflow.pod.metrics_exporter import metric_names
from .airflow.pod.shared import LOGS_SIZE_LIMIT_BYTES

NEAR_LIMIT = 0.8  # "near the limit": connections and the logs volume
SQL_CPU_HIGH = 0.9
SQL_DISK_HIGH = 0.85
TASK_FAILURE_RATIO = 0.25
QUEUED_TOO_LONG = "30m"


@dataclass(frozen=True)
class Scope:
    """Which series are this stack's: GMP labels every sample with its cluster and namespace, Cloud SQL
    and GKE's system metrics carry them as resource labels."""
    project: str
    cluster: str
    namespace: str
    sql_instance: str  # the instance name; Cloud SQL's database_id is PROJECT:INSTANCE

    @property
    def prom(self) -> str:
        return f'cluster="{self.cluster}",namespace="{self.namespace}"'

    def k8s_filter(self, resource_type: str) -> str:
        return (f'resource.type="{resource_type}" AND resource.labels.cluster_name="{self.cluster}" '
                f'AND resource.labels.namespace_name="{self.namespace}"')

    @property
    def k8s_prom(self) -> str:
        return f'cluster_name="{self.cluster}",namespace_name="{self.namespace}"'

    @property
    def sql_prom(self) -> str:
        return f'database_id="{self.project}:{self.sql_instance}"'

    @property
    def sql_filter(self) -> str:
        return f'resource.type="cloudsql_database" AND resource.labels.database_id="{self.project}:{self.sql_instance}"'


# Cloud Monitoring's PromQL reads Google's own metrics too: the first "/" of the type becomes ":", every
# other "." and "/" becomes "_", and the monitored resource's labels are labels of the series
# (https://cloud.google.com/monitoring/promql/promql-mapping).
def promql_name(metric_type: str) -> str:
    domain, path = metric_type.split("/", 1)
    return re.sub(r"[^A-Za-z0-9_:]", "_", f"{domain}:{path}")


RESTARTS = promql_name("kubernetes.io/container/restart_count")
VOLUME_USED = promql_name("kubernetes.io/pod/volume/used_bytes")
NODE_CPU = promql_name("kubernetes.io/node/cpu/allocatable_utilization")
SQL_CPU = promql_name("cloudsql.googleapis.com/database/cpu/utilization")
SQL_DISK = promql_name("cloudsql.googleapis.com/database/disk/utilization")
SQL_BACKENDS = promql_name("cloudsql.googleapis.com/database/postgresql/num_backends")


@dataclass(frozen=True)
class Check:
    """One sub-expression of the stack's single alert condition: `expr` returns the series that fire."""
    key: str  # the incident's `check` label and the docs/operations.md heading
    title: str
    expr: str
    means: str
    first: tuple[str, str, str]  # the first three things to look at


def checks(scope: Scope, max_connections: Optional[int]) -> list[Check]:
    s, k8s, sql = scope.prom, scope.k8s_prom, scope.sql_prom
    # GKE writes node metrics only while the stack has nodes: a paused stack (activeHours) has none, so the
    # missing-scheduler half stays quiet at night instead of firing because the pods are gone on purpose.
    awake = f"count(sum by (node_name) ({NODE_CPU}{{cluster_name=\"{scope.cluster}\"}}))"
    found = [
        Check("scheduler-heartbeat", "Airflow scheduler is not heartbeating",
              f"(sum(rate(airflow_scheduler_heartbeat_total{{{s}}}[5m])) == 0) "
              f"or (absent(airflow_scheduler_heartbeat_total{{{s}}}) and on() {awake})",
              "No scheduler loop in 5 minutes (or no scheduler at all while the nodes run): nothing is scheduled.",
              ("`kubectl -n NS logs deploy/airflow -c scheduler --tail=200`",
               "`kubectl -n NS get pods` (Pending, CrashLoopBackOff, the migrations wait)",
               "the `db-connections` and `sql-cpu` checks: a scheduler waits on a starved database")),
        Check("dag-import-errors", "DAG files fail to import",
              f"max(min_over_time(airflow_dag_processing_import_errors{{{s}}}[10m])) > 0",
              "At least one DAG file failed to import for 10 minutes: its DAGs are not scheduled.",
              ("the UI's import-errors banner (file and traceback)", "the last commit of the DAG repository",
               "a missing Python package in the image (`ModuleNotFoundError`)")),
        Check("task-failure-rate", f"More than {TASK_FAILURE_RATIO:.0%} of task attempts fail",
              f'sum(increase(airflow_ti_finish_total{{{s},state="failed"}}[1h])) '
              f"/ sum(increase(airflow_ti_finish_total{{{s}}}[1h])) > {TASK_FAILURE_RATIO}",
              f"Over the last hour more than {TASK_FAILURE_RATIO:.0%} of the task attempts that ended failed.",
              ("the failed task instances in the UI (Browse, Task Instances, state failed) and their logs",
               "task pods OOM-killed or evicted: `kubectl -n NS get events --sort-by=.lastTimestamp`",
               "what the tasks call: the outside API, the task identity's roles, the data")),
        Check("tasks-queued-too-long", f"Tasks queued in the executor for {QUEUED_TOO_LONG}",
              f"min_over_time(sum(airflow_executor_queued_tasks{{{s}}})[{QUEUED_TOO_LONG}:1m]) > 0",
              f"Tasks have been waiting in the executor's queue for {QUEUED_TOO_LONG} without a break.",
              ("`kubectl -n NS get pods` for Pending task pods and their events",
               "the node pool's autoscaler limit and quota (`kubectl get nodes`)",
               "pool and parallelism settings (the dashboard's Pools chart)")),
        Check("container-restarts", "A container restarted (crash, failed probe or OOM kill)",
              f"sum by (pod_name, container_name) (increase({RESTARTS}{{{k8s}}}[10m])) > 0",
              "A container of the namespace restarted in the last 10 minutes; an OOM-killed container "
              "restarts, so OOM kills of the long-running pods are here too.",
              ("`kubectl -n NS describe pod POD` (Last State: reason OOMKilled, Error, exit code)",
               "`kubectl -n NS logs POD -c CONTAINER --previous`",
               "its memory against the limit (dashboard: Memory used / limit); raise containerResources")),
        Check("logs-volume", f"The logs volume is over {NEAR_LIMIT:.0%} of its size limit",
              f'max by (pod_name) (min_over_time({VOLUME_USED}{{{k8s},volume_name="logs"}}[5m])) '
              f"> {NEAR_LIMIT * LOGS_SIZE_LIMIT_BYTES:.0f}",
              "A pod's logs emptyDir is near its sizeLimit; over it the kubelet evicts the pod.",
              ("the log groomer in the maintenance container (`kubectl -n NS logs POD -c maintenance`)",
               "a DAG or processor writing unusually much (largest files under /opt/airflow/logs)",
               "remote logging to the bucket (task logs uploaded, then groomed)")),
        Check("sql-cpu", f"Cloud SQL CPU over {SQL_CPU_HIGH:.0%}",
              f"min_over_time({SQL_CPU}{{{sql}}}[15m]) > {SQL_CPU_HIGH}",
              f"The database's CPU has stayed above {SQL_CPU_HIGH:.0%} for 15 minutes.",
              ("Query Insights of the instance (the slowest queries)", "metadata growth: `airflow db clean` "
               "(metadataRetentionDays) and the db-cleanup CronJob's last run", "the tier (dbTier)")),
        Check("sql-disk", f"Cloud SQL disk over {SQL_DISK_HIGH:.0%}",
              f"min_over_time({SQL_DISK}{{{sql}}}[10m]) > {SQL_DISK_HIGH}",
              f"The database's disk has stayed above {SQL_DISK_HIGH:.0%} for 10 minutes.",
              ("storage auto-increase on the instance and its limit", "the largest tables (xcom, log, "
               "task_instance_history) and metadataRetentionDays", "point-in-time-recovery WAL retention")),
    ]
    if max_connections:  # a tier whose limit is unknown has no threshold to compare with
        found.append(Check(
            "db-connections", f"Database connections over {NEAR_LIMIT:.0%} of the tier's {max_connections}",
            f"min_over_time(sum by (database_id) ({SQL_BACKENDS}{{{sql}}})[5m:1m]) > {int(NEAR_LIMIT * max_connections)}",
            f"Open connections have stayed above {int(NEAR_LIMIT * max_connections)} (of {max_connections}) "
            "for 5 minutes; at the limit new connections are refused.",
            ("the connection budget (dbPoolSize, dbPoolMaxOverflow, replicas; docs/operations.md)",
             "running task pods: each opens connections through the execution API's pool",
             "`SELECT usename, state, count(*) FROM pg_stat_activity GROUP BY 1, 2`")))
    return found


def alert_query(found: list[Check]) -> str:
    """Every check in ONE PromQL condition (Cloud Monitoring bills per condition:
    https://cloud.google.com/monitoring/alerts/cost-control), each tagged with its `check` label so the
    incident says which one fired. label_replace with an empty source and regex always matches."""
    return " or ".join(f'label_replace({c.expr}, "check", "{c.key}", "", "")' for c in found)


def alert_documentation(found: list[Check], namespace: str) -> str:
    """The policy's markdown: each check, what it means, the first three things to check."""
    lines = ["The incident's `check` label names the check that fired. Long form: docs/operations.md, Alerts.", ""]
    for c in found:
        lines.append(f"**{c.key}**: {c.means}")
        lines.extend(f"{n}. {step.replace('NS', namespace)}" for n, step in enumerate(c.first, 1))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# --- dashboard ---------------------------------------------------------------------------------

def _prom_chart(title: str, *queries: str) -> dict:
    return {"title": title, "xyChart": {"dataSets": [
        {"prometheusQuery": q, "plotType": "LINE", "minAlignmentPeriod": "60s"} for q in queries]}}


def _filter_chart(title: str, metric_filter: str, aligner: str = "ALIGN_MEAN", reducer: str = "REDUCE_NONE",
                  group_by: tuple[str, ...] = (), threshold: Optional[float] = None) -> dict:
    aggregation = {"alignmentPeriod": "60s", "perSeriesAligner": aligner, "crossSeriesReducer": reducer,
                   "groupByFields": list(group_by)}
    chart: dict = {"dataSets": [{"timeSeriesQuery": {"timeSeriesFilter": {
        "filter": metric_filter, "aggregation": aggregation}}, "plotType": "LINE", "minAlignmentPeriod": "60s"}]}
    if threshold is not None:
        chart["thresholds"] = [{"value": threshold, "label": "limit"}]
    return {"title": title, "xyChart": chart}


def dashboard_widgets(scope: Scope, max_connections: Optional[int]) -> list[dict]:
    s = scope.prom
    k8s = scope.k8s_filter
    return [
        _prom_chart("Scheduler heartbeats / s", f"sum(rate(airflow_scheduler_heartbeat_total{{{s}}}[5m]))"),
        _prom_chart("DAG processing: parse time (s), DAGs", f"max(airflow_dag_processing_total_parse_time_seconds{{{s}}})",
                    f"max(airflow_dagbag_size{{{s}}})"),
        _prom_chart("DAG import errors", f"max(airflow_dag_processing_import_errors{{{s}}})"),
        _prom_chart("Executor: queued, running, open slots", f"sum(airflow_executor_queued_tasks{{{s}}})",
                    f"sum(airflow_executor_running_tasks{{{s}}})", f"sum(airflow_executor_open_slots{{{s}}})"),
        _prom_chart("Task attempts ended / h, by state",
                    f"sum by (state) (increase(airflow_ti_finish_total{{{s}}}[1h]))"),
        _prom_chart("Pools: running, queued, open slots, starving", f"max by (pool_name) (airflow_pool_running_slots{{{s}}})",
                    f"max by (pool_name) (airflow_pool_queued_slots{{{s}}})",
                    f"max by (pool_name) (airflow_pool_open_slots{{{s}}})",
                    f"max(airflow_scheduler_tasks_starving{{{s}}})"),
        _filter_chart("DB connections (limit: the tier's max_connections)",
                      f'metric.type="cloudsql.googleapis.com/database/postgresql/num_backends" AND {scope.sql_filter}',
                      "ALIGN_MAX", "REDUCE_SUM", threshold=max_connections),
        _filter_chart("Container restarts", f'metric.type="kubernetes.io/container/restart_count" AND {k8s("k8s_container")}',
                      "ALIGN_DELTA", "REDUCE_SUM", ("resource.label.container_name",)),
        _filter_chart("Memory used / limit (OOM kill at 1.0)",
                      f'metric.type="kubernetes.io/container/memory/limit_utilization" AND {k8s("k8s_container")}',
                      "ALIGN_MAX", "REDUCE_MAX", ("resource.label.container_name",)),
        _filter_chart("Logs volume used (bytes)", f'metric.type="kubernetes.io/pod/volume/used_bytes" AND '
                      f'{k8s("k8s_pod")} AND metric.labels.volume_name="logs"', "ALIGN_MAX", "REDUCE_MAX",
                      ("resource.label.pod_name",), threshold=LOGS_SIZE_LIMIT_BYTES),
        _filter_chart("Cloud SQL CPU utilization",
                      f'metric.type="cloudsql.googleapis.com/database/cpu/utilization" AND {scope.sql_filter}',
                      threshold=SQL_CPU_HIGH),
        _filter_chart("Cloud SQL disk utilization",
                      f'metric.type="cloudsql.googleapis.com/database/disk/utilization" AND {scope.sql_filter}',
                      threshold=SQL_DISK_HIGH),
    ]


def dashboard_json(title: str, scope: Scope, max_connections: Optional[int]) -> str:
    """A Monitoring dashboard (v1 Dashboard resource): a two-column mosaic of the charts."""
    tiles = [{"xPos": (i % 2) * 24, "yPos": (i // 2) * 16, "width": 24, "height": 16, "widget": widget}
             for i, widget in enumerate(dashboard_widgets(scope, max_connections))]
    return json.dumps({"displayName": title, "mosaicLayout": {"columns": 48, "tiles": tiles}}, sort_keys=True)


def queried_prometheus_names(queries: list[str]) -> set[str]:
    """Every metric name the PromQL `queries` select (parsed, not pattern-matched): promql-parser."""
    import promql_parser  # a test-time and preview-time dependency only (requirements.txt)

    names: set[str] = set()

    def walk(node) -> None:
        name = getattr(node, "name", None)
        if type(node).__name__ == "VectorSelector" and name:
            names.add(name)
        for attr in ("expr", "lhs", "rhs", "vector_selector", "param"):
            child = getattr(node, attr, None)
            if child is not None and not isinstance(child, (str, int, float)):
                walk(child)
        for child in getattr(node, "args", None) or []:
            walk(child)

    for query in queries:
        walk(promql_parser.parse(query))
    return names


def known_airflow_metric(name: str) -> bool:
    return name in metric_names()
