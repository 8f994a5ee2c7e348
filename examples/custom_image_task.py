"""One task in another image, with its own CPU and memory (KubernetesExecutor pod_override).

The image must be built FROM this stack's Airflow image (image/Dockerfile): the task pod runs
`airflow` from it, with GCS remote logging switched on, which imports the google provider at start.
A plain `python:3.12` image cannot run an Airflow task. Build one like this:

    FROM europe-west4-docker.pkg.dev/my-proj/airflow/airflow:1.0.0
    RUN pip install --no-cache-dir dbt-bigquery==1.10.0

The container must be named `base`; everything else of the pod template (DAG volume, env, security
context, service account) is kept.
"""

from __future__ import annotations

import pendulum
from kubernetes.client import models as k8s

from airflow.sdk import dag, task

DBT_IMAGE = "europe-west4-docker.pkg.dev/my-proj/airflow/airflow-dbt:1.0.0"

BIG_TASK = {
    "pod_override": k8s.V1Pod(spec=k8s.V1PodSpec(containers=[k8s.V1Container(
        name="base",
        image=DBT_IMAGE,
        # Sized to fit one node of every stack's main pool beside GKE's DaemonSets (dev's 2-vCPU nodes
        # leave ~1.5 vCPU): a request no node can hold stays Pending, and the scheduler retries, then
        # fails, the task queued longer than [scheduler] task_queued_timeout.
        resources=k8s.V1ResourceRequirements(requests={"cpu": "1", "memory": "2560Mi"},
                                             limits={"cpu": "1500m", "memory": "2560Mi"}),
    )]))
}


@dag(dag_id="example_custom_image_task", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
     catchup=False, tags=["airflow-gke", "example"])
def custom_image_task():
    @task(executor_config=BIG_TASK)
    def transform():
        import subprocess

        # tools that write to $HOME (dbt, pip) get a writable home under the pod's /tmp volume
        subprocess.run(["dbt", "--version"], check=True)

    transform()


custom_image_task()
