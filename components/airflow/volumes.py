"""Pod volumes and the mounts of the Airflow and git-sync containers."""

from __future__ import annotations

from . import log_volume
from .workload_spec import (AIRFLOW_CFG_PATH, AIRFLOW_HOME, CONFIGMAP_NAME, DAGS_MOUNT, GIT_KNOWN_HOSTS_PATH,
                            GIT_SECRET_NAME, GIT_SSH_KEY_PATH, POD_TEMPLATE_PATH, WorkloadSpec)


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


def git_ssh_mounts(spec: WorkloadSpec) -> list[dict]:
    if spec.settings.git_credentials_kind != "ssh":
        return []
    mounts = [{"name": "git-ssh-key", "mountPath": GIT_SSH_KEY_PATH, "subPath": "ssh", "readOnly": True}]
    if spec.settings.git_ssh_known_hosts:
        mounts.append({"name": "git-ssh-key", "mountPath": GIT_KNOWN_HOSTS_PATH, "subPath": "known_hosts",
                       "readOnly": True})
    return mounts
