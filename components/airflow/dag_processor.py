"""git-bundle mode: the dag-processor in a Deployment of its own, one pod at any time.

With the dag-processor inside the `airflow` Deployment, every replica (2 on prod) and every surge pod of
a rolling update runs one. Each tracks the bundle on its own; until they converge they parse different
versions of the bundle (Airflow's config reference, `[dag_processor] bundle_refresh_check_interval`), and
nothing in 3.3.2 compares commits before writing (dag_processing/collection.py sets DagModel.bundle_version
to the parser's): a lagging one can record an older commit after a newer one, so the latest DAG version,
and the commit new runs get, would step back. One
replica with the Recreate strategy leaves one writer: the old pod is gone before a new one starts
(Kubernetes docs, Deployments, "Recreate Deployment": all existing Pods are killed before new ones are
created). DAG parsing pauses during a rollout; scheduling goes on from the serialized DAGs.

Its `logs` volume fills with one log per DAG file per day that Airflow never deletes
(dag_processing/manager.py); the maintenance container's groomer bounds it here too (maintenance.py).
"""

from __future__ import annotations

from typing import Optional

from .deployment import always_on_pod_annotations
from .pod import git_bundle, metrics_exporter, migrations_wait, shutdown
from .pod.airflow_processes import dag_processor_container
from .pod.cloud_sql_proxy import cloud_sql_proxy_container
from .pod.maintenance import maintenance_container
from .pod.shared import pod_security, pod_volumes
from .workload_spec import AIRFLOW_KSA, WorkloadSpec, labels, metadata, selector

NAME = "airflow-dag-processor"
COMPONENT = "dag-processor"


def dag_processor_deployment(spec: WorkloadSpec) -> Optional[dict]:
    """The single dag-processor of git-bundle mode; None in git-sync mode (it runs in the `airflow` pod)."""
    if not git_bundle.is_git_bundle(spec.settings):
        return None
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(spec, NAME, COMPONENT, migrations_wait.rollout_annotations()),
        "spec": {
            "replicas": 1,
            **migrations_wait.rollout_deadline(),
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector(spec, COMPONENT)},
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {"labels": labels(spec, COMPONENT), "annotations": always_on_pod_annotations(spec)},
                "spec": {
                    "serviceAccountName": AIRFLOW_KSA,
                    "automountServiceAccountToken": False,  # launches no pods
                    "securityContext": pod_security(),
                    "terminationGracePeriodSeconds": shutdown.GRACE_PERIOD_SECONDS,
                    "initContainers": [cloud_sql_proxy_container(spec),
                                       migrations_wait.wait_for_migrations_container(spec)],
                    # No exporter of its own: it sends to the `airflow` pods' (metrics_exporter.py).
                    "containers": [git_bundle.git_bundle_container(
                        spec, metrics_exporter.via_service(spec, dag_processor_container(spec)), fetches=True),
                                   git_bundle.git_bundle_container(
                                       spec, metrics_exporter.via_service(spec, maintenance_container(spec)))],
                    "volumes": pod_volumes(spec),
                },
            },
        },
    }
