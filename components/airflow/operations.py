"""Settings for a workload that runs for months: connection pools, local logs, pod bursts, image pulls,
the admin user's password. Plain values in, manifest fragments out; containers.py and pods.py place them."""

from __future__ import annotations

import hashlib
import shlex

from ..config import AirflowSettings, image_problem
from ..connection_budget import API_SERVER_WORKERS

ADMIN_PASSWORD_ENV = "AIRFLOW_ADMIN_PASSWORD"
ADMIN_USERNAME_ENV = "AIRFLOW_ADMIN_USERNAME"
# The KubernetesExecutor default creates one worker pod per scheduler loop; a fan-out of 50 tasks
# then takes 50 loops. 16 per loop with concurrent API calls keeps a burst within a few loops.
WORKER_PODS_CREATION_BATCH_SIZE = 16
# Where users open the UI when it is not exposed: README's `kubectl port-forward svc/airflow-ui 8080:80`.
PORT_FORWARD_BASE_URL = "http://localhost:8080"


def _env(name: str, value) -> dict:
    return {"name": name, "value": str(value)}


def long_running_env(settings: AirflowSettings) -> list[dict]:
    """Env of the long-running Airflow containers, on top of spec.airflow_env()."""
    return [
        # Pools sized so that the worst case fits the Cloud SQL tier (components/connection_budget.py).
        _env("AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE", settings.db_pool_size),
        _env("AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW", settings.db_pool_max_overflow),
        _env("AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_PRE_PING", "True"),  # survive proxy/Cloud SQL restarts
        _env("AIRFLOW__API__WORKERS", API_SERVER_WORKERS),
        # Trigger logs are uploaded to GCS when a trigger ends; keep no local copy (log_volume.py).
        _env("AIRFLOW__LOGGING__DELETE_LOCAL_LOGS", "True"),
        _env("AIRFLOW__KUBERNETES_EXECUTOR__WORKER_PODS_CREATION_BATCH_SIZE", WORKER_PODS_CREATION_BATCH_SIZE),
        _env("AIRFLOW__API__BASE_URL", base_url(settings)),
    ]


def base_url(settings: AirflowSettings) -> str:
    """The UI address users open, for links in logs, callbacks and e-mails."""
    return settings.base_url or PORT_FORWARD_BASE_URL


def image_pull_policy(image: str) -> str:
    """IfNotPresent for a pinned tag or digest (the node's copy is the right one; a registry blip then
    cannot fail a pending task pod with ErrImagePull), Always otherwise."""
    return "IfNotPresent" if image_problem(image) is None else "Always"


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
