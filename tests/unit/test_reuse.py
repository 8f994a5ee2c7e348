"""The components work in another program unchanged: another stack's own names, its own
Kubernetes provider (any cluster, not ours), plain values instead of our components' outputs."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.airflow.workload import AirflowWorkload
from components.airflow.workload_args import AirflowSettingsArgs
from components.database import Database
from components.identity import WorkloadIdentityBindings
from components.network import Network
from preview.harness import run_program

# Plain values, as a program in any language passes them (no dataclass, no resources: the defaults apply).
SETTINGS = AirflowSettingsArgs(
    namespace="data-platform", image="registry.example.com/airflow:3.3.2-team.1", replicas=2,
    dags_repo="https://git.example.com/team/dags.git", dags_ref="main", dags_subpath="dags",
    git_sync_period_seconds=60, git_sync_max_failures=3, dag_refresh_seconds=30, service_type="ClusterIP",
    load_balancer_source_ranges=[], allow_public_ui=False, admin_username="admin", admin_email="a@example.com",
    git_credentials_kind="none")


def other_program() -> None:
    network = Network("shared-net", {"project": "team-proj", "region": "europe-west1", "subnet_cidr": "10.1.0.0/20",
                                     "pods_cidr": "10.2.0.0/16", "services_cidr": "10.3.0.0/20",
                                     "private_services_prefix_length": 16})
    Database("metadata", {"project": "team-proj", "region": "europe-west1", "network_id": network.network_id,
                          "version": "POSTGRES_17", "tier": "db-custom-2-7680", "high_availability": True,
                          "disk_size_gb": 50, "backup_retention_count": 30, "log_retention_days": 7,
                          "maintenance_day": 6, "maintenance_hour": 2})
    existing_cluster = k8s.Provider("existing-cluster", kubeconfig="{}", namespace="ignored")
    AirflowWorkload("team-airflow", {
        "settings": SETTINGS, "database_connection_name": "team-proj:europe-west1:legacy-pg",
        "database_name": "airflow", "database_user": "airflow", "database_password": pulumi.Output.secret("pw"),
        "airflow_service_account": "af@team-proj.iam.gserviceaccount.com",
        "worker_service_account": "wk@team-proj.iam.gserviceaccount.com",
        "logs_bucket_url": "gs://team-logs"}, pulumi.ResourceOptions(providers=[existing_cluster]))
    # An existing cluster's pool (a fleet host project's, not this project's).
    WorkloadIdentityBindings("team-wi", {"workload_pool": "fleet-host.svc.id.goog", "namespace": "data-platform",
                                         "bindings": {"airflow": "projects/team-proj/serviceAccounts/af@team-proj.iam.gserviceaccount.com"}})


def test_components_compose_in_another_program():
    capture = run_program("other", {}, program=other_program)
    components = {r.name: r for r in capture.resources if not r.custom}
    assert set(components) == {"shared-net", "metadata", "team-airflow", "team-wi"}
    for resource in capture.resources:
        if resource.custom and resource.type != "pulumi:providers:kubernetes":
            assert resource.parent in {c.urn for c in components.values()}, resource.name

    # Given only a prefix length, the component keeps GCP's auto-allocation, which must wait for the subnet
    # (rehearse rule peering-range-after-subnets); the stack itself passes a fixed range.
    psa_range = capture.one("gcp:compute/globalAddress:GlobalAddress")
    assert psa_range.inputs["prefixLength"] == 16 and "address" not in psa_range.inputs
    assert capture.one("gcp:compute/subnetwork:Subnetwork").urn in psa_range.dependencies

    instance = capture.one("gcp:sql/databaseInstance:DatabaseInstance")
    assert instance.inputs["databaseVersion"] == "POSTGRES_17"
    assert instance.inputs["settings"]["availabilityType"] == "REGIONAL"

    provider = capture.one("pulumi:providers:kubernetes")
    kubernetes = [(r, m) for r, m in capture.kubernetes_objects()]
    assert kubernetes and all(r.provider and r.provider.startswith(provider.urn) for r, _ in kubernetes)
    deployment = next(m for _, m in kubernetes if m["kind"] == "Deployment")
    assert deployment["metadata"]["namespace"] == "data-platform"
    assert deployment["spec"]["replicas"] == 2
    proxy = next(c for c in deployment["spec"]["template"]["spec"]["initContainers"] if c["name"] == "cloud-sql-proxy")
    assert proxy["args"][-1] == "team-proj:europe-west1:legacy-pg"
    (binding,) = capture.of_type("gcp:serviceaccount/iAMMember:IAMMember")
    assert binding.inputs["member"] == "serviceAccount:fleet-host.svc.id.goog[data-platform/airflow]"
    labels = deployment["metadata"]["labels"]
    assert labels["app.kubernetes.io/instance"] == "team-airflow"
