"""The idle-cost report (preview/cost.py): computed from declared inputs, priced only by prices.yaml."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from preview import __main__ as preview_cli
from preview.capacity import (GIB, MIB, Resources, always_on_pods, gke_allocatable, parse_quantity, pod_requests,
                              unplaced_pods)
from preview.cost import PriceError, estimate, gke_system_requests, load_prices, machine_price, regional_prices
from preview.harness import Capture, run_program
from tests.conftest import run_stack, stack_config

PRICES = load_prices()
HOURS = PRICES["hours_per_month"]
US = regional_prices(PRICES, "us-central1")  # dev's region
EU = regional_prices(PRICES, "europe-west4")  # prod's region


def monthly(capture: Capture) -> float:
    return estimate(capture, PRICES).total


def rows(capture: Capture, item_prefix: str) -> list:
    return [i for i in estimate(capture, PRICES).items if i.item.startswith(item_prefix)]


def dev_node_hourly() -> float:
    rates = US["custom_machine_rates"]["e2"]  # dev runs e2-custom-2-4864
    return 2 * rates["vcpu_per_hour"]["usd"] + 4.75 * rates["memory_gib_per_hour"]["usd"]


def flow_logs_per_node() -> float:
    """Each idle node adds its share of the subnet's flow logs (sampling 0.5, the assumption's own rate)."""
    return (PRICES["assumptions"]["flow_log_gib_per_node_month"]["value"]
            * PRICES["logging"]["vended_network_logs_per_gib"]["usd"])


def dev_node_monthly() -> float:
    return (dev_node_hourly() * HOURS + 20 * US["disks_per_gib_month"]["pd-balanced"]["usd"]
            + US["network"]["nat_gateway_per_vm_hour"]["usd"] * HOURS + flow_logs_per_node())


@pytest.fixture(scope="module")
def dev_total(dev) -> float:
    return monthly(dev)


def test_preview_writes_cost_json_and_prints_the_table(tmp_path, capsys):
    assert preview_cli.main(["--stack", "dev", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "dev" / "cost.json").read_text())
    out = capsys.readouterr().out
    assert report["total_monthly_usd"] == pytest.approx(sum(i["monthly_usd"] for i in report["items"]), abs=0.02)
    assert {i["resource"] for i in report["items"]} >= {"airflow-gke", "airflow-pool", "airflow-pg", "airflow-nat"}
    assert f"{report['total_monthly_usd']:.2f}" in out and "Goal dev idle: <= $80/month" in out
    assert report["price_region"] == "us-central1" and "us-central1 list prices" in out
    assert f"{report['paused_monthly_usd']:.2f}" in out and report["scheduled_monthly_usd"] is None
    goal = report["goals"]["dev_idle_monthly_usd"]
    assert report["environment"] == "dev"
    assert report["goals"]["within_dev_goal"] == (report["total_monthly_usd"] <= goal)


def test_every_price_names_its_source_and_date():
    def walk(node, path):
        if isinstance(node, dict) and ("usd" in node or "usd_per_hour" in node or "factor" in node or "count" in node):
            assert node.get("source") and node.get("read_on"), f"{path} has no source/read_on"
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{path}.{key}")
    for section in ("gke", "cloud_sql", "storage", "logging", "monitoring"):
        walk(PRICES[section], section)
    assert set(PRICES["regions"]) >= {"us-central1", "europe-west4"}
    for region, table in PRICES["regions"].items():
        for section in ("gke", "machine_types", "custom_machine_rates", "disks_per_gib_month", "cloud_sql", "network",
                        "storage"):
            assert section in table, f"regions.{region} has no {section}"
            walk(table[section], f"regions.{region}.{section}")
    for name, entry in PRICES["gke_system_pods"].items():
        assert entry.get("source") and entry.get("read_on"), f"gke_system_pods.{name} has no source/read_on"


def test_bigger_database_tier_moves_the_estimate_by_the_tier_difference(dev_total):
    bigger = run_stack("dev", dbTier="db-custom-2-7680")
    sql = US["cloud_sql"]
    expected = (2 * sql["vcpu_per_hour"]["usd"] + 7.5 * sql["memory_gib_per_hour"]["usd"]
                - sql["shared_core_per_hour"]["db-g1-small"]["usd"]) * HOURS
    assert monthly(bigger) - dev_total == pytest.approx(expected, abs=0.02)


def test_high_availability_doubles_instance_and_storage(dev, dev_total):
    ha = run_stack("dev", dbHighAvailability="true")
    sql = US["cloud_sql"]
    instance = sql["shared_core_per_hour"]["db-g1-small"]["usd"] * HOURS
    storage = 10 * sql["storage_per_gib_month"]["PD_SSD"]["usd"]
    factor = sql["high_availability_multiplier"]["factor"]
    assert monthly(ha) - dev_total == pytest.approx((factor - 1) * (instance + storage), abs=0.02)


def test_more_nodes_add_machine_disk_and_nat_per_node(dev_total):
    more = run_stack("dev", nodeMinCount="2")
    per_node = dev_node_monthly()
    assert monthly(more) - dev_total == pytest.approx(per_node, abs=0.02)


def test_regional_cluster_triples_the_nodes_and_loses_the_free_tier(dev_total):
    config = stack_config("dev", clusterRegional="true")
    del config["airflow-gke:zone"]  # unset: an empty string is a config error
    regional = run_program("dev", config)
    per_node = dev_node_monthly()
    fee = PRICES["gke"]["cluster_fee_per_hour"]["usd"] * HOURS
    zones = PRICES["gke"]["regional_default_zones"]["count"]
    assert monthly(regional) - dev_total == pytest.approx(fee + (zones - 1) * per_node, abs=0.02)


def test_load_balancer_service_adds_a_forwarding_rule(dev_total):
    lb = run_stack("dev", serviceType="LoadBalancer", loadBalancerSourceRanges='["203.0.113.0/24"]')
    assert monthly(lb) - dev_total == pytest.approx(
        US["network"]["forwarding_rule_per_hour"]["usd"] * HOURS, abs=0.02)


def test_autopilot_prices_the_always_on_pod_requests(autopilot):
    deployments = [m for _, m in autopilot.kubernetes_objects() if m["kind"] == "Deployment"]
    (name, replicas, requests), = always_on_pods(deployments)
    gke = US["gke"]
    cpu_row, = rows(autopilot, "Autopilot pod vCPU")
    memory_row, = rows(autopilot, "Autopilot pod memory")
    assert cpu_row.monthly_usd == pytest.approx(replicas * requests.cpu * gke["autopilot_vcpu_per_hour"]["usd"] * HOURS)
    assert memory_row.monthly_usd == pytest.approx(
        replicas * requests.memory / GIB * gke["autopilot_memory_gib_per_hour"]["usd"] * HOURS, rel=1e-4)
    assert not rows(autopilot, "nodes"), "Autopilot has no node pool rows"


def test_unknown_machine_type_fails_with_the_key_to_change():
    capture = run_stack("dev", nodeMachineType="e2-standard-2")
    us = PRICES["regions"]["us-central1"]
    unpriced = {**us, "machine_types": {k: v for k, v in us["machine_types"].items() if k != "e2-standard-2"}}
    prices = {**PRICES, "regions": {**PRICES["regions"], "us-central1": unpriced}}
    with pytest.raises(PriceError, match=r"machine type 'e2-standard-2' has no price for us-central1.*nodeMachineType"):
        estimate(capture, prices)


def test_unknown_database_tier_fails_with_the_key_to_change():
    capture = run_stack("dev", dbTier="db-n1-standard-2")  # a valid legacy tier the price table lacks
    with pytest.raises(PriceError, match=r"Cloud SQL tier 'db-n1-standard-2'.*dbTier"):
        estimate(capture, PRICES)


def test_a_new_billable_resource_type_cannot_slip_in_at_zero(dev):
    stray = dataclasses.replace(dev.resources[0], type="gcp:compute/address:Address", name="stray", custom=True)
    with pytest.raises(PriceError, match="gcp:compute/address:Address"):
        estimate(dataclasses.replace(dev, resources=[*dev.resources, stray]), PRICES)


def test_prod_reports_its_drivers(prod):
    report = estimate(prod, PRICES)
    by_item = {i.item: i for i in report.items}
    assert by_item["GKE free tier credit"].monthly_usd == 0  # regional
    assert by_item["nodes (e2-custom-4-7168)"].quantity == 3  # 1 per zone x 3 zones
    assert by_item["instance (db-custom-1-3840)"].quantity == 2  # HA standby
    assert report.region == "europe-west4" and report.to_json()["price_region"] == "europe-west4"
    assert report.environment == "prod" and report.within_dev_goal is None  # the dev goal is not prod's


def test_dev_idle_cost_within_goal(dev_total):
    assert dev_total <= PRICES["goals"]["dev_idle_monthly_usd"]["usd"]


def test_custom_machine_type_is_priced_per_vcpu_and_gib(dev, dev_total):
    rates = US["custom_machine_rates"]["e2"]
    pool = next(r for r in dev.of_type("gcp:container/nodePool:NodePool"))
    assert pool.inputs["nodeConfig"]["machineType"] == "e2-custom-2-4864"
    node, = rows(dev, "nodes (e2-custom-2-4864)")
    assert node.monthly_usd == pytest.approx(dev_node_hourly() * HOURS)
    bigger = run_stack("dev", nodeMachineType="e2-custom-2-8192")
    assert monthly(bigger) - dev_total == pytest.approx(3.25 * rates["memory_gib_per_hour"]["usd"] * HOURS, abs=0.01)


@pytest.mark.parametrize("shape, why", [("e2-custom-3-4096", "even number of vCPUs"),
                                        ("e2-custom-2-5000", "multiple of 256"),
                                        ("e2-custom-2-17408", "per vCPU"),
                                        ("n2-custom-2-4096", "only E2 custom")])
def test_an_invalid_custom_shape_fails_the_estimate(dev, shape, why):
    pool = next(r for r in dev.of_type("gcp:container/nodePool:NodePool"))
    with pytest.raises(PriceError, match=why):
        machine_price(US, shape, pool, "nodeMachineType")


# -- capacity: the Airflow pod must fit the node it is priced on ---------------------------------------

def test_gke_allocatable_follows_the_published_reservation_bands():
    # 8 GiB: 25% of 4 GiB + 20% of 4 GiB reserved, then the 100 MiB eviction threshold.
    e2_standard_2 = gke_allocatable(2, 8)
    assert e2_standard_2.memory == pytest.approx(8 * GIB - (0.25 * 4 + 0.20 * 4) * GIB - 100 * MIB)
    assert e2_standard_2.cpu == pytest.approx(2 - 0.06 - 0.01)
    e2_standard_4 = gke_allocatable(4, 16)
    assert e2_standard_4.memory == pytest.approx(16 * GIB - (1 + 0.8 + 0.8) * GIB - 100 * MIB)
    assert e2_standard_4.cpu == pytest.approx(4 - 0.06 - 0.01 - 2 * 0.005)


def test_pod_requests_count_sidecars_with_the_containers_and_before_later_inits():
    spec = {"initContainers": [
        {"name": "sidecar", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}}},
        {"name": "big-init", "resources": {"requests": {"cpu": "2", "memory": "64Mi"}}}],
        "containers": [{"name": "app", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]}
    assert pod_requests(spec) == Resources(2.1, 1024 * MIB + 100 * MIB)
    assert parse_quantity("1.5Gi") == 1.5 * GIB and parse_quantity("250m") == 0.25


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_always_on_pods_fit_the_idle_nodes_beside_gkes_own(stack, dev, prod):
    capture = {"dev": dev, "prod": prod}[stack]
    pool = next(r for r in capture.of_type("gcp:container/nodePool:NodePool") if not r.inputs["nodeConfig"]["spot"])
    prices = {"dev": US, "prod": EU}[stack]
    machine = machine_price(prices, pool.inputs["nodeConfig"]["machineType"], pool, "nodeMachineType")
    idle_nodes = next(i for i in estimate(capture, PRICES).items if i.item.startswith("nodes (")).quantity
    allocatable = gke_allocatable(machine["vcpu"], machine["memory_gib"])
    deployments = [m for _, m in capture.kubernetes_objects() if m["kind"] == "Deployment"]
    pods = [(f"{name}-{i}", requests) for name, count, requests in always_on_pods(deployments) for i in range(count)]
    assert pods
    per_node, per_cluster = gke_system_requests(prices)
    assert unplaced_pods(pods, [allocatable] * int(idle_nodes), per_node, per_cluster) == []
    assert not any("fit" in note or "schedule" in note for note in estimate(capture, PRICES).notes)


def test_gke_system_pods_are_packed_with_ours():
    node = gke_allocatable(2, 4)
    system = Resources(0.3, 600 * MIB), Resources(0.4, 400 * MIB)
    small = Resources(0.2, 1 * GIB)
    assert unplaced_pods([("a", small)], [node], *system) == []
    assert unplaced_pods([("a", small), ("b", small)], [node], *system) == ["b"]  # 2.9 GiB - 1000 MiB < 2 GiB
    assert unplaced_pods([("a", small), ("b", small)], [node, node], *system) == []
    # the cluster add-ons take room once, on the first node: the second holds two pods
    assert unplaced_pods([("a", small), ("b", small), ("c", small)], [node, node], *system) == []


def test_a_node_too_small_beside_gkes_own_pods_is_called_out(dev):
    # 4 GiB: 2.9 GiB allocatable holds the Airflow pod (2.3 GiB) alone, not with GKE's own pods.
    small = run_stack("dev", nodeMachineType="e2-custom-2-4096")
    notes = estimate(small, PRICES).notes
    assert any("do not fit beside GKE's own pods" in note for note in notes), notes


def test_documented_costs_match_the_report(dev_total, prod):
    root = Path(__file__).resolve().parents[2]
    costs, readme = (root / "docs" / "cost.md").read_text(), (root / "README.md").read_text()
    for stack, total in (("dev", dev_total), ("prod", monthly(prod))):
        shown = re.search(rf"^\| {stack} \(.*?\| ~(\d+) \|", costs, re.M)
        assert shown, f"docs/cost.md 'What it costs' has no row for {stack}"
        assert abs(int(shown.group(1)) - total) <= 1, f"docs/cost.md says ~{shown.group(1)} for {stack}, report {total}"
    # The front page quotes both figures: "the dev stack idles at ~$80/month", prod "(~$490/month".
    front = {"dev": re.search(r"dev stack idles at\s+~\$(\d+)/month", readme),
             "prod": re.search(r"HA layout\s+\(~\$(\d+)/month", readme)}
    for stack, total in (("dev", dev_total), ("prod", monthly(prod))):
        assert front[stack], f"README no longer quotes the {stack} idle cost"
        assert abs(int(front[stack].group(1)) - total) <= 1, f"README says ~{front[stack].group(1)} for {stack}"


def test_a_pod_too_big_for_the_node_is_called_out(dev):
    big = run_stack("dev", containerResources='{"scheduler": {"cpu": "500m", "memory": "6Gi", "cpuLimit": "1", '
                                              '"memoryLimit": "6Gi"}}')
    deployments = [m for _, m in big.kubernetes_objects() if m["kind"] == "Deployment"]
    (_, _, requests), = always_on_pods(deployments)
    machine = machine_price(US, "e2-custom-2-4864", big.resources[0], "nodeMachineType")
    assert not requests.fits_in(gke_allocatable(machine["vcpu"], machine["memory_gib"]))
    notes = estimate(big, PRICES).notes
    assert any("will not schedule" in note and "e2-custom-2-4864" in note for note in notes), notes
    assert not any("will not schedule" in note for note in estimate(dev, PRICES).notes)
