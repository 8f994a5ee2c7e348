"""The connection budget read back from rendered manifests (what `make preview` writes), so the number
config validation checks and the number the cluster would see come from one formula and cannot drift."""

from __future__ import annotations

from ..config.connection_budget import (EXEC_PROBED_PROCESSES, ROLLOUT_SURGE, ConnectionBudget,
                                        connection_budget, pooled_processes)


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def _uses_database(job: dict) -> bool:
    """A Job or CronJob reaches the database only through its proxy sidecar (pod-cleanup has none)."""
    spec = job["spec"]["jobTemplate"]["spec"] if job["kind"] == "CronJob" else job["spec"]
    pod = spec["template"]["spec"]
    return any(c["name"] == "cloud-sql-proxy" for c in [*pod.get("initContainers", []), *pod["containers"]])


def budget_from_manifests(objects: list[dict]) -> ConnectionBudget:
    """Worst-case connections of the rendered workload; raises if the manifests left the model
    config/connection_budget.py counts (other pooled containers, other probes, another surge)."""
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    deployment = deployments["airflow"]
    containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
    separate = "dag-processor" not in containers
    if separate:  # git-bundle mode: its own Deployment, one replica, Recreate
        own = deployments["airflow-dag-processor"]
        if own["spec"]["replicas"] != 1 or own["spec"]["strategy"]["type"] != "Recreate":
            raise ValueError("the budget counts one dag-processor pod at a time (1 replica, Recreate)")
        containers["dag-processor"] = next(c for c in own["spec"]["template"]["spec"]["containers"]
                                           if c["name"] == "dag-processor")
    pools = {(int(_env(containers[name])["AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE"]),
              int(_env(containers[name])["AIRFLOW__DATABASE__SQL_ALCHEMY_MAX_OVERFLOW"]))
             for name in pooled_processes()}
    if len(pools) != 1:
        raise ValueError(f"Airflow containers render different pools {pools}: the budget assumes one")
    pool_size, max_overflow = pools.pop()
    # Both engines take the same pool settings (3.3.2 settings.py); without pooling (NullPool) neither is
    # bounded and the budget below would be a fiction.
    if any(_env(containers[name]).get("AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_ENABLED", "True").lower() == "false"
           for name in pooled_processes()):
        raise ValueError("SQL_ALCHEMY_POOL_ENABLED is off: connections are unbounded, the budget counts pools")
    exec_probed = {name for name, c in containers.items()
                   if any("exec" in c.get(kind, {}) for kind in ("startupProbe", "livenessProbe", "readinessProbe"))}
    exec_probed.discard("git-sync")  # not an Airflow process, no database
    if exec_probed != set(EXEC_PROBED_PROCESSES):
        raise ValueError(f"exec probes on {sorted(exec_probed)}, the budget counts {EXEC_PROBED_PROCESSES}")
    surge = deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    if surge != ROLLOUT_SURGE:
        raise ValueError(f"maxSurge {surge}, the budget counts {ROLLOUT_SURGE}")
    jobs = sum(1 for o in objects if o["kind"] in ("Job", "CronJob") and _uses_database(o))
    workers = int(_env(containers["api-server"])["AIRFLOW__API__WORKERS"])  # each: sync + async engine
    return connection_budget(deployment["spec"]["replicas"], pool_size, max_overflow, workers, jobs=jobs,
                             separate_dag_processor=separate)
