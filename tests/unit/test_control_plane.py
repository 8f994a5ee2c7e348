"""How `pulumi up`, kubectl and CI reach the control plane, and which Kubernetes version it runs (issue 8:
items 3 and 5). The program under mocks, as the offline preview and as `pulumi up` (`deploying=True`)."""

from __future__ import annotations

import gc
import logging

import pulumi
import pytest
import yaml

from components.config import KUBERNETES_SCHEMA_VERSION, ConfigError
from components.config.run_mode import is_deploying, offline_preview
from preview import harness
from preview.harness import Capture, run_program
from tests.conftest import run_stack, stack_config

CLUSTER = "gcp:container/cluster:Cluster"
K8S_PROVIDER = "pulumi:providers:kubernetes"
DOCUMENTATION = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"]


def server(capture: Capture) -> dict:
    (entry,) = yaml.safe_load(capture.outputs["kubeconfig"])["clusters"]
    return entry["cluster"]


def deploy(stack: str = "dev", **overrides: str) -> Capture:
    # The committed stacks name the DAG repository with a placeholder that `pulumi up` refuses.
    overrides.setdefault("dagsRepo", "https://github.com/acme/airflow-gke.git")
    if stack == "prod":  # and prod's UI address and image, placeholders too
        overrides.setdefault("baseUrl", "https://airflow.acme-data.dev")
        overrides.setdefault("airflowImage", "europe-west4-docker.pkg.dev/acme-prod/airflow/airflow:v1.0")
    return run_program(stack, stack_config(stack, **overrides), deploying=True)


# --- 5. control-plane access --------------------------------------------------------------------------------

def test_dns_endpoint_by_default_and_the_kubeconfig_uses_it(dev):
    cluster = dev.one(CLUSTER)
    endpoints = cluster.inputs["controlPlaneEndpointsConfig"]
    assert endpoints["dnsEndpointConfig"]["allowExternalTraffic"] is True
    assert cluster.inputs["privateClusterConfig"]["enablePrivateEndpoint"] is True  # no public IP endpoint
    assert not cluster.inputs["masterAuthorizedNetworksConfig"].get("cidrBlocks")
    dns = cluster.outputs["controlPlaneEndpointsConfig"]["dnsEndpointConfig"]["endpoint"]
    assert server(dev) == {"server": f"https://{dns}"}
    assert dev.outputs["cluster_endpoint"] == dns
    assert dev.one(K8S_PROVIDER).inputs["kubeconfig"] == dev.outputs["kubeconfig"]


def test_ip_access_uses_the_public_endpoint_limited_to_the_authorized_networks():
    capture = deploy(controlPlaneAccess="ip", masterAuthorizedNetworks='["100.64.8.0/28"]')
    cluster = capture.one(CLUSTER)
    assert cluster.inputs["controlPlaneEndpointsConfig"]["dnsEndpointConfig"]["allowExternalTraffic"] is False
    assert cluster.inputs["privateClusterConfig"]["enablePrivateEndpoint"] is False
    assert [b["cidrBlock"] for b in cluster.inputs["masterAuthorizedNetworksConfig"]["cidrBlocks"]] == ["100.64.8.0/28"]
    assert server(capture)["server"] == f"https://{cluster.outputs['endpoint']}"
    assert server(capture)["certificate-authority-data"] == cluster.outputs["masterAuth"]["clusterCaCertificate"]


@pytest.mark.parametrize("access, networks, expected", [
    ("ip", "[]", "non-empty list"),
    ("dns", '["100.64.8.0/28"]', "empty when airflow-gke:controlPlaneAccess is dns"),
])
def test_authorized_networks_must_fit_the_access_mode(access, networks, expected):
    with pytest.raises(ConfigError) as info:
        run_stack("dev", controlPlaneAccess=access, masterAuthorizedNetworks=networks)
    (problem,) = info.value.problems
    assert problem.startswith("airflow-gke:masterAuthorizedNetworks ") and expected in problem
    assert "Fix: pulumi config " in problem


@pytest.mark.parametrize("cidr", DOCUMENTATION + ["203.0.113.128/25"])
def test_documentation_ranges_are_refused_at_pulumi_up(cidr):
    with pytest.raises(ConfigError) as info:
        deploy(controlPlaneAccess="ip", masterAuthorizedNetworks=f'["100.64.8.0/28", "{cidr}"]')
    (problem,) = info.value.problems
    assert problem.startswith(f"airflow-gke:masterAuthorizedNetworks = ['{cidr}']") and "RFC 5737" in problem
    assert "Fix: pulumi config set --path 'airflow-gke:masterAuthorizedNetworks[0]'" in problem


def test_documentation_ranges_only_warn_in_the_offline_preview(caplog):
    # The committed prod stack carries one: `make preview` works and says what `pulumi up` will refuse.
    assert stack_config("prod")["airflow-gke:masterAuthorizedNetworks"] == '["198.51.100.0/24"]'
    with caplog.at_level(logging.WARNING):
        capture = run_program("prod")
    assert capture.one(CLUSTER)
    warnings = [r.getMessage() for r in caplog.records if "masterAuthorizedNetworks" in r.getMessage()]
    assert warnings and "198.51.100.0/24" in warnings[0] and "`pulumi up` will refuse" in warnings[0]
    with pytest.raises(ConfigError, match="RFC 5737"):
        run_program("prod", deploying=True)


def test_own_ranges_deploy_without_warning(caplog):
    with caplog.at_level(logging.WARNING):
        deploy("prod", masterAuthorizedNetworks='["100.64.8.0/28"]')
    assert not [r for r in caplog.records if "masterAuthorizedNetworks" in r.getMessage()]


def test_a_dry_run_and_the_offline_preview_are_not_deploying(monkeypatch):
    monkeypatch.setattr(pulumi.runtime, "is_dry_run", lambda: False)
    assert is_deploying()
    with offline_preview():
        assert not is_deploying()
    assert is_deploying()
    monkeypatch.setattr(pulumi.runtime, "is_dry_run", lambda: True)  # `pulumi preview`
    assert not is_deploying()


# --- 3. Kubernetes version --------------------------------------------------------------------------------------

def test_the_release_channel_chooses_the_version(dev, prod):
    for capture in (dev, prod):
        cluster = capture.one(CLUSTER).inputs
        assert "minMasterVersion" not in cluster
        assert cluster["releaseChannel"]["channel"] == "REGULAR"


def test_a_pinned_version_is_sent_and_must_serve_what_the_workload_needs():
    assert run_stack("dev", kubernetesVersion="1.31").one(CLUSTER).inputs["minMasterVersion"] == "1.31"
    assert run_stack("dev", kubernetesVersion="1.30").one(CLUSTER).inputs["minMasterVersion"] == "1.30"
    # 1.29 has native sidecars but no admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy.
    with pytest.raises(ConfigError) as info:
        run_stack("dev", kubernetesVersion="1.29")
    (problem,) = info.value.problems
    assert "1.30 or newer (native sidecars, ValidatingAdmissionPolicy v1)" in problem
    assert problem.endswith("Fix: pulumi config rm airflow-gke:kubernetesVersion")


def test_a_channel_whose_default_predates_the_minimum_stops_the_cluster(monkeypatch):
    real = harness.engine_versions

    def old_regular(location, project):
        answer = real(location, project)
        answer["releaseChannelDefaultVersion"] = {**answer["releaseChannelDefaultVersion"], "REGULAR": "1.29.15-gke.1"}
        return answer

    monkeypatch.setattr(harness, "engine_versions", old_regular)
    with pytest.raises(Exception, match=r"release channel REGULAR creates clusters at 1\.29\.15-gke\.1 .*"
                                        r"Fix: pulumi config set airflow-gke:releaseChannel STABLE"):
        run_stack("dev")
    monkeypatch.setattr(harness, "engine_versions", real)
    assert run_stack("dev").one(CLUSTER).inputs["releaseChannel"]["channel"] == "REGULAR"
    # The failed run leaves futures holding that error; collect them now, quietly, not at exit.
    monkeypatch.setattr(logging.getLogger("asyncio"), "disabled", True)
    gc.collect()


def test_the_mocked_channels_serve_the_schema_validation_version():
    answer = harness.engine_versions("us-central1", "p")
    assert answer["releaseChannelDefaultVersion"]["REGULAR"].startswith(KUBERNETES_SCHEMA_VERSION + ".")


# --- deprecated private-cluster fields ----------------------------------------------------------------------

def test_the_pinned_provider_still_lacks_the_replacements_of_the_private_cluster_fields(dev):
    """components/cluster.py keeps private_cluster_config.enable_private_nodes / enable_private_endpoint and
    master_authorized_networks_config because the pinned pulumi-gcp has no field for their API replacements.
    When an upgrade adds them, this fails: migrate then (checking the provider's ForceNew first)."""
    import inspect

    import pulumi_gcp as gcp

    ip_fields = set(inspect.signature(gcp.container.ClusterControlPlaneEndpointsConfigIpEndpointsConfigArgs).parameters)
    assert ip_fields == {"enabled"}, "ip_endpoints_config gained fields: move enable_private_endpoint/authorized networks"
    cluster_fields = set(inspect.signature(gcp.container.Cluster._internal_init).parameters)
    assert "private_cluster_config" in cluster_fields and "network_config" not in cluster_fields
    cluster = dev.one(CLUSTER).inputs
    assert cluster["privateClusterConfig"]["enablePrivateNodes"] is True
    # `ip_endpoints_config.enabled false` would switch off the private IP endpoint too: never set here.
    assert "ipEndpointsConfig" not in cluster["controlPlaneEndpointsConfig"]
