"""The PodMonitoring that has Google Cloud Managed Service for Prometheus scrape the always-on pods: the
StatsD exporter (Airflow's metrics), the Cloud SQL Auth Proxy and git-sync. GKE's managed collection
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
SCRAPE_INTERVAL = "60s"  # GMP bills per sample: twice a minute would double the cost (docs/operations.md)
# Port names of the containers (metrics_exporter.py, cloud_sql_proxy.py, git_sync.py); a pod without one
# of them (no git-sync in git-bundle mode) simply has no target for it.
SCRAPED_PORT_NAMES = (METRICS_PORT_NAME, "proxy-health", "git-sync")


def pod_monitoring(spec: WorkloadSpec) -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": "PodMonitoring",
        "metadata": metadata(spec, POD_MONITORING_NAME, "metrics"),
        "spec": {
            "selector": scraped_pods(spec),
            "endpoints": [{"port": port, "path": "/metrics", "interval": SCRAPE_INTERVAL}
                          for port in SCRAPED_PORT_NAMES],
        },
    }
