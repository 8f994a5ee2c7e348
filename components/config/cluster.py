"""Reading and checking the GKE cluster keys: mode, location, version, control-plane access and node pools."""

from __future__ import annotations

import re

from .rules import CONTROL_PLANE_ACCESS, MIN_KUBERNETES_MINOR, check_control_plane, check_kubernetes_version
from .machine_types import custom_shape_problem
from .reader import _Reader
from .settings import ClusterSettings

CLUSTER_MODES = ("standard", "autopilot")
RELEASE_CHANNELS = ("RAPID", "REGULAR", "STABLE", "EXTENDED")
MIN_KUBERNETES_MINOR = MIN_KUBERNETES_MINOR

_K8S_VERSION = re.compile(r"^1\.(\d+)(\.\d+)?$")
_MACHINE_TYPE = re.compile(r"^[a-z0-9]+-[a-z0-9-]+$")


def _read_cluster(reader: _Reader, region: str, is_prod: bool, deploying: bool) -> ClusterSettings:
    mode = reader.string("clusterMode", "standard", choices=CLUSTER_MODES)
    regional = reader.boolean("clusterRegional", is_prod)
    zone_pattern = re.compile(r"^[a-z]+-[a-z]+[0-9]+-[a-z]$")
    zone = reader.string("zone", f"{region}-a" if region else "", pattern=zone_pattern,
                         allowed="a zone of gcp:region such as us-central1-a", example=f"{region or 'us-central1'}-a")
    if zone and region and zone_pattern.match(zone) and not zone.startswith(region + "-"):
        reader.fail("zone", zone, f"a zone inside gcp:region ({region})", f"{region}-a")
    # Unset: the release channel chooses (a pinned minor is rejected once it leaves the channel,
    # terraform-google-modules/terraform-google-kubernetes-engine#2177).
    kubernetes_version = reader.string("kubernetesVersion", "", pattern=_K8S_VERSION,
                                       allowed="a Kubernetes minor version such as 1.33", example="1.33")
    check_kubernetes_version(reader, kubernetes_version)
    control_plane_access = reader.string("controlPlaneAccess", "dns", choices=CONTROL_PLANE_ACCESS)
    master_authorized_networks = reader.cidr_list("masterAuthorizedNetworks", ())
    check_control_plane(reader, control_plane_access, master_authorized_networks, deploying)
    node_min = reader.integer("nodeMinCount", 1, 0, 100)
    node_max = reader.integer("nodeMaxCount", 3, 1, 100)
    if node_max < node_min:
        reader.fail("nodeMaxCount", node_max, f"at least airflow-gke:nodeMinCount ({node_min})", str(node_min))
    machine_types = {key: reader.string(key, default, pattern=_MACHINE_TYPE,
                                        allowed=f"a Compute Engine machine type such as {default}", example=default)
                     for key, default in (("nodeMachineType", "e2-standard-2"), ("spotMachineType", "e2-standard-4"))}
    for key, machine_type in machine_types.items():
        problem = custom_shape_problem(machine_type)
        if problem:
            reader.fail(key, machine_type, problem, "e2-custom-2-5120")
    return ClusterSettings(
        mode=mode,
        regional=regional,
        location=region if (regional or mode == "autopilot") else zone,
        release_channel=reader.string("releaseChannel", "REGULAR", choices=RELEASE_CHANNELS),
        kubernetes_version=kubernetes_version,
        control_plane_access=control_plane_access,
        master_authorized_networks=master_authorized_networks,
        node_machine_type=machine_types["nodeMachineType"],
        node_min_count=node_min,
        node_max_count=node_max,
        node_disk_size_gb=reader.integer("nodeDiskSizeGb", 50, 20, 2000),
        spot_pool=reader.boolean("spotPool", False),
        spot_machine_type=machine_types["spotMachineType"],
        spot_max_count=reader.integer("spotMaxCount", 5, 1, 100),
        deletion_protection=reader.boolean("clusterDeletionProtection", True),
    )
