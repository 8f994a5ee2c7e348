"""The Jobs that work on the metadata DB: the migration Job (`airflow db migrate`, then the admin user)
and the weekly `airflow db clean` CronJob. Their pods run the proxy as a native sidecar, have no DAGs and
no Kubernetes API token."""

from __future__ import annotations

import hashlib
import shlex
from typing import Optional

from ..config import AirflowSettings
from .pod.airflow_processes import airflow_container, airflow_env
from .pod.cloud_sql_proxy import cloud_sql_proxy_container
from .pod.migrations_wait import MIGRATION_JOB_TIMEOUT_SECONDS
from .pod.shared import env_var, pod_security, pod_volumes, secret_env
from .workload_spec import ADMIN_PASSWORD_KEY, AIRFLOW_KSA, SECRET_NAME, WorkloadSpec, labels, metadata

ADMIN_PASSWORD_ENV = "AIRFLOW_ADMIN_PASSWORD"
ADMIN_USERNAME_ENV = "AIRFLOW_ADMIN_USERNAME"
DB_CLEANUP_SCHEDULE = "17 3 * * 0"  # Sundays 03:17 UTC, off the hour
METADATA_RETENTION_ENV = "METADATA_RETENTION_DAYS"


# --- the admin user (the migration Job's second step) -----------------------------------------

def admin_checksum(username: str, email: str, password: str) -> str:
    """Digest of what the admin step sets: part of the migration Job's name, so a new password re-runs it."""
    return hashlib.sha256("\0".join((username, email, password)).encode()).hexdigest()


def admin_user_script(settings: AirflowSettings) -> str:
    """Create the admin if missing (`users create` is a no-op when the user exists), then set the password
    either way: a rotated password reaches Airflow. User name and password come from the container's env
    (the password from the Secret), never from the command line of the manifest."""
    user, password = f'"${ADMIN_USERNAME_ENV}"', f'"${ADMIN_PASSWORD_ENV}"'
    return (
        "set -e\n"
        f"airflow users create --role Admin --username {user} --email {shlex.quote(settings.admin_email)} "
        f"--firstname Airflow --lastname Admin --password {password}\n"
        f"exec airflow users reset-password --username {user} --password {password}\n"
    )


def admin_user_command(spec: WorkloadSpec) -> list[str]:
    return ["bash", "-c", admin_user_script(spec.settings)]


# --- the Jobs ----------------------------------------------------------------------------------

def migration_job_name(image: str, admin_checksum: str = "") -> str:
    """One Job per image and admin password: a new image (new Airflow version) runs migrations again, a
    rotated admin password sets it again (a Job's pod template is immutable, so a new Job is a new name)."""
    return f"airflow-migrate-{hashlib.sha256((image + chr(0) + admin_checksum).encode()).hexdigest()[:10]}"


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
                                     env=[*airflow_env(spec),
                                          env_var(ADMIN_USERNAME_ENV, spec.settings.admin_username),
                                          secret_env(ADMIN_PASSWORD_ENV, SECRET_NAME, ADMIN_PASSWORD_KEY)])
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
                              env=[*airflow_env(spec),
                                   env_var(METADATA_RETENTION_ENV, spec.settings.metadata_retention_days)])
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
