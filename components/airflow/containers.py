"""The containers of the Airflow pods: the Airflow processes, the Cloud SQL Auth Proxy sidecar and git-sync,
with their probes and security contexts."""

from __future__ import annotations

from typing import Optional

from ..config import CLOUD_SQL_PROXY_IMAGE, GIT_SYNC_IMAGE
from .. import git_sync_liveness
from . import dag_source, log_volume, migrations_wait, shutdown
from .env import airflow_env, git_sync_env
from .operations import image_pull_policy
from .volumes import airflow_mounts, git_ssh_mounts
from .workload_spec import (AIRFLOW_UID, API_PORT, DAGS_MOUNT, GIT_KNOWN_HOSTS_PATH, GIT_ROOT, GIT_SECRET_NAME,
                            GIT_SSH_KEY_PATH, GIT_SYNC_HTTP_PORT, GIT_SYNC_UID, HEALTH_PATH, PROXY_HEALTH_PORT,
                            PROXY_UID, WorkloadSpec)

EXEC_PROBE_TIMEOUT_SECONDS = 60


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
    return airflow_container(spec, name, shutdown.relayed(["airflow", name]), name, probes={
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
        spec, "api-server", shutdown.relayed(["airflow", "api-server", "--port", str(API_PORT)]), "api-server",
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
