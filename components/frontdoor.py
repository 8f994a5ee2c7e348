"""The Google Cloud half of the UI's public front door: a static global IP, a Google-managed certificate in
Certificate Manager (certificate, map, map entry) and, when a Cloud DNS zone is named, the host's A record.

The Kubernetes half (Gateway, routes, policies) lives with the workload (components/airflow/front_door.py):
the Gateway names this address (spec.addresses NamedAddress) and this map (networking.gke.io/certmap), so
GKE's Gateway controller builds a global external Application Load Balancer on them:
https://cloud.google.com/kubernetes-engine/docs/how-to/deploying-gateways (static IP) and
https://cloud.google.com/kubernetes-engine/docs/how-to/secure-gateway#secure-using-certificate-manager.
"""

from __future__ import annotations

import hashlib
from typing import NotRequired, Optional, TypedDict

import pulumi
import pulumi_gcp as gcp

from .common import child_options, type_token

# Certificate Manager is not in REQUIRED_APIS: a stack without a front door does not enable it.
FRONT_DOOR_APIS = ("certificatemanager.googleapis.com",)
DNS_API = "dns.googleapis.com"
DNS_TTL_SECONDS = 300


def front_door_apis(dns_zone: str) -> tuple[str, ...]:
    return FRONT_DOOR_APIS + ((DNS_API,) if dns_zone else ())


def host_suffix(host: str) -> str:
    """Names of the objects a new host replaces (the certificate's domains and the entry's hostname are
    ForceNew: rehearse/replace_rules_gcp.yaml) carry this, so Pulumi's create-before-replace makes the new
    one beside the old instead of colliding with its name, and the UI keeps serving while it provisions."""
    return hashlib.sha256(host.encode()).hexdigest()[:6]


def dns_record_text(host: str, address: str) -> str:
    """The record a user creates at their DNS provider when the program does not (no uiDnsZone)."""
    return f"{host}. {DNS_TTL_SECONDS} IN A {address}"


class FrontDoorArgs(TypedDict):
    project: pulumi.Input[str]
    """GCP project id."""
    host: str
    """Public host name of the UI (airflow-gke:uiHost); the certificate covers exactly this name."""
    dns_zone: NotRequired[str]
    """Cloud DNS managed zone of the host's domain, in the project; "" or missing: no record is written."""
    labels: NotRequired[dict]
    """Resource labels."""


class FrontDoor(pulumi.ComponentResource):
    address: pulumi.Output[str]
    """The load balancer's IPv4 address."""
    address_name: pulumi.Output[str]
    """Name of the global address, for the Gateway's NamedAddress."""
    certificate_map_name: pulumi.Output[str]
    """Name of the certificate map, for the Gateway's networking.gke.io/certmap annotation."""
    dns_record: pulumi.Output[str]
    """The A record (zone-file line) that points the host at the address."""

    def __init__(self, name: str, args: FrontDoorArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("FrontDoor"), name, {}, opts)
        project, host, labels = args["project"], args["host"], args.get("labels")
        # A reserved address keeps its IP when the Gateway (or the whole cluster) is replaced, so the DNS
        # record stays right; the Gateway's ephemeral address would change with it.
        address = gcp.compute.GlobalAddress(
            f"{name}-ui-ip", project=project, name=f"{name}-ui-ip", address_type="EXTERNAL", ip_version="IPV4",
            labels=labels, opts=child_options(self, opts))
        # Google-managed, authorized by the load balancer itself (no DNS authorization record): it provisions
        # once the host's A record points at the address above.
        # https://cloud.google.com/certificate-manager/docs/domain-authorization#load-balancer
        suffix = host_suffix(host)
        certificate = gcp.certificatemanager.Certificate(
            f"{name}-ui-cert", project=project, name=f"{name}-ui-cert-{suffix}", scope="DEFAULT", labels=labels,
            managed=gcp.certificatemanager.CertificateManagedArgs(domains=[host]), opts=child_options(self, opts))
        certificate_map = gcp.certificatemanager.CertificateMap(
            f"{name}-ui-certmap", project=project, name=f"{name}-ui-certmap", labels=labels,
            opts=child_options(self, opts))
        gcp.certificatemanager.CertificateMapEntry(
            f"{name}-ui-certmap-entry", project=project, name=f"{name}-ui-{suffix}", map=certificate_map.name,
            hostname=host, certificates=[certificate.id], labels=labels, opts=child_options(self, opts))
        if args.get("dns_zone"):
            gcp.dns.RecordSet(
                f"{name}-ui-dns", project=project, managed_zone=args["dns_zone"], name=f"{host}.", type="A",
                ttl=DNS_TTL_SECONDS, rrdatas=[address.address], opts=child_options(self, opts))
        self.address = address.address
        self.address_name = address.name
        self.certificate_map_name = certificate_map.name
        self.dns_record = address.address.apply(lambda ip: dns_record_text(host, ip))
        self.register_outputs({"address": self.address, "address_name": self.address_name,
                               "certificate_map_name": self.certificate_map_name, "dns_record": self.dns_record})
