"""Airflow pods wait for the schema themselves, so the Deployments roll out while the migration Job runs.

The official Helm chart does the same: the migration Job runs next to the workloads, and every pod that
talks to the metadata DB starts with a `wait-for-airflow-migrations` init container running
`airflow db check-migrations` (apache/airflow chart/templates, `wait-for-airflow-migrations`; apache/airflow#11979
on why the chart's pods wait instead of being ordered after the Job). Pulumi then no longer holds the
Deployment back until the Job is done: the rollout (scheduling, image start, git-sync's clone, the proxy) overlaps
the migration, and only the last step, the containers starting on the migrated schema, follows it.

`airflow db check-migrations --migration-wait-timeout N` (Airflow 3.3.2: `airflow/utils/db.py`
`check_migrations`) compares the DB's alembic heads with the code's once a second for N seconds, returns 0 as
soon as they match and raises TimeoutError (exit 1) after N seconds. N is the Job's own deadline: the wait never
gives up on a migration the Job may still finish, and when the Job has failed the init container exits 1 and the
kubelet restarts it with back-off, so the new pod never starts on an old schema.

The new pod is not Ready while it waits, so with `maxUnavailable: 0` the old pods keep serving; the rollout's
deadlines (Kubernetes `progressDeadlineSeconds`, Pulumi's await `pulumi.com/timeoutSeconds`) cover that wait
plus a normal rollout, so a slow migration that succeeds is not reported as a failed rollout, and a failed one
fails `pulumi up` on the Job at once and on the Deployment when its deadline passes (docs/operations.md).
"""

from __future__ import annotations

from ..workload_spec import WorkloadSpec
from .airflow_processes import airflow_container

# The migration Job's deadline (activeDeadlineSeconds and Pulumi's await): big upgrades may take long.
MIGRATION_JOB_TIMEOUT_SECONDS = 1800
# The wait in each pod lasts as long as the Job may run.
MIGRATION_WAIT_SECONDS = MIGRATION_JOB_TIMEOUT_SECONDS
# A rollout after the migration: Pulumi's default Deployment await (10 minutes, pulumi-kubernetes
# provider/pkg/await/deployment.go DefaultDeploymentTimeoutMins) and Kubernetes' default progressDeadlineSeconds.
ROLLOUT_AFTER_MIGRATIONS_SECONDS = 600
ROLLOUT_TIMEOUT_SECONDS = MIGRATION_WAIT_SECONDS + ROLLOUT_AFTER_MIGRATIONS_SECONDS


def check_migrations_args(timeout_seconds: int = MIGRATION_WAIT_SECONDS) -> list[str]:
    return ["airflow", "db", "check-migrations", f"--migration-wait-timeout={timeout_seconds}"]


def wait_for_migrations_container(spec: WorkloadSpec) -> dict:
    """The last init container of every pod that talks to the metadata DB (after the proxy sidecar)."""
    return airflow_container(spec, "wait-for-migrations", check_migrations_args(), "migrations")


def rollout_annotations() -> dict:
    """Deployment metadata: how long Pulumi waits for the rollout, the migration wait included."""
    return {"pulumi.com/timeoutSeconds": str(ROLLOUT_TIMEOUT_SECONDS)}


def rollout_deadline() -> dict:
    """Deployment spec: a pod waiting for migrations is not a stalled rollout until the wait is over."""
    return {"progressDeadlineSeconds": ROLLOUT_TIMEOUT_SECONDS}
