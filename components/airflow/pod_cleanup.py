"""Retention of failed task pods: an hourly `airflow kubernetes cleanup-pods` CronJob.

The KubernetesExecutor deletes a worker pod when its task succeeds; with
`[kubernetes_executor] delete_worker_pods_on_failure = False` it keeps a failed one so its events, status
and container logs can be read, and nothing ever deletes it (the pinned provider's setting is true/false
only: apache-airflow-providers-cncf-kubernetes 10.25.0 get_provider_info.py, executors/kubernetes_executor.py).
This CronJob deletes the Airflow task pods (labels dag_id, task_id, try_number, airflow_version) that have
been terminal — Failed with restartPolicy Never, Succeeded, or Evicted — for longer than
`failedPodRetentionHours`, and those Pending for longer than PENDING_MINUTES (a pod that never started:
an image that cannot be pulled, a request no node can fit; the command's own floor is 5 minutes).
Flags as defined by the provider (cli/definition.py ARG_NAMESPACE, ARG_MIN_PENDING_MINUTES,
ARG_MIN_COMPLETED_MINUTES; cli/kubernetes_command.py `cleanup_pods`).

It runs under the `airflow` ServiceAccount, whose Role already lists and deletes pods in the namespace
(access.py); the command never opens the metadata database, so the pod has no proxy sidecar and is not
in the connection budget.
"""

from __future__ import annotations

from typing import Optional

from .pod.airflow_processes import airflow_container, shared_airflow_settings
from .pod.shared import pod_security, pod_volumes
from .workload_spec import AIRFLOW_KSA, WorkloadSpec, labels, metadata

NAME = "airflow-pod-cleanup"
COMPONENT = "pod-cleanup"
SCHEDULE = "41 * * * *"  # hourly, off the hour
PENDING_MINUTES = 60
DEADLINE_SECONDS = 1800


def cleanup_command(namespace: str, retention_hours: int) -> list[str]:
    return ["airflow", "kubernetes", "cleanup-pods", "--namespace", namespace,
            "--min-pending-minutes", str(PENDING_MINUTES), "--min-completed-minutes", str(retention_hours * 60)]


def pod_cleanup_cronjob(spec: WorkloadSpec) -> Optional[dict]:
    """None when the retention is 0: the executor then deletes failed pods at once."""
    hours = spec.settings.failed_pod_retention_hours
    if hours <= 0:
        return None
    # Non-secret settings only: no database URL, fernet key or API secrets in a pod that never needs them.
    container = airflow_container(spec, "cleanup-pods", [], "maintenance", env=shared_airflow_settings(spec),
                                  command=cleanup_command(spec.settings.namespace, hours))
    mounted = {m["name"] for m in container["volumeMounts"]}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata(spec, NAME, COMPONENT),
        "spec": {
            "schedule": SCHEDULE,
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"spec": {
                "backoffLimit": 2,
                "activeDeadlineSeconds": DEADLINE_SECONDS,
                "template": {
                    "metadata": {"labels": labels(spec, COMPONENT)},
                    "spec": {
                        "serviceAccountName": AIRFLOW_KSA,
                        "automountServiceAccountToken": True,  # it lists and deletes pods
                        "restartPolicy": "Never",
                        "securityContext": pod_security(),
                        "containers": [container],
                        "volumes": [v for v in pod_volumes(spec) if v["name"] in mounted],
                    },
                },
            }},
        },
    }
