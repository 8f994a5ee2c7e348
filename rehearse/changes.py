"""Change plan: what one config change does to each resource (update or replace), predicted offline.

The program runs under mocks twice (the stack's config, then the changed config); resources are matched by
URN (and aliases), their inputs diffed, and each changed input path classified by the providers' replace
rules: the Terraform schema's ForceNew fields for pulumi-gcp (replace_rules_gcp.yaml, generated), and the
hand-written rules of replace_rules.yaml (Kubernetes immutable fields and provider replacement, random,
CustomizeDiff conditions). A replacement then spreads: to every object of a replaced provider, and to a
dependent whose ForceNew input comes from the replaced resource (unknown at preview).
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from preview.harness import Capture, Resource

HERE = Path(__file__).resolve().parent
GCP_RULES = HERE / "replace_rules_gcp.yaml"
RULES = HERE / "replace_rules.yaml"
K8S_PROVIDER = "pulumi:providers:kubernetes"

# Replacing these loses data or takes the service down; a plan that does is flagged `data_loss`.
DATA_LOSS_TYPES = {
    "gcp:sql/databaseInstance:DatabaseInstance": "the Cloud SQL instance holds the Airflow metadata database",
    "gcp:sql/database:Database": "dropping the database deletes the Airflow metadata (DAG runs, task history)",
    "gcp:storage/bucket:Bucket": "the logs bucket holds every task log",
    "kubernetes:core/v1:Namespace": "deleting the namespace deletes every object in it (Airflow is down until "
                                    "all are recreated)",
}

# Random values that live only in Pulumi state and that data depends on, by resource-name suffix: replacing
# one is data loss too (the key decrypts every stored connection and variable: components/airflow/fernet.py).
DATA_LOSS_NAMES = {
    ("random:index/randomId:RandomId", "-fernet-key"): "the fernet key decrypts every stored connection and "
                                                        "variable; a new one leaves them unreadable",
}

_INDEX = re.compile(r"\[[^\]]*\]")


@dataclass(frozen=True)
class Rules:
    force_new: dict[str, list[str]]  # type -> ForceNew paths
    conditional: dict[str, list[dict]]
    k8s_all: tuple[str, ...]
    k8s_kinds: dict[str, list[str]]
    any_input: frozenset[str]
    commit: str

    @classmethod
    def load(cls, gcp_path: Path = GCP_RULES, path: Path = RULES) -> "Rules":
        gcp = yaml.safe_load(gcp_path.read_text())
        data = yaml.safe_load(path.read_text())
        return cls(
            force_new={t: [r["path"] for r in rules] for t, rules in gcp["types"].items()},
            conditional=data.get("gcp_conditional") or {},
            k8s_all=tuple(data["kubernetes"]["all_kinds"]),
            k8s_kinds={k: list(v) for k, v in data["kubernetes"]["kinds"].items()},
            any_input=frozenset(data["replace_on_any_input"]),
            commit=gcp["source"]["commit"])

    def replace_paths(self, resource: Resource) -> list[str]:
        if resource.type in self.force_new:
            return self.force_new[resource.type]
        if resource.type.startswith("kubernetes:"):
            inputs = resource.inputs
            kind = f"{inputs.get('apiVersion')}/{inputs.get('kind')}"
            return [*self.k8s_all, *self.k8s_kinds.get(kind, [])]
        return []


def leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten inputs to dotted leaf paths (list items as `[i]`); an empty dict or list is a leaf."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(leaves(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for index, item in enumerate(value):
            out.update(leaves(item, f"{prefix}[{index}]"))
        return out
    return {prefix: value}


def schema_path(path: str) -> str:
    """`a[0].b["c"]` -> `a.b.c`: the form rules and ignoreChanges are compared in."""
    return _INDEX.sub(lambda m: "." + m.group(0)[1:-1].strip("\"'") if not m.group(0)[1:-1].isdigit() else "",
                      path).strip(".")


def under(path: str, prefixes) -> Optional[str]:
    for prefix in prefixes:
        if prefix == "*" or path == prefix or path.startswith(prefix + "."):
            return prefix
    return None


def changed_paths(old: dict, new: dict, ignore: list[str]) -> list[str]:
    before, after = leaves(old), leaves(new)
    ignored = [schema_path(p) for p in ignore]
    return sorted(p for p in set(before) | set(after)
                  if before.get(p, _MISSING) != after.get(p, _MISSING) and not under(schema_path(p), ignored))


_MISSING = object()


def _cidr_shrinks(old: Any, new: Any) -> bool:
    try:
        return ipaddress.ip_network(str(new), strict=False).prefixlen > ipaddress.ip_network(str(old), strict=False).prefixlen
    except ValueError:
        return False


def conditional_replace(rule: dict, old: dict, new: dict) -> bool:
    before, after = leaves(old), leaves(new)
    key = rule["path"]
    was, now = before.get(key), after.get(key)
    if was == now:
        return False
    when = rule["when"]
    if when == "shrink_without_autoresize":
        autoresize = after.get("settings.diskAutoresize", True)
        return was is not None and now is not None and now < was and not autoresize
    if when == "unset":
        return bool(was) and not now
    if when == "shrink_cidr":
        return _cidr_shrinks(was, now)
    if when == "enabled":
        return bool(now) and not was
    raise ValueError(f"unknown condition {when!r} in {RULES.name}")


def _suppressed(rule: dict, old: dict, new: dict) -> bool:
    """A disk shrink with autoresize on is cleared from the diff (no change at all)."""
    if rule["when"] != "shrink_without_autoresize":
        return False
    was, now = leaves(old).get(rule["path"]), leaves(new).get(rule["path"])
    return was is not None and now is not None and now < was and leaves(new).get("settings.diskAutoresize", True)


def active_cluster(kubeconfig: Any) -> Optional[dict]:
    """The current context's cluster entry (server, CA), what the provider compares."""
    try:
        config = json.loads(kubeconfig) if isinstance(kubeconfig, str) else kubeconfig
        context = next(c["context"] for c in config["contexts"] if c["name"] == config["current-context"])
        return next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    except (ValueError, TypeError, KeyError, StopIteration):
        return None


def provider_replaced(old: dict, new: dict, unknown: set[str]) -> Optional[str]:
    """pulumi-kubernetes DiffConfig (provider.go#L454) for the kubeconfig and clusterIdentifier inputs."""
    had_id, has_id = "clusterIdentifier" in old, "clusterIdentifier" in new
    if has_id and "clusterIdentifier" in unknown:
        return "clusterIdentifier unknown at preview (its source is replaced)" if had_id else None
    if had_id and has_id:
        return "clusterIdentifier changed" if old["clusterIdentifier"] != new["clusterIdentifier"] else None
    if "kubeconfig" in unknown:
        return "kubeconfig unknown at preview (the cluster it points at is replaced)"
    if active_cluster(old.get("kubeconfig")) != active_cluster(new.get("kubeconfig")):
        return "kubeconfig's active cluster (server or CA) changed"
    return None


@dataclass
class Plan:
    replaced: dict[str, str] = field(default_factory=dict)  # urn -> why
    updated: dict[str, list[str]] = field(default_factory=dict)  # urn -> changed paths
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)

    @property
    def data_loss(self) -> list[str]:
        return sorted(urn for urn in self.replaced if data_loss_reason(urn, self.types[urn]))


def data_loss_reason(urn: str, typ: str) -> Optional[str]:
    """Why replacing this resource loses data, or None. A rotated fernet key (`-fernet-key-vN`) is an
    addition, not a replacement, so only the resource that is replaced counts."""
    if typ in DATA_LOSS_TYPES:
        return DATA_LOSS_TYPES[typ]
    name = urn.rsplit("::", 1)[-1]
    return next((why for (t, suffix), why in DATA_LOSS_NAMES.items()
                 if t == typ and (name.endswith(suffix) or f"{suffix}-v" in name)), None)


def _matches(old: Capture, new: Capture) -> dict[str, Resource]:
    """New URN -> the old resource it continues (same URN, or one of its aliases)."""
    by_urn = {r.urn: r for r in old.resources}
    pairs = {}
    for resource in new.resources:
        for urn in (resource.urn, *resource.aliases):
            if urn in by_urn:
                pairs[resource.urn] = by_urn[urn]
                break
    return pairs


def computed_outputs(resource: Resource) -> set[str]:
    """The outputs the provider computes (not echoed inputs): unknown at preview when it is replaced."""
    given = leaves(resource.inputs)
    return {v for p, v in leaves(resource.outputs).items()
            if isinstance(v, str) and len(v) > 3 and given.get(p, _MISSING) != v} | ({resource.id} - {""})


def _unknown_inputs(resource: Resource, old_resource: Resource, replaced: set[str], old_by_urn: dict) -> set[str]:
    """Input leaf paths left unknown at preview by a replaced dependency: string leaves that hold one of its
    computed outputs, as is or inside a derived value (a kubeconfig holds the cluster's endpoint and CA)."""
    unknown: set[str] = set()
    for name, urns in resource.property_dependencies.items():
        sources = [old_by_urn[u] for u in urns if u in replaced and u in old_by_urn]
        if not sources or name not in old_resource.inputs:
            continue
        outputs = set().union(*(computed_outputs(source) for source in sources))
        unknown |= {p for p, v in leaves(old_resource.inputs[name], name).items()
                    if isinstance(v, str) and any(o == v or o in v for o in outputs)}
    return unknown


def plan(old: Capture, new: Capture, rules: Optional[Rules] = None) -> Plan:
    rules = rules or Rules.load()
    result = Plan(types={r.urn: r.type for r in (*old.resources, *new.resources)})
    pairs = _matches(old, new)
    old_by_urn = {r.urn: r for r in old.resources}
    continued = {r.urn for r in pairs.values()}
    result.deleted = sorted(r.urn for r in old.resources if r.urn not in continued and r.custom)
    for urn in result.deleted:  # a new logical name without an alias: the engine deletes it, creates another
        result.replaced[urn] = "renamed (new URN, no alias): deleted, and a new one created"
    result.created = sorted(r.urn for r in new.resources if r.urn not in pairs and r.custom)
    replaced: set[str] = set()  # old URNs of replaced resources
    # Registration order respects dependencies, so one pass in order sees every replaced dependency first.
    for resource in new.resources:
        previous = pairs.get(resource.urn)
        if previous is None or not resource.custom:
            continue
        why = _classify(resource, previous, replaced, old_by_urn, rules, result)
        if why:
            replaced.add(previous.urn)
            result.replaced[resource.urn] = why
    return result


def _classify(resource: Resource, previous: Resource, replaced: set[str], old_by_urn: dict, rules: Rules,
              result: Plan) -> Optional[str]:
    old_inputs, new_inputs = previous.inputs, resource.inputs
    unknown = _unknown_inputs(resource, previous, replaced, old_by_urn)
    changes = changed_paths(old_inputs, new_inputs, resource.ignore_changes)
    ignored = [schema_path(p) for p in resource.ignore_changes]
    unknown = {p for p in unknown if not under(schema_path(p), ignored)}
    if resource.type == K8S_PROVIDER:
        why = provider_replaced(old_inputs, new_inputs, {p.split(".")[0] for p in unknown})
        if why:
            return why
    elif (resource.provider or "").rsplit("::", 1)[0] in replaced:
        return "its provider is replaced"
    else:
        why = _replacing_change(resource, old_inputs, new_inputs, changes, unknown, rules)
        if why:
            return why
    changes = [p for p in changes if not any(_suppressed(c, old_inputs, new_inputs)
                                             for c in rules.conditional.get(resource.type, []) if c["path"] == p)]
    if changes or unknown:
        result.updated[resource.urn] = sorted(set(changes) | unknown)
    return None


def _replacing_change(resource: Resource, old: dict, new: dict, changes: list[str], unknown: set[str],
                      rules: Rules) -> Optional[str]:
    if resource.type in rules.any_input and (changes or unknown):
        return f"input {sorted(set(changes) | unknown)[0]} changed (every input replaces)"
    force_new = rules.replace_paths(resource)
    for path in sorted(set(changes) | unknown):
        rule = under(schema_path(path), force_new)
        if rule:
            state = "unknown at preview (its source is replaced)" if path in unknown else "changed"
            return f"{schema_path(path)} {state} (replace on {rule})"
    for rule in rules.conditional.get(resource.type, []):
        if conditional_replace(rule, old, new):
            return f"{rule['path']} {rule['when'].replace('_', ' ')}"
    return None
