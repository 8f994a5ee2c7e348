"""The Airflow processes of the `airflow` pod: scheduler, api-server, dag-processor and triggerer, each
`airflow <process>` under the SIGTERM relay (shutdown.py), with its env, mounts and probes.

`airflow_container` is the base every container of the Airflow image starts from (the maintenance shell,
the migrations wait, the Jobs, the task pod); `airflow_env` what all of them but the task pod get.
"""

from __future__ import annotations

from ...config import AirflowSettings
from ...config.connection_budget import API_SERVER_WORKERS
from ..workload_spec import (AIRFLOW_CFG_PATH, API_PORT, DAGS_MOUNT, POD_TEMPLATE_PATH, SECRET_KEYS, SECRET_NAME,
                             WorkloadSpec)
from . import iap_sign_in, metrics_exporter, shutdown
from .settings_env import secrets_backend_env, user_settings_env
from .shared import (AIRFLOW_UID, LOGS_DIR, container_security, env_var, exec_probe, http_probe, image_pull_policy,
                     secret_env)

# Readiness: queries the metadata DB (api/common/airflow_health.py); a pod whose DB path hangs leaves the
# Service's endpoints.
HEALTH_PATH = "/api/v2/monitor/health"
# Startup and liveness: the execution API's own `GET /execution/health` returns a constant and touches no DB
# (Airflow 3.3.2 api_fastapi/execution_api/routes/health.py). On HEALTH_PATH a slow DB (pools of 2-3, a
# pool_timeout of 30 s against a 5 s probe) restarted the api-server, and running tasks failed after 3
# missed heartbeats; tests/integration/test_api_liveness.py shows the difference on a hung DB.
LIVENESS_PATH = "/execution/health"
# Only these sign or verify `[api_auth] jwt_secret` tokens: the scheduler's executor signs each workload's
# token (executors/base_executor.py jwt_generator), the api-server verifies and re-issues them
# (api_fastapi/execution_api/app.py). The dag-processor and triggerer reach the execution API in process
# (InProcessExecutionAPI: auth overridden), task pods use the token they are given, and log fetches
# are signed with `[api] secret_key` (utils/serve_logs/log_server.py), not the JWT secret.
JWT_SECRET_ENV = "AIRFLOW__API_AUTH__JWT_SECRET"
JWT_SECRET_USERS = frozenset({"scheduler", "api-server"})
# The triggerer's log server (Airflow's `[logging] trigger_log_server_port` default, named here so the
# NetworkPolicy and the container port agree). The api-server fetches a running trigger's log from
# <triggerer job hostname>:port; the hostname is the pod IP (HOSTNAME_CALLABLE), since a pod's own name
# resolves nowhere else in the cluster (utils/log/file_task_handler.py `_get_log_retrieval_url`).
TRIGGER_LOG_SERVER_PORT = 8794
HOSTNAME_CALLABLE = "airflow.utils.net.get_host_ip_address"
EXEC_PROBE_TIMEOUT_SECONDS = 60
# The KubernetesExecutor default creates one worker pod per scheduler loop; a fan-out of 50 tasks
# then takes 50 loops. 16 per loop, created concurrently (`async_pod_creation`, provider 10.21.0+,
# at most `pod_creation_max_concurrency` = 0: the batch size at a time), keeps a burst within a few loops
# without blocking the loop on 16 sequential API round trips.
WORKER_PODS_CREATION_BATCH_SIZE = 16
# Where users open the UI when it is not exposed: the README's `kubectl port-forward svc/airflow-ui 8080:80`.
PORT_FORWARD_BASE_URL = "http://localhost:8080"


# --- env -------------------------------------------------------------------------------------

def shared_airflow_settings(spec: WorkloadSpec) -> list[dict]:
    """Non-secret settings every Airflow process needs, task pods included."""
    return [
        env_var("AIRFLOW__CORE__EXECUTOR", "KubernetesExecutor"),
        env_var("AIRFLOW__CORE__DAGS_FOLDER", spec.dags_folder),
        env_var("AIRFLOW__CORE__LOAD_EXAMPLES", "False"),
        env_var("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", spec.execution_api_url),
        env_var("AIRFLOW__CORE__AUTH_MANAGER", iap_sign_in.auth_manager(spec.settings)),
        env_var("AIRFLOW__LOGGING__REMOTE_LOGGING", "True"),
        env_var("AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER", spec.remote_log_folder),
        env_var("AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE", spec.settings.namespace),
        # The image's entrypoint would otherwise poll the DB 20 times at start; task pods have no DB
        # access at all, and Airflow pods wait on `airflow db check-migrations` instead.
        env_var("CONNECTION_CHECK_MAX_COUNT", "0"),
        *user_settings_env(spec.settings),  # airflowConfig: keys the program sets are refused at preview
    ]


def airflow_env(spec: WorkloadSpec, container: str = "") -> list[dict]:
    """Environment of the scheduler, api-server, dag-processor, triggerer and maintenance containers (and the
    Jobs); the JWT secret only for the `container`s in JWT_SECRET_USERS."""
    return [
        *shared_airflow_settings(spec),
        *(secret_env(name, SECRET_NAME, key) for name, key in SECRET_KEYS.items()
          if name != JWT_SECRET_ENV or container in JWT_SECRET_USERS),
        env_var("AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE", POD_TEMPLATE_PATH),
        env_var("AIRFLOW__KUBERNETES_EXECUTOR__DELETE_WORKER_PODS", "True"),
        # A failed pod stays for debugging until the pod-cleanup CronJob's retention (pod_cleanup.py).
        env_var("AIRFLOW__KUBERNETES_EXECUTOR__DELETE_WORKER_PODS_ON_FAILURE",
                str(spec.settings.failed_pod_retention_hours <= 0)),
        # New DAG files are listed every dag_refresh_seconds (default would be 5 minutes); a file whose
        # mtime is newer than its last parse is parsed then too (file_parsing_sort_mode modified_time,
        # and git-sync checks every commit out anew), so a pushed change shows up about one git-sync
        # period later. Unchanged files are re-parsed only every dag_reparse_seconds: CPU and log volume.
        env_var("AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL", spec.settings.dag_refresh_seconds),
        env_var("AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL", spec.settings.dag_reparse_seconds),
        env_var("AIRFLOW__API__EXPOSE_CONFIG", "False"),
        *long_running_env(spec.settings),
        *metrics_exporter.in_pod_statsd_env(),
        *secrets_backend_env(spec.settings),  # not on task pods: they ask the execution API (settings_env.py)
        *iap_sign_in.sign_in_env(spec.settings, container),
    ]


def long_running_env(settings: AirflowSettings) -> list[dict]:
    """What a process that runs for months needs: pools that fit the tier, bounded local logs, pod bursts."""
    return [
        # Pools sized so that the worst case fits the Cloud SQL tier (components/config/connection_budget.py).
        env_var("AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE", settings.db_pool_size),
        env_var("AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW", settings.db_pool_max_overflow),
        env_var("AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_PRE_PING", "True"),  # survive proxy/Cloud SQL restarts
        env_var("AIRFLOW__API__WORKERS", API_SERVER_WORKERS),
        # Trigger logs are uploaded to GCS when a trigger ends; keep no local copy (maintenance.py).
        env_var("AIRFLOW__LOGGING__DELETE_LOCAL_LOGS", "True"),
        env_var("AIRFLOW__KUBERNETES_EXECUTOR__WORKER_PODS_CREATION_BATCH_SIZE", WORKER_PODS_CREATION_BATCH_SIZE),
        env_var("AIRFLOW__KUBERNETES_EXECUTOR__ASYNC_POD_CREATION", "True"),
        # Job and log-server hostnames are pod IPs, which other pods can reach (TRIGGER_LOG_SERVER_PORT).
        env_var("AIRFLOW__CORE__HOSTNAME_CALLABLE", HOSTNAME_CALLABLE),
        env_var("AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT", TRIGGER_LOG_SERVER_PORT),
        env_var("AIRFLOW__API__BASE_URL", base_url(settings)),
    ]


def base_url(settings: AirflowSettings) -> str:
    """The UI address users open, for links in logs, callbacks and e-mails."""
    return settings.base_url or PORT_FORWARD_BASE_URL


# --- containers ------------------------------------------------------------------------------

def airflow_mounts(with_pod_template: bool = True) -> list[dict]:
    mounts = [
        {"name": "dags", "mountPath": DAGS_MOUNT, "readOnly": True},
        {"name": "logs", "mountPath": LOGS_DIR},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "config", "mountPath": AIRFLOW_CFG_PATH, "subPath": "airflow.cfg", "readOnly": True},
    ]
    if with_pod_template:
        mounts.append({"name": "config", "mountPath": POD_TEMPLATE_PATH, "subPath": "pod_template_file.yaml",
                       "readOnly": True})
    return mounts


def airflow_container(spec: WorkloadSpec, name: str, args: list[str], resources: str,
                      probes: dict | None = None, ports: list[dict] | None = None,
                      command: list[str] | None = None, env: list[dict] | None = None) -> dict:
    container = {
        "name": name,
        "image": spec.settings.image,
        "imagePullPolicy": image_pull_policy(spec.settings.image),
        "args": args,
        "env": env if env is not None else airflow_env(spec, name),
        "resources": spec.settings.resources[resources].to_k8s(),
        "securityContext": container_security(AIRFLOW_UID, 0),
        "volumeMounts": [*airflow_mounts(), *iap_sign_in.module_mounts(spec.settings)],
    }
    if command:
        container["command"] = command
    if ports:
        container["ports"] = ports
    container.update(probes or {})
    return container


def job_check_command(job_type: str) -> list[str]:
    return ["airflow", "jobs", "check", "--job-type", job_type, "--local"]


def job_process_container(spec: WorkloadSpec, name: str, job_type: str) -> dict:
    """scheduler, dag-processor or triggerer: `airflow <name>`, probed by `airflow jobs check`."""
    check = job_check_command(job_type)
    # `airflow jobs check` costs 2.5-3.8 CPU-seconds (measured, docs/benchmarks.md): on half of a 250m
    # request that is up to ~31 s; 60 s leaves twice that, so a busy node does not fail a healthy process.
    return airflow_container(spec, name, shutdown.relayed(["airflow", name]), name, probes={
        "startupProbe": exec_probe(check, period=10, timeout=EXEC_PROBE_TIMEOUT_SECONDS, failures=12),
        "livenessProbe": exec_probe(check, period=60, timeout=EXEC_PROBE_TIMEOUT_SECONDS, failures=5,
                                    initial_delay=10),
    })


def scheduler_container(spec: WorkloadSpec) -> dict:
    return job_process_container(spec, "scheduler", "SchedulerJob")


def dag_processor_container(spec: WorkloadSpec) -> dict:
    return job_process_container(spec, "dag-processor", "DagProcessorJob")


def triggerer_container(spec: WorkloadSpec) -> dict:
    container = job_process_container(spec, "triggerer", "TriggererJob")
    return {**container, "ports": [{"name": "trigger-logs", "containerPort": TRIGGER_LOG_SERVER_PORT,
                                    "protocol": "TCP"}]}


def api_server_container(spec: WorkloadSpec) -> dict:
    return airflow_container(
        spec, "api-server", shutdown.relayed(["airflow", "api-server", "--port", str(API_PORT)]), "api-server",
        ports=[{"name": "api", "containerPort": API_PORT, "protocol": "TCP"}],
        probes={
            "startupProbe": http_probe(LIVENESS_PATH, "api", period=10, timeout=5, failures=12),
            "livenessProbe": http_probe(LIVENESS_PATH, "api", period=15, timeout=5, failures=5),
            "readinessProbe": http_probe(HEALTH_PATH, "api", period=10, timeout=5, failures=3),
        })
