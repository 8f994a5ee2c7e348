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
"""

from __future__ import annotations

from typing import Optional

from . import dag_source, migrations_wait, shutdown
from . import spec as s

NAME = "airflow-dag-processor"
COMPONENT = "dag-processor"


def dag_processor_deployment(spec: s.WorkloadSpec) -> Optional[dict]:
    """The single dag-processor of git-bundle mode; None in git-sync mode (it runs in the `airflow` pod)."""
    if not dag_source.is_git_bundle(spec.settings):
        return None
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": s.metadata(spec, NAME, COMPONENT, migrations_wait.rollout_annotations()),
        "spec": {
            "replicas": 1,
            **migrations_wait.rollout_deadline(),
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": s.selector(spec, COMPONENT)},
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {"labels": s.labels(spec, COMPONENT), "annotations": s.always_on_pod_annotations(spec)},
                "spec": {
                    "serviceAccountName": s.AIRFLOW_KSA,
                    "automountServiceAccountToken": False,  # launches no pods
                    "securityContext": s.pod_security(),
                    "terminationGracePeriodSeconds": shutdown.GRACE_PERIOD_SECONDS,
                    "initContainers": [s.cloud_sql_proxy_container(spec), s.wait_for_migrations_container(spec)],
                    "containers": [s.git_bundle_container(spec, s.dag_processor_container(spec), fetches=True)],
                    "volumes": s.pod_volumes(spec),
                },
            },
        },
    }
