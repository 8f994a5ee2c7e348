"""The first DAG to trigger after a deploy: one task on the main pool, in the stack's own image.

`scripts/e2e-verify.sh` can run it (`dag` input of .github/workflows/e2e.yml); the other examples need
a Spot pool or an image of your own.
"""

from __future__ import annotations

import pendulum

from airflow.sdk import dag, task


@dag(dag_id="example_hello", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
     catchup=False, tags=["airflow-gke", "example"])
def hello():
    @task
    def greet() -> str:
        import socket

        return f"hello from {socket.gethostname()}"

    greet()


hello()
