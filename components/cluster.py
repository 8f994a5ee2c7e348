"""GKE cluster, Standard or Autopilot: private nodes, Workload Identity, shielded nodes,
Dataplane V2, a dedicated node service account; plus a kubeconfig and a Kubernetes provider."""

import json
from typing import Mapping, NotRequired, Optional, Sequence, TypedDict

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from .common import child_options, type_token
from .config.rules import channel_meets_minimum_version
from .network import PODS_RANGE, SERVICES_RANGE

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
SPOT_TAINT = {"key": "cloud.google.com/gke-spot", "value": "true", "effect": "NO_SCHEDULE"}


def build_kubeconfig(cluster_name: str, endpoint: str, ca_certificate: Optional[str]) -> str:
    """A kubeconfig that authenticates with gke-gcloud-auth-plugin (no static credentials inside).

    `ca_certificate` is the cluster CA for the IP endpoint; None for the DNS endpoint, whose certificate
    is publicly trusted."""
    context = f"gke_{cluster_name}"
    cluster = {"server": f"https://{endpoint}"}
    if ca_certificate:
        cluster["certificate-authority-data"] = ca_certificate
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": cluster}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
        "users": [{"name": context, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "gke-gcloud-auth-plugin",
            "installHint": "Install gke-gcloud-auth-plugin: gcloud components install gke-gcloud-auth-plugin",
            "provideClusterInfo": True,
            "interactiveMode": "IfAvailable",
        }}}],
    }, indent=2)


class ClusterArgs(TypedDict):
    project: pulumi.Input[str]
    """GCP project id; the Workload Identity pool is PROJECT.svc.id.goog."""
    location: pulumi.Input[str]
    """A zone (zonal Standard cluster) or a region (regional Standard, or Autopilot)."""
    mode: str
    """`standard` or `autopilot`."""
    network_id: pulumi.Input[str]
    """VPC id."""
    subnet_id: pulumi.Input[str]
    """Subnet with the `pods` and `services` secondary ranges."""
    master_cidr: pulumi.Input[str]
    """/28 range for the control plane's private endpoint."""
    control_plane_access: NotRequired[str]
    """`dns` (default): the DNS-based endpoint, authorized by IAM (container.clusters.connect), and no public
    IP endpoint. `ip`: the public IP endpoint, open to `master_authorized_networks` only."""
    master_authorized_networks: Sequence[str]
    """`ip` access: CIDRs allowed to reach the public IP endpoint. Must be empty with `dns` access."""
    node_service_account: pulumi.Input[str]
    """Email of the dedicated node service account."""
    release_channel: NotRequired[str]
    """GKE release channel (default REGULAR)."""
    kubernetes_version: NotRequired[str]
    """Pinned minimum control plane version, 1.30 or newer (native sidecars, ValidatingAdmissionPolicy v1);
    unset or "": the release channel chooses, and its default version is checked instead."""
    node_machine_type: NotRequired[str]
    """Standard mode: machine type of the main node pool."""
    node_min_count: NotRequired[int]
    """Standard mode: autoscaler minimum per zone."""
    node_max_count: NotRequired[int]
    """Standard mode: autoscaler maximum per zone."""
    node_disk_size_gb: NotRequired[int]
    """Standard mode: node boot disk size."""
    spot_pool: NotRequired[bool]
    """Standard mode: add a tainted Spot node pool for task pods."""
    spot_machine_type: NotRequired[str]
    """Standard mode: machine type of the Spot pool."""
    spot_max_count: NotRequired[int]
    """Standard mode: autoscaler maximum of the Spot pool."""
    deletion_protection: NotRequired[bool]
    """Refuse to delete the cluster (default True)."""
    labels: NotRequired[pulumi.Input[Mapping[str, str]]]
    """Resource labels."""
    pause_managed: NotRequired[bool]
    """A pause schedule sizes the node pools (components/schedule.py): their autoscaling and node count are
    left to it (ignoreChanges), so a `pulumi up` while paused neither wakes the pools nor fights the schedule."""


class NodePool(TypedDict):
    """A Standard-mode node pool as a pause schedule sees it: what a resume restores."""
    name: pulumi.Input[str]
    """The node pool's name."""
    min_count: int
    """Autoscaler minimum per zone."""
    max_count: int
    """Autoscaler maximum per zone."""


# What the pause workflow changes on a node pool (rehearse/drift_rules.yaml, node-pool-*-under-pause).
PAUSE_MANAGED_POOL_FIELDS = ["autoscaling", "nodeCount"]


class Cluster(pulumi.ComponentResource):
    name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    workload_pool: pulumi.Output[str]
    provider: k8s.Provider
    node_pools: list[NodePool]
    """Standard mode: name and autoscaler bounds of each node pool; what a resume restores."""

    def __init__(self, name: str, args: ClusterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("Cluster"), name, {}, opts)
        autopilot = args["mode"] == "autopilot"
        dns_access = args.get("control_plane_access", "dns") == "dns"
        workload_pool = pulumi.Output.concat(args["project"], ".svc.id.goog")
        pinned_version = args.get("kubernetes_version") or None
        channel = args.get("release_channel", "REGULAR")
        common = dict(
            project=args["project"],
            location=args["location"],
            network=args["network_id"],
            subnetwork=args["subnet_id"],
            deletion_protection=args.get("deletion_protection", True),
            # No fixed minor on a release channel: the channel chooses, and a pinned minor would be rejected
            # once it leaves the channel (terraform-google-modules/terraform-google-kubernetes-engine#2177).
            min_master_version=pinned_version,
            release_channel=gcp.container.ClusterReleaseChannelArgs(
                channel=channel if pinned_version else self._checked_channel(channel, args, opts)),
            ip_allocation_policy=gcp.container.ClusterIpAllocationPolicyArgs(
                cluster_secondary_range_name=PODS_RANGE, services_secondary_range_name=SERVICES_RANGE),
            # The GKE API deprecates these PrivateClusterConfig fields for NetworkConfig.default_enable_private_nodes
            # and ControlPlaneEndpointsConfig.IPEndpointsConfig (enable_public_endpoint, authorized networks):
            # https://cloud.google.com/dotnet/docs/reference/Google.Cloud.Container.V1/latest/Google.Cloud.Container.V1.PrivateClusterConfig
            # The pinned provider (pulumi-gcp 10.2.0) has no schema field for those: its ip_endpoints_config holds
            # only `enabled` (all IP endpoints off, not the public one), and it already sends these fields as the
            # new API ones (expandControlPlaneEndpointsConfig, expandDefaultEnablePrivateNodes and
            # flattenPrivateClusterConfig in google/services/container/resource_container_cluster.go,
            # hashicorp/terraform-provider-google@e03b7622a26cf4e878f90bdccaca6aa3d03a7999). master_ipv4_cidr_block
            # is still canonical there and ForceNew: moving it would replace the cluster. So they stay
            # (tests/unit/test_control_plane.py checks the provider still lacks the replacements).
            private_cluster_config=gcp.container.ClusterPrivateClusterConfigArgs(
                enable_private_nodes=True,
                # DNS access: no public IP endpoint at all. IP access: the public endpoint stays, limited to
                # master_authorized_networks, so `pulumi up` can reach it.
                enable_private_endpoint=dns_access,
                master_ipv4_cidr_block=args["master_cidr"],
            ),
            # The DNS-based endpoint checks IAM before any request reaches the API server, so `pulumi up`
            # from a laptop or CI needs no IP allow-list:
            # https://cloud.google.com/kubernetes-engine/docs/concepts/network-isolation
            control_plane_endpoints_config=gcp.container.ClusterControlPlaneEndpointsConfigArgs(
                dns_endpoint_config=gcp.container.ClusterControlPlaneEndpointsConfigDnsEndpointConfigArgs(
                    allow_external_traffic=dns_access)),
            master_authorized_networks_config=gcp.container.ClusterMasterAuthorizedNetworksConfigArgs(
                gcp_public_cidrs_access_enabled=False,
                cidr_blocks=[gcp.container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(
                    cidr_block=cidr, display_name=f"authorized-{i}")
                    for i, cidr in enumerate(args["master_authorized_networks"])],
            ),
            workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(workload_pool=workload_pool),
            master_auth=gcp.container.ClusterMasterAuthArgs(
                client_certificate_config=gcp.container.ClusterMasterAuthClientCertificateConfigArgs(
                    issue_client_certificate=False)),
            enable_legacy_abac=False,
            datapath_provider="ADVANCED_DATAPATH",  # Dataplane V2: NetworkPolicy enforcement built in
            # GKE's Gateway controller and the Gateway API CRDs, for the UI's front door (airflow-gke:uiHost).
            # On for every stack so turning uiHost on later does not touch the cluster; an in-place update
            # (gateway_api_config is not ForceNew: google/services/container/resource_container_cluster.go,
            # hashicorp/terraform-provider-google@e03b7622a26cf4e878f90bdccaca6aa3d03a7999, update at L5172).
            # https://cloud.google.com/kubernetes-engine/docs/how-to/deploying-gateways#enable-gateway
            gateway_api_config=gcp.container.ClusterGatewayApiConfigArgs(channel="CHANNEL_STANDARD"),
            maintenance_policy=gcp.container.ClusterMaintenancePolicyArgs(
                daily_maintenance_window=gcp.container.ClusterMaintenancePolicyDailyMaintenanceWindowArgs(
                    start_time="03:00")),
            resource_labels=args.get("labels"),
            # GMP managed collection (the PodMonitoring of components/airflow/scraping.py): on by default for
            # new Standard clusters from 1.27 and on Autopilot, stated here so an older or migrated cluster
            # gets it too: https://cloud.google.com/stackdriver/docs/managed-prometheus/setup-managed
            monitoring_config=gcp.container.ClusterMonitoringConfigArgs(
                managed_prometheus=gcp.container.ClusterMonitoringConfigManagedPrometheusArgs(enabled=True)),
        )
        node_pools: list[gcp.container.NodePool] = []
        self.node_pools = []
        if autopilot:
            cluster = gcp.container.Cluster(
                f"{name}-gke", enable_autopilot=True,
                cluster_autoscaling=gcp.container.ClusterClusterAutoscalingArgs(
                    auto_provisioning_defaults=gcp.container.ClusterClusterAutoscalingAutoProvisioningDefaultsArgs(
                        service_account=args["node_service_account"], oauth_scopes=[CLOUD_PLATFORM_SCOPE])),
                **common, opts=child_options(self, opts))
        else:
            cluster = gcp.container.Cluster(
                f"{name}-gke",
                enable_shielded_nodes=True,
                # The default pool is removed at once; pools are managed separately so they can change
                # without replacing the cluster. Its short-lived node still uses the dedicated SA.
                remove_default_node_pool=True,
                initial_node_count=1,
                node_config=gcp.container.ClusterNodeConfigArgs(
                    service_account=args["node_service_account"], oauth_scopes=[CLOUD_PLATFORM_SCOPE],
                    workload_metadata_config=gcp.container.ClusterNodeConfigWorkloadMetadataConfigArgs(
                        mode="GKE_METADATA"),
                    shielded_instance_config=gcp.container.ClusterNodeConfigShieldedInstanceConfigArgs(
                        enable_secure_boot=True, enable_integrity_monitoring=True)),
                # The default pool is gone; a diff on its node_config would otherwise replace the cluster.
                **common, opts=child_options(self, opts, ignore_changes=["nodeConfig", "initialNodeCount"]))
            node_pools.append(self._node_pool(f"{name}-pool", cluster, args, spot=False, opts=opts))
            self.node_pools.append(NodePool(name=node_pools[-1].name, min_count=args.get("node_min_count", 1),
                                            max_count=args.get("node_max_count", 3)))
            if args.get("spot_pool"):
                node_pools.append(self._node_pool(f"{name}-spot", cluster, args, spot=True, opts=opts))
                self.node_pools.append(NodePool(name=node_pools[-1].name, min_count=0,
                                                max_count=args.get("spot_max_count", 5)))

        # The kubeconfig (and so the Kubernetes provider) uses the endpoint this cluster actually opens.
        if dns_access:
            endpoint = cluster.control_plane_endpoints_config.apply(lambda c: c.dns_endpoint_config.endpoint)
            kubeconfig = pulumi.Output.all(cluster.name, endpoint).apply(
                lambda parts: build_kubeconfig(parts[0], parts[1], None))
        else:
            endpoint = cluster.endpoint
            kubeconfig = pulumi.Output.all(cluster.name, endpoint, cluster.master_auth.cluster_ca_certificate) \
                .apply(lambda parts: build_kubeconfig(*parts))
        self.name = cluster.name
        self.endpoint = endpoint
        self.kubeconfig = pulumi.Output.secret(kubeconfig)
        # The pool exists once this cluster does: taken from its output, it makes IAM bindings on the pool
        # wait for the cluster (terraform-google-modules/terraform-google-kubernetes-engine#916).
        self.workload_pool = cluster.workload_identity_config.apply(lambda config: config.workload_pool)
        # Kubernetes resources wait for the node pools: a pool that fails to come up fails `pulumi up`
        # there, instead of as a Kubernetes timeout on pods that cannot be scheduled.
        # The provider (and every object it manages) is replaced only when this id changes: when the cluster
        # is replaced (auto-named, so a new cluster has a new name and id; unknown at preview), not when the
        # kubeconfig's server or CA does (controlPlaneAccess dns <-> ip, a CA rotation): provider.go DiffConfig
        # in pulumi/pulumi-kubernetes (94977969d6), pulumi/pulumi-kubernetes#2745.
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=self.kubeconfig, cluster_identifier=cluster.id,
                                     opts=child_options(self, opts, depends_on=node_pools))
        self.register_outputs({
            "name": self.name, "endpoint": self.endpoint, "kubeconfig": self.kubeconfig,
            "workload_pool": self.workload_pool,
        })

    def _checked_channel(self, channel: str, args: ClusterArgs,
                         opts: Optional[pulumi.ResourceOptions]) -> pulumi.Output[str]:
        """The channel, once its default version in this location is known to allow native sidecars.

        Asked after the APIs this component waits for (the Kubernetes Engine API must be enabled)."""
        versions = gcp.container.get_engine_versions_output(
            location=args["location"], project=args["project"],
            opts=pulumi.InvokeOutputOptions(parent=self, depends_on=child_options(self, opts).depends_on))
        return versions.release_channel_default_version.apply(
            lambda defaults: channel_meets_minimum_version(channel, defaults))

    def _node_pool(self, resource_name: str, cluster: gcp.container.Cluster, args: ClusterArgs, spot: bool,
                   opts: Optional[pulumi.ResourceOptions] = None) -> gcp.container.NodePool:
        return gcp.container.NodePool(
            resource_name,
            project=args["project"],
            location=args["location"],
            cluster=cluster.name,
            autoscaling=gcp.container.NodePoolAutoscalingArgs(
                min_node_count=0 if spot else args.get("node_min_count", 1),
                max_node_count=args.get("spot_max_count", 5) if spot else args.get("node_max_count", 3)),
            management=gcp.container.NodePoolManagementArgs(auto_repair=True, auto_upgrade=True),
            node_config=gcp.container.NodePoolNodeConfigArgs(
                machine_type=args.get("spot_machine_type", "e2-standard-4") if spot else args.get("node_machine_type", "e2-standard-2"),
                disk_size_gb=args.get("node_disk_size_gb", 50),
                disk_type="pd-balanced",
                image_type="COS_CONTAINERD",
                spot=spot,
                service_account=args["node_service_account"],
                oauth_scopes=[CLOUD_PLATFORM_SCOPE],
                workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(mode="GKE_METADATA"),
                shielded_instance_config=gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgs(
                    enable_secure_boot=True, enable_integrity_monitoring=True),
                gcfs_config=gcp.container.NodePoolNodeConfigGcfsConfigArgs(enabled=True),  # image streaming
                metadata={"disable-legacy-endpoints": "true"},
                labels={"airflow-gke/pool": "spot" if spot else "default"},
                # Only pods that tolerate Spot (task pods that opt in) land on the Spot pool.
                taints=[gcp.container.NodePoolNodeConfigTaintArgs(**SPOT_TAINT)] if spot else None,
                resource_labels=args.get("labels"),
            ),
            opts=child_options(self, opts, ignore_changes=PAUSE_MANAGED_POOL_FIELDS if args.get("pause_managed") else None))
