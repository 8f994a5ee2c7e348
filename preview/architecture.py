"""What a stack builds, as a picture's model: one group per component, the pods' containers, the edges between
groups. Read from resources.json alone (the records `make preview` writes), so the picture follows the program.

Edges are reduced to the direct ones (transitive reduction): almost every group waits for the APIs, and drawing
each of those waits would hide the few orderings that tell the story (network before database, cluster before
the Workload Identity bindings, bindings before the pods).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import yaml

# Component class -> (title, what it is on Google Cloud). An unknown component shows its class name.
TITLES = {
    "ProjectServices": ("APIs", "service enablement"),
    "Network": ("Network", "VPC, NAT, private services access"),
    "LogsBucket": ("Logs", "Cloud Storage"),
    "Identity": ("Identity", "service accounts, IAM"),
    "Registry": ("Registry", "Artifact Registry"),
    "Database": ("Database", "Cloud SQL for PostgreSQL"),
    "Cluster": ("Cluster", "GKE"),
    "WorkloadIdentityBindings": ("Workload Identity", "Kubernetes accounts → Google accounts"),
    "FrontDoor": ("Front door", "static IP, managed certificate"),
    "AirflowWorkload": ("Airflow workload", "Kubernetes objects on the cluster"),
    "ActiveHoursSchedule": ("Active hours", "pause and wake schedule"),
}
POD_KINDS = ("Deployment", "StatefulSet", "Job", "CronJob")
COLLAPSE_AT = 3  # this many resources of one type in a group become one "type ×N" line


@dataclass(frozen=True)
class Pod:
    title: str
    containers: tuple[tuple[str, str], ...]  # (name, role): role is "init", "sidecar" or ""


@dataclass(frozen=True)
class Group:
    key: str  # URN of the component (or of a resource outside any component)
    title: str
    subtitle: str
    lines: tuple[tuple[str, str], ...]  # (type, names)
    pods: tuple[Pod, ...] = ()


def short_type(token: str) -> str:
    """`gcp:compute/subnetwork:Subnetwork` -> `compute/Subnetwork`; `random:index/randomId:RandomId` ->
    `random/RandomId`; `kubernetes:apps/v1:Deployment` -> `Deployment`."""
    package, module, name = (token.split(":") + ["", ""])[:3]
    if package == "kubernetes":
        return name
    if package == "pulumi" and module == "providers":
        return f"{name} provider"
    module = module.split("/")[0]
    return f"{package if module == 'index' else module}/{name}"


def _top(resource: dict, by_urn: dict) -> str:
    """The component directly under the stack that holds this resource (itself, if none does)."""
    while resource.get("parent") in by_urn:
        resource = by_urn[resource["parent"]]
    return resource["urn"]


def _lines(members: list[dict]) -> tuple[tuple[str, str], ...]:
    by_type: dict[str, list[str]] = {}
    for member in members:
        by_type.setdefault(short_type(member["type"]), []).append(member["name"])
    lines = []
    for kind in sorted(by_type):
        names = sorted(by_type[kind])
        if len(names) >= COLLAPSE_AT:
            lines.append((kind, f"×{len(names)}"))
        else:
            lines += [(kind, name) for name in names]
    return tuple(lines)


def _containers(spec: dict) -> tuple[tuple[str, str], ...]:
    # Spec order is start order; a restartPolicy Always init container is a native sidecar.
    init = [(c["name"], "sidecar" if c.get("restartPolicy") == "Always" else "init")
            for c in spec.get("initContainers") or []]
    return tuple(init + [(c["name"], "") for c in spec.get("containers") or []])


def _pod_spec(kind: str, spec: dict) -> Optional[dict]:
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    template = spec.get("template")
    return template.get("spec") if isinstance(template, dict) else None


def _pods(members: list[dict]) -> tuple[Pod, ...]:
    pods = []
    for member in members:
        kind = short_type(member["type"])
        inputs = member.get("inputs") or {}
        if member["type"].startswith("kubernetes:") and kind in POD_KINDS:
            spec = _pod_spec(kind, inputs.get("spec") or {})
            # A Job's Kubernetes name carries a hash of the image (one Job per image); the stable Pulumi name
            # keeps the picture unchanged by an image bump.
            name = member["name"] if kind == "Job" else (inputs.get("metadata") or {}).get("name", member["name"])
            if spec:
                pods.append((POD_KINDS.index(kind), Pod(f"{kind} {name}", _containers(spec))))
        if kind == "ConfigMap":
            pods += [(len(POD_KINDS), pod) for pod in _templates(inputs.get("data"))]
    return tuple(pod for _, pod in sorted(pods, key=lambda item: (item[0], item[1].title)))


def _templates(data) -> list[Pod]:
    """Pod templates kept in a ConfigMap: the KubernetesExecutor's task pod."""
    found = []
    for key, text in sorted((data or {}).items()) if isinstance(data, dict) else []:
        if not (key.endswith(".yaml") and isinstance(text, str)):
            continue
        document = yaml.safe_load(text)
        if isinstance(document, dict) and document.get("kind") == "Pod":
            found.append(Pod("task pod (one per task)", _containers(document.get("spec") or {})))
    return found


def groups(resources: list[dict]) -> list[Group]:
    by_urn = {r["urn"]: r for r in resources}
    members: dict[str, list[dict]] = {}
    for resource in resources:
        if resource.get("custom", True):
            members.setdefault(_top(resource, by_urn), []).append(resource)
    found = []
    for key in sorted(members):
        head = by_urn[key]
        component = head["type"].rsplit(":", 1)[-1]
        title, subtitle = TITLES.get(component, (component, head["name"]))
        pods = _pods(members[key])
        shown = [m for m in members[key] if not (pods and short_type(m["type"]) in POD_KINDS)]
        found.append(Group(key, title, subtitle, _lines(shown), pods))
    return found


def edges(resources: list[dict]) -> set[tuple[str, str]]:
    """(a, b): something in group a waits for something in group b (a dependency or its provider)."""
    by_urn = {r["urn"]: r for r in resources}
    found = set()
    for resource in resources:
        waits = list(resource.get("dependencies") or []) + ([resource["provider"]] if resource.get("provider") else [])
        for urn in waits:
            if urn in by_urn:
                a, b = _top(resource, by_urn), _top(by_urn[urn], by_urn)
                if a != b:
                    found.add((a, b))
    return found


def _reachable(start: str, graph: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo += graph.get(node, ())
    return seen


def direct(pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Transitive reduction: drop (a, c) when a reaches c through another group."""
    graph: dict[str, set[str]] = {}
    for a, b in pairs:
        graph.setdefault(a, set()).add(b)
    return {(a, b) for a, b in pairs
            if not any(b in _reachable(c, graph) for c in graph[a] if c != b)}


def layers(keys: list[str], pairs: set[tuple[str, str]]) -> dict[str, int]:
    """Longest path down to a group that waits for nothing: 0 for the foundations."""
    graph: dict[str, set[str]] = {k: set() for k in keys}
    for a, b in pairs:
        graph[a].add(b)
    depth: dict[str, int] = {}

    def visit(node: str, path: frozenset) -> int:
        if node in path:
            raise ValueError(f"dependency cycle through {node}")
        if node not in depth:
            depth[node] = 1 + max((visit(n, path | {node}) for n in graph[node]), default=-1)
        return depth[node]

    for key in keys:
        visit(key, frozenset())
    return depth
