"""Reading and checking the network keys: the subnet, pod, service and control-plane ranges."""

from __future__ import annotations

import ipaddress

from .reader import _Reader
from .settings import NetworkSettings


def _read_network(reader: _Reader) -> NetworkSettings:
    network = NetworkSettings(
        subnet_cidr=reader.cidr("subnetCidr", "10.10.0.0/20"),
        pods_cidr=reader.cidr("podsCidr", "10.20.0.0/16"),
        services_cidr=reader.cidr("servicesCidr", "10.30.0.0/20"),
        master_cidr=reader.cidr("masterCidr", "172.16.0.16/28"),
        private_services_prefix_length=reader.integer("privateServicesPrefixLength", 20, 8, 24),
    )
    if network.master_cidr.split("/")[1] != "28":
        reader.fail("masterCidr", network.master_cidr, "a /28 block (GKE requires a /28 for the control plane)",
                    "172.16.0.16/28")
    ranges = {k: ipaddress.IPv4Network(v) for k, v in
              (("subnetCidr", network.subnet_cidr), ("podsCidr", network.pods_cidr),
               ("servicesCidr", network.services_cidr), ("masterCidr", network.master_cidr))}
    names = list(ranges)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            if ranges[first].overlaps(ranges[second]):
                reader.fail(second, str(ranges[second]), f"a range that does not overlap airflow-gke:{first} "
                            f"({ranges[first]})", "<non-overlapping CIDR>")
    return network
