"""Env the stack's settings add to the Airflow containers: the user's Airflow settings (airflowConfig) on every
Airflow container, and the Secret Manager secrets backend on the long-running Airflow processes only.

Why not on task pods: a task asks the execution API for a connection or variable (the task runner's
secrets chain ends in the supervisor, which calls the api-server; airflow/sdk/execution_time/context.py
`_get_connection`, supervisor.py `ensure_secrets_backend_loaded` and `GetConnection`, and
api_fastapi/execution_api/routes/connections.py, which resolves through `Connection.get_connection_from_secrets`
and so through the configured backend, in Airflow 3.3.2). A backend configured in the task pod would be
tried first, with the task's own Google identity; without it, only the Airflow account reads secrets."""

from __future__ import annotations

import json

from ...config import AirflowSettings
from ...config.airflow_overrides import env_name
from ...config.task_access import SECRET_SEP, secret_prefixes
from .shared import env_var

# The Google provider's backend (apache-airflow-providers-google, airflow/providers/google/cloud/secrets/
# secret_manager.py; shipped in the official image). Its kwargs are that class's __init__ parameters.
SECRET_MANAGER_BACKEND = "airflow.providers.google.cloud.secrets.secret_manager.CloudSecretManagerBackend"


def user_settings_env(settings: AirflowSettings) -> list[dict]:
    return [env_var(env_name(name), value) for name, value in settings.airflow_config]


def secrets_backend_kwargs(settings: AirflowSettings) -> dict:
    connections, variables = secret_prefixes(settings.secrets_prefix)
    # config_prefix None: no Airflow option is read from Secret Manager (its grant covers only these two).
    return {"connections_prefix": connections, "variables_prefix": variables, "config_prefix": None,
            "sep": SECRET_SEP, "project_id": settings.secrets_project}


def secrets_backend_env(settings: AirflowSettings) -> list[dict]:
    if settings.secrets_backend != "secret-manager":
        return []
    return [env_var("AIRFLOW__SECRETS__BACKEND", SECRET_MANAGER_BACKEND),
            env_var("AIRFLOW__SECRETS__BACKEND_KWARGS", json.dumps(secrets_backend_kwargs(settings), sort_keys=True))]
