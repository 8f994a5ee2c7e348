"""Environment variables of the Airflow containers, the task pods and git-sync."""

from __future__ import annotations

from .. import git_sync_liveness
from .operations import long_running_env
from .workload_spec import (GIT_KNOWN_HOSTS_PATH, GIT_LINK, GIT_ROOT, GIT_SECRET_NAME, GIT_SSH_KEY_PATH,
                            GIT_SYNC_HTTP_PORT, POD_TEMPLATE_PATH, SECRET_KEYS, SECRET_NAME, WorkloadSpec)

FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"


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
