"""VPC-native network: subnet with pod/service ranges, Cloud NAT for private nodes, and
Private Services Access so Cloud SQL gets a private IP only."""

from __future__ import annotations

from typing import Optional, TypedDict

import pulumi
import pulumi_gcp as gcp

from .common import child_options, type_token

PODS_RANGE = "pods"
SERVICES_RANGE = "services"


class NetworkArgs(TypedDict):
    project: pulumi.Input[str]
    """GCP project id."""
    region: pulumi.Input[str]
    """Region of the subnet, router and NAT."""
    subnet_cidr: pulumi.Input[str]
    """Primary range of the subnet (nodes)."""
    pods_cidr: pulumi.Input[str]
    """Secondary range for pod IPs (VPC-native cluster)."""
    services_cidr: pulumi.Input[str]
    """Secondary range for Service cluster IPs."""
    private_services_prefix_length: pulumi.Input[int]
    """Prefix length of the range reserved for Private Services Access (Cloud SQL private IP)."""


class Network(pulumi.ComponentResource):
    network_id: pulumi.Output[str]
    network_self_link: pulumi.Output[str]
    subnet_id: pulumi.Output[str]
    private_services_connection: gcp.servicenetworking.Connection

    def __init__(self, name: str, args: NetworkArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("Network"), name, {}, opts)
        project, region = args["project"], args["region"]

        vpc = gcp.compute.Network(
            f"{name}-vpc", project=project, auto_create_subnetworks=False, routing_mode="REGIONAL",
            opts=child_options(self, opts))
        subnet = gcp.compute.Subnetwork(
            f"{name}-subnet", project=project, region=region, network=vpc.id,
            ip_cidr_range=args["subnet_cidr"],
            # Private nodes reach Google APIs (Artifact Registry, GCS logs) without public IPs.
            private_ip_google_access=True,
            secondary_ip_ranges=[
                gcp.compute.SubnetworkSecondaryIpRangeArgs(range_name=PODS_RANGE, ip_cidr_range=args["pods_cidr"]),
                gcp.compute.SubnetworkSecondaryIpRangeArgs(range_name=SERVICES_RANGE, ip_cidr_range=args["services_cidr"]),
            ],
            log_config=gcp.compute.SubnetworkLogConfigArgs(
                aggregation_interval="INTERVAL_10_MIN", flow_sampling=0.5, metadata="INCLUDE_ALL_METADATA"),
            opts=child_options(self, opts))
        router = gcp.compute.Router(
            f"{name}-router", project=project, region=region, network=vpc.id, opts=child_options(self, opts))
        # Private nodes have no external IPs; NAT gives them egress (git-sync pulling DAGs, PyPI, ...).
        gcp.compute.RouterNat(
            f"{name}-nat", project=project, region=region, router=router.name,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
            log_config=gcp.compute.RouterNatLogConfigArgs(enable=True, filter="ERRORS_ONLY"),
            opts=child_options(self, opts))
        psa_range = gcp.compute.GlobalAddress(
            f"{name}-psa-range", project=project, network=vpc.id, purpose="VPC_PEERING",
            address_type="INTERNAL", prefix_length=args["private_services_prefix_length"],
            opts=child_options(self, opts))
        self.private_services_connection = gcp.servicenetworking.Connection(
            f"{name}-psa", network=vpc.id, service="servicenetworking.googleapis.com",
            reserved_peering_ranges=[psa_range.name], opts=child_options(self, opts))

        self.network_id = vpc.id
        self.network_self_link = vpc.self_link
        self.subnet_id = subnet.id
        self.register_outputs({
            "network_id": self.network_id,
            "network_self_link": self.network_self_link,
            "subnet_id": self.subnet_id,
        })
