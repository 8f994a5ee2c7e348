"""A task on the Spot pool (Standard clusters with `airflow-gke:spotPool true`).

The Spot pool is tainted `cloud.google.com/gke-spot=true:NoSchedule`, so only pods that tolerate it
land there; GKE labels Spot nodes `cloud.google.com/gke-spot: "true"`, which the selector requires.
Spot VMs can be reclaimed at any time: give such tasks retries and keep them idempotent.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from kubernetes.client import models as k8s

from airflow.sdk import dag, task

ON_SPOT = {
    "pod_override": k8s.V1Pod(spec=k8s.V1PodSpec(
        node_selector={"cloud.google.com/gke-spot": "true"},
        tolerations=[k8s.V1Toleration(key="cloud.google.com/gke-spot", operator="Equal", value="true",
                                      effect="NoSchedule")],
        containers=[k8s.V1Container(name="base", resources=k8s.V1ResourceRequirements(
            requests={"cpu": "1", "memory": "2Gi"}, limits={"cpu": "1", "memory": "2Gi"}))],
    ))
}


@dag(dag_id="example_spot_task", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
     catchup=False, tags=["airflow-gke", "example"])
def spot_task():
    @task(executor_config=ON_SPOT, retries=3, retry_delay=timedelta(minutes=2))
    def crunch():
        return sum(range(10_000_000))

    crunch()


spot_task()
