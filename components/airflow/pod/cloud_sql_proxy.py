"""The Cloud SQL Auth Proxy: every pod that talks to the metadata DB runs it as a native sidecar and
reaches PostgreSQL on its own loopback (127.0.0.1:5432, see workload.sql_alchemy_conn)."""

from __future__ import annotations

from ...config import CLOUD_SQL_PROXY_IMAGE
from ..workload_spec import WorkloadSpec
from .shared import container_security, http_probe, image_pull_policy

PROXY_UID = 65532  # the user of the Cloud SQL Auth Proxy image
PROXY_HEALTH_PORT = 9090


def cloud_sql_proxy_container(spec: WorkloadSpec) -> dict:
    """Native sidecar (init container with restartPolicy Always): up before, and down after, Airflow.
    No readiness probe: a sidecar's readiness counts toward its pod's (the `airflow` pod is behind the
    execution API Service), and Google's own example advises against one for the proxy
    (GoogleCloudPlatform/cloud-sql-proxy examples/k8s-health-check/README.md); the api-server's readiness
    reflects the database instead."""
    return {
        "name": "cloud-sql-proxy",
        "image": CLOUD_SQL_PROXY_IMAGE,
        "imagePullPolicy": image_pull_policy(CLOUD_SQL_PROXY_IMAGE),
        "restartPolicy": "Always",
        "args": [
            "--private-ip",
            "--structured-logs",
            # The health checks on --http-port, for the kubelet's probes; no --prometheus: nothing scrapes the
            # proxy (scraping.py), tests/unit/test_listeners.py. Flags: GoogleCloudPlatform/cloud-sql-proxy#flags
            "--health-check",
            "--http-address=0.0.0.0",
            f"--http-port={PROXY_HEALTH_PORT}",
            "--exit-zero-on-sigterm",
            "--port=5432",
            spec.database_connection_name,
        ],
        "ports": [{"name": "proxy-health", "containerPort": PROXY_HEALTH_PORT, "protocol": "TCP"}],
        "startupProbe": http_probe("/startup", "proxy-health", period=1, timeout=5, failures=60),
        "livenessProbe": http_probe("/liveness", "proxy-health", period=10, timeout=5, failures=3),
        "resources": spec.settings.resources["cloud-sql-proxy"].to_k8s(),
        "securityContext": container_security(PROXY_UID),
    }
