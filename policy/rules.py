"""Security rules of the `airflow-gke-security` policy pack (Pulumi CrossGuard).

Every rule is a `ResourceValidationPolicy` that reads `args.resource_type` and `args.props` (the
resource's inputs, camelCase, as the engine passes them) and calls `report_violation` with a message
that names the resource and says how to fix it. The pack itself is built in `__main__.py`; this module
never starts anything, so tests import it (`from policy import rules`) and call `check`.

Conventions:
- The engine wraps props in proxies (`Mapping`/`Sequence`, not `dict`/`list`) that raise
  `UnknownValueError` when a value that is unknown during preview is read. We only read the fields a
  rule needs (never `.items()` over a whole resource), so one unknown field only defers the rules that
  read it; the engine reports those as "can't run during preview" and enforces them at `pulumi up`,
  when the values are known.
- A missing key means "the provider default": rules treat it as such (e.g. a Cloud SQL instance with no
  `ipv4Enabled` gets a public IP, so it is a violation; a missing `enableLegacyAbac` is off, so it is not).
- This module must stay importable as the top-level module `rules` (how `__main__.py` loads it when the
  engine runs the pack from inside `policy/`): no relative imports.
"""

from __future__ import annotations

import copy
import ipaddress
import json
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Iterator, Optional

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

try:  # PyYAML comes with `pulumi`; without it, pod templates inside ConfigMaps are not inspected.
    import yaml
except ImportError:  # pragma: no cover
    yaml = None

PACK_NAME = "airflow-gke-security"

SQL_INSTANCE = "gcp:sql/databaseInstance:DatabaseInstance"
GKE_CLUSTER = "gcp:container/cluster:Cluster"
GKE_NODE_POOL = "gcp:container/nodePool:NodePool"
SERVICE_ACCOUNT_KEY = "gcp:serviceaccount/key:Key"
BUCKET = "gcp:storage/bucket:Bucket"
K8S_SERVICE = "kubernetes:core/v1:Service"
K8S_CONFIG_MAP = "kubernetes:core/v1:ConfigMap"

PRIMITIVE_ROLES = ("roles/owner", "roles/editor", "roles/viewer")
DEFAULT_COMPUTE_SA_SUFFIX = "-compute@developer.gserviceaccount.com"

# Where each Kubernetes kind keeps its pod spec (the kind is the last part of the type token, so
# every apiVersion — apps/v1, batch/v1, batch/v1beta1, extensions/v1beta1 ... — is covered).
# `*Patch` kinds carry partial objects and `*List` kinds wrap items: neither is inspected.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}

ALL_POLICIES: list[ResourceValidationPolicy] = []
"""Every policy of the pack, in registration order."""


# --------------------------------------------------------------------------------------------------
# Helpers


def _is_seq(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _get(obj: Any, *path: Any, default: Any = None) -> Any:
    """obj[path[0]][path[1]]...; `default` when a key/index is missing, a level is not a
    mapping/sequence, or a value is None. Unknown values still raise `UnknownValueError`."""
    current = obj
    for key in path:
        if isinstance(key, int):
            if not _is_seq(current) or not -len(current) <= key < len(current):
                return default
        elif not isinstance(current, Mapping) or key not in current:
            return default
        current = current[key]
        if current is None:
            return default
    return current


def _shown(obj: Any, *path: Any, default: str = "unnamed") -> Any:
    """A value read only to word a message: unknown-at-preview values must not defer the rule."""
    try:
        return _get(obj, *path, default=default)
    except UnknownValueError:
        return "(known after apply)"


def _items(value: Any) -> list:
    """A sequence as a list (empty when missing or not a sequence)."""
    return list(value) if _is_seq(value) else []


def _kind(resource_type: str) -> str:
    return resource_type.rsplit(":", 1)[-1]


def _label(args: ResourceValidationArgs) -> str:
    """How messages name a resource: its kind and logical name, e.g. `DatabaseInstance 'airflow-pg'`."""
    return f"{_kind(args.resource_type)} '{args.name}'"


def _violation(report: ReportViolation, subject: str, problem: str, fix: str) -> None:
    report(f"{subject} {problem}. Fix: {fix}")


# A public range wider than this admits a large part of the internet: 0.0.0.0/1 + 128.0.0.0/1 is 0.0.0.0/0
# in two entries. No client list needs a public /7 (33M addresses); private ranges (10.0.0.0/8) are fine.
OPEN_PREFIX_BELOW = {4: 8, 6: 16}


def _is_open_cidr(value: Any) -> bool:
    """True for a range that admits every address (0.0.0.0/0, ::/0, 0.0.0.0/0.0.0.0 ...) or a large share
    of the public internet (a public range wider than /8, or /16 for IPv6)."""
    if not isinstance(value, str):
        return False
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return value.strip() in ("0.0.0.0/0", "::/0", "*")
    return network.prefixlen == 0 or (not network.is_private
                                      and network.prefixlen < OPEN_PREFIX_BELOW[network.version])


def policy(name: str, description: str, types: Optional[Sequence[str]] = None,
           applies: Optional[Callable[[str], bool]] = None) -> Callable:
    """Register `fn(args, report_violation)` as a ResourceValidationPolicy that only sees
    resources whose type is in `types` (or for which `applies(type)` is true)."""

    def register(fn: Callable[[ResourceValidationArgs, ReportViolation], None]):
        def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
            if types is not None and args.resource_type not in types:
                return
            if applies is not None and not applies(args.resource_type):
                return
            fn(args, report_violation)

        ALL_POLICIES.append(ResourceValidationPolicy(name=name, description=description, validate=validate))
        return fn

    return register


# --------------------------------------------------------------------------------------------------
# Cloud SQL


@policy("cloudsql-no-public-ip", "Cloud SQL instances have no public IPv4 address (private IP only).",
        types=[SQL_INSTANCE])
def cloudsql_no_public_ip(args: ResourceValidationArgs, report: ReportViolation) -> None:
    # The API default is a public IP: a missing ipv4Enabled counts as true.
    if _get(args.props, "settings", "ipConfiguration", "ipv4Enabled") is not False:
        _violation(report, _label(args), "has a public IPv4 address (settings.ipConfiguration.ipv4Enabled is not false)",
                   "set settings.ipConfiguration.ipv4Enabled=false and settings.ipConfiguration.privateNetwork "
                   "to the VPC; clients connect over the private IP or the Cloud SQL Auth Proxy")


@policy("cloudsql-no-open-authorized-networks",
        "Cloud SQL authorized networks never include 0.0.0.0/0 (the whole internet).", types=[SQL_INSTANCE])
def cloudsql_no_open_authorized_networks(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for network in _items(_get(args.props, "settings", "ipConfiguration", "authorizedNetworks")):
        value = _get(network, "value")
        if _is_open_cidr(value):
            _violation(report, _label(args),
                       f"authorizes {value} (network '{_shown(network, 'name')}') in "
                       "settings.ipConfiguration.authorizedNetworks, i.e. the whole internet",
                       "remove that entry; list only the specific CIDRs that need access, or better, "
                       "use private IP and the Cloud SQL Auth Proxy")


@policy("cloudsql-backups-and-pitr", "Cloud SQL instances have automated backups and point-in-time recovery on.",
        types=[SQL_INSTANCE])
def cloudsql_backups_and_pitr(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _get(args.props, "masterInstanceName"):
        return  # read replicas cannot have their own backups; the primary's are checked
    backup = _get(args.props, "settings", "backupConfiguration", default={})
    if _get(backup, "enabled") is not True:
        _violation(report, _label(args), "has automated backups off (settings.backupConfiguration.enabled is not true)",
                   "set settings.backupConfiguration.enabled=true with a startTime and backupRetentionSettings")
    version = str(_get(args.props, "databaseVersion", default=""))
    if version.upper().startswith("MYSQL"):
        if _get(backup, "binaryLogEnabled") is not True:
            _violation(report, _label(args), "has point-in-time recovery off "
                       "(settings.backupConfiguration.binaryLogEnabled is not true)",
                       "set settings.backupConfiguration.binaryLogEnabled=true")
    elif _get(backup, "pointInTimeRecoveryEnabled") is not True:
        _violation(report, _label(args), "has point-in-time recovery off "
                   "(settings.backupConfiguration.pointInTimeRecoveryEnabled is not true)",
                   "set settings.backupConfiguration.pointInTimeRecoveryEnabled=true "
                   "and transactionLogRetentionDays (1-7)")


@policy("cloudsql-deletion-protection",
        "Cloud SQL instances have deletion protection on in Pulumi (deletionProtection) and in the Cloud SQL API "
        "(settings.deletionProtectionEnabled).", types=[SQL_INSTANCE])
def cloudsql_deletion_protection(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _get(args.props, "deletionProtection") is not True:
        _violation(report, _label(args), "does not set deletionProtection=true",
                   "set deletionProtection=true so the provider refuses to delete the instance")
    if _get(args.props, "settings", "deletionProtectionEnabled") is not True:
        _violation(report, _label(args), "does not set settings.deletionProtectionEnabled=true",
                   "set settings.deletionProtectionEnabled=true so the Cloud SQL API refuses deletion "
                   "from any tool (console, gcloud, Terraform, Pulumi)")


# --------------------------------------------------------------------------------------------------
# GKE


def _autopilot(props: Mapping) -> bool:
    return _get(props, "enableAutopilot") is True


@policy("gke-private-nodes", "GKE clusters use private nodes (no public IPs on nodes).", types=[GKE_CLUSTER])
def gke_private_nodes(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _get(args.props, "privateClusterConfig", "enablePrivateNodes") is not True:
        _violation(report, _label(args), "does not use private nodes (privateClusterConfig.enablePrivateNodes is not true)",
                   "set privateClusterConfig.enablePrivateNodes=true with a masterIpv4CidrBlock, and give the "
                   "nodes egress through Cloud NAT")


@policy("gke-workload-identity", "GKE clusters have Workload Identity on, so pods never need service-account keys.",
        types=[GKE_CLUSTER])
def gke_workload_identity(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not _get(args.props, "workloadIdentityConfig", "workloadPool"):
        _violation(report, _label(args), "has no Workload Identity pool (workloadIdentityConfig.workloadPool is empty)",
                   "set workloadIdentityConfig.workloadPool='<project>.svc.id.goog' (and node pools "
                   "workloadMetadataConfig.mode=GKE_METADATA)")


@policy("gke-no-legacy-abac", "GKE clusters do not enable legacy ABAC authorization (RBAC only).", types=[GKE_CLUSTER])
def gke_no_legacy_abac(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _get(args.props, "enableLegacyAbac") is True:
        _violation(report, _label(args), "enables legacy ABAC (enableLegacyAbac=true)",
                   "set enableLegacyAbac=false (or leave it unset) and grant access with Kubernetes RBAC")


@policy("gke-no-basic-auth", "GKE clusters do not use basic authentication (static username/password).",
        types=[GKE_CLUSTER])
def gke_no_basic_auth(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _get(args.props, "masterAuth", "username") or _get(args.props, "masterAuth", "password"):
        _violation(report, _label(args), "uses basic authentication (masterAuth.username/password is set)",
                   "remove masterAuth.username and masterAuth.password; authenticate with Google identities "
                   "(gke-gcloud-auth-plugin)")


@policy("gke-no-client-certificate", "GKE clusters do not issue a static client certificate.", types=[GKE_CLUSTER])
def gke_no_client_certificate(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _get(args.props, "masterAuth", "clientCertificateConfig", "issueClientCertificate") is True:
        _violation(report, _label(args), "issues a client certificate "
                   "(masterAuth.clientCertificateConfig.issueClientCertificate=true)",
                   "set masterAuth.clientCertificateConfig.issueClientCertificate=false; authenticate with "
                   "Google identities (gke-gcloud-auth-plugin)")


@policy("gke-shielded-nodes", "GKE clusters use Shielded GKE Nodes (Autopilot always does).", types=[GKE_CLUSTER])
def gke_shielded_nodes(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not _autopilot(args.props) and _get(args.props, "enableShieldedNodes") is False:
        _violation(report, _label(args), "turns Shielded GKE Nodes off (enableShieldedNodes=false)",
                   "set enableShieldedNodes=true (or leave it unset: it defaults to true)")


def _is_default_service_account(value: Any) -> bool:
    if not value or not isinstance(value, str):
        return True  # unset: GKE falls back to the Compute Engine default service account
    value = value.strip()
    return value == "default" or value.endswith(DEFAULT_COMPUTE_SA_SUFFIX)


_NODE_SA_FIX = ("set it to a dedicated least-privilege service account (roles/container.defaultNodeServiceAccount), "
                "never the Compute Engine default service account (PROJECT_NUMBER-compute@developer.gserviceaccount.com, "
                "which has Editor on the project)")


@policy("gke-no-default-node-service-account",
        "GKE nodes (cluster nodeConfig, node pools, Autopilot/auto-provisioned nodes) run as a dedicated service "
        "account, not the Compute Engine default service account.", types=[GKE_CLUSTER, GKE_NODE_POOL])
def gke_no_default_node_service_account(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    label = _label(args)

    def require(path: tuple, where: str) -> None:
        value = _get(props, *path)
        if _is_default_service_account(value):
            shown = f"'{value}'" if value else "unset"
            _violation(report, label, f"runs nodes as the default compute service account ({where} is {shown})",
                       f"set {where}: {_NODE_SA_FIX}")

    if args.resource_type == GKE_NODE_POOL:
        require(("nodeConfig", "serviceAccount"), "nodeConfig.serviceAccount")
        return
    if _autopilot(props):
        require(("clusterAutoscaling", "autoProvisioningDefaults", "serviceAccount"),
                "clusterAutoscaling.autoProvisioningDefaults.serviceAccount")
        return
    inline_pools = _items(_get(props, "nodePools"))
    if not inline_pools or _get(props, "nodeConfig") is not None:
        # The default node pool (even one removed right away by removeDefaultNodePool) uses nodeConfig.
        require(("nodeConfig", "serviceAccount"), "nodeConfig.serviceAccount")
    for index, pool in enumerate(inline_pools):
        require(("nodePools", index, "nodeConfig", "serviceAccount"),
                f"nodePools[{index}] ('{_shown(pool, 'name')}') nodeConfig.serviceAccount")
    if _get(props, "clusterAutoscaling", "enabled") is True:  # node auto-provisioning
        require(("clusterAutoscaling", "autoProvisioningDefaults", "serviceAccount"),
                "clusterAutoscaling.autoProvisioningDefaults.serviceAccount")


@policy("gke-network-policy",
        "GKE clusters enforce NetworkPolicy: Dataplane V2 (datapathProvider=ADVANCED_DATAPATH), networkPolicy.enabled, "
        "or Autopilot.", types=[GKE_CLUSTER])
def gke_network_policy(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if _autopilot(props) or _get(props, "datapathProvider") == "ADVANCED_DATAPATH" \
            or _get(props, "networkPolicy", "enabled") is True:
        return
    _violation(report, _label(args), "does not enforce Kubernetes NetworkPolicy (no Dataplane V2, "
               "networkPolicy.enabled is not true)",
               "set datapathProvider='ADVANCED_DATAPATH' (Dataplane V2, enforces NetworkPolicy natively) "
               "or networkPolicy.enabled=true")


# --------------------------------------------------------------------------------------------------
# IAM


@policy("iam-no-service-account-keys",
        "No service-account keys are created: workloads use Workload Identity, CI uses Workload Identity Federation.",
        types=[SERVICE_ACCOUNT_KEY])
def iam_no_service_account_keys(args: ResourceValidationArgs, report: ReportViolation) -> None:
    account = _shown(args.props, "serviceAccountId", default="a service account")
    _violation(report, _label(args), f"creates a long-lived key for {account}",
               "delete this gcp.serviceaccount.Key; give pods access through Workload Identity "
               "(roles/iam.workloadIdentityUser) and CI through Workload Identity Federation")


def _iam_kind(resource_type: str) -> Optional[str]:
    """'role' for any GCP IAM member/binding resource (projects, storage, artifactregistry, serviceaccount,
    folders, organizations ...), 'policy' for authoritative IAM policy resources, else None."""
    if not resource_type.startswith("gcp:"):
        return None
    kind = _kind(resource_type).lower()
    if kind.endswith("iammember") or kind.endswith("iambinding"):
        return "role"
    if kind.endswith("iampolicy"):
        return "policy"
    return None


_PRIMITIVE_FIX = ("grant a predefined least-privilege role instead (e.g. roles/cloudsql.client, "
                  "roles/storage.objectUser on one bucket, roles/artifactregistry.reader)")


@policy("iam-no-primitive-roles",
        "IAM grants never use the primitive roles roles/owner, roles/editor or roles/viewer.",
        applies=lambda resource_type: _iam_kind(resource_type) is not None)
def iam_no_primitive_roles(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _iam_kind(args.resource_type) == "role":
        role = _get(args.props, "role")
        if role in PRIMITIVE_ROLES:
            members = _shown(args.props, "member", default="")
            if not members:
                try:
                    members = ", ".join(str(m) for m in _items(_get(args.props, "members")))
                except UnknownValueError:
                    members = "members known after apply"
            _violation(report, _label(args), f"grants the primitive role {role} to {members or 'members'}",
                       _PRIMITIVE_FIX)
        return
    policy_data = _get(args.props, "policyData")
    try:
        bindings = json.loads(policy_data).get("bindings", []) if isinstance(policy_data, str) else []
    except (ValueError, AttributeError):
        return
    for binding in bindings if isinstance(bindings, list) else []:
        if isinstance(binding, dict) and binding.get("role") in PRIMITIVE_ROLES:
            _violation(report, _label(args), f"grants the primitive role {binding['role']} in policyData",
                       _PRIMITIVE_FIX)


# --------------------------------------------------------------------------------------------------
# Cloud Storage


@policy("storage-public-access-prevention", "Buckets enforce public access prevention.", types=[BUCKET])
def storage_public_access_prevention(args: ResourceValidationArgs, report: ReportViolation) -> None:
    value = _get(args.props, "publicAccessPrevention")
    if value != "enforced":
        _violation(report, _label(args), f"does not enforce public access prevention "
                   f"(publicAccessPrevention is {repr(value) if value else 'unset'})",
                   "set publicAccessPrevention='enforced'")


@policy("storage-uniform-bucket-level-access", "Buckets use uniform bucket-level access (IAM only, no object ACLs).",
        types=[BUCKET])
def storage_uniform_bucket_level_access(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _get(args.props, "uniformBucketLevelAccess") is not True:
        _violation(report, _label(args), "allows per-object ACLs (uniformBucketLevelAccess is not true)",
                   "set uniformBucketLevelAccess=true and grant access with bucket IAM")


# --------------------------------------------------------------------------------------------------
# Kubernetes workloads


class PodSpec:
    """One pod spec found in a resource: where it is (for messages) and whether containers may omit `image`."""

    def __init__(self, where: str, spec: Mapping, image_optional: bool = False) -> None:
        self.where = where
        self.spec = spec
        self.image_optional = image_optional

    def containers(self) -> Iterator[tuple[str, Mapping]]:
        """(label, container) for every container and init container (native sidecars included)."""
        for field, noun in (("initContainers", "init container"), ("containers", "container")):
            for index, container in enumerate(_items(_get(self.spec, field))):
                if isinstance(container, Mapping):
                    name = _shown(container, "name", default=f"#{index}")
                    yield f"{self.where} {noun} '{name}'", container


def _pod_template_docs(text: str) -> list[tuple[str, Mapping]]:
    """Pod specs inside a YAML/JSON document (e.g. Airflow's KubernetesExecutor pod_template_file)."""
    if yaml is None or "containers" not in text:
        return []
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        return []
    found = []
    for document in documents:
        if not isinstance(document, dict):
            continue
        path = POD_SPEC_PATHS.get(str(document.get("kind", "Pod")))
        spec = _get(document, *path) if path else None
        if isinstance(spec, Mapping) and _is_seq(spec.get("containers")):
            found.append((str(document.get("kind", "Pod")), spec))
    return found


def pod_specs(args: ResourceValidationArgs) -> list[PodSpec]:
    """Every pod spec a Kubernetes resource carries: workloads' templates, and pod templates stored as
    YAML in a ConfigMap's data (images may be omitted there: Airflow fills them in)."""
    if not args.resource_type.startswith("kubernetes:"):
        return []
    kind = _kind(args.resource_type)
    label = f"{kind} '{args.name}'"
    if kind in POD_SPEC_PATHS:
        spec = _get(args.props, *POD_SPEC_PATHS[kind])
        return [PodSpec(label, spec)] if isinstance(spec, Mapping) else []
    if args.resource_type == K8S_CONFIG_MAP:
        data = _get(args.props, "data")
        specs = []
        if isinstance(data, Mapping):
            for key in data:
                text = data[key]
                if isinstance(text, str):
                    for doc_kind, spec in _pod_template_docs(text):
                        specs.append(PodSpec(f"{label} ({doc_kind} template in data key '{key}')", spec,
                                             image_optional=True))
        return specs
    return []


def _k8s_workload(resource_type: str) -> bool:
    return resource_type.startswith("kubernetes:") and (
        _kind(resource_type) in POD_SPEC_PATHS or resource_type == K8S_CONFIG_MAP)


@policy("k8s-run-as-non-root",
        "Every container and init container runs as non-root: runAsNonRoot=true (container or pod "
        "securityContext) and runAsUser is not 0.", applies=_k8s_workload)
def k8s_run_as_non_root(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for pod in pod_specs(args):
        pod_context = _get(pod.spec, "securityContext", default={})
        for label, container in pod.containers():
            context = _get(container, "securityContext", default={})
            non_root = _get(context, "runAsNonRoot")
            if non_root is None:
                non_root = _get(pod_context, "runAsNonRoot")
            user = _get(context, "runAsUser")
            if user is None:
                user = _get(pod_context, "runAsUser")
            if non_root is not True:
                _violation(report, label, "may run as root (runAsNonRoot is not true in the container or pod "
                           "securityContext)", "set securityContext.runAsNonRoot=true and a non-zero runAsUser "
                           "(e.g. 50000 for the Airflow image, 65533 for git-sync)")
            if user is not None and user == 0:
                _violation(report, label, "runs as root (runAsUser=0)",
                           "set securityContext.runAsUser to a non-zero uid (e.g. 50000 for the Airflow image)")


@policy("k8s-no-privilege-escalation",
        "Every container and init container sets securityContext.allowPrivilegeEscalation=false.",
        applies=_k8s_workload)
def k8s_no_privilege_escalation(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for pod in pod_specs(args):
        for label, container in pod.containers():
            if _get(container, "securityContext", "allowPrivilegeEscalation") is not False:
                _violation(report, label, "allows privilege escalation "
                           "(securityContext.allowPrivilegeEscalation is not false)",
                           "set securityContext.allowPrivilegeEscalation=false (and capabilities.drop=['ALL'])")


@policy("k8s-no-privileged-containers", "No container or init container is privileged.", applies=_k8s_workload)
def k8s_no_privileged_containers(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for pod in pod_specs(args):
        for label, container in pod.containers():
            if _get(container, "securityContext", "privileged") is True:
                _violation(report, label, "is privileged (securityContext.privileged=true)",
                           "remove securityContext.privileged (or set it to false)")


@policy("k8s-no-host-path-volumes", "Pods mount no hostPath volumes.", applies=_k8s_workload)
def k8s_no_host_path_volumes(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for pod in pod_specs(args):
        for volume in _items(_get(pod.spec, "volumes")):
            if _get(volume, "hostPath") is not None:
                _violation(report, pod.where, f"mounts the node's filesystem through hostPath volume "
                           f"'{_shown(volume, 'name')}' ({_shown(volume, 'hostPath', 'path', default='no path')})",
                           "use an emptyDir, a ConfigMap/Secret, or a PersistentVolumeClaim instead")


@policy("k8s-no-host-namespaces", "Pods do not share the node's network, PID or IPC namespace.",
        applies=_k8s_workload)
def k8s_no_host_namespaces(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for pod in pod_specs(args):
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            if _get(pod.spec, field) is True:
                _violation(report, pod.where, f"shares a host namespace ({field}=true)",
                           f"remove {field} (or set it to false)")


@policy("k8s-resource-requests-and-limits",
        "Every container and init container sets cpu and memory requests and limits.", applies=_k8s_workload)
def k8s_resource_requests_and_limits(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for pod in pod_specs(args):
        for label, container in pod.containers():
            missing = [f"{kind}.{resource}" for kind in ("requests", "limits") for resource in ("cpu", "memory")
                       if _get(container, "resources", kind, resource) in (None, "")]
            if missing:
                _violation(report, label, f"does not set resources {', '.join(missing)}",
                           "set resources.requests and resources.limits for both cpu and memory")


def _image_problem(image: Any) -> Optional[str]:
    if not isinstance(image, str) or not image.strip():
        return "has no image"
    if "@" in image:
        return None  # pinned by digest
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"uses image '{image}' without a tag (that means :latest)"
    if last.rsplit(":", 1)[1] == "latest":
        return f"uses the mutable tag :latest ('{image}')"
    return None


@policy("k8s-pinned-images",
        "Every container and init container image is pinned to a tag or digest, never :latest.",
        applies=_k8s_workload)
def k8s_pinned_images(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for pod in pod_specs(args):
        for label, container in pod.containers():
            image = _get(container, "image")
            if image is None and pod.image_optional:
                continue
            problem = _image_problem(image)
            if problem:
                _violation(report, label, problem,
                           "pin the image to an explicit version tag (e.g. apache/airflow:3.1.7) or a digest (@sha256:...)")


@policy("k8s-loadbalancer-source-ranges",
        "Services of type LoadBalancer restrict clients with loadBalancerSourceRanges, never 0.0.0.0/0.",
        types=[K8S_SERVICE])
def k8s_loadbalancer_source_ranges(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _get(args.props, "spec", "type") != "LoadBalancer":
        return
    ranges = _items(_get(args.props, "spec", "loadBalancerSourceRanges"))
    if not ranges:
        _violation(report, _label(args), "is a LoadBalancer open to the internet (no spec.loadBalancerSourceRanges)",
                   "set spec.loadBalancerSourceRanges to the client CIDRs (VPN, office), or use type ClusterIP "
                   "behind an authenticated ingress")
    for cidr in ranges:
        if _is_open_cidr(cidr):
            _violation(report, _label(args), f"is a LoadBalancer open to the internet "
                       f"({cidr} in spec.loadBalancerSourceRanges)",
                       "replace it with the specific client CIDRs")


# --------------------------------------------------------------------------------------------------
# External exposure: a stack policy, since a Gateway's routes and backend policies are separate resources.
# A LoadBalancer Service stays allowed with client source ranges (k8s-loadbalancer-source-ranges above):
# it is network-restricted, not public; airflow-gke:allowPublicUi lets the config pass but this pack still
# refuses 0.0.0.0/0.

GATEWAY_API_GROUP = "gateway.networking.k8s.io"
CERTMAP_ANNOTATION = "networking.gke.io/certmap"
PRE_SHARED_CERTS = "networking.gke.io/pre-shared-certs"
STACK_POLICIES: list[StackValidationPolicy] = []
"""Policies over the whole stack (counted with ALL_POLICIES against CrossGuard's 25 per pack)."""


def _k8s_kind(resource_type: str, group: str, kind: str) -> bool:
    return resource_type.startswith(f"kubernetes:{group}/") and _kind(resource_type) == kind


def _is_external_gateway(props: Mapping) -> bool:
    """GKE's external classes: gke-l7-global-external-managed, gke-l7-regional-external-managed, gke-l7-gxlb
    (https://cloud.google.com/kubernetes-engine/docs/concepts/gateway-api#gatewayclass)."""
    name = str(_get(props, "spec", "gatewayClassName", default=""))
    return "external" in name or name.endswith("gxlb")


def _listener_has_certificate(gateway: Mapping, listener: Mapping) -> bool:
    return bool(_items(_get(listener, "tls", "certificateRefs")) or _get(listener, "tls", "options", PRE_SHARED_CERTS)
                or _get(gateway, "metadata", "annotations", CERTMAP_ANNOTATION))


def _attached(route: Mapping, gateway_name: str, listener: str) -> bool:
    return any(_get(ref, "name") == gateway_name and _get(ref, "sectionName", default=listener) == listener
               for ref in _items(_get(route, "spec", "parentRefs")))


def _only_redirects_to_https(route: Mapping) -> bool:
    rules_ = _items(_get(route, "spec", "rules"))
    return bool(rules_) and all(
        not _items(_get(rule, "backendRefs")) and any(
            _get(f, "type") == "RequestRedirect" and _get(f, "requestRedirect", "scheme") == "https"
            for f in _items(_get(rule, "filters"))) for rule in rules_)


def external_exposure_findings(resources: Sequence[tuple[str, str, Mapping]]) -> list[str]:
    """(type, name, props) of a stack's resources -> violation messages: every external Gateway serves HTTPS
    with a certificate, answers plain HTTP only with a redirect to HTTPS, and signs users in (IAP) in front
    of every backend it routes to (a GCPBackendPolicy with spec.default.iap.enabled)."""
    routes = [(n, p) for t, n, p in resources if _k8s_kind(t, GATEWAY_API_GROUP, "HTTPRoute")]
    iap_services = {_get(p, "spec", "targetRef", "name") for t, _, p in resources
                    if _k8s_kind(t, "networking.gke.io", "GCPBackendPolicy")
                    and _get(p, "spec", "targetRef", "kind") == "Service" and _get(p, "spec", "default", "iap", "enabled") is True}
    found = []
    for resource_type, name, gateway in resources:
        if not _k8s_kind(resource_type, GATEWAY_API_GROUP, "Gateway") or not _is_external_gateway(gateway):
            continue
        subject, gateway_name = f"Gateway '{name}'", _get(gateway, "metadata", "name", default=name)
        listeners = _items(_get(gateway, "spec", "listeners"))
        https = [l for l in listeners if _get(l, "protocol") == "HTTPS"]
        if not https or not all(_listener_has_certificate(gateway, l) for l in https):
            found.append(f"{subject} is external without an HTTPS listener that has a certificate. Fix: add an HTTPS "
                         f"listener with tls.certificateRefs, or the {CERTMAP_ANNOTATION} annotation (Certificate Manager)")
        for listener in (l for l in listeners if _get(l, "protocol") == "HTTP"):
            for route_name, route in routes:
                if _attached(route, gateway_name, _get(listener, "name")) and not _only_redirects_to_https(route):
                    found.append(f"HTTPRoute '{route_name}' serves plain HTTP on external {subject} (listener "
                                 f"{_get(listener, 'name')}). Fix: attach it to the HTTPS listener (sectionName); on "
                                 "HTTP keep only a RequestRedirect filter with scheme https")
        for route_name, route in routes:
            backends = {_get(b, "name") for rule in _items(_get(route, "spec", "rules"))
                        for b in _items(_get(rule, "backendRefs")) if _get(b, "kind", default="Service") == "Service"}
            if any(_get(ref, "name") == gateway_name for ref in _items(_get(route, "spec", "parentRefs"))):
                for service in sorted(backends - iap_services):
                    found.append(f"Service '{service}' is reached through external {subject} (HTTPRoute "
                                 f"'{route_name}') without sign-in. Fix: a GCPBackendPolicy targeting it with "
                                 "spec.default.iap.enabled true (Identity-Aware Proxy)")
    return found


def _external_exposure(args: StackValidationArgs, report: ReportViolation) -> None:
    for message in external_exposure_findings([(r.resource_type, r.name, r.props) for r in args.resources]):
        report(message, None)


STACK_POLICIES.append(StackValidationPolicy(
    name="external-ui-tls-and-sign-in",
    description="An external Gateway serves HTTPS with a certificate, redirects plain HTTP, and puts "
                "Identity-Aware Proxy in front of every backend.",
    validate=_external_exposure))


# --------------------------------------------------------------------------------------------------
# Running the rules outside the engine (tests, scripts)


def policy_names() -> list[str]:
    return [p.name for p in ALL_POLICIES]


def evaluate(resource_type: str, props: Mapping[str, Any], name: str = "x",
             policies: Optional[Sequence[ResourceValidationPolicy]] = None,
             unknown: Optional[list[str]] = None) -> list[tuple[str, str]]:
    """Run the policies on one resource as the engine would; return (policy name, message) pairs.

    Props are wrapped in the engine's unknown-checking proxy, so the rules see the same types they see
    under `pulumi preview`. A policy that reads a value unknown at preview (one of the
    `pulumi_policy.proxy.UNKNOWN_*` sentinels) reports nothing; its name is appended to `unknown`.
    """
    urn = f"urn:pulumi:stack::airflow-gke::{resource_type}::{name}"
    options = PolicyResourceOptions(protect=False, ignore_changes=[], delete_before_replace=None, aliases=[],
                                    custom_timeouts=PolicyCustomTimeouts(0, 0, 0), additional_secret_outputs=[])
    args = ResourceValidationArgs(resource_type, unknown_checking_proxy(copy.deepcopy(dict(props))), urn, name,
                                  options, None)
    findings: list[tuple[str, str]] = []
    for p in ALL_POLICIES if policies is None else policies:
        reported: list[str] = []
        try:
            p.validate(args, lambda message, urn=None: reported.append(message))
        except UnknownValueError:
            if unknown is not None:
                unknown.append(p.name)
            continue
        findings.extend((p.name, message) for message in reported)
    return findings


def check(resource_type: str, props: Mapping[str, Any], name: str = "x") -> list[str]:
    """Run every policy on one resource; return the violation messages (empty: compliant)."""
    return [message for _, message in evaluate(resource_type, props, name)]
