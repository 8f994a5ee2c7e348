"""Reading and checking the network keys: the subnet, pod, service, control-plane and Private Services Access
ranges.

The Private Services Access (PSA) range is a fixed block the stack chooses. An auto-allocated VPC_PEERING range
(no `address`) is picked by GCP from the free blocks of the VPC when it is created, so it has to wait for every
subnet of the network or it can take the block a subnet then asks for (hashicorp/terraform-provider-google#2308):
23 s of the subnet on the way to Cloud SQL. A fixed range cannot collide with a subnet it was checked against
here, so the range is created as soon as the VPC is.

Sizes (https://cloud.google.com/vpc/docs/configure-private-services-access, "Choose an IP address range";
https://cloud.google.com/sql/docs/postgres/private-ip, "Allocated range size"): a single /24 at least, a /16
recommended; the range must stay clear of every subnet range, current and future. Private services access
connects over internal (RFC 1918) addresses, which is all this program accepts.
"""

from __future__ import annotations

import ipaddress
from typing import Mapping

from .reader import _Reader
from .settings import NetworkSettings

KEY = "privateServicesRange"
RETIRED_KEY = "privateServicesPrefixLength"
DEFAULT_RANGE = "10.40.0.0/16"  # the recommended /16, clear of the default subnet, pod, service and master ranges
LARGEST_PREFIX, SMALLEST_PREFIX = 8, 24
RFC1918 = tuple(ipaddress.IPv4Network(r) for r in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


def admits_much_of_the_internet(cidr: str) -> bool:
    """0.0.0.0/0, or a public range wider than /8 (0.0.0.0/1 + 128.0.0.0/1 is the internet in two entries);
    private ranges such as 10.0.0.0/8 are fine. The policy pack's `_is_open_cidr` applies the same bound."""
    network = ipaddress.ip_network(cidr, strict=False)
    return network.prefixlen == 0 or (not network.is_private and network.prefixlen < 8)


def _read_network(reader: _Reader) -> NetworkSettings:
    ranges = {"subnetCidr": reader.cidr("subnetCidr", "10.10.0.0/20"),
              "podsCidr": reader.cidr("podsCidr", "10.20.0.0/16"),
              "servicesCidr": reader.cidr("servicesCidr", "10.30.0.0/20"),
              "masterCidr": reader.cidr("masterCidr", "172.16.0.16/28")}
    if ranges["masterCidr"].split("/")[1] != "28":
        reader.fail("masterCidr", ranges["masterCidr"], "a /28 block (GKE requires a /28 for the control plane)",
                    "172.16.0.16/28")
    blocks = {key: ipaddress.IPv4Network(cidr) for key, cidr in ranges.items()}
    names = list(blocks)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            if blocks[first].overlaps(blocks[second]):
                reader.fail(second, str(blocks[second]), f"a range that does not overlap airflow-gke:{first} "
                            f"({blocks[first]})", "<non-overlapping CIDR>")
    return NetworkSettings(
        subnet_cidr=ranges["subnetCidr"], pods_cidr=ranges["podsCidr"], services_cidr=ranges["servicesCidr"],
        master_cidr=ranges["masterCidr"], private_services_range=read_private_services_range(reader, blocks))


def read_private_services_range(reader: _Reader, others: Mapping[str, ipaddress.IPv4Network]) -> str:
    """The PSA range as a CIDR; every problem (bad CIDR, public, wrong size, overlap with one of `others`,
    keyed by their config key) goes to `reader` with the key and a fix."""
    if reader.raw(RETIRED_KEY) is not None:
        reader.fail(RETIRED_KEY, reader.raw(RETIRED_KEY),
                    f"unset: the range is fixed now (airflow-gke:{KEY}, default {DEFAULT_RANGE}); a stack deployed "
                    f"with an auto-allocated range keeps it by setting {KEY} to that range (address/prefixLength "
                    "from `gcloud compute addresses list --global --filter=purpose=VPC_PEERING`)",
                    fix=f"pulumi config rm {reader.full_key(RETIRED_KEY)}")
    problems = len(reader.problems)
    value = reader.cidr(KEY, DEFAULT_RANGE)
    if len(reader.problems) > problems:
        return value  # not a CIDR: already reported
    return str(check_private_services_range(reader, ipaddress.IPv4Network(value), others))


def check_private_services_range(reader: _Reader, block: ipaddress.IPv4Network,
                                 others: Mapping[str, ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    if not any(block.subnet_of(private) for private in RFC1918):
        reader.fail(KEY, str(block), "a private (RFC 1918) block inside 10.0.0.0/8, 172.16.0.0/12 or "
                    "192.168.0.0/16", DEFAULT_RANGE)
    if not LARGEST_PREFIX <= block.prefixlen <= SMALLEST_PREFIX:
        reader.fail(KEY, str(block), f"a /{LARGEST_PREFIX} to /{SMALLEST_PREFIX} block (Private Services Access "
                    "needs a /24 at least; /16 is recommended)", DEFAULT_RANGE)
    for key, other in others.items():
        if block.overlaps(other):
            reader.fail(KEY, str(block), f"a range that does not overlap airflow-gke:{key} ({other})",
                        "<non-overlapping CIDR>")
    return block
