"""api-server memory at N serialized DAGs (`make bench`; `python -m tests.integration.api_memory --dags N`).

The rendered api-server (its command, env and worker count) runs against its own PostgreSQL database
holding N serialized DAGs: one DAG file that generates N DAGs, serialized once by `airflow dags
reserialize` (the dag-processor's own parsing code) from the rendered dag-processor container. After
paging through `GET /api/v2/dags?limit=100` (and each page's DAG details) the PSS and RSS of the
api-server's process tree (psutil) are read: PSS counts pages shared between the workers once, which is
what the kernel charges the container's memory cgroup for; RSS counts them in every process.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import psutil

from tests.integration.bundle import migrate, own_database
from tests.integration.harness import (API_CONTAINER_PORT, admin_credentials, deviations, make_pod, render_dev,
                                       sync_dags)
from tests.integration.pod import free_port, wait_until

GENERATOR_FILE = "many_dags.py"


def generator_dag_file(count: int) -> str:
    """One file, `count` DAGs of three tasks each (ids mem_dag_0000...)."""
    return f'''\
import datetime

from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

for index in range({count}):
    with DAG(f"mem_dag_{{index:04d}}", schedule=None, start_date=datetime.datetime(2024, 1, 1),
             tags=["memory"]) as dag:
        EmptyOperator(task_id="start") >> EmptyOperator(task_id="work") >> EmptyOperator(task_id="end")
    globals()[dag.dag_id] = dag
'''


@dataclass(frozen=True)
class ApiMemory:
    dags: int
    workers: int
    pss_bytes: int
    rss_bytes: int
    pages: int


def tree_memory(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of the process and its descendants."""
    root = psutil.Process(pid)
    pss = rss = 0
    for process in (root, *root.children(recursive=True)):
        try:
            info = process.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        pss, rss = pss + info.pss, rss + info.rss
    return pss, rss


def measure(count: int, workdir: str = "api-memory") -> ApiMemory:
    objects = render_dev()
    database = own_database(objects, "airflow_api_memory")
    migrate(objects, database, f"{workdir}-job")
    pod = make_pod(objects, "Deployment", "airflow", workdir)
    sync_dags(pod, f"{workdir}-repo", {GENERATOR_FILE: generator_dag_file(count)})
    base = {"AIRFLOW__LOGGING__REMOTE_LOGGING": "False", **database}
    result = pod.run("dag-processor", base, argv=["airflow", "dags", "reserialize"], timeout=1800)
    if result.returncode != 0:
        raise AssertionError(f"reserialize failed: {result.stdout[-2000:]}{result.stderr[-3000:]}")
    port = free_port()
    from tests.integration.harness import Api  # noqa: PLC0415  (one client for every measurement)
    process = pod.start("api-server", {**deviations(pod, port, "api-server"), **database},
                        replace_args={str(API_CONTAINER_PORT): str(port)})
    try:
        wait_until(lambda: pod.probe("api-server", "startupProbe", port_map={API_CONTAINER_PORT: port})[0],
                   300, what="api-server healthy")
        api = Api(port)
        api.login(*admin_credentials(objects))
        pages = 0
        workers = int(pod.rendered_env(pod.container("api-server"))["AIRFLOW__API__WORKERS"])
        for _ in range(2):  # twice: each worker serves some of the pages, the second round hits warm caches
            for offset in range(0, count, 100):
                status, body = api.request("GET", f"/api/v2/dags?limit=100&offset={offset}")
                if status != 200:
                    raise AssertionError(f"GET /api/v2/dags offset {offset}: {status} {body}")
                pages += 1
                first = body["dags"][0]["dag_id"]
                api.request("GET", f"/api/v2/dags/{first}/details")
        total = api.request("GET", "/api/v2/dags?limit=1")[1].get("total_entries")
        if total != count:
            raise AssertionError(f"{total} DAGs serialized, expected {count}")
        pss, rss = tree_memory(process.pid)
    finally:
        pod.stop_all()
    return ApiMemory(count, workers, pss, rss, pages)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dags", type=int, default=1000)
    args = parser.parse_args()
    measured = measure(args.dags)
    print(f"api_server_memory_{measured.dags}_dags_mib: PSS {measured.pss_bytes / 2**20:.0f}, RSS "
          f"{measured.rss_bytes / 2**20:.0f} ({measured.workers} worker(s), {measured.pages} pages of "
          f"GET /api/v2/dags?limit=100)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
