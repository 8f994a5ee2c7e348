"""The PodMonitoring that has Google Cloud Managed Service for Prometheus scrape the always-on pods: the
StatsD exporter (Airflow's metrics). GKE's managed collection
(on by default on new Standard clusters from 1.27, and set explicitly in components/cluster.py) watches
these objects: https://cloud.google.com/stackdriver/docs/managed-prometheus/setup-managed

The object's schema is the CRD vendored in tests/crds/ (GoogleCloudPlatform/prometheus-engine), against
which tests/unit/test_monitoring_manifests.py validates it."""

from __future__ import annotations

from .access import scraped_pods
from .pod.metrics_exporter import METRICS_PORT_NAME
from .workload_spec import WorkloadSpec, metadata

API_VERSION = "monitoring.googleapis.com/v1"
POD_MONITORING_NAME = "airflow-metrics"
# GMP bills per sample ingested ($0.06 per million): every 120 s is half the samples of every 60 s. The cost is
# resolution: a point every 2 minutes, so the alert's 5-minute rate() windows hold 2-3 samples and a stalled
# scheduler is seen up to 2 minutes later (docs/operations.md, Metrics, dashboard and alerts).
SCRAPE_INTERVAL = "120s"
# Only the exporter: the dashboard and the alerts read nothing the proxy or git-sync could export, and every
# series scraped is billed, so both run without their /metrics (tests/unit/test_listeners.py keeps it so).
SCRAPED_PORT_NAMES = (METRICS_PORT_NAME,)
# Keep only Airflow's mapped series: the exporter's own Go runtime and process series (~40) are read by nobody.
# metricRelabeling keep on __name__: the PodMonitoring CRD (tests/crds/), GoogleCloudPlatform/prometheus-engine.
KEEP_AIRFLOW_ONLY = [{"action": "keep", "sourceLabels": ["__name__"], "regex": "airflow_.+"}]


def pod_monitoring(spec: WorkloadSpec) -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": "PodMonitoring",
        "metadata": metadata(spec, POD_MONITORING_NAME, "metrics"),
        "spec": {
            "selector": scraped_pods(spec),
            "endpoints": [{"port": port, "path": "/metrics", "interval": SCRAPE_INTERVAL,
                           "metricRelabeling": KEEP_AIRFLOW_ONLY} for port in SCRAPED_PORT_NAMES],
        },
    }
