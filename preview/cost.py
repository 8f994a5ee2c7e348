"""Estimated monthly cost of a stack while idle, from the declared inputs of a mocked run and prices.yaml.

Idle: the stack is up, no DAG is running. Each billable resource gives one or more rows, priced in the
stack's own region (preview/prices.py); usage the inputs cannot say (NAT data, log volume) comes from the
`assumptions` in prices.yaml, named beside the row. Anything the estimate cannot price (an unknown region,
machine type or tier, a new billable resource type) fails with a message naming it and the fix, never a
silent $0. The report (preview/cost_report.py) adds the paused and scheduled figures.
"""

from __future__ import annotations

import re
from typing import Optional

from components.config.schedule import parse_active_hours

from .capacity import GIB, always_on_pods, gke_allocatable, unplaced_after_zone_loss, unplaced_pods
from .cost_report import CostItem, CostReport, Schedule
from .cost_usage import ALERT_POLICY, FORWARDING_RULES, UPTIME_CHECK, UsageLines
from .harness import Capture, Resource
from .prices import (PRICES_FILE, PriceError, gke_system_requests, load_prices, lookup, machine_price,
                     regional_prices)

__all__ = ["PRICES_FILE", "CostItem", "CostReport", "PriceError", "estimate", "gke_system_requests",
           "load_prices", "machine_price", "regional_prices", "stack_region"]

_ZONE = re.compile(r"^[a-z]+-[a-z]+\d+-[a-z]$")
_CUSTOM_SQL_TIER = re.compile(r"^db-custom-(\d+)-(\d+)$")

CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"
SQL_INSTANCE = "gcp:sql/databaseInstance:DatabaseInstance"
NAT = "gcp:compute/routerNat:RouterNat"
REGISTRY = "gcp:artifactregistry/repository:Repository"
BUCKET = "gcp:storage/bucket:Bucket"
CERTIFICATE = "gcp:certificatemanager/certificate:Certificate"
CERTIFICATE_MAP_ENTRY = "gcp:certificatemanager/certificateMapEntry:CertificateMapEntry"
PRICED_TYPES = (CLUSTER, NODE_POOL, SQL_INSTANCE, NAT, REGISTRY, BUCKET, CERTIFICATE, CERTIFICATE_MAP_ENTRY,
                *FORWARDING_RULES, ALERT_POLICY, UPTIME_CHECK)
# GCS soft delete keeps deleted objects (billed) this long unless the bucket sets softDeletePolicy:
# https://cloud.google.com/storage/docs/soft-delete (default retention 7 days).
SOFT_DELETE_DEFAULT_SECONDS = 7 * 86400


def stack_region(capture: Capture) -> str:
    """The one region the stack's regional resources are in (cluster location without its zone letter)."""
    regions = set()
    for resource in capture.resources:
        if resource.type in (CLUSTER, SQL_INSTANCE, NAT):
            region = resource.inputs.get("region") or re.sub(r"-[a-z]$", "", resource.inputs.get("location", ""))
            if region:
                regions.add(region)
    if len(regions) != 1:
        raise PriceError(f"the cost estimate prices one region per stack; this stack's cluster, database and NAT "
                         f"are in {sorted(regions) or 'no region'}. Set gcp:region (and zone) so they agree.")
    return regions.pop()


def stack_schedule(capture: Capture, hours_per_month: float) -> Schedule:
    """activeHours / paused from the config the program ran with, through the config's own parser
    (components/config/schedule.py); the program has already refused a bad value."""
    raw = capture.config.get("airflow-gke:activeHours") or ""
    paused = str(capture.config.get("airflow-gke:paused", "false")).lower() == "true"
    if not raw.strip():
        return Schedule(paused=paused)
    hours = parse_active_hours(raw)
    return Schedule(active_hours=str(hours), awake_hours_per_month=hours.average_active_hours_per_month(),
                    paused=paused)


class _Estimator(UsageLines):
    def __init__(self, capture: Capture, prices: dict):
        self.capture = capture
        self.prices = prices
        self.hours = float(prices["hours_per_month"])
        self.assume = {k: v["value"] for k, v in prices["assumptions"].items()}
        self.items: list[CostItem] = []
        self.notes: list[str] = []
        self.free_tier_left = float(prices["gke"]["free_tier_credit_per_month"]["usd"])
        self.nat_vms = 0
        self.idle_nodes = 0
        # (machine type, shape and price, nodes per zone, zones) of each always-on pool
        self.node_shapes: list[tuple[str, dict, int, int]] = []

    def add(self, resource: Resource, item: str, quantity: float, unit: str, unit_usd: float,
            per_hour: bool, note: str = "", kept_when_paused: bool = True) -> None:
        monthly = quantity * unit_usd * (self.hours if per_hour else 1)
        self.items.append(CostItem(resource.name, item, quantity, unit, unit_usd, monthly, note, kept_when_paused))

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
                 note=f"autoscaler minimum: {spread}", kept_when_paused=False)
        self.node_shapes.append((machine_type, machine, int(per_zone), zones))
        self.idle_nodes += nodes
        disk_type = node.get("diskType", "pd-balanced")
        disk = lookup(self.prices["disks_per_gib_month"], disk_type, "disk type", pool, "the pool's disk type")
        size = int(node.get("diskSizeGb", 100))
        self.add(pool, f"boot disks ({disk_type})", nodes * size, "GiB", disk["usd"], per_hour=False,
                 note=f"{nodes} x {size} GiB; deleted with the nodes at a pause", kept_when_paused=False)
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
            hourly = lookup(sql["shared_core_per_hour"], tier, "Cloud SQL tier", instance, "dbTier")["usd"]
            note = f"shared core, {layout}"
        self.add(instance, f"instance ({tier})", copies, "instances", round(hourly, 6), per_hour=True, note=note,
                 kept_when_paused=False)
        disk_type = settings.get("diskType", "PD_SSD")
        storage = lookup(sql["storage_per_gib_month"], disk_type, "Cloud SQL disk type", instance, "the disk type")
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
                 note="charged per VM using it, capped at 32", kept_when_paused=False)
        if nat.inputs.get("natIpAllocateOption") == "MANUAL_ONLY":
            ips = len(nat.inputs.get("natIps") or [])
        else:
            ips = int(self.assume["nat_ips"])
        self.add(nat, "NAT external IPs", ips, "IPs", net["nat_ip_per_hour"]["usd"], per_hour=True,
                 note="kept while paused (conservative: an AUTO_ONLY IP may be released with no VM)")
        data = float(self.assume["nat_data_gib_per_month"])
        self.add(nat, "NAT data processing", data, "GiB", net["nat_data_per_gib"]["usd"], per_hour=False,
                 note="assumed GiB/month through NAT (assumptions.nat_data_gib_per_month)", kept_when_paused=False)

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
        policy = bucket.inputs.get("softDeletePolicy") or {}
        seconds = int(policy.get("retentionDurationSeconds", SOFT_DELETE_DEFAULT_SECONDS))
        if seconds:
            held = round(seconds / 86400 * self.assume["task_logs_gib_per_day"], 4)
            self.add(bucket, "soft-deleted logs (Standard)", held, "GiB", price, per_hour=False,
                     note=f"objects the lifecycle rule deletes stay billable {seconds / 86400:g} days (GCS soft delete)")

    # -- whole stack -------------------------------------------------------------------------------
    def run(self) -> CostReport:
        free = set(self.prices["no_charge_types"])
        unknown = sorted({r.type for r in self.capture.resources
                          if r.custom and r.type.startswith("gcp:") and r.type not in PRICED_TYPES and r.type not in free})
        if unknown:
            raise PriceError(f"no cost model for {', '.join(unknown)}: add it to preview/cost.py (billable) or "
                             "to no_charge_types in preview/prices.yaml (free while idle).")
        for cluster in sorted(self.capture.of_type(CLUSTER), key=lambda r: r.name):
            self.cluster(cluster)
            for pool in sorted(self.capture.of_type(NODE_POOL), key=lambda r: r.name):
                if pool.inputs.get("cluster") in (cluster.inputs.get("name"), cluster.outputs.get("name"), cluster.name):
                    self.node_pool(pool, cluster)
            self.other_logs(cluster)
        for instance in self.capture.of_type(SQL_INSTANCE):
            self.sql_instance(instance)
        for nat in self.capture.of_type(NAT):
            self.nat(nat)
        self.flow_logs()
        self.load_balancers()
        self.front_door()
        for certificate in self.capture.of_type(CERTIFICATE):
            self.certificate_manager(certificate, "certificate_per_month", "Google-managed certificate")
        for entry in self.capture.of_type(CERTIFICATE_MAP_ENTRY):
            self.certificate_manager(entry, "map_entry_per_month", "certificate map entry")
        for repo in self.capture.of_type(REGISTRY):
            self.registry(repo)
        for bucket in self.capture.of_type(BUCKET):
            self.bucket(bucket)
        self.monitoring()
        self.scraped_samples()
        self.note_unschedulable_pods()
        return CostReport(self.capture.stack, self.items, self.prices, self.notes, self.environment(),
                          stack_schedule(self.capture, self.hours))

    def environment(self) -> Optional[str]:
        for resource in self.capture.of_type(CLUSTER):
            labels = resource.inputs.get("resourceLabels") or {}
            if labels.get("environment"):
                return labels["environment"]
        return None

    def note_unschedulable_pods(self) -> None:
        """A priced node set the always-on pods cannot fit on is a wrong estimate (the autoscaler would
        find no node, or add nodes the idle cost does not show), and one that cannot hold them with a zone
        down is not the HA it claims: say so beside the total."""
        if not self.node_shapes:
            return
        pods = always_on_pods([manifest for _, manifest in self.capture.kubernetes_objects()])
        shapes = ", ".join(sorted({t for t, *_ in self.node_shapes}))
        allocatables = [(gke_allocatable(m["vcpu"], m["memory_gib"]), per_zone, zones)
                        for _, m, per_zone, zones in self.node_shapes]
        for name, _, requests in pods:
            if not any(requests.fits_in(node) for node, _, _ in allocatables):
                self.notes.append(f"pod {name} requests {requests.describe()}, more than a {shapes} node can "
                                  "allocate: it will not schedule; pick a larger nodeMachineType.")
                return
        nodes = [node for node, per_zone, zones in allocatables for _ in range(per_zone * zones)]
        per_node, per_cluster = gke_system_requests(self.prices)
        replicas = [(f"{name}-{i}", requests) for name, count, requests in pods for i in range(count)]
        left = unplaced_pods(replicas, nodes, per_node, per_cluster)
        if left:
            self.notes.append(f"pods {', '.join(left)} do not fit beside GKE's own pods on the {len(nodes)} idle "
                              f"{shapes} node(s): the autoscaler adds nodes and the idle cost is higher than "
                              "shown; pick a larger nodeMachineType or raise nodeMinCount.")
            return
        zones = max(z for _, _, z in allocatables)
        if zones > 1:
            left = unplaced_after_zone_loss(replicas, [(node, per_zone) for node, per_zone, _ in allocatables],
                                            zones, per_node, per_cluster)
            if left:
                self.notes.append(f"with one of {zones} zones down, pods {', '.join(left)} do not fit on the "
                                  f"remaining {shapes} nodes: they wait for the autoscaler, which may find no "
                                  "capacity in a zone outage; pick a larger nodeMachineType or raise nodeMinCount.")


def estimate(capture: Capture, prices: Optional[dict] = None) -> CostReport:
    """One row per billable item of the captured stack, priced from prices.yaml in the stack's region."""
    table = prices if prices is not None else load_prices()
    return _Estimator(capture, regional_prices(table, stack_region(capture))).run()
