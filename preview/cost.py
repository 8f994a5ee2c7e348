"""Estimated monthly idle cost of a stack, from the declared inputs of a mocked run and prices.yaml.

Idle: the stack is up, no DAG is running. Each billable resource gives one or more rows; nothing is
priced here, every number comes from prices.yaml (with its source). Anything the estimate cannot
price (an unknown machine type or tier, a new billable resource type) fails with a message naming
the resource and the fix, never a silent $0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from components.machine_types import custom_shape_problem, is_custom, parse_custom

from .capacity import GIB, MIB, Resources, always_on_pods, gke_allocatable, unplaced_pods
from .harness import Capture, Resource

PRICES_FILE = Path(__file__).with_name("prices.yaml")
_ZONE = re.compile(r"^[a-z]+-[a-z]+\d+-[a-z]$")
_CUSTOM_SQL_TIER = re.compile(r"^db-custom-(\d+)-(\d+)$")

CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"
SQL_INSTANCE = "gcp:sql/databaseInstance:DatabaseInstance"
NAT = "gcp:compute/routerNat:RouterNat"
REGISTRY = "gcp:artifactregistry/repository:Repository"
BUCKET = "gcp:storage/bucket:Bucket"
K8S_SERVICE = "kubernetes:core/v1:Service"
ALERT_POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"
POD_MONITORING = "kubernetes:monitoring.googleapis.com/v1:PodMonitoring"
PRICED_TYPES = (CLUSTER, NODE_POOL, SQL_INSTANCE, NAT, REGISTRY, BUCKET, ALERT_POLICY)


class PriceError(ValueError):
    """The estimate met something prices.yaml does not price."""


@dataclass
class CostItem:
    resource: str
    item: str
    quantity: float
    unit: str
    unit_usd: float
    monthly_usd: float
    note: str = ""

    def to_json(self) -> dict:
        return {"resource": self.resource, "item": self.item, "quantity": round(self.quantity, 4),
                "unit": self.unit, "unit_usd": self.unit_usd, "monthly_usd": round(self.monthly_usd, 2),
                "note": self.note}


@dataclass
class CostReport:
    stack: str
    items: list[CostItem]
    prices: dict
    notes: list[str] = field(default_factory=list)
    environment: Optional[str] = None  # the stack's `environment` label: the dev goal applies to dev only

    @property
    def within_dev_goal(self) -> Optional[bool]:
        return self.total <= self.dev_goal if self.environment == "dev" else None

    @property
    def total(self) -> float:
        return round(sum(item.monthly_usd for item in self.items), 2)

    @property
    def dev_goal(self) -> float:
        return float(self.prices["goals"]["dev_idle_monthly_usd"]["usd"])

    def to_json(self) -> dict:
        composer = self.prices["goals"]["composer_small_idle_monthly_usd"]
        return {
            "stack": self.stack,
            "currency": "USD",
            "price_region": self.prices["region"],
            "prices_file": "preview/prices.yaml",
            "hours_per_month": self.prices["hours_per_month"],
            "items": [item.to_json() for item in self.items],
            "total_monthly_usd": self.total,
            "environment": self.environment,
            "goals": {"dev_idle_monthly_usd": self.dev_goal, "within_dev_goal": self.within_dev_goal,
                      "composer_small_idle_monthly_usd": [composer["low"], composer["high"]]},
            "notes": self.notes,
        }

    def lines(self) -> list[str]:
        width = max([len(i.resource) for i in self.items] + [8])
        item_width = max([len(i.item) for i in self.items] + [4])
        out = [f"Estimated monthly idle cost ({self.prices['region']} list prices, {self.prices['hours_per_month']} h):",
               f"    {'Resource':<{width}}  {'Item':<{item_width}}  {'Quantity':>18}  {'USD/month':>10}"]
        for i in self.items:
            quantity = f"{i.quantity:g} {i.unit}"
            out.append(f"    {i.resource:<{width}}  {i.item:<{item_width}}  {quantity:>18}  {i.monthly_usd:>10.2f}")
        out.append(f"    {'Total':<{width}}  {'':<{item_width}}  {'':>18}  {self.total:>10.2f}")
        composer = self.prices["goals"]["composer_small_idle_monthly_usd"]
        composer_text = (f"a small Cloud Composer 3 environment idles at ~${composer['low']}-{composer['high']}/month "
                         "(third-party figure)")
        if self.within_dev_goal is None:
            out.append(f"Goal for a dev stack: <= ${self.dev_goal:.0f}/month (this stack's environment: "
                       f"{self.environment or 'unknown'}); {composer_text}.")
        else:
            gap = self.total - self.dev_goal
            verdict = "within it" if gap <= 0 else f"OVER by ${gap:.2f}"
            out.append(f"Goal for dev: <= ${self.dev_goal:.0f}/month: {verdict}; {composer_text}.")
        out.extend(f"Note: {note}" for note in self.notes)
        return out


def load_prices(path: Path = PRICES_FILE) -> dict:
    return yaml.safe_load(path.read_text())


def _lookup(table: dict, key: str, what: str, resource: Resource, config_key: str) -> dict:
    if key not in table:
        raise PriceError(
            f"{resource.type} {resource.name!r}: no price for {what} {key!r} in preview/prices.yaml "
            f"(priced: {', '.join(sorted(table))}). Add it there with its source and date, or set "
            f"{config_key} to a priced value.")
    return table[key]


def machine_price(prices: dict, machine_type: str, resource: Resource, config_key: str) -> dict:
    """{vcpu, memory_gib, usd_per_hour} of a predefined type from the table, or of an E2 custom shape
    from the per-vCPU and per-GB custom rates."""
    if not is_custom(machine_type):
        return _lookup(prices["machine_types"], machine_type, "machine type", resource, config_key)
    problem = custom_shape_problem(machine_type)
    shape = parse_custom(machine_type)
    if problem or shape is None:
        raise PriceError(f"{resource.type} {resource.name!r}: machine type {machine_type!r}: {problem}. "
                         f"Set {config_key} to a valid shape.")
    rates = prices["custom_machine_rates"][shape.family]
    hourly = shape.vcpu * rates["vcpu_per_hour"]["usd"] + shape.memory_gib * rates["memory_gib_per_hour"]["usd"]
    return {"vcpu": shape.vcpu, "memory_gib": shape.memory_gib, "usd_per_hour": hourly}


def gke_system_requests(prices: dict) -> tuple[Resources, Resources]:
    """(per node, once per cluster) requests of the pods GKE runs itself on a Standard cluster."""
    system = prices["gke_system_pods"]
    def as_resources(entry: dict) -> Resources:
        return Resources(entry["cpu_m"] / 1000, entry["memory_mib"] * MIB)
    return as_resources(system["per_node"]), as_resources(system["per_cluster"])


class _Estimator:
    def __init__(self, capture: Capture, prices: dict):
        self.capture = capture
        self.prices = prices
        self.hours = float(prices["hours_per_month"])
        self.assume = {k: v["value"] for k, v in prices["assumptions"].items()}
        self.items: list[CostItem] = []
        self.notes: list[str] = []
        self.free_tier_left = float(prices["gke"]["free_tier_credit_per_month"]["usd"])
        self.nat_vms = 0
        self.node_shapes: list[tuple[str, dict, int]] = []

    def add(self, resource: Resource, item: str, quantity: float, unit: str, unit_usd: float,
            per_hour: bool, note: str = "") -> None:
        monthly = quantity * unit_usd * (self.hours if per_hour else 1)
        self.items.append(CostItem(resource.name, item, quantity, unit, unit_usd, monthly, note))

    # -- GKE ---------------------------------------------------------------------------------------
    def cluster(self, cluster: Resource) -> None:
        inputs = cluster.inputs
        gke = self.prices["gke"]
        autopilot = bool(inputs.get("enableAutopilot"))
        zonal = bool(_ZONE.match(inputs.get("location", "")))
        self.add(cluster, "cluster management fee", 1, "cluster", gke["cluster_fee_per_hour"]["usd"], per_hour=True)
        fee = gke["cluster_fee_per_hour"]["usd"] * self.hours
        if autopilot or zonal:
            credit = min(fee, self.free_tier_left)
            self.free_tier_left -= credit
            self.add(cluster, "GKE free tier credit", 1, "credit", -credit, per_hour=False,
                     note="one per billing account: zonal or Autopilot clusters only")
        else:
            self.add(cluster, "GKE free tier credit", 0, "credit", 0.0, per_hour=False,
                     note="regional Standard cluster: the free tier does not apply")
        if autopilot:
            self.autopilot_pods(cluster)

    def zones_of(self, pool: Resource, cluster: Resource) -> int:
        locations = pool.inputs.get("nodeLocations") or cluster.inputs.get("nodeLocations")
        if locations:
            return len(locations)
        if _ZONE.match(cluster.inputs.get("location", "")):
            return 1
        return int(self.prices["gke"]["regional_default_zones"]["count"])

    def node_pool(self, pool: Resource, cluster: Resource) -> None:
        inputs = pool.inputs
        node = inputs.get("nodeConfig") or {}
        autoscaling = inputs.get("autoscaling") or {}
        per_zone = autoscaling.get("minNodeCount", inputs.get("nodeCount", inputs.get("initialNodeCount", 1)))
        zones = self.zones_of(pool, cluster)
        nodes = int(per_zone) * zones
        machine_type = node.get("machineType", "e2-medium")
        spread = f"{per_zone} per zone x {zones} zone{'s' if zones > 1 else ''}"
        if node.get("spot") or node.get("preemptible"):
            if nodes:
                raise PriceError(f"{pool.type} {pool.name!r}: {nodes} Spot nodes while idle, and Spot prices "
                                 "vary monthly; preview/prices.yaml has none. Keep the Spot pool's minimum at 0.")
            self.add(pool, f"Spot nodes ({machine_type})", 0, "nodes", 0.0, per_hour=True,
                     note="autoscaler minimum 0: no Spot node while idle")
            return
        machine = machine_price(self.prices, machine_type, pool, "nodeMachineType")
        self.add(pool, f"nodes ({machine_type})", nodes, "nodes", machine["usd_per_hour"], per_hour=True,
                 note=f"autoscaler minimum: {spread}")
        self.node_shapes.append((machine_type, machine, nodes))
        disk_type = node.get("diskType", "pd-balanced")
        disk = _lookup(self.prices["disks_per_gib_month"], disk_type, "disk type", pool, "the pool's disk type")
        size = int(node.get("diskSizeGb", 100))
        self.add(pool, f"boot disks ({disk_type})", nodes * size, "GiB", disk["usd"], per_hour=False,
                 note=f"{nodes} x {size} GiB")
        self.nat_vms += nodes

    def autopilot_pods(self, cluster: Resource) -> None:
        gke = self.prices["gke"]
        manifests = [manifest for _, manifest in self.capture.kubernetes_objects()]
        for name, replicas, requests in always_on_pods(manifests):
            self.add(cluster, f"Autopilot pod vCPU ({name})", replicas * requests.cpu, "vCPU",
                     gke["autopilot_vcpu_per_hour"]["usd"], per_hour=True, note=f"{replicas} replica(s)")
            self.add(cluster, f"Autopilot pod memory ({name})", round(replicas * requests.memory / GIB, 4), "GiB",
                     gke["autopilot_memory_gib_per_hour"]["usd"], per_hour=True, note=f"{replicas} replica(s)")
        self.nat_vms += int(self.assume["autopilot_nodes"])

    # -- Cloud SQL ---------------------------------------------------------------------------------
    def sql_instance(self, instance: Resource) -> None:
        settings = instance.inputs.get("settings") or {}
        sql = self.prices["cloud_sql"]
        tier = settings.get("tier", "")
        if settings.get("edition", "ENTERPRISE") != "ENTERPRISE":
            raise PriceError(f"{instance.type} {instance.name!r}: edition {settings.get('edition')!r} is not "
                             "priced in preview/prices.yaml (only ENTERPRISE).")
        ha = settings.get("availabilityType") == "REGIONAL"
        copies = sql["high_availability_multiplier"]["factor"] if ha else 1
        layout = "REGIONAL (HA: primary + standby)" if ha else "ZONAL"
        custom = _CUSTOM_SQL_TIER.match(tier)
        if custom:
            vcpus, memory_gib = int(custom.group(1)), int(custom.group(2)) / 1024
            hourly = vcpus * sql["vcpu_per_hour"]["usd"] + memory_gib * sql["memory_gib_per_hour"]["usd"]
            note = f"{vcpus} vCPU + {memory_gib:g} GiB, {layout}"
        else:
            hourly = _lookup(sql["shared_core_per_hour"], tier, "Cloud SQL tier", instance, "dbTier")["usd"]
            note = f"shared core, {layout}"
        self.add(instance, f"instance ({tier})", copies, "instances", round(hourly, 6), per_hour=True, note=note)
        disk_type = settings.get("diskType", "PD_SSD")
        storage = _lookup(sql["storage_per_gib_month"], disk_type, "Cloud SQL disk type", instance, "the disk type")
        size = int(settings.get("diskSize", 10))
        self.add(instance, f"storage ({disk_type})", copies * size, "GiB", storage["usd"], per_hour=False,
                 note=f"{size} GiB provisioned{' x 2 (standby)' if ha else ''}; autoresize only grows it")
        if (settings.get("backupConfiguration") or {}).get("enabled"):
            data = float(self.assume["database_data_gib"])
            self.add(instance, "backups", data, "GiB", sql["backup_per_gib_month"]["usd"], per_hour=False,
                     note="assumed data size (incremental backups)")

    # -- network -----------------------------------------------------------------------------------
    def nat(self, nat: Resource) -> None:
        net = self.prices["network"]
        gateway = net["nat_gateway_per_vm_hour"]
        vms = min(self.nat_vms, int(gateway["max_vms"]))
        self.add(nat, "NAT gateway", vms, "VMs", gateway["usd"], per_hour=True,
                 note="charged per VM using it, capped at 32")
        if nat.inputs.get("natIpAllocateOption") == "MANUAL_ONLY":
            ips = len(nat.inputs.get("natIps") or [])
        else:
            ips = int(self.assume["nat_ips"])
        self.add(nat, "NAT external IPs", ips, "IPs", net["nat_ip_per_hour"]["usd"], per_hour=True)

    def load_balancers(self) -> None:
        rule = self.prices["network"]["forwarding_rule_per_hour"]["usd"]
        for resource, manifest in self.capture.kubernetes_objects():
            if (manifest.get("spec") or {}).get("type") == "LoadBalancer":
                internal = "internal" if "networking.gke.io/load-balancer-type" in \
                    (manifest["metadata"].get("annotations") or {}) else "external"
                self.add(resource, f"load balancer forwarding rule ({internal})", 1, "rules", rule, per_hour=True,
                         note="Service type LoadBalancer")

    # -- storage -----------------------------------------------------------------------------------
    def registry(self, repo: Resource) -> None:
        ar = self.prices["storage"]["artifact_registry_per_gib_month"]
        keep = 1
        for policy in repo.inputs.get("cleanupPolicies") or []:
            if policy.get("action") == "KEEP" and policy.get("mostRecentVersions"):
                keep = int(policy["mostRecentVersions"].get("keepCount", 1))
        stored = self.assume["registry_image_gib"] + (keep - 1) * self.assume["registry_changed_gib_per_version"]
        billed = max(0.0, stored - ar["free_gib"])
        self.add(repo, "image storage", round(billed, 4), "GiB", ar["usd"], per_hour=False,
                 note=f"~{stored:g} GiB for {keep} kept versions, first {ar['free_gib']:g} GiB free (assumed sizes)")

    def bucket(self, bucket: Resource) -> None:
        price = self.prices["storage"]["standard_per_gib_month"]["usd"]
        ages = [rule.get("condition", {}).get("age") for rule in bucket.inputs.get("lifecycleRules") or []
                if rule.get("action", {}).get("type") == "Delete"]
        days = min([int(a) for a in ages if a] or [365])
        stored = round(days * self.assume["task_logs_gib_per_day"], 4)
        self.add(bucket, "log storage (Standard)", stored, "GiB", price, per_hour=False,
                 note=f"{days} days kept x assumed {self.assume['task_logs_gib_per_day']} GiB/day")

    # -- monitoring ----------------------------------------------------------------------------------
    def alert_policy(self, policy: Resource) -> None:
        price = self.prices["monitoring"]["alert_condition_per_month"]["usd"]
        conditions = len(policy.inputs.get("conditions") or [])
        self.add(policy, "alert conditions", conditions, "conditions", price, per_hour=False)

    def scraped_samples(self) -> None:
        """GMP bills every sample ingested: series per scraped pod x scrapes a month, per always-on pod."""
        monitoring = self.prices["monitoring"]
        manifests = [manifest for _, manifest in self.capture.kubernetes_objects()]
        pods = sum(replicas for _, replicas, _ in always_on_pods(manifests))
        for resource, manifest in self.capture.kubernetes_objects():
            if resource.type != POD_MONITORING:
                continue
            seconds = min(_seconds(e.get("interval", "60s")) for e in manifest["spec"]["endpoints"])
            series = self.assume["gmp_series_per_scraped_pod"] * pods
            millions = series * self.hours * 3600 / seconds / 1e6
            self.add(resource, "Prometheus samples ingested (GMP)", round(millions, 4), "M samples",
                     monitoring["prometheus_samples_per_million"]["usd"], per_hour=False,
                     note=f"~{series:g} series (assumed) scraped every {seconds:g}s")

    # -- whole stack -------------------------------------------------------------------------------
    def run(self) -> CostReport:
        free = set(self.prices["no_charge_types"])
        unknown = sorted({r.type for r in self.capture.resources
                          if r.custom and r.type.startswith("gcp:") and r.type not in PRICED_TYPES and r.type not in free})
        if unknown:
            raise PriceError(f"no cost model for {', '.join(unknown)}: add it to preview/cost.py (billable) or "
                             "to no_charge_types in preview/prices.yaml (free while idle).")
        clusters = {r.urn: r for r in self.capture.of_type(CLUSTER)}
        for cluster in sorted(clusters.values(), key=lambda r: r.name):
            self.cluster(cluster)
            for pool in sorted(self.capture.of_type(NODE_POOL), key=lambda r: r.name):
                if pool.inputs.get("cluster") in (cluster.inputs.get("name"), cluster.outputs.get("name"), cluster.name):
                    self.node_pool(pool, cluster)
        for instance in self.capture.of_type(SQL_INSTANCE):
            self.sql_instance(instance)
        for nat in self.capture.of_type(NAT):
            self.nat(nat)
        self.load_balancers()
        for repo in self.capture.of_type(REGISTRY):
            self.registry(repo)
        for bucket in self.capture.of_type(BUCKET):
            self.bucket(bucket)
        for policy in sorted(self.capture.of_type(ALERT_POLICY), key=lambda r: r.name):
            self.alert_policy(policy)
        self.scraped_samples()
        self.note_region()
        self.note_unschedulable_pods()
        return CostReport(self.capture.stack, self.items, self.prices, self.notes, self.environment())

    def environment(self) -> Optional[str]:
        for resource in self.capture.of_type(CLUSTER):
            labels = resource.inputs.get("resourceLabels") or {}
            if labels.get("environment"):
                return labels["environment"]
        return None

    def note_region(self) -> None:
        regions = {r.inputs.get("region") or re.sub(r"-[a-z]$", "", r.inputs.get("location", ""))
                   for r in self.capture.resources if r.type in (CLUSTER, SQL_INSTANCE)}
        others = sorted(region for region in regions if region and region != self.prices["region"])
        if others:
            self.notes.append(f"stack region {', '.join(others)} is estimated at {self.prices['region']} "
                              "list prices; that region's list prices differ (see the sources in prices.yaml).")


    def note_unschedulable_pods(self) -> None:
        """A priced node set the always-on pods cannot fit on is a wrong estimate (the autoscaler would
        find no node, or add nodes the idle cost does not show): say so beside the total."""
        if not self.node_shapes:
            return
        manifests = [manifest for _, manifest in self.capture.kubernetes_objects()]
        pods = always_on_pods(manifests)
        shapes = ", ".join(sorted({t for t, _, _ in self.node_shapes}))
        for name, _, requests in pods:
            if not any(requests.fits_in(gke_allocatable(m["vcpu"], m["memory_gib"])) for _, m, _ in self.node_shapes):
                self.notes.append(f"pod {name} requests {requests.describe()}, more than a {shapes} node can "
                                  "allocate: it will not schedule; pick a larger nodeMachineType.")
                return
        nodes = [gke_allocatable(m["vcpu"], m["memory_gib"]) for _, m, count in self.node_shapes for _ in range(count)]
        per_node, per_cluster = gke_system_requests(self.prices)
        replicas = [(f"{name}-{i}", requests) for name, count, requests in pods for i in range(count)]
        left = unplaced_pods(replicas, nodes, per_node, per_cluster)
        if left:
            self.notes.append(f"pods {', '.join(left)} do not fit beside GKE's own pods on the {len(nodes)} idle "
                              f"{shapes} node(s): the autoscaler adds nodes and the idle cost is higher than "
                              "shown; pick a larger nodeMachineType or raise nodeMinCount.")


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m|h)", duration)
    if not match:
        raise PriceError(f"PodMonitoring interval {duration!r} is not a duration such as 30s or 1m")
    return int(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def estimate(capture: Capture, prices: Optional[dict] = None) -> CostReport:
    """One row per billable item of the captured stack, priced from prices.yaml."""
    return _Estimator(capture, prices if prices is not None else load_prices()).run()

