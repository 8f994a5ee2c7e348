"""Readiness waits of gcp_rules.yaml (`readiness_waits`): which resource's await waits for which other one
without a dependency edge. One finder per entry, keyed by `id`, like the rules' checkers in checks.py.

An Airflow Deployment whose pods start with `airflow db check-migrations` (components/airflow/pod/migrations_wait.py)
is created alongside the migration Job, but its pods only start their containers once `airflow db migrate`
has run, so its rollout cannot be Ready before the Job is done.
"""

from __future__ import annotations

from typing import Callable, Optional

from components.airflow.pod.shutdown import command_run

from .graph import Graph, Node
from .rules import input_at

JOB = "kubernetes:batch/v1:Job"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
MIGRATE = ("airflow", "db", "migrate")
CHECK_MIGRATIONS = ("airflow", "db", "check-migrations")


def pod_spec(node: Node) -> dict:
    spec = input_at(node.inputs, "spec.template.spec")
    return spec if isinstance(spec, dict) else {}


def argv(container: dict) -> tuple[str, ...]:
    """The command a container runs; for Airflow processes the one behind the SIGTERM relay."""
    line = [str(a) for a in [*(container.get("command") or []), *(container.get("args") or [])]]
    return tuple(command_run(line))


def runs(container: dict, command: tuple[str, ...]) -> bool:
    return argv(container)[:len(command)] == command


def namespace(node: Node) -> Optional[str]:
    return input_at(node.inputs, "metadata.namespace")


def migration_jobs(graph: Graph, namespace_name: Optional[str]) -> list[Node]:
    """Jobs in the namespace that run `airflow db migrate` (in an init or a main container)."""
    return [job for job in graph.of_type(JOB) if namespace(job) == namespace_name
            and any(runs(c, MIGRATE) for c in [*pod_spec(job).get("initContainers", []),
                                                 *pod_spec(job).get("containers", [])])]


def migration_wait_index(node: Node) -> Optional[int]:
    """Position of the init container that waits for migrations, or None."""
    for index, container in enumerate(pod_spec(node).get("initContainers", [])):
        if runs(container, CHECK_MIGRATIONS):
            return index
    return None


def rollout_waits_for_migrations(graph: Graph, node: Node) -> list[str]:
    """The migration Jobs a Deployment's rollout waits for through its pods' init container."""
    if node.type != DEPLOYMENT or migration_wait_index(node) is None:
        return []
    return [job.urn for job in migration_jobs(graph, namespace(node))]


FINDERS: dict[str, Callable[[Graph, Node], list[str]]] = {
    "rollout-waits-for-migrations": rollout_waits_for_migrations,
}
