"""A task that runs as its own Google identity and reads BigQuery, with no key anywhere.

The stack declares the identity (Pulumi.<stack>.yaml):
    airflow-gke:taskIdentities:
      analytics: [roles/bigquery.jobUser]
which creates the Google account `<namePrefix>-task-analytics` with that role and the Kubernetes service
account `task-analytics` bound to it by Workload Identity. Selecting that service account in
pod_override is all a task does; every other task keeps the worker account (airflow-gke:workerRoles).

The query reads a public dataset, so running a query job (roles/bigquery.jobUser) is the only grant needed.
The BigQuery client ships in the official image (Google provider); it is imported inside the task so the
DAG file parses anywhere.
"""

from __future__ import annotations

import pendulum
from kubernetes.client import models as k8s

from airflow.sdk import dag, task

AS_ANALYTICS = {"pod_override": k8s.V1Pod(spec=k8s.V1PodSpec(service_account_name="task-analytics", containers=[]))}
QUERY = """
SELECT word, SUM(word_count) AS count
FROM `bigquery-public-data.samples.shakespeare`
GROUP BY word ORDER BY count DESC LIMIT 5
"""


@dag(dag_id="example_task_identity", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
     catchup=False, tags=["airflow-gke", "example"])
def task_identity():
    @task(executor_config=AS_ANALYTICS)
    def query() -> list[dict]:
        from google.cloud import bigquery  # in the image, not needed to parse the DAG

        # Credentials and project come from the GKE metadata server: the pod's Kubernetes service account
        # acts as its Google account (Workload Identity).
        rows = bigquery.Client().query(QUERY).result()
        return [dict(row.items()) for row in rows]

    query()


task_identity()
