"""Usage-based rows of the cost estimate: logs, and the front door and monitoring when a stack declares them.

Volumes come from `assumptions` in prices.yaml (the inputs cannot say how much a stack logs); each row names
the assumption it used. Mixed into the estimator of preview/cost.py, which supplies `add`, `prices`,
`assume`, `capture`, `hours` and `idle_nodes`.
"""

from __future__ import annotations

import re

from .capacity import always_on_pods
from .harness import Resource
from .prices import PriceError

SUBNET = "gcp:compute/subnetwork:Subnetwork"
FORWARDING_RULES = ("gcp:compute/globalForwardingRule:GlobalForwardingRule", "gcp:compute/forwardingRule:ForwardingRule")
ALERT_POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"
UPTIME_CHECK = "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig"
POD_MONITORING = "kubernetes:monitoring.googleapis.com/v1:PodMonitoring"
# Flow-log volume scales with the sampling rate; the assumption is stated at this rate.
FLOW_LOG_ASSUMED_SAMPLING = 0.5
# An uptime check without selectedRegions runs from every checker region
# (https://cloud.google.com/monitoring/uptime-checks#regions: USA (3 locations), Europe, South America, Asia Pacific).
UPTIME_DEFAULT_REGIONS = 6


class UsageLines:
    # -- logs (Cloud Logging) ----------------------------------------------------------------------
    def flow_logs(self) -> None:
        """Subnets with flow logs send them to Cloud Logging as vended network logs (no free allotment)."""
        logging = self.prices["logging"]
        for subnet in self.capture.of_type(SUBNET):
            config = subnet.inputs.get("logConfig")
            if not config:
                continue
            sampling = float(config.get("flowSampling", FLOW_LOG_ASSUMED_SAMPLING))
            volume = round(self.idle_nodes * self.assume["flow_log_gib_per_node_month"]
                           * sampling / FLOW_LOG_ASSUMED_SAMPLING, 4)
            self.add(subnet, "VPC flow logs to Cloud Logging", volume, "GiB",
                     logging["vended_network_logs_per_gib"]["usd"], per_hour=False, kept_when_paused=False,
                     note=f"{self.idle_nodes} idle node(s) x assumed {self.assume['flow_log_gib_per_node_month']} "
                          f"GiB at sampling {sampling:g}, {config.get('aggregationInterval', 'INTERVAL_5_SEC')}")

    def other_logs(self, cluster: Resource) -> None:
        ingestion = self.prices["logging"]["ingestion_per_gib"]
        volume = float(self.assume["other_log_gib_per_month"])
        billed = max(0.0, volume - float(ingestion["free_gib_per_project"]))
        self.add(cluster, "GKE and Airflow logs beyond the free 50 GiB", billed, "GiB", ingestion["usd"],
                 per_hour=False, kept_when_paused=False,
                 note=f"assumed {volume:g} GiB/month; the first {ingestion['free_gib_per_project']} GiB per project free")

    # -- front door and monitoring: priced when declared ----------------------------------------------
    def load_balancers(self) -> None:
        rule = self.prices["network"]["forwarding_rule_per_hour"]["usd"]
        for resource, manifest in self.capture.kubernetes_objects():
            if (manifest.get("spec") or {}).get("type") == "LoadBalancer":
                internal = "internal" if "networking.gke.io/load-balancer-type" in \
                    (manifest["metadata"].get("annotations") or {}) else "external"
                self.add(resource, f"load balancer forwarding rule ({internal})", 1, "rules", rule, per_hour=True,
                         note="Service type LoadBalancer")
            elif manifest.get("kind") == "Gateway":
                count = int(self.prices["network"]["gateway_forwarding_rules"]["count"])
                self.add(resource, "load balancer forwarding rules (Gateway)", count, "rules", rule, per_hour=True,
                         note="one per listener port (HTTPS 443, HTTP 80 redirect); data processing not idle")

    def front_door(self) -> None:
        rule = self.prices["network"]["forwarding_rule_per_hour"]["usd"]
        for resource in self.capture.resources:
            if resource.type in FORWARDING_RULES:
                self.add(resource, "forwarding rule (front door)", 1, "rules", rule, per_hour=True)

    def certificate_manager(self, resource: Resource, key: str, item: str) -> None:
        price = self.prices["certificate_manager"][key]
        self.add(resource, item, 1, "per month", price["usd"], per_hour=False,
                 note=f"first {price['free_per_project']} per project free, then ${price['usd_beyond_free']}/month each")

    def monitoring(self) -> None:
        prices = self.prices["monitoring"]
        for policy in self.capture.of_type(ALERT_POLICY):
            conditions = len(policy.inputs.get("conditions") or [])
            self.add(policy, "alert policy conditions", conditions, "conditions",
                     prices["alert_condition_per_month"]["usd"], per_hour=False)
        for check in self.capture.of_type(UPTIME_CHECK):
            period_s = int(str(check.inputs.get("period", "60s")).rstrip("s") or 60)
            regions = len(check.inputs.get("selectedRegions") or []) or UPTIME_DEFAULT_REGIONS
            executions = self.hours * 3600 / period_s * regions
            rate = prices["uptime_check_executions_per_1000"]
            billed = max(0.0, executions - rate["free_executions"]) / 1000
            self.add(check, "uptime check executions beyond the free 1M", round(billed, 3), "thousand",
                     rate["usd"], per_hour=False, note=f"{executions:,.0f} executions/month; 1M free per billing account")

    def scraped_samples(self) -> None:
        """GMP bills every sample ingested: series per scraped pod x scrapes a month, per always-on pod.
        Not while paused: the scaled-down pods are not scraped."""
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
                     monitoring["prometheus_samples_per_million"]["usd"], per_hour=False, kept_when_paused=False,
                     note=f"~{series:g} series (assumed) scraped every {seconds:g}s")


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m|h)", duration)
    if not match:
        raise PriceError(f"PodMonitoring interval {duration!r} is not a duration such as 30s or 1m")
    return int(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2)]
