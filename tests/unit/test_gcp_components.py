"""The GCP foundation as the real program declares it under mocks: dev, prod and an Autopilot variant."""

from __future__ import annotations

import ipaddress

import json
import re
from types import SimpleNamespace

import pytest
import yaml

from components.services import REQUIRED_APIS
from preview.harness import Capture, Resource
from tests.conftest import run_stack, stack_config

NETWORK = "gcp:compute/network:Network"
SUBNET = "gcp:compute/subnetwork:Subnetwork"
ROUTER = "gcp:compute/router:Router"
NAT = "gcp:compute/routerNat:RouterNat"
GLOBAL_ADDRESS = "gcp:compute/globalAddress:GlobalAddress"
PSA_CONNECTION = "gcp:servicenetworking/connection:Connection"
CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"
SQL_INSTANCE = "gcp:sql/databaseInstance:DatabaseInstance"
SQL_DATABASE = "gcp:sql/database:Database"
SQL_USER = "gcp:sql/user:User"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
ACCOUNT = "gcp:serviceaccount/account:Account"
SA_IAM_MEMBER = "gcp:serviceaccount/iAMMember:IAMMember"
PROJECT_IAM_MEMBER = "gcp:projects/iAMMember:IAMMember"
BUCKET = "gcp:storage/bucket:Bucket"
BUCKET_IAM_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
REPOSITORY = "gcp:artifactregistry/repository:Repository"
REPOSITORY_IAM_MEMBER = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
SERVICE = "gcp:projects/service:Service"
K8S_PROVIDER = "pulumi:providers:kubernetes"
COMPONENT_PREFIX = "airflow-gke:index:"

# name of the session fixture -> (stack file, overrides) it was run with
VARIANTS = {"dev": ("dev", {}), "prod": ("prod", {}), "autopilot": ("dev", {"clusterMode": "autopilot"})}


@pytest.fixture(params=list(VARIANTS))
def stack(request) -> SimpleNamespace:
    """One captured run plus the config it was run with (`cfg("dbTier")` reads airflow-gke:dbTier)."""
    stack_name, overrides = VARIANTS[request.param]
    config = stack_config(stack_name, **overrides)
    capture: Capture = request.getfixturevalue(request.param)
    return SimpleNamespace(name=request.param, capture=capture, config=config,
                           cfg=lambda key: config.get(key if ":" in key else f"airflow-gke:{key}"),
                           standard=config["airflow-gke:clusterMode"] == "standard")


def account(capture: Capture, suffix: str) -> Resource:
    found = [r for r in capture.of_type(ACCOUNT) if r.inputs["accountId"].endswith("-" + suffix)]
    assert len(found) == 1, [r.inputs["accountId"] for r in capture.of_type(ACCOUNT)]
    return found[0]


def member(capture: Capture, suffix: str) -> str:
    return f"serviceAccount:{account(capture, suffix).outputs['email']}"


def children(capture: Capture, component_type: str) -> list[Resource]:
    components = [r.urn for r in capture.resources if r.type == COMPONENT_PREFIX + component_type]
    assert len(components) == 1, components
    return [r for r in capture.resources if r.parent == components[0]]


def strings_in(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def transitive_dependencies(capture: Capture, resource: Resource) -> set[str]:
    """URNs a resource waits for, following `dependencies` (a component stands for its children)."""
    by_urn = {r.urn: r for r in capture.resources}
    kids: dict[str, list[str]] = {}
    for r in capture.resources:
        if r.parent:
            kids.setdefault(r.parent, []).append(r.urn)
    seen: set[str] = set()
    todo = list(resource.dependencies)
    while todo:
        urn = todo.pop()
        if urn in seen:
            continue
        seen.add(urn)
        todo.extend(kids.get(urn, []))
        if urn in by_urn:
            todo.extend(by_urn[urn].dependencies)
    return seen


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])


# --- Cloud SQL --------------------------------------------------------------------------------------------

def test_sql_has_private_ip_only(stack):
    instance = stack.capture.one(SQL_INSTANCE)
    ip = instance.inputs["settings"]["ipConfiguration"]
    assert ip["ipv4Enabled"] is False
    vpc = stack.capture.one(NETWORK)
    assert ip["privateNetwork"] and ip["privateNetwork"].endswith("/" + vpc.outputs["name"])
    assert ip["privateNetwork"] == stack.capture.one(CLUSTER).inputs["network"]
    assert not instance.outputs.get("publicIpAddress")


def test_sql_backups_and_point_in_time_recovery(stack):
    backup = stack.capture.one(SQL_INSTANCE).inputs["settings"]["backupConfiguration"]
    assert backup["enabled"] is True
    assert backup["pointInTimeRecoveryEnabled"] is True
    expected_count = int(stack.cfg("dbBackupRetentionCount") or (14 if stack.cfg("environment") == "prod" else 7))
    assert backup["backupRetentionSettings"]["retainedBackups"] == expected_count
    assert backup["transactionLogRetentionDays"] == int(stack.cfg("dbLogRetentionDays"))


def test_sql_deletion_protection_on_both_levels(stack):
    instance = stack.capture.one(SQL_INSTANCE)
    assert instance.inputs["deletionProtection"] is True
    assert instance.inputs["settings"]["deletionProtectionEnabled"] is True
    assert instance.inputs["settings"].get("retainBackupsOnDelete") is True


def test_prod_database_resources_are_pulumi_protected(prod, dev):
    prod_db = children(prod, "Database")
    assert {r.type for r in prod_db} >= {SQL_INSTANCE, SQL_DATABASE, SQL_USER, RANDOM_PASSWORD}
    assert all(r.protect for r in prod_db), [r.name for r in prod_db if not r.protect]
    dev_db = children(dev, "Database")
    assert not any(r.protect for r in dev_db), [r.name for r in dev_db if r.protect]


def test_availability_type_follows_environment(prod, dev, autopilot):
    assert prod.one(SQL_INSTANCE).inputs["settings"]["availabilityType"] == "REGIONAL"
    assert dev.one(SQL_INSTANCE).inputs["settings"]["availabilityType"] == "ZONAL"
    assert autopilot.one(SQL_INSTANCE).inputs["settings"]["availabilityType"] == "ZONAL"


def test_postgres_16_or_newer(stack):
    version = stack.capture.one(SQL_INSTANCE).inputs["databaseVersion"]
    match = re.fullmatch(r"POSTGRES_(\d+)", version)
    assert match and int(match.group(1)) >= 16, version


def test_db_user_password_is_random_and_secret(stack):
    capture = stack.capture
    (password,) = [r for r in children(capture, "Database") if r.type == RANDOM_PASSWORD]
    user = capture.one(SQL_USER)
    assert password.inputs["special"] is False
    assert password.inputs["length"] >= 16
    result = password.outputs["result"]
    assert result and user.inputs["password"] == result
    assert user.masked_inputs["password"] == "[secret]"
    assert password.urn in user.dependencies
    assert user.inputs["instance"] == capture.one(SQL_INSTANCE).outputs["name"]
    assert capture.one(SQL_DATABASE).inputs["instance"] == capture.one(SQL_INSTANCE).outputs["name"]


def test_tier_and_disk_come_from_config(stack):
    settings = stack.capture.one(SQL_INSTANCE).inputs["settings"]
    assert settings["tier"] == stack.cfg("dbTier")
    assert settings["diskSize"] == int(stack.cfg("dbDiskSizeGb"))
    flags = json.loads(stack.cfg("dbFlags") or "{}")
    assert {f["name"]: f["value"] for f in settings["databaseFlags"]} == flags


# --- GKE --------------------------------------------------------------------------------------------------

def test_cluster_private_nodes_and_workload_identity(stack):
    cluster = stack.capture.one(CLUSTER).inputs
    private = cluster["privateClusterConfig"]
    assert private["enablePrivateNodes"] is True
    assert private["masterIpv4CidrBlock"] == stack.cfg("masterCidr")
    assert cluster["workloadIdentityConfig"]["workloadPool"] == f"{stack.config['gcp:project']}.svc.id.goog"


def test_cluster_hardening(stack):
    cluster = stack.capture.one(CLUSTER).inputs
    assert cluster["datapathProvider"] == "ADVANCED_DATAPATH"
    assert cluster["releaseChannel"]["channel"] == stack.cfg("releaseChannel") == "REGULAR"
    assert cluster["enableLegacyAbac"] is False
    assert cluster["masterAuth"]["clientCertificateConfig"]["issueClientCertificate"] is False
    # No fixed minor on a release channel: the channel chooses (see test_control_plane.py).
    assert "minMasterVersion" not in cluster
    assert cluster["deletionProtection"] is (stack.cfg("clusterDeletionProtection") == "true")
    if stack.standard:
        assert cluster["enableShieldedNodes"] is True
    else:
        assert cluster.get("enableShieldedNodes") is not False  # always on in Autopilot


def test_master_authorized_networks_from_config(stack):
    config = stack.capture.one(CLUSTER).inputs["masterAuthorizedNetworksConfig"]
    expected = json.loads(stack.cfg("masterAuthorizedNetworks"))
    assert bool(expected) == (stack.cfg("controlPlaneAccess") == "ip")  # dns needs no list, ip needs one
    assert [block["cidrBlock"] for block in config.get("cidrBlocks", [])] == expected
    assert config.get("gcpPublicCidrsAccessEnabled") is False


def test_nodes_use_the_dedicated_service_account(stack):
    capture = stack.capture
    nodes_email = account(capture, "nodes").outputs["email"]
    assert nodes_email.split("@")[0].endswith("-nodes")
    cluster = capture.one(CLUSTER).inputs
    if stack.standard:
        used = [cluster["nodeConfig"]["serviceAccount"]]
        used += [pool.inputs["nodeConfig"]["serviceAccount"] for pool in capture.of_type(NODE_POOL)]
        assert len(used) >= 2
    else:
        used = [cluster["clusterAutoscaling"]["autoProvisioningDefaults"]["serviceAccount"]]
    for email in used:
        assert email == nodes_email
        assert not email.endswith("-compute@developer.gserviceaccount.com") and email != "default"


@pytest.mark.parametrize("stack", ["dev", "prod"], indirect=True)
def test_standard_cluster_uses_separate_autoscaled_pool(stack):
    assert stack.standard
    capture = stack.capture
    cluster = capture.one(CLUSTER)
    assert cluster.inputs["removeDefaultNodePool"] is True
    # The short-lived default node is hardened like the pools.
    assert cluster.inputs["nodeConfig"]["workloadMetadataConfig"]["mode"] == "GKE_METADATA"
    pool = capture.one(NODE_POOL, "airflow-pool")
    assert pool.inputs["cluster"] == cluster.outputs["name"]
    assert pool.inputs["location"] == cluster.inputs["location"]
    assert pool.inputs["autoscaling"] == {"minNodeCount": int(stack.cfg("nodeMinCount")),
                                          "maxNodeCount": int(stack.cfg("nodeMaxCount"))}
    node_config = pool.inputs["nodeConfig"]
    assert node_config["workloadMetadataConfig"]["mode"] == "GKE_METADATA"
    assert node_config["machineType"] == stack.cfg("nodeMachineType")
    assert node_config["shieldedInstanceConfig"]["enableSecureBoot"] is True
    assert pool.inputs["management"] == {"autoRepair": True, "autoUpgrade": True}
    assert cluster.urn in pool.dependencies


def test_cluster_location_dev_zone_prod_region(dev, prod, autopilot):
    dev_config, prod_config = stack_config("dev"), stack_config("prod")
    dev_location = dev.one(CLUSTER).inputs["location"]
    assert re.fullmatch(re.escape(dev_config["gcp:region"]) + r"-[a-z]", dev_location)
    assert prod.one(CLUSTER).inputs["location"] == prod_config["gcp:region"]
    assert {p.inputs["location"] for p in prod.of_type(NODE_POOL)} == {prod_config["gcp:region"]}
    assert autopilot.one(CLUSTER).inputs["location"] == dev_config["gcp:region"]


def test_prod_spot_pool_is_tainted(prod, dev):
    spot = [p for p in prod.of_type(NODE_POOL) if p.inputs["nodeConfig"].get("spot")]
    assert len(spot) == 1
    taints = spot[0].inputs["nodeConfig"]["taints"]
    assert {"key": "cloud.google.com/gke-spot", "value": "true", "effect": "NO_SCHEDULE"} in taints
    assert spot[0].inputs["autoscaling"]["minNodeCount"] == 0
    regular = [p for p in prod.of_type(NODE_POOL) if not p.inputs["nodeConfig"].get("spot")]
    assert len(regular) == 1 and not regular[0].inputs["nodeConfig"].get("taints")
    assert not [p for p in dev.of_type(NODE_POOL) if p.inputs["nodeConfig"].get("spot")]


def test_autopilot_has_no_node_pools(autopilot):
    cluster = autopilot.one(CLUSTER).inputs
    assert cluster["enableAutopilot"] is True
    assert autopilot.of_type(NODE_POOL) == []
    assert "removeDefaultNodePool" not in cluster and "nodeConfig" not in cluster


def test_standard_clusters_are_not_autopilot(dev, prod):
    for capture in (dev, prod):
        assert not capture.one(CLUSTER).inputs.get("enableAutopilot")


# --- network ----------------------------------------------------------------------------------------------

def test_nat_for_private_nodes(stack):
    capture = stack.capture
    router, nat = capture.one(ROUTER), capture.one(NAT)
    assert nat.inputs["router"] == router.outputs["name"]
    assert nat.inputs["region"] == router.inputs["region"] == stack.config["gcp:region"]
    assert router.inputs["network"] == capture.one(CLUSTER).inputs["network"]
    assert nat.inputs["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"
    assert router.urn in nat.dependencies


def test_subnet_secondary_ranges(stack):
    capture = stack.capture
    subnet = capture.one(SUBNET).inputs
    ranges = {r["rangeName"]: r["ipCidrRange"] for r in subnet["secondaryIpRanges"]}
    assert ranges == {"pods": stack.cfg("podsCidr"), "services": stack.cfg("servicesCidr")}
    assert subnet["ipCidrRange"] == stack.cfg("subnetCidr")
    assert subnet["privateIpGoogleAccess"] is True
    policy = capture.one(CLUSTER).inputs["ipAllocationPolicy"]
    assert policy == {"clusterSecondaryRangeName": "pods", "servicesSecondaryRangeName": "services"}


def test_private_services_access(stack):
    capture = stack.capture
    address = capture.one(GLOBAL_ADDRESS)
    assert address.inputs["purpose"] == "VPC_PEERING"
    assert address.inputs["addressType"] == "INTERNAL"
    # The fixed range from the config (default 10.40.0.0/16), not an auto-allocated block: no wait for the subnet.
    block = ipaddress.IPv4Network(stack.cfg("privateServicesRange"))
    assert (address.inputs["address"], address.inputs["prefixLength"]) == (str(block.network_address), block.prefixlen)
    assert capture.one(SUBNET).urn not in address.dependencies
    connection = capture.one(PSA_CONNECTION)
    assert connection.inputs["service"] == "servicenetworking.googleapis.com"
    assert connection.inputs["reservedPeeringRanges"] == [address.outputs["name"]]
    assert address.urn in connection.dependencies
    assert connection.inputs["network"] == address.inputs["network"]


def test_database_waits_for_the_peering_connection(stack):
    capture = stack.capture
    connection = capture.one(PSA_CONNECTION)
    assert connection.urn in capture.one(SQL_INSTANCE).dependencies


# --- identity and IAM -------------------------------------------------------------------------------------

def test_no_service_account_keys(stack):
    assert not [r for r in stack.capture.resources if r.type == "gcp:serviceaccount/key:Key"]
    assert not [r for r in stack.capture.resources if r.type.endswith("hmacKey:HmacKey")]


def test_no_primitive_roles_and_no_authoritative_project_iam(stack):
    primitive = {"roles/owner", "roles/editor", "roles/viewer"}
    for resource in stack.capture.resources:
        assert not primitive & set(strings_in(resource.inputs)), resource.name
    authoritative = {"gcp:projects/iAMBinding:IAMBinding", "gcp:projects/iAMPolicy:IAMPolicy"}
    assert not [r for r in stack.capture.resources if r.type in authoritative]


def test_airflow_account_is_cloudsql_client(stack):
    capture = stack.capture
    grants = {(r.inputs["role"], r.inputs["member"]) for r in capture.of_type(PROJECT_IAM_MEMBER)}
    assert ("roles/cloudsql.client", member(capture, "airflow")) in grants
    for r in capture.of_type(PROJECT_IAM_MEMBER):
        assert r.inputs["project"] == stack.config["gcp:project"]


def test_storage_access_only_on_the_logs_bucket(stack):
    capture = stack.capture
    for r in capture.of_type(PROJECT_IAM_MEMBER):
        assert not r.inputs["role"].startswith("roles/storage."), r.name
    bucket = capture.one(BUCKET)
    grants = {(r.inputs["bucket"], r.inputs["role"], r.inputs["member"]) for r in capture.of_type(BUCKET_IAM_MEMBER)}
    for suffix in ("airflow", "worker"):
        assert (bucket.outputs["name"], "roles/storage.objectUser", member(capture, suffix)) in grants
    # objectUser: read, list, write and overwrite log objects; objectAdmin would add object IAM.
    assert {g[1] for g in grants} == {"roles/storage.objectUser"}
    assert all(g[0] == bucket.outputs["name"] for g in grants)
    # The node account never gets object access.
    assert not [g for g in grants if g[2] == member(capture, "nodes")]


@pytest.mark.parametrize("suffix, kubernetes_sa", [("airflow", "airflow"), ("worker", "airflow-worker")])
def test_workload_identity_bindings(stack, suffix, kubernetes_sa):
    capture = stack.capture
    google_sa = account(capture, suffix)
    bindings = [r for r in capture.of_type(SA_IAM_MEMBER) if r.inputs["serviceAccountId"] == google_sa.outputs["name"]]
    assert len(bindings) == 1
    expected = f"serviceAccount:{stack.config['gcp:project']}.svc.id.goog[{stack.cfg('namespace') or stack.cfg('namePrefix')}/{kubernetes_sa}]"
    assert bindings[0].inputs["member"] == expected
    assert bindings[0].inputs["role"] == "roles/iam.workloadIdentityUser"


# --- logs bucket and registry -----------------------------------------------------------------------------

def test_logs_bucket(stack):
    bucket = stack.capture.one(BUCKET).inputs
    assert bucket["uniformBucketLevelAccess"] is True
    assert bucket["publicAccessPrevention"] == "enforced"
    assert bucket.get("forceDestroy") is not True
    rules = bucket["lifecycleRules"]
    assert [r["action"]["type"] for r in rules] == ["Delete"]
    assert rules[0]["condition"]["age"] == int(stack.cfg("logRetentionDays"))
    assert bucket["location"] == stack.config["gcp:region"]


def test_registry(stack):
    capture = stack.capture
    repo = capture.one(REPOSITORY)
    assert repo.inputs["format"] == "DOCKER"
    assert repo.inputs["repositoryId"] == (stack.cfg("registryRepository") or stack.cfg("namePrefix"))
    assert repo.inputs["location"] == stack.config["gcp:region"]
    keep = [p for p in repo.inputs["cleanupPolicies"] if p["action"] == "KEEP" and "mostRecentVersions" in p]
    assert len(keep) == 1  # release tags are kept by a second, conditional policy (test_registry_cleanup.py)
    assert keep[0]["mostRecentVersions"]["keepCount"] == int(stack.cfg("registryKeepVersions"))
    assert repo.inputs.get("cleanupPolicyDryRun") is False
    readers = {(r.inputs["repository"], r.inputs["role"], r.inputs["member"])
               for r in capture.of_type(REPOSITORY_IAM_MEMBER)}
    # The kubelet pulls images with the node account; no pod account reads the registry.
    assert readers == {(repo.outputs["name"], "roles/artifactregistry.reader", member(capture, "nodes"))}


# --- APIs and ordering ------------------------------------------------------------------------------------

def test_required_apis_enabled_and_kept_on_destroy(stack):
    services = {r.inputs["service"]: r for r in stack.capture.of_type(SERVICE)}
    for api in ("container", "sqladmin", "servicenetworking", "compute"):
        assert f"{api}.googleapis.com" in services
    # Secret Manager only where the stack reads secrets from it (prod's default; tests/unit/test_task_access.py).
    assert set(services) - {"secretmanager.googleapis.com"} == set(REQUIRED_APIS)
    for service in services.values():
        assert service.inputs["disableOnDestroy"] is False
        assert service.inputs["project"] == stack.config["gcp:project"]


def test_every_gcp_resource_waits_for_the_apis(stack):
    capture = stack.capture
    service_urns = {r.urn for r in capture.of_type(SERVICE)}
    assert len(service_urns) in (len(REQUIRED_APIS), len(REQUIRED_APIS) + 1)  # + Secret Manager
    checked = 0
    for resource in capture.resources:
        if not resource.type.startswith("gcp:") or resource.type == SERVICE:
            continue
        missing = service_urns - transitive_dependencies(capture, resource)
        assert not missing, f"{resource.type} {resource.name} does not wait for {sorted(missing)}"
        checked += 1
    assert checked > 20


# --- outputs and structure --------------------------------------------------------------------------------

def test_kubeconfig_is_secret_and_uses_the_auth_plugin(stack):
    capture = stack.capture
    assert "kubeconfig" in capture.secret_outputs
    kubeconfig = yaml.safe_load(capture.outputs["kubeconfig"])
    cluster = capture.one(CLUSTER)
    (entry,) = kubeconfig["clusters"]
    if stack.cfg("controlPlaneAccess") == "ip":
        assert entry["cluster"]["server"] == f"https://{cluster.outputs['endpoint']}"
        assert entry["cluster"]["certificate-authority-data"] == cluster.outputs["masterAuth"]["clusterCaCertificate"]
    else:  # the DNS endpoint has a publicly trusted certificate
        dns = cluster.outputs["controlPlaneEndpointsConfig"]["dnsEndpointConfig"]["endpoint"]
        assert entry["cluster"] == {"server": f"https://{dns}"}
    (user,) = kubeconfig["users"]
    assert user["user"]["exec"]["command"] == "gke-gcloud-auth-plugin"
    assert set(user["user"]) == {"exec"}, "no static token, password or client certificate"
    assert kubeconfig["current-context"] in {c["name"] for c in kubeconfig["contexts"]}
    provider = capture.one(K8S_PROVIDER)
    assert provider.masked_inputs["kubeconfig"] == "[secret]"
    assert provider.inputs["kubeconfig"] == capture.outputs["kubeconfig"]


FOUNDATION_OUTPUTS = ("cluster_name", "cluster_endpoint", "database_connection_name", "database_private_ip",
                      "registry_image_base", "node_service_account", "airflow_service_account",
                      "worker_service_account", "logs_bucket")


def test_foundation_outputs_are_plain_and_leak_no_secret(stack):
    capture = stack.capture
    for name in FOUNDATION_OUTPUTS:
        assert name in capture.outputs and name not in capture.secret_outputs, name
    assert capture.outputs["node_service_account"] == account(capture, "nodes").outputs["email"]
    assert capture.outputs["database_connection_name"] == capture.one(SQL_INSTANCE).outputs["connectionName"]
    assert capture.outputs["logs_bucket"] == capture.one(BUCKET).outputs["url"]
    generated = [r.outputs["result"] for r in capture.of_type(RANDOM_PASSWORD)]
    assert generated
    for name, value in capture.outputs.items():
        if name not in capture.secret_outputs:
            text = json.dumps(value)
            assert not [secret for secret in generated if secret in text], f"output {name} leaks a password"


def test_components_and_parents(stack):
    capture = stack.capture
    components = [r for r in capture.resources if not r.custom]
    assert {r.type for r in components} >= {COMPONENT_PREFIX + t for t in
                                              ("ProjectServices", "Network", "Cluster", "Database", "Identity",
                                               "Registry", "LogsBucket")}
    for component in components:
        assert component.type.startswith(COMPONENT_PREFIX), component.type
    component_urns = {r.urn for r in components}
    for resource in capture.resources:
        if resource.custom:
            assert resource.parent in component_urns, f"{resource.type} {resource.name} has no component parent"


# --- stability and wiring ---------------------------------------------------------------------------------

def test_no_churn_between_runs(dev):
    again = run_stack("dev")

    def passwords(capture):
        return sorted((r.name, json.dumps(r.inputs, sort_keys=True)) for r in capture.of_type(RANDOM_PASSWORD))

    assert passwords(dev) and passwords(again) == passwords(dev)
    assert sorted(r.urn for r in again.resources) == sorted(r.urn for r in dev.resources)
    assert again.one(SQL_USER).inputs == dev.one(SQL_USER).inputs


def test_config_changes_reach_the_resources(dev):
    changed = run_stack("dev", dbTier="db-custom-4-15360", dbDiskSizeGb="100", namespace="data-platform",
                        registryKeepVersions="25", logRetentionDays="90", dbHighAvailability="true",
                        controlPlaneAccess="ip", masterAuthorizedNetworks='["100.64.8.0/28"]',
                        dbDeletionProtection="false")
    settings = changed.one(SQL_INSTANCE).inputs["settings"]
    assert dev.one(SQL_INSTANCE).inputs["settings"]["tier"] != "db-custom-4-15360"
    assert settings["tier"] == "db-custom-4-15360"
    assert settings["diskSize"] == 100
    assert settings["availabilityType"] == "REGIONAL"
    assert settings["deletionProtectionEnabled"] is False
    assert changed.one(SQL_INSTANCE).inputs["deletionProtection"] is False
    members = {r.inputs["member"] for r in changed.of_type(SA_IAM_MEMBER)}
    assert f"serviceAccount:{stack_config('dev')['gcp:project']}.svc.id.goog[data-platform/airflow]" in members
    keep = [p for p in changed.one(REPOSITORY).inputs["cleanupPolicies"] if "mostRecentVersions" in p]
    assert keep[0]["mostRecentVersions"]["keepCount"] == 25
    assert changed.one(BUCKET).inputs["lifecycleRules"][0]["condition"]["age"] == 90
    cidrs = changed.one(CLUSTER).inputs["masterAuthorizedNetworksConfig"]["cidrBlocks"]
    assert [c["cidrBlock"] for c in cidrs] == ["100.64.8.0/28"]


def test_standard_cluster_ignores_the_removed_default_pool_config(dev, autopilot):
    standard = dev.one("gcp:container/cluster:Cluster")
    assert standard.inputs["removeDefaultNodePool"] is True
    assert "nodeConfig" in standard.ignore_changes  # else a node_config diff would replace the cluster
    assert autopilot.one("gcp:container/cluster:Cluster").ignore_changes == []
