"""Worst-case PostgreSQL connections of the Airflow workload, and the Cloud SQL limit they must fit.

Pure functions, no Pulumi: config validation (database.py beside this module) refuses a stack whose budget
exceeds its tier before anything is declared, components/airflow/ sizes the pools with it and
airflow/connections.py recomputes the same budget from the rendered manifests, and `make bench` prints it
per stack. It lives in config/ because config imports it and components/airflow/ already imports config.

Who connects (Airflow 3: task pods never touch the database, they call the execution API):
- every long-running Airflow process holds a SQLAlchemy pool of at most pool_size + max_overflow
  connections: scheduler, each api-server worker, dag-processor, triggerer;
- each api-server worker holds a second pool of the same size: the async engine (3.3.2
  airflow/settings.py `_configure_async_session` passes the same SQL_ALCHEMY_POOL_SIZE/MAX_OVERFLOW),
  opened only by the API's async sessions (api_fastapi/common/db/common.py `_get_async_session`,
  api_fastapi/execution_api/security.py, state/metastore.py) — the other processes build it but never
  check a connection out;
- each `airflow jobs check` exec probe (scheduler, dag-processor, triggerer) opens one session
  while it runs, and an operator's CLI session in the maintenance container one more;
- a rolling update (maxSurge 1, maxUnavailable 0) runs replicas + 1 pods side by side;
- the migration Job and the metadata clean-up CronJob may overlap with all of that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

# Cloud SQL for PostgreSQL: default max_connections by instance memory (GB, lower bound of each row).
# Source: https://cloud.google.com/sql/docs/postgres/quotas#maximum_concurrent_connections
# (0.6 GB db-f1-micro: 25; 1.7 GB db-g1-small: 50; 3.75 to <6 GB: 100; 6 to <7.5: 200; 7.5 to <15: 400;
# 15 to <30: 500; 30 to <60: 600; 60 to <120: 800; 120 and more: 1000). A max_connections flag overrides it.
CLOUD_SQL_DEFAULT_MAX_CONNECTIONS = ((0.6, 25), (1.7, 50), (3.75, 100), (6, 200), (7.5, 400), (15, 500),
                                     (30, 600), (60, 800), (120, 1000))
SHARED_CORE_MEMORY_GB = {"db-f1-micro": 0.6, "db-g1-small": 1.7}
# PostgreSQL keeps superuser_reserved_connections (default 3) slots for superusers; Cloud SQL's own
# agents (cloudsqladmin) use them. The application gets max_connections minus these.
# Source: https://www.postgresql.org/docs/16/runtime-config-connection.html#GUC-SUPERUSER-RESERVED-CONNECTIONS
SUPERUSER_RESERVED_CONNECTIONS = 3

# One uvicorn worker per api-server process, scaled by replicas (upstream's default moved from 4 to 1:
# apache/airflow#52270, #55707; a worker costs a whole process of memory, an OOM report: #61804). The
# memory figure behind it: docs/benchmarks.md, preview/measured.yaml.
API_SERVER_WORKERS = 1
# Pools per process: the api-server's workers each hold the sync and the async engine (see above).
ENGINES_PER_PROCESS = {"api-server": 2}
EXEC_PROBED_PROCESSES = ("scheduler", "dag-processor", "triggerer")
OPERATOR_SESSIONS_PER_POD = 1  # `kubectl exec` into maintenance and run an airflow command
ROLLOUT_SURGE = 1  # the Deployment's maxSurge
CONNECTIONS_PER_JOB = 2  # `airflow db migrate` / `db clean`: the CLI's session plus Alembic's connection

DEFAULT_POOL_SIZE = 2
DEFAULT_MAX_OVERFLOW = 1


def pooled_processes(api_workers: int = API_SERVER_WORKERS, separate_dag_processor: bool = False) -> dict[str, int]:
    """Long-running processes per Airflow pod that each hold a connection pool (in git-bundle mode the
    dag-processor runs in a Deployment of its own: one pod, Recreate, so never two at once)."""
    processes = {"scheduler": 1, "api-server": api_workers, "dag-processor": 1, "triggerer": 1}
    if separate_dag_processor:
        del processes["dag-processor"]
    return processes


@dataclass(frozen=True)
class ConnectionBudget:
    pods: int  # Airflow pods at once (during a rollout)
    per_pod: int
    jobs: int
    total: int
    dag_processor_pod: int = 0  # git-bundle mode: the dag-processor's own pod

    def describe(self, limit: Optional[int]) -> str:
        usable = "unknown" if limit is None else str(limit - SUPERUSER_RESERVED_CONNECTIONS)
        own = f" + {self.dag_processor_pod} for the dag-processor pod" if self.dag_processor_pod else ""
        return (f"{self.total} connections worst case ({self.pods} pods x {self.per_pod} + {self.jobs} for Jobs{own}) "
                f"against {usable} usable (max_connections {limit} - {SUPERUSER_RESERVED_CONNECTIONS} reserved)")


def connection_budget(replicas: int, pool_size: int, max_overflow: int, api_workers: int = API_SERVER_WORKERS,
                      jobs: int = 2, separate_dag_processor: bool = False) -> ConnectionBudget:
    per_process = pool_size + max_overflow
    processes = pooled_processes(api_workers, separate_dag_processor)
    probes = [name for name in EXEC_PROBED_PROCESSES if name in processes]
    pools = sum(count * ENGINES_PER_PROCESS.get(name, 1) for name, count in processes.items())
    per_pod = pools * per_process + len(probes) + OPERATOR_SESSIONS_PER_POD
    pods = replicas + ROLLOUT_SURGE
    job_connections = jobs * CONNECTIONS_PER_JOB
    own_pod = (per_process + 1) if separate_dag_processor else 0  # the dag-processor's pool and its probe
    return ConnectionBudget(pods=pods, per_pod=per_pod, jobs=job_connections,
                            total=pods * per_pod + job_connections + own_pod, dag_processor_pod=own_pod)


def tier_memory_gb(tier: str) -> Optional[float]:
    if tier in SHARED_CORE_MEMORY_GB:
        return SHARED_CORE_MEMORY_GB[tier]
    match = re.fullmatch(r"db-custom-\d+-(\d+)", tier)
    return int(match.group(1)) / 1024 if match else None


def max_connections(tier: str, flags: dict[str, str]) -> Optional[int]:
    """The instance's max_connections: the flag when set, else Cloud SQL's default for the tier's memory
    (None for tiers whose memory this table does not know, e.g. db-perf-optimized-*)."""
    if "max_connections" in flags:
        return int(flags["max_connections"])
    memory = tier_memory_gb(tier)
    if memory is None:
        return None
    return max(limit for floor, limit in CLOUD_SQL_DEFAULT_MAX_CONNECTIONS if memory >= floor - 1e-9)


def usable_connections(tier: str, flags: dict[str, str]) -> Optional[int]:
    limit = max_connections(tier, flags)
    return None if limit is None else limit - SUPERUSER_RESERVED_CONNECTIONS
