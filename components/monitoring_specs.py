"""What the Monitoring component declares, as pure data: the alert conditions (PromQL over the metrics
Managed Service for Prometheus ingests from the PodMonitoring, filters over Google's own metrics) and the
dashboard's charts. docs/operations.md says what each alert means and what to check first.

Airflow metric names come from the exporter's mapping (components/airflow/pod/metrics_exporter.py), so a
renamed mapping cannot leave a query behind (tests/unit/test_monitoring.py); Google's metric types are
checked against tests/data/gcp_metrics.yaml, a list taken from Google's metric reference."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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
    def sql_filter(self) -> str:
        return f'resource.type="cloudsql_database" AND resource.labels.database_id="{self.project}:{self.sql_instance}"'


@dataclass(frozen=True)
class Alert:
    key: str  # resource name suffix and the docs/operations.md anchor
    title: str
    promql: Optional[str] = None  # a GMP condition...
    metric_filter: Optional[str] = None  # ...or a threshold on a Google metric
    threshold: float = 0.0
    aligner: str = "ALIGN_MEAN"
    reducer: Optional[str] = None
    group_by: tuple[str, ...] = field(default_factory=tuple)
    duration: str = "300s"

    @property
    def metric_type(self) -> Optional[str]:
        if not self.metric_filter:
            return None
        return self.metric_filter.split('metric.type="', 1)[1].split('"', 1)[0]


def alerts(scope: Scope, max_connections: Optional[int]) -> list[Alert]:
    s = scope.prom
    found = [
        Alert("scheduler-heartbeat", "Airflow scheduler is not heartbeating",
              promql=f"sum(rate(airflow_scheduler_heartbeat_total{{{s}}}[5m])) == 0 "
                     f"or absent(airflow_scheduler_heartbeat_total{{{s}}})", duration="300s"),
        Alert("dag-import-errors", "DAG files fail to import",
              promql=f"max(airflow_dag_processing_import_errors{{{s}}}) > 0", duration="600s"),
        Alert("task-failure-rate", f"More than {TASK_FAILURE_RATIO:.0%} of task attempts fail",
              promql=f'sum(increase(airflow_ti_finish_total{{{s},state="failed"}}[1h])) '
                     f"/ sum(increase(airflow_ti_finish_total{{{s}}}[1h])) > {TASK_FAILURE_RATIO}", duration="0s"),
        Alert("tasks-queued-too-long", f"Tasks queued in the executor for {QUEUED_TOO_LONG}",
              promql=f"min_over_time(sum(airflow_executor_queued_tasks{{{s}}})[{QUEUED_TOO_LONG}:1m]) > 0",
              duration="0s"),
        Alert("container-restarts", "A container restarted (crash, failed probe or OOM kill)",
              metric_filter=f'metric.type="kubernetes.io/container/restart_count" AND {scope.k8s_filter("k8s_container")}',
              threshold=0, aligner="ALIGN_DELTA", reducer="REDUCE_SUM",
              group_by=("resource.label.pod_name", "resource.label.container_name"), duration="0s"),
        Alert("logs-volume", f"The logs volume is over {NEAR_LIMIT:.0%} of its size limit",
              metric_filter=f'metric.type="kubernetes.io/pod/volume/used_bytes" AND {scope.k8s_filter("k8s_pod")} '
                            f'AND metric.labels.volume_name="logs"',
              threshold=NEAR_LIMIT * LOGS_SIZE_LIMIT_BYTES, aligner="ALIGN_MAX", duration="300s"),
        Alert("sql-cpu", f"Cloud SQL CPU over {SQL_CPU_HIGH:.0%}",
              metric_filter=f'metric.type="cloudsql.googleapis.com/database/cpu/utilization" AND {scope.sql_filter}',
              threshold=SQL_CPU_HIGH, duration="900s"),
        Alert("sql-disk", f"Cloud SQL disk over {SQL_DISK_HIGH:.0%}",
              metric_filter=f'metric.type="cloudsql.googleapis.com/database/disk/utilization" AND {scope.sql_filter}',
              threshold=SQL_DISK_HIGH, duration="600s"),
    ]
    if max_connections:  # a tier whose limit is unknown has no threshold to compare with
        found.append(Alert(
            "db-connections", f"Database connections over {NEAR_LIMIT:.0%} of the tier's {max_connections}",
            metric_filter=(f'metric.type="cloudsql.googleapis.com/database/postgresql/num_backends" '
                           f'AND {scope.sql_filter}'),
            threshold=int(NEAR_LIMIT * max_connections), aligner="ALIGN_MAX", reducer="REDUCE_SUM", duration="300s"))
    return found


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
