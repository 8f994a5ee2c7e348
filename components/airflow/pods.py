"""The objects that run pods: the Deployment, the migration Job, the db-cleanup CronJob, and the
KubernetesExecutor's worker pod template with the ConfigMap that carries it."""

from __future__ import annotations

import hashlib
import json
from typing import Optional

import yaml

from . import dag_source, migrations_wait, shutdown
from .containers import (airflow_container, api_server_container, cloud_sql_proxy_container, dag_processor_container,
                         git_bundle_container, git_sync_container, maintenance_container, pod_security,
                         scheduler_container, triggerer_container, wait_for_migrations_container)
from .env import _env, _secret_env, airflow_env, shared_airflow_settings
from .migrations_wait import MIGRATION_JOB_TIMEOUT_SECONDS
from .operations import ADMIN_PASSWORD_ENV, ADMIN_USERNAME_ENV, admin_user_script
from .volumes import airflow_mounts, pod_volumes
from .workload_spec import (ADMIN_PASSWORD_KEY, AIRFLOW_KSA, CONFIGMAP_NAME, DEPLOYMENT_NAME, FETCH_SCRIPT_PATH,
                            SECRET_NAME, WORKER_KSA, WORKER_LOG_SERVER_PORT, WorkloadSpec, labels, metadata, selector)

DB_CLEANUP_SCHEDULE = "17 3 * * 0"  # Sundays 03:17 UTC, off the hour
METADATA_RETENTION_ENV = "METADATA_RETENTION_DAYS"

AIRFLOW_CFG = """\
# airflow-gke: Airflow is configured with AIRFLOW__<SECTION>__<KEY> environment variables (see the
# Deployment); this file exists so Airflow does not try to write one into a read-only filesystem.
[core]
"""


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
                "metadata": {"labels": labels(spec, component), "annotations": always_on_pod_annotations(spec)},
                "spec": {
                    "serviceAccountName": AIRFLOW_KSA,
                    "automountServiceAccountToken": True,  # the scheduler launches task pods
                    "securityContext": pod_security(),
                    "terminationGracePeriodSeconds": shutdown.GRACE_PERIOD_SECONDS,
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


# The cluster autoscaler never evicts a pod with emptyDir volumes unless told it is safe, so the node
# under the always-on pod could never be consolidated away (kubernetes/autoscaler cluster-autoscaler/FAQ.md,
# "What types of pods can prevent CA from removing a node?"). Its emptyDirs are caches: DAGs are synced
# again, and local logs are shipped or groomed. Task pods do not get it: evicting one kills a running task.
SAFE_TO_EVICT = {"cluster-autoscaler.kubernetes.io/safe-to-evict": "true"}


def always_on_pod_annotations(spec: WorkloadSpec) -> dict:
    return {**pod_checksums(spec), **SAFE_TO_EVICT}


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
