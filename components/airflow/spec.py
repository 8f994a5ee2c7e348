"""Pure functions that build the Kubernetes objects of the Airflow workload as plain dicts.

Everything here takes plain values (a `WorkloadSpec`) and returns manifests exactly as
`kubectl apply` takes them (camelCase). The ComponentResource in workload.py only feeds Pulumi
outputs into these functions, so each piece can be unit tested without Pulumi.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Optional

import yaml

from ..config import CLOUD_SQL_PROXY_IMAGE, GIT_SYNC_IMAGE, AirflowSettings
from .. import git_sync_liveness
from . import log_volume
from .operations import (ADMIN_PASSWORD_ENV, ADMIN_USERNAME_ENV, admin_user_script, image_pull_policy,
                         long_running_env)
from . import dag_source
from . import migrations_wait
from .migrations_wait import MIGRATION_JOB_TIMEOUT_SECONDS

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

# Users of the three images: Airflow's official image, git-sync, Cloud SQL Auth Proxy.
AIRFLOW_UID = 50000
GIT_SYNC_UID = 65533
PROXY_UID = 65532

API_PORT = 8080
UI_SERVICE_PORT = 80
PROXY_HEALTH_PORT = 9090
GIT_SYNC_HTTP_PORT = 8081
WORKER_LOG_SERVER_PORT = 8793
HEALTH_PATH = "/api/v2/monitor/health"

AIRFLOW_HOME = "/opt/airflow"
DAGS_MOUNT = f"{AIRFLOW_HOME}/dags"
GIT_ROOT = "/git"
GIT_LINK = "repo"
POD_TEMPLATE_PATH = f"{AIRFLOW_HOME}/pod_templates/pod_template_file.yaml"
AIRFLOW_CFG_PATH = f"{AIRFLOW_HOME}/airflow.cfg"
GIT_SSH_KEY_PATH = "/etc/git-secret/ssh"
GIT_KNOWN_HOSTS_PATH = "/etc/git-secret/known_hosts"
FETCH_SCRIPT_PATH = f"{AIRFLOW_HOME}/{dag_source.FETCH_SCRIPT_KEY}"  # task pods' entry point in git-bundle mode
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
EXEC_PROBE_TIMEOUT_SECONDS = 60
DB_CLEANUP_SCHEDULE = "17 3 * * 0"  # Sundays 03:17 UTC, off the hour
METADATA_RETENTION_ENV = "METADATA_RETENTION_DAYS"

# Keys of the Kubernetes Secret that holds every credential of the workload.
SECRET_KEYS = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sql-alchemy-conn",
    "AIRFLOW__CORE__FERNET_KEY": "fernet-key",
    "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-secret",
    "AIRFLOW__API__SECRET_KEY": "api-secret-key",
}
ADMIN_PASSWORD_KEY = "admin-password"

AIRFLOW_CFG = """\
# airflow-gke: Airflow is configured with AIRFLOW__<SECTION>__<KEY> environment variables (see the
# Deployment); this file exists so Airflow does not try to write one into a read-only filesystem.
[core]
"""


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


# --- environment -----------------------------------------------------------------------------

def _env(name: str, value) -> dict:
    return {"name": name, "value": str(value)}


def _secret_env(name: str, secret: str, key: str) -> dict:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def shared_airflow_settings(spec: WorkloadSpec) -> list[dict]:
    """Non-secret settings every Airflow process needs, task pods included."""
    return [
        _env("AIRFLOW__CORE__EXECUTOR", "KubernetesExecutor"),
        _env("AIRFLOW__CORE__DAGS_FOLDER", spec.dags_folder),
        _env("AIRFLOW__CORE__LOAD_EXAMPLES", "False"),
        _env("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", spec.execution_api_url),
        _env("AIRFLOW__CORE__AUTH_MANAGER", FAB_AUTH_MANAGER),
        _env("AIRFLOW__LOGGING__REMOTE_LOGGING", "True"),
        _env("AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER", spec.remote_log_folder),
        _env("AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE", spec.settings.namespace),
        # The image's entrypoint would otherwise poll the DB 20 times at start; task pods have no DB
        # access at all, and Airflow pods wait on `airflow db check-migrations` instead.
        _env("CONNECTION_CHECK_MAX_COUNT", "0"),
    ]


def airflow_env(spec: WorkloadSpec) -> list[dict]:
    """Environment of the scheduler, api-server, dag-processor, triggerer and maintenance containers."""
    return [
        *shared_airflow_settings(spec),
        *(_secret_env(name, SECRET_NAME, key) for name, key in SECRET_KEYS.items()),
        _env("AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE", POD_TEMPLATE_PATH),
        _env("AIRFLOW__KUBERNETES_EXECUTOR__DELETE_WORKER_PODS", "True"),
        # New DAG files are listed every dag_refresh_seconds (default would be 5 minutes); a file whose
        # mtime is newer than its last parse is parsed then too (file_parsing_sort_mode modified_time,
        # and git-sync checks every commit out anew), so a pushed change shows up about one git-sync
        # period later. Unchanged files are re-parsed only every dag_reparse_seconds: CPU and log volume.
        _env("AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL", spec.settings.dag_refresh_seconds),
        _env("AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL", spec.settings.dag_reparse_seconds),
        _env("AIRFLOW__API__EXPOSE_CONFIG", "False"),
        *long_running_env(spec.settings),
    ]


# --- volumes and mounts ----------------------------------------------------------------------

def pod_volumes(spec: WorkloadSpec) -> list[dict]:
    volumes = [
        {"name": "dags", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "logs", "emptyDir": {"sizeLimit": log_volume.LOGS_SIZE_LIMIT}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "config", "configMap": {"name": CONFIGMAP_NAME}},
    ]
    if spec.settings.git_credentials_kind == "ssh":
        items = [{"key": "ssh-key", "path": "ssh"}]
        if spec.settings.git_ssh_known_hosts:
            items.append({"key": "known_hosts", "path": "known_hosts"})
        volumes.append({"name": "git-ssh-key", "secret": {
            "secretName": GIT_SECRET_NAME, "defaultMode": 0o440, "items": items}})
    return volumes


def airflow_mounts(with_pod_template: bool = True) -> list[dict]:
    mounts = [
        {"name": "dags", "mountPath": DAGS_MOUNT, "readOnly": True},
        {"name": "logs", "mountPath": f"{AIRFLOW_HOME}/logs"},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "config", "mountPath": AIRFLOW_CFG_PATH, "subPath": "airflow.cfg", "readOnly": True},
    ]
    if with_pod_template:
        mounts.append({"name": "config", "mountPath": POD_TEMPLATE_PATH, "subPath": "pod_template_file.yaml",
                       "readOnly": True})
    return mounts


# --- security --------------------------------------------------------------------------------

def container_security(uid: int, gid: Optional[int] = None) -> dict:
    return {
        "runAsUser": uid,
        "runAsGroup": uid if gid is None else gid,
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security() -> dict:
    return {
        "runAsNonRoot": True,
        "runAsUser": AIRFLOW_UID,
        "runAsGroup": 0,
        "fsGroup": 0,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


# --- containers ------------------------------------------------------------------------------

def _exec_probe(command: list[str], period: int, timeout: int, failures: int, initial_delay: int = 0) -> dict:
    return {"exec": {"command": command}, "periodSeconds": period, "timeoutSeconds": timeout,
            "failureThreshold": failures, "initialDelaySeconds": initial_delay}


def _http_probe(path: str, port, period: int, timeout: int, failures: int, initial_delay: int = 0) -> dict:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": period, "timeoutSeconds": timeout,
            "failureThreshold": failures, "initialDelaySeconds": initial_delay}


def job_check_command(job_type: str) -> list[str]:
    return ["airflow", "jobs", "check", "--job-type", job_type, "--local"]


def airflow_container(spec: WorkloadSpec, name: str, args: list[str], resources: str,
                      probes: Optional[dict] = None, ports: Optional[list[dict]] = None,
                      command: Optional[list[str]] = None, env: Optional[list[dict]] = None) -> dict:
    container = {
        "name": name,
        "image": spec.settings.image,
        "imagePullPolicy": image_pull_policy(spec.settings.image),
        "args": args,
        "env": env if env is not None else airflow_env(spec),
        "resources": spec.settings.resources[resources].to_k8s(),
        "securityContext": container_security(AIRFLOW_UID, 0),
        "volumeMounts": airflow_mounts(),
    }
    if command:
        container["command"] = command
    if ports:
        container["ports"] = ports
    container.update(probes or {})
    return container


def job_process_container(spec: WorkloadSpec, name: str, job_type: str) -> dict:
    """scheduler, dag-processor or triggerer: `airflow <name>`, probed by `airflow jobs check`."""
    check = job_check_command(job_type)
    # `airflow jobs check` costs 2.5-3.8 CPU-seconds (measured, docs/benchmarks.md): on half of a 250m
    # request that is up to ~31 s; 60 s leaves twice that, so a busy node does not fail a healthy process.
    return airflow_container(spec, name, ["airflow", name], name, probes={
        "startupProbe": _exec_probe(check, period=10, timeout=EXEC_PROBE_TIMEOUT_SECONDS, failures=12),
        "livenessProbe": _exec_probe(check, period=60, timeout=EXEC_PROBE_TIMEOUT_SECONDS, failures=5,
                                     initial_delay=10),
    })


def scheduler_container(spec: WorkloadSpec) -> dict:
    return job_process_container(spec, "scheduler", "SchedulerJob")


def dag_processor_container(spec: WorkloadSpec) -> dict:
    return job_process_container(spec, "dag-processor", "DagProcessorJob")


def triggerer_container(spec: WorkloadSpec) -> dict:
    return job_process_container(spec, "triggerer", "TriggererJob")


def api_server_container(spec: WorkloadSpec) -> dict:
    return airflow_container(
        spec, "api-server", ["airflow", "api-server", "--port", str(API_PORT)], "api-server",
        ports=[{"name": "api", "containerPort": API_PORT, "protocol": "TCP"}],
        probes={
            "startupProbe": _http_probe(HEALTH_PATH, "api", period=10, timeout=5, failures=12),
            "livenessProbe": _http_probe(HEALTH_PATH, "api", period=15, timeout=5, failures=5),
            "readinessProbe": _http_probe(HEALTH_PATH, "api", period=10, timeout=5, failures=3),
        })


def maintenance_container(spec: WorkloadSpec) -> dict:
    # Same image, env and mounts as the scheduler: the place to `kubectl exec` into. Its PID 1 grooms the
    # logs volume (log_volume.py) and exits on SIGTERM.
    return airflow_container(spec, "maintenance", [], "maintenance", command=log_volume.groomer_command(),
                             env=[*airflow_env(spec), *log_volume.groomer_env()])


def wait_for_migrations_container(spec: WorkloadSpec) -> dict:
    return airflow_container(
        spec, "wait-for-migrations",
        migrations_wait.check_migrations_args(),
        "migrations")


def cloud_sql_proxy_container(spec: WorkloadSpec) -> dict:
    """Native sidecar (init container with restartPolicy Always): up before, and down after, Airflow."""
    return {
        "name": "cloud-sql-proxy",
        "image": CLOUD_SQL_PROXY_IMAGE,
        "imagePullPolicy": image_pull_policy(CLOUD_SQL_PROXY_IMAGE),
        "restartPolicy": "Always",
        "args": [
            "--private-ip",
            "--structured-logs",
            "--health-check",
            "--http-address=0.0.0.0",
            f"--http-port={PROXY_HEALTH_PORT}",
            "--exit-zero-on-sigterm",
            "--port=5432",
            spec.database_connection_name,
        ],
        "ports": [{"name": "proxy-health", "containerPort": PROXY_HEALTH_PORT, "protocol": "TCP"}],
        "startupProbe": _http_probe("/startup", "proxy-health", period=1, timeout=5, failures=60),
        "livenessProbe": _http_probe("/liveness", "proxy-health", period=10, timeout=5, failures=3),
        "readinessProbe": _http_probe("/readiness", "proxy-health", period=10, timeout=5, failures=3),
        "resources": spec.settings.resources["cloud-sql-proxy"].to_k8s(),
        "securityContext": container_security(PROXY_UID),
    }


def git_sync_env(spec: WorkloadSpec, one_time: bool) -> list[dict]:
    env = [
        _env("GITSYNC_REPO", spec.settings.dags_repo),
        _env("GITSYNC_REF", spec.settings.dags_ref),
        _env("GITSYNC_ROOT", GIT_ROOT),
        _env("GITSYNC_LINK", GIT_LINK),
        _env("GITSYNC_DEPTH", "1"),
        _env("GITSYNC_PERIOD", f"{spec.settings.git_sync_period_seconds}s"),
        _env("GITSYNC_MAX_FAILURES", spec.settings.git_sync_max_failures),
        _env("GITSYNC_SYNC_TIMEOUT", f"{git_sync_liveness.GIT_SYNC_TIMEOUT_SECONDS}s"),  # bounds a hung fetch
    ]
    env += [_env(name, value) for name, value in git_sync_liveness.transport_stall_env(
        spec.settings.git_credentials_kind)]
    if one_time:
        env.append(_env("GITSYNC_ONE_TIME", "true"))
    else:
        env.append(_env("GITSYNC_HTTP_BIND", f"0.0.0.0:{GIT_SYNC_HTTP_PORT}"))
    if spec.settings.git_credentials_kind == "token":
        env += [_secret_env("GITSYNC_USERNAME", GIT_SECRET_NAME, "username"),
                _secret_env("GITSYNC_PASSWORD", GIT_SECRET_NAME, "token")]
    elif spec.settings.git_credentials_kind == "ssh":
        env.append(_env("GITSYNC_SSH_KEY_FILE", GIT_SSH_KEY_PATH))
        if spec.settings.git_ssh_known_hosts:
            env += [_env("GITSYNC_SSH_KNOWN_HOSTS", "true"),
                    _env("GITSYNC_SSH_KNOWN_HOSTS_FILE", GIT_KNOWN_HOSTS_PATH)]
        else:  # no known_hosts configured: the host key cannot be checked (README: set dagsSshKnownHosts)
            env.append(_env("GITSYNC_SSH_KNOWN_HOSTS", "false"))
    return env


def git_ssh_mounts(spec: WorkloadSpec) -> list[dict]:
    if spec.settings.git_credentials_kind != "ssh":
        return []
    mounts = [{"name": "git-ssh-key", "mountPath": GIT_SSH_KEY_PATH, "subPath": "ssh", "readOnly": True}]
    if spec.settings.git_ssh_known_hosts:
        mounts.append({"name": "git-ssh-key", "mountPath": GIT_KNOWN_HOSTS_PATH, "subPath": "known_hosts",
                       "readOnly": True})
    return mounts


def git_sync_container(spec: WorkloadSpec, one_time: bool = False) -> dict:
    mounts = [{"name": "dags", "mountPath": GIT_ROOT}, {"name": "tmp", "mountPath": "/tmp"}, *git_ssh_mounts(spec)]
    container = {
        "name": "git-sync-init" if one_time else "git-sync",
        "image": GIT_SYNC_IMAGE,
        "imagePullPolicy": image_pull_policy(GIT_SYNC_IMAGE),
        "env": git_sync_env(spec, one_time),
        "resources": spec.settings.resources["git-sync"].to_k8s(),
        "securityContext": container_security(GIT_SYNC_UID),
        "volumeMounts": mounts,
    }
    if not one_time:
        container["ports"] = [{"name": "git-sync", "containerPort": GIT_SYNC_HTTP_PORT, "protocol": "TCP"}]
        container.update(git_sync_probes(spec))
        container["readinessProbe"] = _http_probe("/", "git-sync", period=10, timeout=5, failures=3)
    return container


def git_sync_probes(spec: WorkloadSpec) -> dict:
    """`/` answers 503 until the first sync, then 200 forever (git-sync v4.7.1): it only tells a wedged
    process. A later stall makes git-sync itself exit (sync timeout + bounded failures, see
    components/git_sync_liveness.py); the startup probe outlasts that bound so git-sync's own exit comes first."""
    period = git_sync_liveness.PROBE_PERIOD_SECONDS
    startup = git_sync_liveness.startup_failure_threshold(spec.settings.git_sync_period_seconds,
                                                           spec.settings.git_sync_max_failures)
    return {"startupProbe": _http_probe("/", "git-sync", period=period, timeout=5, failures=startup),
            "livenessProbe": _http_probe("/", "git-sync", period=period, timeout=5, failures=3)}


def git_bundle_container(spec: WorkloadSpec, container: dict, fetches: bool = False) -> dict:
    """In git-bundle mode an Airflow container gets its DAGs itself (GitDagBundle): the bundle env and the
    dags volume writable as bundle storage; the git connection and SSH key only if it `fetches`.
    Unchanged in git-sync mode."""
    if not dag_source.is_git_bundle(spec.settings):
        return container
    env = dag_source.bundle_env(spec.settings, DAGS_MOUNT, GIT_SECRET_NAME, GIT_SSH_KEY_PATH, GIT_KNOWN_HOSTS_PATH,
                                fetches)
    mounts = [{**m, "readOnly": False} if m["name"] == "dags" else m for m in container["volumeMounts"]]
    return {**container, "env": [*container["env"], *env],
            "volumeMounts": [*mounts, *(git_ssh_mounts(spec) if fetches else [])]}


# --- workloads -------------------------------------------------------------------------------

def topology_spread(spec: WorkloadSpec, component: str) -> list[dict]:
    return [
        {"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway",
         "labelSelector": {"matchLabels": selector(spec, component)}}
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]


def deployment(spec: WorkloadSpec) -> dict:
    """The design's single Deployment: scheduler, UI, dag-processor, triggerer, maintenance, git-sync
    and the Cloud SQL Auth Proxy as a native sidecar. In git-bundle mode without git-sync, and without
    the dag-processor, which then runs once for all replicas (dag_processor.py)."""
    component = "airflow"
    git_sync = not dag_source.is_git_bundle(spec.settings)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(spec, DEPLOYMENT_NAME, component, migrations_wait.rollout_annotations()),
        "spec": {
            "replicas": spec.settings.replicas,
            **migrations_wait.rollout_deadline(),
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector(spec, component)},
            # Never go below the desired count during a rollout: a new pod serves before an old one stops.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels(spec, component), "annotations": pod_checksums(spec)},
                "spec": {
                    "serviceAccountName": AIRFLOW_KSA,
                    "automountServiceAccountToken": True,  # the scheduler launches task pods
                    "securityContext": pod_security(),
                    "terminationGracePeriodSeconds": 60,
                    "topologySpreadConstraints": topology_spread(spec, component),
                    "initContainers": [
                        *([git_sync_container(spec, one_time=True)] if git_sync else []),
                        cloud_sql_proxy_container(spec),
                        wait_for_migrations_container(spec),
                    ],
                    "containers": [
                        *(git_bundle_container(spec, c) for c in (
                            scheduler_container(spec),
                            api_server_container(spec),
                            # git-bundle: one dag-processor for all replicas, dag_processor.py
                            *([dag_processor_container(spec)] if git_sync else []),  # git-sync: no fetch
                            triggerer_container(spec),
                            maintenance_container(spec))),
                        *([git_sync_container(spec)] if git_sync else []),
                    ],
                    "volumes": pod_volumes(spec),
                },
            },
        },
    }


def pod_checksums(spec: WorkloadSpec) -> dict:
    """Pods read the ConfigMap (subPath mounts never refresh) and the Secret only at start, so their
    digests sit in the pod template: a change to either rolls the Deployment."""
    config = json.dumps(config_map(spec)["data"], sort_keys=True)
    return {"checksum/config": hashlib.sha256(config.encode()).hexdigest(),
            "checksum/secrets": spec.secrets_checksum}


def migration_job_name(image: str, admin_checksum: str = "") -> str:
    """One Job per image and admin password: a new image (new Airflow version) runs migrations again, a
    rotated admin password sets it again (a Job's pod template is immutable, so a new Job is a new name)."""
    return f"airflow-migrate-{hashlib.sha256((image + chr(0) + admin_checksum).encode()).hexdigest()[:10]}"


def admin_user_command(spec: WorkloadSpec) -> list[str]:
    return ["bash", "-c", admin_user_script(spec.settings)]


def database_job_pod(spec: WorkloadSpec, component: str, restart_policy: str, init_containers: list[dict],
                     containers: list[dict]) -> dict:
    """Pod template of a Job that works on the metadata DB: the proxy as a native sidecar, no DAGs,
    no Kubernetes API token."""
    return {
        "metadata": {"labels": labels(spec, component)},
        "spec": {
            "serviceAccountName": AIRFLOW_KSA,
            "automountServiceAccountToken": False,
            "restartPolicy": restart_policy,
            "securityContext": pod_security(),
            "initContainers": [cloud_sql_proxy_container(spec), *init_containers],
            "containers": containers,
            "volumes": [v for v in pod_volumes(spec) if v["name"] != "git-ssh-key"],
        },
    }


def migration_job(spec: WorkloadSpec) -> dict:
    """`airflow db migrate`, then the admin user (idempotent), with the proxy as a native sidecar."""
    component = "migrations"
    migrate = airflow_container(spec, "db-migrate", ["airflow", "db", "migrate"], "migrations")
    create_admin = airflow_container(spec, "create-admin-user", [], "migrations", command=admin_user_command(spec),
                                     env=[*airflow_env(spec), _env(ADMIN_USERNAME_ENV, spec.settings.admin_username),
                                          _secret_env(ADMIN_PASSWORD_ENV, SECRET_NAME, ADMIN_PASSWORD_KEY)])
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        # Pulumi waits for the Job to complete (10 minutes by default); big upgrades may take longer.
        "metadata": metadata(spec, migration_job_name(spec.settings.image, spec.admin_checksum), component,
                             {"pulumi.com/timeoutSeconds": str(MIGRATION_JOB_TIMEOUT_SECONDS)}),
        "spec": {
            "backoffLimit": 6,
            "activeDeadlineSeconds": MIGRATION_JOB_TIMEOUT_SECONDS,
            "template": database_job_pod(spec, component, "OnFailure", [migrate], [create_admin]),
        },
    }


def db_cleanup_command() -> list[str]:
    # The cut-off is computed when the Job runs; $(...) here is the shell's, not the kubelet's ($$ escapes it).
    return ["bash", "-c", 'exec airflow db clean --clean-before-timestamp '
            f'"$$(date -u -d "-$${{{METADATA_RETENTION_ENV}}} days" +%Y-%m-%dT%H:%M:%S+00:00)" '
            "--yes --skip-archive --error-on-cleanup-failure"]


def db_cleanup_cronjob(spec: WorkloadSpec) -> Optional[dict]:
    """Weekly `airflow db clean` of metadata older than the retention (the metadata DB grows forever
    otherwise); None when the retention is 0 (off)."""
    if spec.settings.metadata_retention_days <= 0:
        return None
    component = "db-cleanup"
    clean = airflow_container(spec, "db-clean", [], "migrations", command=db_cleanup_command(),
                              env=[*airflow_env(spec), _env(METADATA_RETENTION_ENV,
                                                            spec.settings.metadata_retention_days)])
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(spec, "airflow-db-cleanup", component),
        "spec": {
            "schedule": DB_CLEANUP_SCHEDULE,
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"spec": {
                "backoffLimit": 2,
                "activeDeadlineSeconds": MIGRATION_JOB_TIMEOUT_SECONDS,
                "template": database_job_pod(spec, component, "Never", [], [clean]),
            }},
        },
    }


def pod_template(spec: WorkloadSpec) -> dict:
    """KubernetesExecutor worker pod: DAGs, remote logging and the execution API URL — and no
    database credentials, no fernet key, no JWT signing secret (task pods get per-task tokens)."""
    component = "worker"
    base = airflow_container(spec, "base", [], "worker", env=shared_airflow_settings(spec))
    base["volumeMounts"] = airflow_mounts(with_pod_template=False)
    base["ports"] = [{"name": "worker-logs", "containerPort": WORKER_LOG_SERVER_PORT, "protocol": "TCP"}]
    base["env"].append(_env("HOME", "/tmp"))  # pip, dbt & co. write to $HOME; the root filesystem is read-only
    del base["args"]
    init_containers = [git_sync_container(spec, one_time=True)]
    if dag_source.is_git_bundle(spec.settings):  # no clone of the branch head: the pinned commit, fetched shallow
        base = git_bundle_container(spec, base, fetches=True)
        base["command"] = dag_source.task_command(FETCH_SCRIPT_PATH)
        base["volumeMounts"].append({"name": "config", "mountPath": FETCH_SCRIPT_PATH,
                                     "subPath": dag_source.FETCH_SCRIPT_KEY, "readOnly": True})
        init_containers = []
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        # The executor sets the namespace too (AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE); stating it here keeps
        # the template honest on its own (never the `default` namespace) and lets scanners match policies.
        "metadata": {"name": "placeholder-name", "namespace": spec.settings.namespace, "labels": labels(spec, component)},
        "spec": {
            "serviceAccountName": WORKER_KSA,
            "automountServiceAccountToken": False,
            "restartPolicy": "Never",
            "securityContext": pod_security(),
            **({"initContainers": init_containers} if init_containers else {}),
            "containers": [base],
            "volumes": pod_volumes(spec),
        },
    }


def config_map(spec: WorkloadSpec) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(spec, CONFIGMAP_NAME, "config"),
        "data": {
            "airflow.cfg": AIRFLOW_CFG,
            "pod_template_file.yaml": yaml.safe_dump(pod_template(spec), sort_keys=False),
            **({dag_source.FETCH_SCRIPT_KEY: dag_source.fetch_script()} if dag_source.is_git_bundle(spec.settings)
               else {}),
        },
    }


# --- services, access control ---------------------------------------------------------------

def ui_service(spec: WorkloadSpec) -> dict:
    service_spec: dict = {
        "type": "ClusterIP" if spec.settings.service_type == "ClusterIP" else "LoadBalancer",
        "selector": selector(spec, "airflow"),
        "ports": [{"name": "http", "port": UI_SERVICE_PORT, "targetPort": "api", "protocol": "TCP"}],
    }
    annotations = None
    if spec.settings.service_type == "InternalLoadBalancer":
        annotations = {"networking.gke.io/load-balancer-type": "Internal"}
    if service_spec["type"] == "LoadBalancer" and spec.settings.load_balancer_source_ranges:
        service_spec["loadBalancerSourceRanges"] = list(spec.settings.load_balancer_source_ranges)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": metadata(spec, UI_SERVICE_NAME, "ui", annotations), "spec": service_spec}


def api_service(spec: WorkloadSpec) -> dict:
    """Cluster-internal Service for the execution API that task pods call."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata(spec, API_SERVICE_NAME, "api"),
            "spec": {"type": "ClusterIP", "selector": selector(spec, "airflow"),
                     "ports": [{"name": "api", "port": API_PORT, "targetPort": "api", "protocol": "TCP"}]}}


def service_accounts(spec: WorkloadSpec) -> list[dict]:
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "automountServiceAccountToken": automount,
         "metadata": metadata(spec, ksa, component, {"iam.gke.io/gcp-service-account": gsa})}
        for ksa, gsa, component, automount in (
            (AIRFLOW_KSA, spec.airflow_service_account, "airflow", True),
            (WORKER_KSA, spec.worker_service_account, "worker", False))
    ]


def pod_launcher_role(spec: WorkloadSpec) -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": metadata(spec, ROLE_NAME, "rbac"),
            "rules": [
                {"apiGroups": [""], "resources": ["pods"],
                 "verbs": ["create", "get", "list", "watch", "patch", "delete"]},
                {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["events"], "verbs": ["list", "watch"]},
            ]}


def pod_launcher_binding(spec: WorkloadSpec) -> dict:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": metadata(spec, ROLE_NAME, "rbac"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE_NAME},
            "subjects": [{"kind": "ServiceAccount", "name": AIRFLOW_KSA, "namespace": spec.settings.namespace}]}


def network_policies(spec: WorkloadSpec) -> list[dict]:
    """Deny all ingress in the namespace, then open only the API/UI port of the Airflow pods (to
    everyone: the UI Service and task pods) and the task pods' log server to the Airflow pods."""
    def policy(name: str, component: str, pod_selector: dict, ingress: list) -> dict:
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": metadata(spec, name, component),
                "spec": {"podSelector": pod_selector, "policyTypes": ["Ingress"], "ingress": ingress}}

    return [
        policy("default-deny-ingress", "network", {}, []),
        policy("airflow-api-ingress", "airflow", {"matchLabels": selector(spec, "airflow")},
               [{"ports": [{"port": API_PORT, "protocol": "TCP"}]}]),
        policy("worker-logs-ingress", "worker", {"matchLabels": selector(spec, "worker")},
               [{"from": [{"podSelector": {"matchLabels": selector(spec, "airflow")}}],
                 "ports": [{"port": WORKER_LOG_SERVER_PORT, "protocol": "TCP"}]}]),
    ]


def pod_disruption_budget(spec: WorkloadSpec) -> Optional[dict]:
    if spec.settings.replicas < 2:
        return None
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": metadata(spec, DEPLOYMENT_NAME, "airflow"),
            "spec": {"minAvailable": 1, "selector": {"matchLabels": selector(spec, "airflow")}}}


def namespace(spec: WorkloadSpec) -> dict:
    ns_labels = {**labels(spec, "namespace"),
                 # Pod Security Admission: the API server itself refuses pods that break these rules.
                 "pod-security.kubernetes.io/enforce": "restricted",
                 "pod-security.kubernetes.io/warn": "restricted"}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": spec.settings.namespace, "labels": ns_labels}}
