"""The `airflow` Deployment: the always-on pod that runs every Airflow process side by side, and what
its pod template carries (checksums that roll it, the autoscaler's safe-to-evict, topology spread).

Its containers are built in pod/, one module per kind; here they are only put in order."""

from __future__ import annotations

import hashlib
import json

from .config_map import config_map
from .pod import git_bundle, migrations_wait, shutdown
from .pod.airflow_processes import (api_server_container, dag_processor_container, scheduler_container,
                                    triggerer_container)
from .pod.cloud_sql_proxy import cloud_sql_proxy_container
from .pod.git_sync import git_sync_container
from .pod.maintenance import maintenance_container
from .pod.metrics_exporter import metrics_exporter_container
from .pod.shared import pod_security, pod_volumes
from .workload_spec import AIRFLOW_KSA, DEPLOYMENT_NAME, WorkloadSpec, labels, metadata, selector

# The cluster autoscaler never evicts a pod with emptyDir volumes unless told it is safe, so the node
# under the always-on pod could never be consolidated away (kubernetes/autoscaler cluster-autoscaler/FAQ.md,
# "What types of pods can prevent CA from removing a node?"). Its emptyDirs are caches: DAGs are synced
# again, and local logs are shipped or groomed. Task pods do not get it: evicting one kills a running task.
SAFE_TO_EVICT = {"cluster-autoscaler.kubernetes.io/safe-to-evict": "true"}


def topology_spread(spec: WorkloadSpec, component: str) -> list[dict]:
    return [
        {"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway",
         "labelSelector": {"matchLabels": selector(spec, component)}}
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]


def pod_checksums(spec: WorkloadSpec) -> dict:
    """Pods read the ConfigMap (subPath mounts never refresh) and the Secret only at start, so their
    digests sit in the pod template: a change to either rolls the Deployment."""
    config = json.dumps(config_map(spec)["data"], sort_keys=True)
    return {"checksum/config": hashlib.sha256(config.encode()).hexdigest(),
            "checksum/secrets": spec.secrets_checksum}


def always_on_pod_annotations(spec: WorkloadSpec) -> dict:
    return {**pod_checksums(spec), **SAFE_TO_EVICT}


def deployment(spec: WorkloadSpec) -> dict:
    """The design's single Deployment: scheduler, UI, dag-processor, triggerer, maintenance, git-sync,
    the metrics exporter and the Cloud SQL Auth Proxy as a native sidecar. In git-bundle mode without git-sync, and without
    the dag-processor, which then runs once for all replicas (dag_processor.py)."""
    component = "airflow"
    git_sync = not git_bundle.is_git_bundle(spec.settings)
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
                        migrations_wait.wait_for_migrations_container(spec),
                    ],
                    "containers": [
                        *(git_bundle.git_bundle_container(spec, c) for c in (
                            scheduler_container(spec),
                            api_server_container(spec),
                            # git-bundle: one dag-processor for all replicas, dag_processor.py
                            *([dag_processor_container(spec)] if git_sync else []),  # git-sync: no fetch
                            triggerer_container(spec),
                            maintenance_container(spec))),
                        *([git_sync_container(spec)] if git_sync else []),
                        metrics_exporter_container(spec),
                    ],
                    "volumes": pod_volumes(spec),
                },
            },
        },
    }
