"""Rules across config keys: value pairs the Google APIs reject, and values refused only when deploying.

Each check gets the already-parsed values and a reader with `fail(key, value, allowed, example, fix)`
(components/config/reader.py `_Reader`), so every problem lands in the one ConfigError raised before any
resource is declared. Imports flow one way: components/config/ imports this module, never the reverse.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Optional, Protocol, Sequence

import pulumi

CONTROL_PLANE_ACCESS = ("dns", "ip")

# RFC 5737 TEST-NET ranges: examples in documentation, never anyone's egress address.
DOCUMENTATION_RANGES = tuple(ipaddress.IPv4Network(r) for r in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"))

# Native sidecars (init containers with restartPolicy: Always), which run the Cloud SQL Auth Proxy, need
# Kubernetes 1.29 or newer: https://kubernetes.io/docs/concepts/workloads/pods/sidecar-containers/; the task
# pods' ValidatingAdmissionPolicy (components/airflow/task_pod_accounts.py) needs admissionregistration.k8s.io/v1,
# served from 1.30: https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/
MIN_KUBERNETES_MINOR = 30
# Why: said in every refusal of an older version.
MIN_KUBERNETES_NEEDS = "native sidecars, ValidatingAdmissionPolicy v1"
_MINOR = re.compile(r"^1\.(\d+)")


class Reader(Protocol):
    def fail(self, key: str, value, allowed: str, example: str = "<value>", fix: Optional[str] = None) -> None: ...

    @classmethod
    def path_fix(cls, path: str, example: str = "", verb: str = "set") -> str: ...


def kubernetes_minor(version: str) -> Optional[int]:
    """29 for "1.29", "1.29.4" or "1.29.4-gke.1043002"; None when it is no 1.x version."""
    match = _MINOR.match(version)
    return int(match.group(1)) if match else None


def check_database(reader: Reader, backup_retention_count: int, log_retention_days: int, tier: str) -> None:
    # Cloud SQL refuses fewer retained backups than days of transaction log: "Invalid request: backup
    # retention should be > transaction log retention" (terraform-google-modules/terraform-google-sql-db#785).
    # Equal counts are accepted: they are Cloud SQL's own defaults (7 backups, 7 days of log).
    if backup_retention_count < log_retention_days:
        reader.fail("dbBackupRetentionCount", backup_retention_count,
                    f"at least airflow-gke:dbLogRetentionDays ({log_retention_days}): Cloud SQL rejects fewer "
                    "retained backups than days of transaction log", str(log_retention_days))
    # The instance is created in the ENTERPRISE edition; db-perf-optimized-N-* machines exist only in
    # ENTERPRISE_PLUS and the API rejects the pair
    # (https://cloud.google.com/sql/docs/postgres/editions-intro, langfuse/langfuse-terraform-gcp#34).
    if tier.startswith("db-perf-optimized-"):
        reader.fail("dbTier", tier, "an Enterprise edition tier such as db-custom-2-7680 (db-perf-optimized-* "
                    "tiers need the Enterprise Plus edition, which this program does not create)",
                    "db-custom-2-7680")


def check_kubernetes_version(reader: Reader, version: str) -> None:
    """A pinned version must serve what the workload needs; unset lets the release channel choose."""
    minor = kubernetes_minor(version)
    if version and minor is not None and minor < MIN_KUBERNETES_MINOR:
        reader.fail("kubernetesVersion", version,
                    f"1.{MIN_KUBERNETES_MINOR} or newer ({MIN_KUBERNETES_NEEDS}), or unset so the release "
                    "channel chooses", fix="pulumi config rm airflow-gke:kubernetesVersion")


def channel_meets_minimum_version(channel: str, defaults: dict) -> str:
    """The channel's default version serves what the workload needs: returns the channel, else raises.

    `defaults` is the release channel -> default version map of container.getEngineVersions."""
    def supported(name: str) -> bool:
        minor = kubernetes_minor((defaults or {}).get(name, ""))
        return minor is not None and minor >= MIN_KUBERNETES_MINOR

    if supported(channel):
        return channel
    other = next((name for name in ("REGULAR", "STABLE", "RAPID", "EXTENDED") if supported(name)), None)
    fix = (f"pulumi config set airflow-gke:releaseChannel {other}" if other else
           f"pulumi config set airflow-gke:kubernetesVersion 1.{MIN_KUBERNETES_MINOR}")
    raise ValueError(
        f"GKE release channel {channel} creates clusters at {(defaults or {}).get(channel) or 'an unknown version'} "
        f"here; the Airflow workload needs Kubernetes 1.{MIN_KUBERNETES_MINOR} or newer ({MIN_KUBERNETES_NEEDS}). "
        f"Fix: {fix}")


def documentation_ranges(cidrs: Sequence[str]) -> list[str]:
    return [c for c in cidrs if any(ipaddress.IPv4Network(c).overlaps(d) for d in DOCUMENTATION_RANGES)]


def check_control_plane(reader: Reader, access: str, networks: Sequence[str], deploying: bool) -> None:
    """How `pulumi up`, kubectl and CI reach the control plane; see docs/deploy.md, Control-plane access."""
    if access == "dns":
        if networks:
            reader.fail("masterAuthorizedNetworks", list(networks),
                        "empty when airflow-gke:controlPlaneAccess is dns (the public IP endpoint is off; the DNS "
                        "endpoint is authorized by IAM); to keep the list, set airflow-gke:controlPlaneAccess ip",
                        fix="pulumi config rm airflow-gke:masterAuthorizedNetworks")
        return
    if not networks:
        reader.fail("masterAuthorizedNetworks", [], "a non-empty list of CIDRs when airflow-gke:controlPlaneAccess "
                    "is ip (else nothing outside the VPC, not even `pulumi up`, reaches the control plane); or set "
                    "airflow-gke:controlPlaneAccess dns", fix=reader.path_fix("masterAuthorizedNetworks[0]",
                                                                             "<your egress IP>/32"))
        return
    examples = documentation_ranges(networks)
    if not examples:
        return
    allowed = "your own egress CIDRs, not RFC 5737 documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24)"
    fix = reader.path_fix("masterAuthorizedNetworks[0]", "<your egress IP>/32")
    if deploying:
        reader.fail("masterAuthorizedNetworks", examples, allowed, fix=fix)
    else:
        pulumi.log.warn(f"airflow-gke:masterAuthorizedNetworks = {examples}: {allowed}; `pulumi up` will refuse "
                        f"them. Fix: {fix}")
