"""One checker per rule of gcp_rules.yaml: what must hold when a resource starts (up) or is deleted.

A checker returns the list of what is missing ("" list = fine). Up checkers require a transitive
dependency, not a lucky timing: real durations vary, so a race won in the model is still a violation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from .graph import Graph, Node
from .rules import Rule, RuleSet, input_at

CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"
NETWORK = "gcp:compute/network:Network"
SUBNET = "gcp:compute/subnetwork:Subnetwork"
CONNECTION = "gcp:servicenetworking/connection:Connection"
SQL_INSTANCE = "gcp:sql/databaseInstance:DatabaseInstance"
SERVICE = "gcp:projects/service:Service"
SERVICE_IDENTITY = "gcp:projects/serviceIdentity:ServiceIdentity"
PROJECT_IAM = "gcp:projects/iAMMember:IAMMember"
SLEEP = "time:index/sleep:Sleep"
K8S_PROVIDER = "pulumi:providers:kubernetes"
WI_ROLE = "roles/iam.workloadIdentityUser"
PEERING_SERVICE = "servicenetworking.googleapis.com"


@dataclass(frozen=True)
class Violation:
    rule_id: str
    kind: str
    resource: str
    resource_type: str
    missing: str
    source: str

    @classmethod
    def of(cls, rule: Rule, node: Node, missing: str) -> "Violation":
        return cls(rule.id, rule.kind, node.name, node.type, missing, rule.source)


@dataclass
class Context:
    graph: Graph
    rules: RuleSet
    steps: dict  # urn -> simulate.Step, filled as the replay goes

    def minutes(self, urn: str, attribute: str) -> str:
        step = self.steps.get(urn)
        return f"{getattr(step, attribute) / 60:.1f} min" if step else "?"


def _fmt(seconds: float) -> str:
    return f"{seconds:.0f}s"


def _names(graph: Graph, urns: Iterable[str]) -> str:
    return ", ".join(sorted(graph.nodes[u].name for u in urns))


def network_key(graph: Graph, node: Node) -> Optional[str]:
    """The VPC a resource belongs to: a Network it depends on directly, or the one its inputs name."""
    if node.type == NETWORK:
        return node.urn
    for urn in node.dependencies:
        if urn in graph.nodes and graph.nodes[urn].type == NETWORK:
            return urn
    referenced = [input_at(node.inputs, path) for path in ("network", "settings.ipConfiguration.privateNetwork")]
    for network in graph.of_type(NETWORK):
        physical = network.inputs.get("name") or network.name
        if any(isinstance(v, str) and v.rstrip("/").endswith(f"/networks/{physical}") for v in referenced):
            return network.urn
    return None


def _on_network(graph: Graph, network: Optional[str], resource_type: str) -> list[Node]:
    return [n for n in graph.of_type(resource_type) if network is not None and network_key(graph, n) == network]


def _private_sql(graph: Graph, network: Optional[str]) -> list[Node]:
    return [n for n in _on_network(graph, network, SQL_INSTANCE)
            if input_at(n.inputs, "settings.ipConfiguration.privateNetwork")]


# ---- pulumi up ---------------------------------------------------------------------------------
def wi_pool_exists(ctx: Context, node: Node) -> list[str]:
    member = str(node.inputs.get("member") or "")
    if node.inputs.get("role") != WI_ROLE and ".svc.id.goog[" not in member:
        return []
    pools = [c for c in ctx.graph.of_type(CLUSTER) if input_at(c.inputs, "workloadIdentityConfig.workloadPool")]
    if any(ctx.graph.depends_on(node.urn, c.urn) for c in pools):
        return []
    if not pools:
        return [f"no GKE cluster with Workload Identity in the graph creates the pool for {member}"]
    return [f"does not depend on cluster {_names(ctx.graph, [c.urn for c in pools])} that creates the identity pool "
            f"(binding starts at {ctx.minutes(node.urn, 'start')}, cluster done at {ctx.minutes(pools[0].urn, 'end')})"]


def _guaranteed_wait(graph: Graph, rules: RuleSet, service: str, urn: str) -> float:
    """Longest sum of Sleep durations on a dependency path from `service` to `urn` (only sleeps are certain)."""
    memo: dict[str, float] = {service: 0.0}

    def wait(current: str) -> float:
        if current not in memo:
            best = -1.0
            for prerequisite in graph.waits_for[current]:
                if prerequisite == service or graph.depends_on(prerequisite, service):
                    node = graph.nodes[prerequisite]
                    sleep = rules.duration(SLEEP, node.inputs, "up") if node.type == SLEEP else 0.0
                    best = max(best, wait(prerequisite) + sleep)
            memo[current] = best
        return memo[current]

    return max(wait(urn), 0.0)


def api_enabled_before_use(ctx: Context, node: Node) -> list[str]:
    apis = ctx.rules.apis
    api = apis.api_of(node.type)
    if api is None or api in apis.prerequisites:
        return []
    services = [s for s in ctx.graph.of_type(SERVICE) if s.inputs.get("service") == api]
    if not services:
        return [f"{api} is neither enabled by the program nor a documented prerequisite"]
    waiting = [s for s in services if ctx.graph.depends_on(node.urn, s.urn)]
    if not waiting:
        return [f"does not wait for the Service enabling {api} (starts at {ctx.minutes(node.urn, 'start')})"]
    wait = max(_guaranteed_wait(ctx.graph, ctx.rules, s.urn, node.urn) for s in waiting)
    if wait < apis.min_guaranteed_wait:
        return [f"only {_fmt(wait)} of guaranteed wait (Sleep) after {api} is enabled; "
                f"needs {_fmt(apis.min_guaranteed_wait)}"]
    return []


def service_identity_before_peering(ctx: Context, node: Node) -> list[str]:
    identities = [i for i in ctx.graph.of_type(SERVICE_IDENTITY) if i.inputs.get("service") == PEERING_SERVICE]
    if any(ctx.graph.depends_on(node.urn, i.urn) for i in identities):
        return []
    return ["does not depend on a ServiceIdentity for servicenetworking.googleapis.com (the service agent)"]


def peering_before_private_sql(ctx: Context, node: Node) -> list[str]:
    if not input_at(node.inputs, "settings.ipConfiguration.privateNetwork"):
        return []
    connections = _on_network(ctx.graph, network_key(ctx.graph, node), CONNECTION)
    if any(ctx.graph.depends_on(node.urn, c.urn) for c in connections):
        return []
    return ["private IP without a dependency on its network's private services connection"
            + (f" ({_names(ctx.graph, [c.urn for c in connections])})" if connections else "")]


def peering_range_after_subnets(ctx: Context, node: Node) -> list[str]:
    if node.inputs.get("purpose") != "VPC_PEERING" or node.inputs.get("address"):
        return []
    subnets = _on_network(ctx.graph, network_key(ctx.graph, node), SUBNET)
    missing = [s.urn for s in subnets if not ctx.graph.depends_on(node.urn, s.urn)]
    return [f"auto-allocated range does not wait for subnet(s) {_names(ctx.graph, missing)}"] if missing else []


def _node_roles(graph: Graph, service_account: Optional[str]) -> list[Node]:
    if not service_account:
        return []
    return [m for m in graph.of_type(PROJECT_IAM) if m.inputs.get("member") == f"serviceAccount:{service_account}"]


def _cluster_of_provider(graph: Graph, provider: Optional[str]) -> Optional[Node]:
    if not provider or provider not in graph.nodes:
        return None
    clusters = [graph.nodes[u] for u in graph.ancestors(provider) if graph.nodes[u].type == CLUSTER]
    return clusters[0] if len(clusters) == 1 else None


def node_sa_roles_before_nodes(ctx: Context, node: Node) -> list[str]:
    if node.type == NODE_POOL:
        account = input_at(node.inputs, "nodeConfig.serviceAccount")
    else:  # pod-creating Kubernetes object: matters on Autopilot, where pods bring the nodes
        cluster = _cluster_of_provider(ctx.graph, node.provider)
        if cluster is None or not cluster.inputs.get("enableAutopilot"):
            return []
        account = input_at(cluster.inputs, "clusterAutoscaling.autoProvisioningDefaults.serviceAccount")
    missing = [r.urn for r in _node_roles(ctx.graph, account) if not ctx.graph.depends_on(node.urn, r.urn)]
    return [f"nodes as {account} may boot before its role(s) {_names(ctx.graph, missing)}"] if missing else []


def k8s_provider_after_node_pools(ctx: Context, node: Node) -> list[str]:
    cluster = _cluster_of_provider(ctx.graph, node.urn)
    if cluster is None or cluster.inputs.get("enableAutopilot"):
        return []
    pools = [p for p in ctx.graph.of_type(NODE_POOL) if cluster.urn in p.dependencies]
    missing = [p.urn for p in pools if not ctx.graph.depends_on(node.urn, p.urn)]
    return [f"does not wait for node pool(s) {_names(ctx.graph, missing)} of {cluster.name}"] if missing else []


# ---- pulumi destroy ----------------------------------------------------------------------------
def pulumi_protect(ctx: Context, node: Node, at: float) -> list[str]:
    return ["protected in Pulumi state (`protect`)"] if node.protect else []


def deletion_protection(ctx: Context, node: Node, at: float) -> list[str]:
    found = []
    if node.type != CONNECTION and node.inputs.get("deletionProtection", node.type == CLUSTER) is not False:
        found.append("deletionProtection is on" + ("" if "deletionProtection" in node.inputs else " (provider default)"))
    if node.type == CONNECTION:
        return ["deletionPolicy is PREVENT"] if node.inputs.get("deletionPolicy") == "PREVENT" else []
    if node.type == SQL_INSTANCE and input_at(node.inputs, "settings.deletionProtectionEnabled"):
        found.append("settings.deletionProtectionEnabled is on (Cloud SQL API)")
    return found


def bucket_not_empty(ctx: Context, node: Node, at: float) -> list[str]:
    return [] if node.inputs.get("forceDestroy") else ["holds objects (logs) and forceDestroy is off"]


def _alive(ctx: Context, urn: str, at: float) -> bool:
    step = ctx.steps.get(urn)
    return step is None or step.status != "deleted" or step.end > at


def peering_released_before_delete(ctx: Context, node: Node, at: float) -> list[str]:
    if node.inputs.get("deletionPolicy") in ("ABANDON", "REMOVE_PEERING", "PREVENT"):
        return []  # ABANDON's peering is the network rule's concern; PREVENT is a protection
    holders = _private_sql(ctx.graph, network_key(ctx.graph, node))
    if not holders:
        return []
    state = "still exists" if any(_alive(ctx, h.urn, at) for h in holders) else "was just deleted and still holds the peering"
    return [f"Cloud SQL {_names(ctx.graph, [h.urn for h in holders])} {state}; deletionPolicy "
            f"{node.inputs.get('deletionPolicy', 'DELETE')} deletes the connection, which the API refuses"]


def network_empty_before_delete(ctx: Context, node: Node, at: float) -> list[str]:
    inside = [n for n in ctx.graph.custom() if n.urn != node.urn and network_key(ctx.graph, n) == node.urn]
    alive = [n.urn for n in inside if _alive(ctx, n.urn, at)]
    # ABANDON only forgets the connection: its VPC peering stays in the network.
    abandoned = [n.urn for n in inside if n.type == CONNECTION and n.inputs.get("deletionPolicy") == "ABANDON"]
    found = [f"still in use by {_names(ctx.graph, alive)}"] if alive else []
    if abandoned:
        found.append(f"the VPC peering of {_names(ctx.graph, abandoned)} (deletionPolicy ABANDON) is left in place")
    return found


UP_CHECKS: dict[str, Callable[[Context, Node], list[str]]] = {
    "wi-pool-exists": wi_pool_exists,
    "api-enabled-before-use": api_enabled_before_use,
    "service-identity-before-peering": service_identity_before_peering,
    "peering-before-private-sql": peering_before_private_sql,
    "peering-range-after-subnets": peering_range_after_subnets,
    "node-sa-roles-before-nodes": node_sa_roles_before_nodes,
    "k8s-provider-after-node-pools": k8s_provider_after_node_pools,
}
DESTROY_CHECKS: dict[str, Callable[[Context, Node, float], list[str]]] = {
    "pulumi-protect": pulumi_protect,
    "deletion-protection": deletion_protection,
    "bucket-not-empty": bucket_not_empty,
    "peering-released-before-delete": peering_released_before_delete,
    "network-empty-before-delete": network_empty_before_delete,
}


def check_up(ctx: Context, node: Node) -> list[Violation]:
    found = []
    for rule in ctx.rules.rules:
        if rule.phase == "up" and rule.applies(node.type):
            found += [Violation.of(rule, node, m) for m in UP_CHECKS[rule.id](ctx, node)]
    return found


# Checked for every resource before the engine deletes anything: one hit refuses the whole destroy.
PLAN_RULES = ("pulumi-protect",)


def _destroy_checks(ctx: Context, node: Node, at: float, plan: bool) -> list[Violation]:
    found = []
    for rule in ctx.rules.rules:
        if rule.phase == "destroy" and (rule.id in PLAN_RULES) == plan and rule.applies(node.type):
            found += [Violation.of(rule, node, m) for m in DESTROY_CHECKS[rule.id](ctx, node, at)]
    return found


def check_plan(ctx: Context, node: Node) -> list[Violation]:
    return _destroy_checks(ctx, node, 0.0, plan=True)


def check_destroy(ctx: Context, node: Node, at: float) -> list[Violation]:
    return _destroy_checks(ctx, node, at, plan=False)
