"""The UI's public front door (airflow-gke:uiHost): GCP address and certificate, GKE Gateway, routes and
policies valid against their vendored CRDs (tests/crds/), the NetworkPolicy opening for Google's front ends,
and nothing public without it."""

from __future__ import annotations

import copy
import hashlib
import logging
from pathlib import Path

import jsonschema
import pytest
import yaml

from components.airflow import front_door
from components.config import ConfigError
from preview.harness import Capture, run_program
from tests.conftest import stack_config, stack_settings
from tests.crd_schema import CRDS, validate

HOST = "airflow.acme-data.io"
# A public UI needs sign-in (uiAccess), and its base URL is the front door's (prod's placeholder removed).
FRONT_DOOR = {"uiHost": HOST, "uiAccess": '{"Admin": ["user:ana@acme-data.io"]}', "baseUrl": ""}
GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
ADDRESS = "gcp:compute/globalAddress:GlobalAddress"


@pytest.fixture(scope="module")
def public() -> Capture:
    return run_program("prod", stack_config("prod", **FRONT_DOOR, uiDnsZone="acme-public"))


@pytest.fixture(scope="module")
def private() -> Capture:
    return run_program("dev", stack_config("dev"))


def objects(capture: Capture, kind: str) -> list[dict]:
    return [m for _, m in capture.kubernetes_objects() if m["kind"] == kind]


# --- the rendered objects against their CRDs' own schemas ------------------------------------------

def test_vendored_crds_match_their_recorded_sources():
    sources = yaml.safe_load((CRDS / "SOURCES.yaml").read_text())["files"]
    assert set(sources) == {p.name for p in CRDS.glob("*.yaml")} - {"SOURCES.yaml"}
    for name, source in sources.items():
        assert hashlib.sha256((CRDS / name).read_bytes()).hexdigest() == source["sha256"], name
        assert source["repository"] and len(source["commit"]) == 40


def test_every_front_door_object_is_valid_against_its_crd(public):
    rendered = [m for _, m in public.kubernetes_objects() if (m["apiVersion"], m["kind"]) in
                {(a, k) for a, k, _ in front_door.OBJECTS}]
    assert sorted((m["kind"], m["metadata"]["name"]) for m in rendered) == \
        sorted((k, n) for _, k, n in front_door.OBJECTS)
    for manifest in rendered:
        validate(manifest)


@pytest.mark.parametrize("kind, path, value", [
    ("Gateway", ("spec", "listeners", 0, "port"), 70000),
    ("Gateway", ("spec", "addresses", 0, "typ"), "NamedAddress"),
    ("HTTPRoute", ("spec", "rules", 0, "filters"), [{"type": "RequestRedirect", "requestRedirect": {"statusCode": 418}}]),
    ("HealthCheckPolicy", ("spec", "default", "config", "type"), "HTTP3"),
    ("GCPBackendPolicy", ("spec", "default", "iap", "enable"), True),
])
def test_the_crd_check_catches_a_broken_object(public, kind, path, value):
    manifest = copy.deepcopy(objects(public, kind)[0])
    node = manifest
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        validate(manifest)


# --- what the front door renders -------------------------------------------------------------------

def test_gateway_uses_the_stack_address_and_certificate_map(public):
    (gateway,) = objects(public, "Gateway")
    address = public.one("gcp:compute/globalAddress:GlobalAddress", "airflow-ui-ip")
    certificate_map = public.one("gcp:certificatemanager/certificateMap:CertificateMap")
    assert gateway["spec"]["gatewayClassName"] == "gke-l7-global-external-managed"
    assert gateway["spec"]["addresses"] == [{"type": "NamedAddress", "value": address.outputs["name"]}]
    assert gateway["metadata"]["annotations"]["networking.gke.io/certmap"] == certificate_map.outputs["name"]
    assert address.inputs["addressType"] == "EXTERNAL"
    listeners = {l["name"]: l for l in gateway["spec"]["listeners"]}
    assert (listeners["https"]["protocol"], listeners["https"]["port"]) == ("HTTPS", 443)
    assert all(l["hostname"] == HOST for l in listeners.values())
    (entry,) = public.of_type("gcp:certificatemanager/certificateMapEntry:CertificateMapEntry")
    (certificate,) = public.of_type("gcp:certificatemanager/certificate:Certificate")
    assert entry.inputs["hostname"] == HOST and certificate.inputs["managed"]["domains"] == [HOST]
    assert certificate.inputs["scope"] == "DEFAULT"  # global: what a global external load balancer uses


def test_http_only_redirects_and_https_reaches_the_ui_service(public):
    routes = {r["spec"]["parentRefs"][0]["sectionName"]: r for r in objects(public, "HTTPRoute")}
    (redirect_rule,) = routes["http"]["spec"]["rules"]
    assert "backendRefs" not in redirect_rule
    assert redirect_rule["filters"] == [{"type": "RequestRedirect",
                                         "requestRedirect": {"scheme": "https", "statusCode": 301}}]
    ui_service = next(m for m in objects(public, "Service") if m["metadata"]["name"] == "airflow-ui")
    (https_rule,) = routes["https"]["spec"]["rules"]
    assert https_rule["backendRefs"] == [{"name": "airflow-ui", "port": ui_service["spec"]["ports"][0]["port"]}]
    assert ui_service["spec"]["type"] == "ClusterIP"


def test_health_check_probes_the_api_server_health_endpoint(public):
    (policy,) = objects(public, "HealthCheckPolicy")
    deployment = next(m for m in objects(public, "Deployment") if m["metadata"]["name"] == "airflow")
    api_server = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "api-server")
    assert policy["spec"]["targetRef"] == {"group": "", "kind": "Service", "name": "airflow-ui"}
    check = policy["spec"]["default"]["config"]["httpHealthCheck"]
    assert check["requestPath"] == api_server["readinessProbe"]["httpGet"]["path"]
    (backend,) = objects(public, "GCPBackendPolicy")
    assert backend["spec"]["targetRef"] == policy["spec"]["targetRef"]


def test_outputs_name_the_address_and_the_dns_record(public):
    address = public.one(ADDRESS, "airflow-ui-ip").outputs["address"]
    assert public.outputs["ui_address"] == address
    assert public.outputs["ui_dns_record"] == f"{HOST}. 300 IN A {address}"
    assert public.outputs["ui_url"] == f"https://{HOST}"
    (record,) = public.of_type("gcp:dns/recordSet:RecordSet")
    assert record.inputs["managedZone"] == "acme-public" and record.inputs["rrdatas"] == [address]
    apis = {s.inputs["service"] for s in public.of_type("gcp:projects/service:Service")}
    assert {"certificatemanager.googleapis.com", "dns.googleapis.com"} <= apis


def test_base_url_is_the_public_host():
    assert stack_settings("dev", **FRONT_DOOR).airflow.base_url == f"https://{HOST}"
    assert stack_settings("dev", **{**FRONT_DOOR, "baseUrl": f"https://{HOST}/"}).airflow.base_url == f"https://{HOST}"


@pytest.mark.parametrize("base_url", ["https://x.acme.io", f"http://{HOST}", f"https://{HOST}/airflow"])
def test_a_base_url_around_the_front_door_is_refused(base_url):
    """Links to another host or to plain HTTP would send people around IAP; a sub-path is not routed."""
    with pytest.raises(ConfigError) as info:
        stack_settings("dev", **{**FRONT_DOOR, "baseUrl": base_url})
    assert [p for p in info.value.problems if p.startswith(f"airflow-gke:baseUrl = '{base_url}'")
            and "Fix: pulumi config rm airflow-gke:baseUrl" in p], info.value.problems


@pytest.mark.parametrize("access", [None, "{}", '{"Admin": []}'])  # an empty role is nobody too
def test_a_public_ui_without_sign_in_is_refused_before_any_resource(access):
    overrides = {**FRONT_DOOR, "uiAccess": access} if access else {"uiHost": HOST}
    with pytest.raises(ConfigError) as info:
        stack_settings("dev", **overrides)
    assert [p for p in info.value.problems if p.startswith("airflow-gke:uiAccess ") and "uiHost" in p
            and "Fix: pulumi config set --path 'airflow-gke:uiAccess.Admin[0]'" in p], info.value.problems


# --- nothing public without uiHost ------------------------------------------------------------------

def test_a_stack_without_ui_host_has_no_public_endpoint(private):
    assert not [r for r in private.resources if "gateway.networking.k8s.io" in r.type or "networking.gke.io" in r.type]
    assert not [r for r in private.of_type(ADDRESS) if r.inputs.get("addressType") != "INTERNAL"]
    assert not [r for r in private.resources if r.type.startswith(("gcp:certificatemanager/", "gcp:dns/"))]
    assert all(m["spec"]["type"] == "ClusterIP" for m in objects(private, "Service"))
    assert not {k for k in private.outputs if k.startswith("ui_")}
    assert "certificatemanager.googleapis.com" not in {s.inputs["service"] for s in
                                                       private.of_type("gcp:projects/service:Service")}


def _api_ingress(capture: Capture) -> dict:
    return next(m for m in objects(capture, "NetworkPolicy") if m["metadata"]["name"] == "airflow-api-ingress")


def admitted_cidrs(capture: Capture) -> set[tuple[str, int]]:
    return {(peer["ipBlock"]["cidr"], port["port"]) for rule in _api_ingress(capture)["spec"]["ingress"]
            for peer in rule.get("from", []) if "ipBlock" in peer for port in rule["ports"]}


def test_network_policy_admits_google_front_ends_to_the_api_port_only_with_ui_host(public, private):
    assert admitted_cidrs(public) == {("35.191.0.0/16", 8080), ("130.211.0.0/22", 8080)}
    assert admitted_cidrs(private) == set()
    # Without a front door (and ClusterIP) only the namespace's own pods reach the port.
    assert all(rule.get("from") == [{"podSelector": {}}] for rule in _api_ingress(private)["spec"]["ingress"])
    # The front ends reach nothing else: the log server's policy is unchanged.
    logs = next(m for m in objects(public, "NetworkPolicy") if m["metadata"]["name"] == "worker-logs-ingress")
    assert not [p for rule in logs["spec"]["ingress"] for p in rule["from"] if "ipBlock" in p]


# --- config ---------------------------------------------------------------------------------------

def deploy_settings(**overrides):
    config = stack_config("dev", dagsRepo="https://github.com/acme/airflow-gke.git", **overrides)

    class Source:
        @staticmethod
        def get(namespace, key):
            return config.get(f"{namespace}:{key}")

    from components.config import load_stack_config
    return load_stack_config(Source(), deploying=True)


@pytest.mark.parametrize("host", ["airflow.example.com", "ui.example.org", "airflow.test"])
def test_a_placeholder_host_warns_offline_and_is_refused_at_pulumi_up(host, caplog):
    with caplog.at_level(logging.WARNING):
        assert stack_settings("dev", **{**FRONT_DOOR, "uiHost": host}).airflow.front_door.ui_host == host
    assert any("uiHost" in r.getMessage() and "`pulumi up` will refuse it" in r.getMessage() for r in caplog.records)
    with pytest.raises(ConfigError, match=r"airflow-gke:uiHost .*RFC 2606.*Fix: pulumi config set airflow-gke:uiHost"):
        deploy_settings(**{**FRONT_DOOR, "uiHost": host})
    assert deploy_settings(**FRONT_DOOR).airflow.front_door.ui_host == HOST


@pytest.mark.parametrize("overrides, key", [
    ({"uiHost": "https://airflow.acme.io"}, "uiHost"),
    ({"uiHost": "*.acme.io"}, "uiHost"),
    ({"uiHost": "airflow"}, "uiHost"),
    ({"uiDnsZone": "acme-public"}, "uiDnsZone"),
    ({**FRONT_DOOR, "serviceType": "LoadBalancer", "loadBalancerSourceRanges": '["100.64.0.0/16"]'}, "serviceType"),
])
def test_bad_front_door_config_fails_early_naming_the_key(overrides, key):
    with pytest.raises(ConfigError) as info:
        stack_settings("dev", **overrides)
    assert any(p.startswith(f"airflow-gke:{key} ") and "Fix:" in p for p in info.value.problems), info.value.problems


# --- policy pack: no external exposure without TLS and sign-in ----------------------------------------

def stack_resources(capture: Capture) -> list[tuple[str, str, dict]]:
    return [(r.type, r.name, r.inputs) for r in capture.resources]


def without_iap(resources):
    """The front door as a stack that skipped the config check would render it (the pack is a second line)."""
    out = copy.deepcopy(resources)
    for resource_type, _, props in out:
        if resource_type.endswith(":GCPBackendPolicy"):
            props["spec"]["default"].pop("iap")
    return out


def test_pack_stays_within_crossguards_limit():
    from policy import rules
    assert len(rules.ALL_POLICIES) + len(rules.STACK_POLICIES) <= 25


def test_stacks_without_a_front_door_pass_the_exposure_policy(private):
    from policy import rules
    assert rules.external_exposure_findings(stack_resources(private)) == []


def test_the_front_door_passes_with_iap_and_is_flagged_without_it(public):
    from policy import rules
    assert rules.external_exposure_findings(stack_resources(public)) == []
    findings = rules.external_exposure_findings(without_iap(stack_resources(public)))
    assert len(findings) == 1 and "Service 'airflow-ui'" in findings[0] and "iap.enabled" in findings[0], findings


def _mutated(public, kind: str, mutate) -> list:
    resources = stack_resources(public)
    for resource_type, _, props in resources:
        if resource_type.endswith(f":{kind}") and (kind != "HTTPRoute" or
                                                   props["spec"]["parentRefs"][0]["sectionName"] == "http"):
            mutate(props)
    return resources


@pytest.mark.parametrize("kind, mutate, mentions", [
    ("Gateway", lambda p: p["metadata"]["annotations"].clear(), "HTTPS listener that has a certificate"),
    ("Gateway", lambda p: p["spec"]["listeners"].pop(0), "HTTPS listener that has a certificate"),
    ("HTTPRoute", lambda p: p["spec"]["rules"][0].update(backendRefs=[{"name": "airflow-ui", "port": 80}]),
     "serves plain HTTP"),
    ("HTTPRoute", lambda p: p["spec"]["rules"][0].pop("filters"), "serves plain HTTP"),
    ("GCPBackendPolicy", lambda p: p["spec"]["default"]["iap"].update(enabled=False), "without sign-in"),
])
def test_the_exposure_policy_catches(public, kind, mutate, mentions):
    from policy import rules
    findings = rules.external_exposure_findings(_mutated(public, kind, mutate))
    assert findings and any(mentions in f and "Fix: " in f for f in findings), findings


def test_the_stack_policy_reports_through_the_engine_interface(public):
    from pulumi_policy import PolicyResource, StackValidationArgs

    from policy import rules
    exposed = without_iap(stack_resources(public))
    resources = [PolicyResource(t, p, f"urn:{n}", n, None, None, None, [], {}) for t, n, p in exposed]
    reported = []
    rules.STACK_POLICIES[0].validate(StackValidationArgs(resources), lambda m, urn=None: reported.append(m))
    assert reported == rules.external_exposure_findings(exposed) and reported


# --- cost ------------------------------------------------------------------------------------------

def test_cost_report_prices_the_load_balancer_and_the_certificate(public, private):
    from preview.cost import estimate
    items = {(i.resource, i.item): i for i in estimate(public).items}
    rules_row = items[("airflow-gateway-airflow-ui", "load balancer forwarding rules (Gateway)")]
    assert rules_row.quantity == 2 and rules_row.monthly_usd > 0
    assert ("airflow-ui-cert", "Google-managed certificate") in items
    assert not [i for i in estimate(private).items if "Gateway" in i.item or "certificate" in i.item]


def test_the_gateway_api_is_on_for_every_cluster_and_enabling_it_is_an_update(private, public):
    for capture in (private, public):
        cluster = capture.one("gcp:container/cluster:Cluster")
        assert cluster.inputs["gatewayApiConfig"] == {"channel": "CHANNEL_STANDARD"}
    rules_file = Path(__file__).resolve().parents[2] / "rehearse" / "replace_rules_gcp.yaml"
    force_new = {rule["path"] for rule in yaml.safe_load(rules_file.read_text())["types"]["gcp:container/cluster:Cluster"]}
    assert force_new and not {p for p in force_new if p.startswith("gatewayApiConfig")}
