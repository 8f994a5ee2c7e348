"""The task pod: the KubernetesExecutor's worker pod template (pod_template_file.yaml in the ConfigMap).

DAGs, remote logging and the execution API URL, and no database credentials, no fernet key, no JWT
signing secret: task pods get per-task tokens and talk only to the execution API. In git-sync mode a
one-time git-sync clones the branch head first; in git-bundle mode the base container's entry point
fetches the commit the DAG run was parsed at (git_bundle.py)."""

from __future__ import annotations

from ..workload_spec import WORKER_KSA, WORKER_LOG_SERVER_PORT, WorkloadSpec, labels
from . import git_bundle, iap_sign_in, metrics_exporter
from .airflow_processes import airflow_container, airflow_mounts, shared_airflow_settings
from .git_sync import git_sync_container
from .shared import env_var, pod_security, pod_volumes


def task_container(spec: WorkloadSpec) -> dict:
    """The `base` container the executor runs the task in (it supplies the args)."""
    base = airflow_container(spec, "base", [], "worker",
                             env=[*shared_airflow_settings(spec), *metrics_exporter.service_statsd_env(spec)])
    base["volumeMounts"] = [*airflow_mounts(with_pod_template=False), *iap_sign_in.module_mounts(spec.settings)]
    base["ports"] = [{"name": "worker-logs", "containerPort": WORKER_LOG_SERVER_PORT, "protocol": "TCP"}]
    base["env"].append(env_var("HOME", "/tmp"))  # pip, dbt & co. write to $HOME; the root filesystem is read-only
    del base["args"]
    if git_bundle.is_git_bundle(spec.settings):  # no clone of the branch head: the pinned commit, fetched shallow
        base = git_bundle.git_bundle_container(spec, base, fetches=True)
        base["command"] = git_bundle.task_command(git_bundle.FETCH_SCRIPT_PATH)
        base["volumeMounts"].append({"name": "config", "mountPath": git_bundle.FETCH_SCRIPT_PATH,
                                     "subPath": git_bundle.FETCH_SCRIPT_KEY, "readOnly": True})
    return base


def pod_template(spec: WorkloadSpec) -> dict:
    """KubernetesExecutor worker pod: the task container, and in git-sync mode the clone before it."""
    init_containers = [] if git_bundle.is_git_bundle(spec.settings) else [git_sync_container(spec, one_time=True)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        # The executor sets the namespace too (AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE); stating it here keeps
        # the template honest on its own (never the `default` namespace) and lets scanners match policies.
        "metadata": {"name": "placeholder-name", "namespace": spec.settings.namespace,
                     "labels": labels(spec, "worker")},
        "spec": {
            "serviceAccountName": WORKER_KSA,
            "automountServiceAccountToken": False,
            "restartPolicy": "Never",
            "securityContext": pod_security(),
            **({"initContainers": init_containers} if init_containers else {}),
            "containers": [task_container(spec)],
            "volumes": pod_volumes(spec),
        },
    }
