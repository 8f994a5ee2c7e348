"""What a pod asks the scheduler for, and what a GKE node can give: pure functions on manifests.

Pod request (Kubernetes sidecar containers, KEP-753,
https://kubernetes.io/docs/concepts/workloads/pods/sidecar-containers/#resource-sharing-within-containers):
the larger of (a) every app container plus every sidecar (init container with restartPolicy Always)
and (b) for each ordinary init container, its own request plus the sidecars started before it.

Node allocatable (GKE, https://cloud.google.com/kubernetes-engine/docs/concepts/plan-node-sizes#memory_and_cpu_reservations):
memory reserved for the kubelet/system = 25% of the first 4 GiB, 20% of the next 4, 10% of the next 8,
6% of the next 112, 2% above 128 GiB (255 MiB on machines under 1 GiB), plus a 100 MiB eviction
threshold; CPU reserved = 6% of the first core, 1% of the next, 0.5% of the next 2, 0.25% above 4.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SUFFIX = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_QUANTITY = re.compile(r"^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
MIB = 2**20
GIB = 2**30

# (upper bound of the band in GiB, share reserved inside the band)
MEMORY_BANDS = ((4, 0.25), (8, 0.20), (16, 0.10), (128, 0.06), (float("inf"), 0.02))
CPU_BANDS = ((1, 0.06), (2, 0.01), (4, 0.005), (float("inf"), 0.0025))
EVICTION_THRESHOLD_MIB = 100
SMALL_MACHINE_RESERVED_MIB = 255


@dataclass(frozen=True)
class Resources:
    cpu: float  # cores
    memory: float  # bytes

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(self.cpu + other.cpu, self.memory + other.memory)

    def fits_in(self, other: "Resources") -> bool:
        return self.cpu <= other.cpu and self.memory <= other.memory

    def describe(self) -> str:
        return f"{self.cpu * 1000:.0f}m CPU, {self.memory / MIB:.0f}Mi memory"


ZERO = Resources(0.0, 0.0)


def parse_quantity(text) -> float:
    """A Kubernetes quantity ("250m", "1", "512Mi", "1Gi") as a number (cores or bytes)."""
    match = _QUANTITY.match(str(text))
    if not match:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    number, suffix = float(match.group(1)), match.group(2) or ""
    if suffix == "m":
        return number / 1000
    return number * _SUFFIX[suffix]


def container_requests(container: dict) -> Resources:
    requests = (container.get("resources") or {}).get("requests") or {}
    return Resources(parse_quantity(requests.get("cpu", "0")), parse_quantity(requests.get("memory", "0")))


def _max(a: Resources, b: Resources) -> Resources:
    return Resources(max(a.cpu, b.cpu), max(a.memory, b.memory))


def pod_requests(pod_spec: dict) -> Resources:
    """The scheduler's view of a pod's requests, native sidecars included (see module doc)."""
    sidecars, init_peak = ZERO, ZERO
    for init in pod_spec.get("initContainers") or []:
        if init.get("restartPolicy") == "Always":
            sidecars = sidecars + container_requests(init)
        else:
            init_peak = _max(init_peak, container_requests(init) + sidecars)
    running = sidecars
    for container in pod_spec.get("containers") or []:
        running = running + container_requests(container)
    return _max(running, init_peak)


def _banded(total: float, bands) -> float:
    reserved, lower = 0.0, 0.0
    for upper, share in bands:
        if total <= lower:
            break
        reserved += (min(total, upper) - lower) * share
        lower = upper
    return reserved


def gke_allocatable(vcpu: float, memory_gib: float) -> Resources:
    """Allocatable CPU (cores) and memory (bytes) of a GKE Standard node of this shape."""
    if memory_gib < 1:
        reserved_memory = SMALL_MACHINE_RESERVED_MIB * MIB
    else:
        reserved_memory = _banded(memory_gib, MEMORY_BANDS) * GIB
    memory = memory_gib * GIB - reserved_memory - EVICTION_THRESHOLD_MIB * MIB
    cpu = vcpu - _banded(vcpu, CPU_BANDS)
    return Resources(cpu, memory)


def unplaced_pods(pods: list[tuple[str, Resources]], node_allocatables: list[Resources],
                  per_node_system: Resources, per_cluster_system: Resources) -> list[str]:
    """Names of the pods that do not fit on these nodes (first fit, biggest first), after GKE's own pods.

    Every node gives its allocatable minus the system DaemonSets; the cluster add-ons take their share
    of the first node (a one-node cluster has them all there). The scheduler is not this simple, but
    a set that does not fit this way makes the autoscaler add a node, so the idle estimate is low.
    """
    free = [Resources(node.cpu - per_node_system.cpu, node.memory - per_node_system.memory)
            for node in node_allocatables]
    if free:
        free[0] = Resources(free[0].cpu - per_cluster_system.cpu, free[0].memory - per_cluster_system.memory)
    left = []
    for name, requests in sorted(pods, key=lambda p: (p[1].cpu, p[1].memory), reverse=True):
        for index, room in enumerate(free):
            if requests.fits_in(room):
                free[index] = Resources(room.cpu - requests.cpu, room.memory - requests.memory)
                break
        else:
            left.append(name)
    return left


def unplaced_after_zone_loss(pods: list[tuple[str, Resources]], pools: list[tuple[Resources, int]], zones: int,
                             per_node_system: Resources, per_cluster_system: Resources) -> list[str]:
    """The pods that do not fit when one of `zones` zones is lost, on the nodes left in the others.

    `pools`: (allocatable of one node, nodes per zone) of each always-on pool, spread alike over every zone
    (the autoscaler minimum is per zone), so any lost zone leaves the same nodes. GKE's own add-ons move
    with the rest (per_cluster_system lands on a surviving node). A regional cluster is HA only if this
    is empty: otherwise the pods wait for new nodes while the zone is out, and those may not come.
    """
    survivors = [node for node, per_zone in pools for _ in range(per_zone * (zones - 1))]
    return unplaced_pods(pods, survivors, per_node_system, per_cluster_system)


def always_on_pods(manifests: list[dict]) -> list[tuple[str, int, Resources]]:
    """(name, replicas, per-pod requests) of the workloads that run while the stack is idle.

    Deployments and StatefulSets run all the time; Jobs and CronJobs only now and then (not idle cost);
    DaemonSets are per node and part of the node's own cost.
    """
    pods = []
    for manifest in manifests:
        if manifest.get("kind") in ("Deployment", "StatefulSet"):
            spec = manifest.get("spec") or {}
            pods.append((manifest["metadata"]["name"], int(spec.get("replicas", 1)),
                         pod_requests(spec["template"]["spec"])))
    return pods
