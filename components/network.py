"""VPC-native network: subnet with pod/service ranges, Cloud NAT for private nodes, and
Private Services Access so Cloud SQL gets a private IP only."""

import ipaddress
from typing import NotRequired, Optional, TypedDict

import pulumi
import pulumi_gcp as gcp

from .common import child_options, type_token

PODS_RANGE = "pods"
SERVICES_RANGE = "services"
SERVICE_NETWORKING = "servicenetworking.googleapis.com"
PEERING_DELETION_POLICY = "REMOVE_PEERING"
SERVICE_NETWORKING_AGENT_ROLE = "roles/servicenetworking.serviceAgent"


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
    private_services_range: NotRequired[str]
    """Range reserved for Private Services Access (Cloud SQL private IP), a CIDR the caller checked against
    every subnet range (components/config/network.py). Created as soon as the VPC is."""
    private_services_prefix_length: NotRequired[int]
    """Instead of a range: its prefix length, the block auto-allocated by GCP; it then waits for the subnet."""


def private_services_block(args: NetworkArgs) -> dict:
    """`address` and `prefix_length` of the PSA range: the fixed CIDR, or only a prefix length (auto)."""
    fixed = args.get("private_services_range")
    if fixed:
        block = ipaddress.IPv4Network(fixed)
        return {"address": str(block.network_address), "prefix_length": block.prefixlen}
    if "private_services_prefix_length" not in args:
        raise ValueError("NetworkArgs needs private_services_range (a CIDR) or private_services_prefix_length")
    return {"prefix_length": args["private_services_prefix_length"]}


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
            address_type="INTERNAL", **private_services_block(args),
            # Auto-allocated, GCP picks a free block of the VPC: allocated before the subnet exists, it can take
            # the block the subnet then asks for (hashicorp/terraform-provider-google#2308). A fixed block,
            # checked against the subnet's ranges, need not wait.
            opts=child_options(self, opts, depends_on=[] if args.get("private_services_range") else [subnet]))
        # The Service Networking service agent must exist (and hold its role) before the first connection
        # of a fresh project; enabling the API does not create it at once, and the connection then fails
        # with "Required 'compute.globalAddresses.list' permission"
        # (GoogleCloudPlatform/cloud-foundation-fabric#1399). generateServiceIdentity creates it; we grant it
        # the role explicitly (the workaround in that thread), so the connection never races the grant.
        # A beta resource in Terraform; pulumi-gcp is built from the google-beta provider, so the default
        # provider serves it (pulumi/pulumi-gcp#702 and the other "terraform-provider-google-beta" upgrades).
        service_agent = gcp.projects.ServiceIdentity(
            f"{name}-servicenetworking-agent", project=project, service=SERVICE_NETWORKING,
            opts=child_options(self, opts))
        # The agent and its role are one per project, not per stack: every stack in the project declares the
        # same (project, role, member), and a destroy that removed it would take Private Services Access
        # from the other stacks' VPCs. Retained, a destroy (or a replace) only drops it from this stack's
        # state (https://www.pulumi.com/docs/iac/concepts/resources/options/retainondelete/); creating it
        # again is a no-op, as project IAM members are non-authoritative. The identity itself needs nothing:
        # deleting google_project_service_identity is a no-op (website/docs/r/project_service_identity).
        service_agent_role = gcp.projects.IAMMember(
            f"{name}-servicenetworking-agent-role", project=project, role=SERVICE_NETWORKING_AGENT_ROLE,
            member=service_agent.member, opts=child_options(self, opts, retain_on_delete=True))
        self.private_services_connection = gcp.servicenetworking.Connection(
            f"{name}-psa", network=vpc.id, service=SERVICE_NETWORKING, reserved_peering_ranges=[psa_range.name],
            # Cloud SQL keeps using the peering for a while after its instance is deleted, so a plain
            # delete fails ("Producer services ... are still using this connection",
            # hashicorp/terraform-provider-google#16275, #18834, #19908), and ABANDON leaves the peering
            # behind, which blocks deleting the VPC. REMOVE_PEERING deletes the connection or, when it is
            # still in use, removes the peering from the VPC so the VPC can go
            # (GoogleCloudPlatform/magic-modules#18476).
            deletion_policy=PEERING_DELETION_POLICY,
            # A stack re-created after such a teardown finds the old connection still tracked by the
            # service; update it instead of failing on create (GoogleCloudPlatform/cluster-toolkit#4744).
            update_on_creation_fail=True,
            opts=child_options(self, opts, depends_on=[service_agent, service_agent_role]))

        self.network_id = vpc.id
        self.network_self_link = vpc.self_link
        self.subnet_id = subnet.id
        self.register_outputs({
            "network_id": self.network_id,
            "network_self_link": self.network_self_link,
            "subnet_id": self.subnet_id,
        })
