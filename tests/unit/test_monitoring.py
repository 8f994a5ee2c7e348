"""Metrics pipeline and the Monitoring component, rendered by the real program under mocks: the exporter
sidecar and its wiring, the PodMonitoring against its vendored CRD, the NetworkPolicies that let GMP's
collectors in, and the dashboard and alert policies (names they query exist, PromQL parses)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import promql_parser
import pytest
import yaml

from components.airflow.pod import metrics_exporter
from components.monitoring import NOBODY_TOLD
from components.monitoring_specs import (Scope, alert_documentation, alert_query, checks, dashboard_widgets, promql_name,
                                         queried_prometheus_names)
from preview.capacity import pod_requests
from preview.harness import run_program
from tests import crd_schema
from tests.conftest import stack_config

GCP_METRICS = yaml.safe_load((Path(__file__).resolve().parents[1] / "data" / "gcp_metrics.yaml").read_text())["metrics"]
ALERT_TYPE = "gcp:monitoring/alertPolicy:AlertPolicy"
SCOPE = Scope("p", "c", "airflow", "pg")


@pytest.fixture(scope="module")
def dev():
    return run_program("dev")


@pytest.fixture(scope="module")
def prod():
    return run_program("prod")


def objects(capture, kind):
    return [m for _, m in capture.kubernetes_objects() if m["kind"] == kind]


def one(capture, kind, name):
    found = [m for m in objects(capture, kind) if m["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


def all_promql(max_connections=100) -> list[str]:
    queries = [alert_query(checks(SCOPE, max_connections))]
    return queries + [d["prometheusQuery"] for w in dashboard_widgets(SCOPE, max_connections)
                      for d in w["xyChart"]["dataSets"] if "prometheusQuery" in d]


def all_filters(max_connections=100) -> list[str]:
    return [d["timeSeriesQuery"]["timeSeriesFilter"]["filter"] for w in dashboard_widgets(SCOPE, max_connections)
                      for d in w["xyChart"]["dataSets"] if "timeSeriesQuery" in d]


# --- the exporter and Airflow's settings ----------------------------------------------------------

def test_exporter_sidecar_is_sized_non_root_probed_and_mounts_the_mapping(dev):
    pod = one(dev, "Deployment", "airflow")["spec"]["template"]["spec"]
    exporter = next(c for c in pod["containers"] if c["name"] == "metrics-exporter")
    assert exporter["resources"]["requests"] and exporter["resources"]["limits"]
    assert exporter["securityContext"]["runAsNonRoot"] and exporter["securityContext"]["runAsUser"] != 0
    assert exporter["livenessProbe"] and "readinessProbe" not in exporter  # readiness: the api-server's alone
    mount, = exporter["volumeMounts"]
    config = one(dev, "ConfigMap", "airflow-config")["data"]
    assert mount["subPath"] in config and f"--statsd.mapping-config={mount['mountPath']}" in exporter["args"]
    rules = yaml.safe_load(config[mount["subPath"]])["mappings"]
    assert rules[-1]["action"] == "drop" and {r["name"] for r in rules[:-1]} == metrics_exporter.metric_names()


def env_of(container) -> dict:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_airflow_processes_send_statsd_to_the_sidecar_and_others_through_the_service(prod):
    pod = one(prod, "Deployment", "airflow")["spec"]["template"]["spec"]
    scheduler = env_of(next(c for c in pod["containers"] if c["name"] == "scheduler"))
    assert scheduler["AIRFLOW__METRICS__STATSD_ON"] == "True"
    assert scheduler["AIRFLOW__METRICS__STATSD_HOST"] == "localhost"
    exporter = next(c for c in pod["containers"] if c["name"] == "metrics-exporter")
    statsd_port = next(p for p in exporter["ports"] if p["protocol"] == "UDP")["containerPort"]
    assert int(scheduler["AIRFLOW__METRICS__STATSD_PORT"]) == statsd_port
    service = one(prod, "Service", metrics_exporter.STATSD_SERVICE_NAME)
    host = f"{metrics_exporter.STATSD_SERVICE_NAME}.{service['metadata']['namespace']}.svc.cluster.local"
    dag_processor = one(prod, "Deployment", "airflow-dag-processor")["spec"]["template"]["spec"]["containers"][0]
    assert env_of(dag_processor)["AIRFLOW__METRICS__STATSD_HOST"] == host
    template = yaml.safe_load(one(prod, "ConfigMap", "airflow-config")["data"]["pod_template_file.yaml"])
    assert env_of(template["spec"]["containers"][0])["AIRFLOW__METRICS__STATSD_HOST"] == host


def test_dev_pod_still_fits_its_node_with_the_exporter(dev):
    from preview.cost import estimate
    report = estimate(dev)
    assert not [n for n in report.notes if "do not fit" in n or "will not schedule" in n], report.notes
    pod = one(dev, "Deployment", "airflow")["spec"]["template"]["spec"]
    without = copy.deepcopy(pod)
    without["containers"] = [c for c in pod["containers"] if c["name"] != "metrics-exporter"]
    assert pod_requests(pod).memory > pod_requests(without).memory  # the sidecar is counted in the packing


# --- PodMonitoring and NetworkPolicies --------------------------------------------------------------

def test_pod_monitoring_validates_against_its_crd_and_a_typo_does_not(dev):
    monitor = one(dev, "PodMonitoring", "airflow-metrics")
    crd_schema.validate(monitor)
    broken = copy.deepcopy(monitor)
    broken["spec"]["endpoints"][0]["intervall"] = "60s"
    with pytest.raises(jsonschema.ValidationError, match="intervall"):
        crd_schema.validate(broken)
    wrong = copy.deepcopy(monitor)
    wrong["spec"]["endpoints"][0]["interval"] = 60  # a string (Prometheus duration) in the CRD
    with pytest.raises(jsonschema.ValidationError):
        crd_schema.validate(wrong)


def test_pod_monitoring_scrapes_named_ports_the_pods_have(request):
    for stack in ("dev", "prod"):
        capture = request.getfixturevalue(stack)
        monitor = one(capture, "PodMonitoring", "airflow-metrics")
        ports = {p["name"] for d in objects(capture, "Deployment")
                 for c in [*d["spec"]["template"]["spec"]["containers"], *d["spec"]["template"]["spec"]["initContainers"]]
                 for p in c.get("ports", [])}
        assert metrics_exporter.METRICS_PORT_NAME in ports
        assert {e["port"] for e in monitor["spec"]["endpoints"]} - {"git-sync"} <= ports, stack


def test_network_policies_admit_gmp_collectors_to_every_scraped_port_only(dev):
    policy = one(dev, "NetworkPolicy", "metrics-scrape-ingress")
    rule, = policy["spec"]["ingress"]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gmp-system"}}}]
    pod = one(dev, "Deployment", "airflow")["spec"]["template"]["spec"]
    by_name = {p["name"]: p["containerPort"] for c in [*pod["containers"], *pod["initContainers"]]
               for p in c.get("ports", [])}
    scraped = {by_name[e["port"]] for e in one(dev, "PodMonitoring", "airflow-metrics")["spec"]["endpoints"]}
    assert {p["port"] for p in rule["ports"]} == scraped
    statsd = one(dev, "NetworkPolicy", "statsd-ingress")["spec"]["ingress"][0]
    assert statsd["ports"] == [{"port": metrics_exporter.STATSD_PORT, "protocol": "UDP"}]


# --- dashboard and alerts ---------------------------------------------------------------------------

# Every check the stack must alert on; the one condition must carry each (tagged with its `check` label).
REQUIRED_CHECKS = {"scheduler-heartbeat", "dag-import-errors", "task-failure-rate", "tasks-queued-too-long",
                   "db-connections", "container-restarts", "logs-volume", "sql-cpu", "sql-disk"}
GCP_PROMQL = {entry["promql"]: metric for metric, entry in GCP_METRICS.items()}


def tagged_checks(query: str) -> set[str]:
    """The `check` values the query's label_replace calls set, read from the parsed query."""
    found: set[str] = set()

    def walk(node) -> None:
        if type(node).__name__ == "Call" and node.func.name == "label_replace":
            target, value = (a.val for a in node.args[1:3])
            if target == "check":
                found.add(value)
        for attr in ("expr", "lhs", "rhs"):
            child = getattr(node, attr, None)
            if child is not None:
                walk(child)
        for child in getattr(node, "args", None) or []:
            walk(child)

    walk(promql_parser.parse(query))
    return found


def test_every_promql_query_parses_and_selects_only_proven_names():
    names = queried_prometheus_names(all_promql())
    airflow = {n for n in names if not n.split(":")[0].endswith(("_io", "_com"))}
    assert airflow <= metrics_exporter.metric_names(), airflow - metrics_exporter.metric_names()
    assert names - airflow <= set(GCP_PROMQL), (names - airflow) - set(GCP_PROMQL)
    assert names - airflow, "the condition queries Google's metrics through PromQL"
    with pytest.raises(ValueError):
        promql_parser.parse("sum(rate(airflow_scheduler_heartbeat_total[5m])")


def test_vendored_promql_names_follow_googles_mapping_rule():
    for metric, entry in GCP_METRICS.items():
        assert promql_name(metric) == entry["promql"], metric
    assert promql_name("kubernetes.io/container/cpu/limit_cores") == "kubernetes_io:container_cpu_limit_cores"


def test_every_google_metric_charted_is_in_googles_reference():
    for metric_filter in all_filters():
        metric = metric_filter.split('metric.type="', 1)[1].split('"', 1)[0]
        assert metric in GCP_METRICS, metric
        resource = metric_filter.split('resource.type="', 1)[1].split('"', 1)[0]
        assert GCP_METRICS[metric]["resource"] == resource, metric


def test_one_policy_one_promql_condition_tags_every_required_check(dev, prod):
    for capture in (dev, prod):
        policy, = capture.of_type(ALERT_TYPE)
        condition, = policy.inputs["conditions"]
        query = condition["conditionPrometheusQueryLanguage"]["query"]
        assert tagged_checks(query) == REQUIRED_CHECKS
        assert 'cluster="' in query and 'namespace="airflow"' in query and 'database_id="' in query
        content = policy.inputs["documentation"]["content"]
        assert all(f"**{key}**" in content for key in REQUIRED_CHECKS)
        # https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.alertPolicies#documentation
        # (terraform-provider-google resource_monitoring_alert_policy.go: "may not exceed 8,192 Unicode characters")
        assert len(content) <= 8192 and len(content.encode()) <= 10240


def test_dropping_a_check_is_seen_by_the_check_reader():
    found = checks(SCOPE, 100)
    assert tagged_checks(alert_query(found)) == REQUIRED_CHECKS
    assert tagged_checks(alert_query(found[1:])) == REQUIRED_CHECKS - {found[0].key}


def test_each_check_fires_on_its_own_series_only():
    for check in checks(SCOPE, 100):
        promql_parser.parse(check.expr)
        assert len(check.first) == 3 and check.means, check.key
        assert f"**{check.key}**" in alert_documentation([check], "airflow")


def test_db_connection_check_follows_the_tiers_limit():
    low, high = (next(c for c in checks(SCOPE, n) if c.key == "db-connections").expr for n in (50, 400))
    assert low.endswith("> 40") and high.endswith("> 320")
    assert "db-connections" not in {c.key for c in checks(SCOPE, None)}


def test_nobody_is_told_without_emails_and_each_email_gets_a_channel(dev):
    assert dev.of_type(ALERT_TYPE) and not dev.of_type("gcp:monitoring/notificationChannel:NotificationChannel")
    assert all(not p.inputs.get("notificationChannels") for p in dev.of_type(ALERT_TYPE))
    told = run_program("dev", stack_config("dev", alertEmails='["a@example.com", "b@example.com"]'))
    channels = told.of_type("gcp:monitoring/notificationChannel:NotificationChannel")
    assert sorted(c.inputs["labels"]["email_address"] for c in channels) == ["a@example.com", "b@example.com"]
    for policy in told.of_type(ALERT_TYPE):
        assert len(policy.inputs["notificationChannels"]) == 2
    assert "alertEmails" in NOBODY_TOLD


def test_bad_alert_email_fails_early_naming_the_key():
    from components.config import ConfigError
    with pytest.raises(ConfigError, match="alertEmails"):
        run_program("dev", stack_config("dev", alertEmails='["not-an-address"]'))


def test_dashboard_is_json_with_every_chart(dev):
    dashboard = json.loads(dev.one("gcp:monitoring/dashboard:Dashboard").inputs["dashboardJson"])
    titles = " ".join(t["widget"]["title"] for t in dashboard["mosaicLayout"]["tiles"])
    for word in ("heartbeat", "DAG", "import errors", "queued", "Pools", "DB connections", "restarts",
                 "OOM", "Logs volume", "Cloud SQL CPU", "Cloud SQL disk"):
        assert word in titles, word


def test_cost_prices_alert_conditions_and_prometheus_samples(dev):
    from preview.cost import estimate
    items = {(i.resource, i.item): i for i in estimate(dev).items}
    rows = [i for (_, item), i in items.items() if item == "alert policy conditions"]
    declared = sum(len(p.inputs["conditions"]) for p in dev.of_type(ALERT_TYPE))
    assert declared == 1 and sum(i.quantity for i in rows) == declared
    assert sum(i.monthly_usd for i in rows) == pytest.approx(1.50 * declared)
    samples = [i for (_, item), i in items.items() if item.startswith("Prometheus samples")]
    assert len(samples) == 1 and samples[0].quantity > 0
