"""What the containers of every pod share: security contexts, probe and env helpers, the image pull
policy, and the pod's volumes (with the git SSH key mounts git-sync and git-bundle both use)."""

from __future__ import annotations

from typing import Optional

from ...config import image_problem
from ..workload_spec import (AIRFLOW_HOME, CONFIGMAP_NAME, GIT_KNOWN_HOSTS_PATH, GIT_SECRET_NAME, GIT_SSH_KEY_PATH,
                             WorkloadSpec)

# The user of Airflow's official image; the pods run as it unless a container says otherwise.
AIRFLOW_UID = 50000

# The pod's `logs` emptyDir; what keeps it under the limit is the maintenance container's groomer (maintenance.py).
LOGS_SIZE_LIMIT = "2Gi"
LOGS_SIZE_LIMIT_BYTES = 2 * 2**30
LOGS_DIR = f"{AIRFLOW_HOME}/logs"


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


# --- probes, env, image -----------------------------------------------------------------------

def exec_probe(command: list[str], period: int, timeout: int, failures: int, initial_delay: int = 0) -> dict:
    return {"exec": {"command": command}, "periodSeconds": period, "timeoutSeconds": timeout,
            "failureThreshold": failures, "initialDelaySeconds": initial_delay}


def http_probe(path: str, port, period: int, timeout: int, failures: int, initial_delay: int = 0) -> dict:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": period, "timeoutSeconds": timeout,
            "failureThreshold": failures, "initialDelaySeconds": initial_delay}


def env_var(name: str, value) -> dict:
    return {"name": name, "value": str(value)}


def secret_env(name: str, secret: str, key: str) -> dict:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def image_pull_policy(image: str) -> str:
    """IfNotPresent for a pinned tag or digest (the node's copy is the right one; a registry blip then
    cannot fail a pending task pod with ErrImagePull), Always otherwise."""
    return "IfNotPresent" if image_problem(image) is None else "Always"


# --- volumes ---------------------------------------------------------------------------------

def pod_volumes(spec: WorkloadSpec) -> list[dict]:
    volumes = [
        {"name": "dags", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "logs", "emptyDir": {"sizeLimit": LOGS_SIZE_LIMIT}},
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


def git_ssh_mounts(spec: WorkloadSpec) -> list[dict]:
    """The SSH key (and known_hosts) of a private repository, for whichever container clones it."""
    if spec.settings.git_credentials_kind != "ssh":
        return []
    mounts = [{"name": "git-ssh-key", "mountPath": GIT_SSH_KEY_PATH, "subPath": "ssh", "readOnly": True}]
    if spec.settings.git_ssh_known_hosts:
        mounts.append({"name": "git-ssh-key", "mountPath": GIT_KNOWN_HOSTS_PATH, "subPath": "known_hosts",
                       "readOnly": True})
    return mounts
