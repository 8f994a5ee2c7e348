"""`WorkloadSpec`, the resolved inputs of every manifest builder, with the names, identities, ports,
paths and labels all the Airflow workload's manifests share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..config import AirflowSettings

# Identities and names.
AIRFLOW_KSA = "airflow"
WORKER_KSA = "airflow-worker"
DEPLOYMENT_NAME = "airflow"
SECRET_NAME = "airflow-secrets"
GIT_SECRET_NAME = "airflow-git-credentials"
CONFIGMAP_NAME = "airflow-config"
UI_SERVICE_NAME = "airflow-ui"
API_SERVICE_NAME = "airflow-api"
ROLE_NAME = "airflow-pod-launcher"

API_PORT = 8080
UI_SERVICE_PORT = 80
WORKER_LOG_SERVER_PORT = 8793

AIRFLOW_HOME = "/opt/airflow"
DAGS_MOUNT = f"{AIRFLOW_HOME}/dags"
GIT_LINK = "repo"  # git-sync's symlink to the checkout, under DAGS_MOUNT
POD_TEMPLATE_PATH = f"{AIRFLOW_HOME}/pod_templates/pod_template_file.yaml"
AIRFLOW_CFG_PATH = f"{AIRFLOW_HOME}/airflow.cfg"
GIT_SSH_KEY_PATH = "/etc/git-secret/ssh"
GIT_KNOWN_HOSTS_PATH = "/etc/git-secret/known_hosts"

# Keys of the Kubernetes Secret that holds every credential of the workload.
SECRET_KEYS = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sql-alchemy-conn",
    "AIRFLOW__CORE__FERNET_KEY": "fernet-key",
    "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-secret",
    "AIRFLOW__API__SECRET_KEY": "api-secret-key",
}
ADMIN_PASSWORD_KEY = "admin-password"


@dataclass(frozen=True)
class WorkloadSpec:
    """The validated Airflow settings plus the values other components provide, all resolved."""

    settings: AirflowSettings
    database_connection_name: str
    airflow_service_account: str  # Google service account e-mails (Workload Identity)
    worker_service_account: str
    remote_log_folder: str  # gs://bucket/path
    instance: str = "airflow"
    secrets_checksum: str = ""  # digest of the Secret's values: rotating a secret rolls the pods
    admin_checksum: str = ""  # digest of the admin user's settings: a change re-runs the admin step
    # Kubernetes service account -> Google account e-mail of each extra task identity (taskIdentities).
    task_service_accounts: tuple[tuple[str, str], ...] = ()

    @property
    def dags_folder(self) -> str:
        return "/".join(p for p in (DAGS_MOUNT, GIT_LINK, self.settings.dags_subpath) if p)

    @property
    def execution_api_url(self) -> str:
        return execution_api_url(self.settings.namespace)


def execution_api_url(namespace: str) -> str:
    """Where KubernetesExecutor task pods reach the execution API: the internal API Service."""
    return f"http://{API_SERVICE_NAME}.{namespace}.svc.cluster.local:{API_PORT}/execution/"


# --- labels and metadata -------------------------------------------------------------------

def labels(spec: WorkloadSpec, component: str) -> dict:
    return {
        "app.kubernetes.io/name": "airflow",
        "app.kubernetes.io/instance": spec.instance,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "airflow-gke",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def selector(spec: WorkloadSpec, component: str) -> dict:
    return {k: v for k, v in labels(spec, component).items()
            if k in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component")}


def metadata(spec: WorkloadSpec, name: str, component: str, annotations: Optional[dict] = None) -> dict:
    meta = {"name": name, "namespace": spec.settings.namespace, "labels": labels(spec, component)}
    if annotations:
        meta["annotations"] = annotations
    return meta
