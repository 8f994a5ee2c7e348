"""Airflow's metrics: every Airflow process sends StatsD lines (UDP) to the `metrics-exporter` sidecar of
the `airflow` pod, prom/statsd-exporter, which serves them as Prometheus metrics for Google Cloud Managed
Service for Prometheus to scrape (the PodMonitoring in components/airflow/scraping.py).

Why StatsD and not OpenTelemetry: the official image ships the `statsd` client (its default extras), the
Airflow Helm chart ships this same exporter, and GMP's managed collection scrapes Prometheus endpoints
with a PodMonitoring; OTLP would need a collector Deployment of its own. Airflow sends tags in InfluxDB
form (`name,tag=value:1|c`, [metrics] statsd_influxdb_enabled), which statsd_exporter turns into labels
without mapping work (prometheus/statsd_exporter README, "Tagging Extensions"); the legacy names with
values spliced into them are off ([metrics] legacy_names_on) so a DAG id never becomes a metric name.

The mapping keeps only the metrics listed in MAPPINGS (the dashboard and the alerts query these names, and
GMP bills per sample ingested: https://cloud.google.com/stackdriver/docs/managed-prometheus/cost-controls);
every other line is dropped by the last rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from ...config import STATSD_EXPORTER_IMAGE
from ..workload_spec import WorkloadSpec
from .shared import container_security, env_var, http_probe, image_pull_policy

EXPORTER_UID = 65534  # `nobody`, the user of the image
STATSD_PORT = 9125  # UDP, Airflow -> exporter
METRICS_PORT = 9102  # TCP, /metrics for the GMP collectors
METRICS_PORT_NAME = "metrics"
STATSD_PREFIX = "airflow"
STATSD_SERVICE_NAME = "airflow-statsd"  # for the pods outside the `airflow` pod (task pods, git-bundle dag-processor)
MAPPING_KEY = "statsd_mappings.yaml"  # in the airflow-config ConfigMap
MAPPING_DIR = "/etc/statsd-exporter"


@dataclass(frozen=True)
class Mapping:
    match: str  # statsd_exporter glob: `*` stands for one dot-separated part
    name: str  # the Prometheus metric name queries use
    kind: str  # counter or gauge (documentation; the exporter takes the type from the StatsD line)
    help: str


# Names after the `airflow.` prefix are Airflow 3.3.2's (airflow/jobs, dag_processing, executors,
# sdk/execution_time/task_runner.py); tests/integration/test_metrics.py checks real Airflow emits them.
MAPPINGS: tuple[Mapping, ...] = (
    Mapping("airflow.scheduler_heartbeat", "airflow_scheduler_heartbeat_total", "counter", "scheduler loops"),
    Mapping("airflow.dag_processor_heartbeat", "airflow_dag_processor_heartbeat_total", "counter",
            "dag-processor loops"),
    Mapping("airflow.triggerer_heartbeat", "airflow_triggerer_heartbeat_total", "counter", "triggerer loops"),
    Mapping("airflow.dag_processing.import_errors", "airflow_dag_processing_import_errors", "gauge",
            "DAG files that failed to import at the last parse"),
    Mapping("airflow.dag_processing.total_parse_time", "airflow_dag_processing_total_parse_time_seconds", "gauge",
            "seconds to parse every DAG file once"),
    Mapping("airflow.dagbag_size", "airflow_dagbag_size", "gauge", "DAGs parsed"),
    Mapping("airflow.executor.open_slots", "airflow_executor_open_slots", "gauge", "executor slots free"),
    Mapping("airflow.executor.queued_tasks", "airflow_executor_queued_tasks", "gauge", "tasks queued in the executor"),
    Mapping("airflow.executor.running_tasks", "airflow_executor_running_tasks", "gauge", "tasks running"),
    Mapping("airflow.pool.open_slots", "airflow_pool_open_slots", "gauge", "free slots per pool (pool_name)"),
    Mapping("airflow.pool.running_slots", "airflow_pool_running_slots", "gauge", "used slots per pool"),
    Mapping("airflow.pool.queued_slots", "airflow_pool_queued_slots", "gauge", "queued slots per pool"),
    Mapping("airflow.pool.starving_tasks", "airflow_pool_starving_tasks", "gauge", "tasks waiting for a pool slot"),
    Mapping("airflow.scheduler.tasks.starving", "airflow_scheduler_tasks_starving", "gauge",
            "tasks that cannot be scheduled for lack of pool slots"),
    Mapping("airflow.ti.finish", "airflow_ti_finish_total", "counter", "task attempts ended, by dag_id/task_id/state"),
    Mapping("airflow.ti_failures", "airflow_ti_failures_total", "counter", "task failures the scheduler recorded"),
)
DROP_REST = {"match": ".", "match_type": "regex", "action": "drop", "name": "dropped"}


def metric_names() -> frozenset[str]:
    return frozenset(m.name for m in MAPPINGS)


def mapping_config() -> str:
    """statsd_exporter's --statsd.mapping-config: the listed metrics by name, everything else dropped."""
    rules = [{"match": m.match, "name": m.name, "help": m.help} for m in MAPPINGS]
    return yaml.safe_dump({"mappings": [*rules, DROP_REST]}, sort_keys=False)


def statsd_env(host: str) -> list[dict]:
    """Airflow's [metrics] settings: StatsD to `host`, tags as InfluxDB tags, no legacy names."""
    return [
        env_var("AIRFLOW__METRICS__STATSD_ON", "True"),
        env_var("AIRFLOW__METRICS__STATSD_HOST", host),
        env_var("AIRFLOW__METRICS__STATSD_PORT", STATSD_PORT),
        env_var("AIRFLOW__METRICS__STATSD_PREFIX", STATSD_PREFIX),
        env_var("AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED", "True"),
        env_var("AIRFLOW__METRICS__LEGACY_NAMES_ON", "False"),
    ]


def in_pod_statsd_env() -> list[dict]:
    """The processes of the `airflow` pod reach the sidecar on the pod's loopback."""
    return statsd_env("localhost")


def service_statsd_env(spec: WorkloadSpec) -> list[dict]:
    """Task pods and the git-bundle dag-processor reach an `airflow` pod's exporter through its Service."""
    return statsd_env(f"{STATSD_SERVICE_NAME}.{spec.settings.namespace}.svc.cluster.local")


def via_service(spec: WorkloadSpec, container: dict) -> dict:
    """`container` with its StatsD host switched from the pod's loopback to the Service."""
    replacement = {e["name"]: e for e in service_statsd_env(spec)}
    return {**container, "env": [replacement.get(e["name"], e) for e in container["env"]]}


def metrics_exporter_container(spec: WorkloadSpec) -> dict:
    return {
        "name": "metrics-exporter",
        "image": STATSD_EXPORTER_IMAGE,
        "imagePullPolicy": image_pull_policy(STATSD_EXPORTER_IMAGE),
        "args": [
            f"--statsd.mapping-config={MAPPING_DIR}/{MAPPING_KEY}",
            f"--statsd.listen-udp=:{STATSD_PORT}",
            "--statsd.listen-tcp=",  # "" disables it: Airflow sends UDP only
            f"--web.listen-address=:{METRICS_PORT}",
        ],
        "ports": [{"name": "statsd", "containerPort": STATSD_PORT, "protocol": "UDP"},
                  {"name": METRICS_PORT_NAME, "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "livenessProbe": http_probe("/-/healthy", METRICS_PORT_NAME, period=30, timeout=5, failures=3),
        # No readinessProbe: the pod serves the execution API, whose readiness must hang on the api-server
        # alone (tests/unit/test_pod_bounds.py); a stuck exporter is restarted by the liveness probe.
        "resources": spec.settings.resources["metrics-exporter"].to_k8s(),
        "securityContext": container_security(EXPORTER_UID),
        "volumeMounts": [{"name": "config", "mountPath": f"{MAPPING_DIR}/{MAPPING_KEY}", "subPath": MAPPING_KEY,
                          "readOnly": True}],
    }
