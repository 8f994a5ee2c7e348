"""Façade over the pure builders of the Airflow workload's Kubernetes objects (plain dicts, exactly as
`kubectl apply` takes them): import from here or from the module that holds the builder.

Modules, imports flowing down the list: workload_spec (WorkloadSpec, shared names and labels), env,
volumes, containers, pods (Deployment, Jobs, worker pod template, ConfigMap), access (Services, RBAC,
NetworkPolicies, PDB, Namespace). The ComponentResource in workload.py only feeds Pulumi outputs into
these functions, so each piece can be unit tested without Pulumi.
"""

from .workload_spec import (ADMIN_PASSWORD_KEY, AIRFLOW_CFG_PATH, AIRFLOW_HOME, AIRFLOW_KSA, AIRFLOW_UID, API_PORT,
                            API_SERVICE_NAME, CONFIGMAP_NAME, DAGS_MOUNT, DEPLOYMENT_NAME, FETCH_SCRIPT_PATH,
                            GIT_KNOWN_HOSTS_PATH, GIT_LINK, GIT_ROOT, GIT_SECRET_NAME, GIT_SSH_KEY_PATH,
                            GIT_SYNC_HTTP_PORT, GIT_SYNC_UID, HEALTH_PATH, POD_TEMPLATE_PATH, PROXY_HEALTH_PORT,
                            PROXY_UID, ROLE_NAME, SECRET_KEYS, SECRET_NAME, UI_SERVICE_NAME, UI_SERVICE_PORT,
                            WORKER_KSA, WORKER_LOG_SERVER_PORT, WorkloadSpec, execution_api_url, labels, metadata,
                            selector)
from .env import FAB_AUTH_MANAGER, airflow_env, git_sync_env, shared_airflow_settings
from .volumes import airflow_mounts, git_ssh_mounts, pod_volumes
from .migrations_wait import MIGRATION_WAIT_SECONDS
from .containers import (EXEC_PROBE_TIMEOUT_SECONDS, airflow_container,
                         api_server_container, cloud_sql_proxy_container, container_security,
                         dag_processor_container, git_bundle_container, git_sync_container, git_sync_probes,
                         job_check_command, job_process_container, maintenance_container, pod_security,
                         scheduler_container, triggerer_container, wait_for_migrations_container)
from .pods import (AIRFLOW_CFG, DB_CLEANUP_SCHEDULE, METADATA_RETENTION_ENV, MIGRATION_JOB_TIMEOUT_SECONDS,
                   admin_user_command, config_map, database_job_pod, db_cleanup_command, db_cleanup_cronjob,
                   always_on_pod_annotations, deployment, migration_job, migration_job_name, pod_checksums,
                   pod_template, topology_spread)
from .access import (api_service, namespace, network_policies, pod_disruption_budget, pod_launcher_binding,
                     pod_launcher_role, service_accounts, ui_service)

__all__ = [
    "ADMIN_PASSWORD_KEY", "AIRFLOW_CFG_PATH", "AIRFLOW_HOME", "AIRFLOW_KSA", "AIRFLOW_UID", "API_PORT",
    "API_SERVICE_NAME", "CONFIGMAP_NAME", "DAGS_MOUNT", "DEPLOYMENT_NAME", "FETCH_SCRIPT_PATH",
    "GIT_KNOWN_HOSTS_PATH", "GIT_LINK", "GIT_ROOT", "GIT_SECRET_NAME", "GIT_SSH_KEY_PATH", "GIT_SYNC_HTTP_PORT",
    "GIT_SYNC_UID", "HEALTH_PATH", "POD_TEMPLATE_PATH", "PROXY_HEALTH_PORT", "PROXY_UID", "ROLE_NAME",
    "SECRET_KEYS", "SECRET_NAME", "UI_SERVICE_NAME", "UI_SERVICE_PORT", "WORKER_KSA", "WORKER_LOG_SERVER_PORT",
    "WorkloadSpec", "execution_api_url", "labels", "metadata", "selector", "FAB_AUTH_MANAGER", "airflow_env",
    "git_sync_env", "shared_airflow_settings", "airflow_mounts", "git_ssh_mounts", "pod_volumes",
    "EXEC_PROBE_TIMEOUT_SECONDS", "MIGRATION_WAIT_SECONDS", "airflow_container", "api_server_container",
    "cloud_sql_proxy_container", "container_security", "dag_processor_container", "git_bundle_container",
    "git_sync_container", "git_sync_probes", "job_check_command", "job_process_container",
    "maintenance_container", "pod_security", "scheduler_container", "triggerer_container",
    "wait_for_migrations_container", "AIRFLOW_CFG", "DB_CLEANUP_SCHEDULE", "METADATA_RETENTION_ENV",
    "MIGRATION_JOB_TIMEOUT_SECONDS", "admin_user_command", "config_map", "database_job_pod", "db_cleanup_command",
    "always_on_pod_annotations", "db_cleanup_cronjob", "deployment", "migration_job", "migration_job_name",
    "pod_checksums", "pod_template",
    "topology_spread", "api_service", "namespace", "network_policies", "pod_disruption_budget",
    "pod_launcher_binding", "pod_launcher_role", "service_accounts", "ui_service"
]
