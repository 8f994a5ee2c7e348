"""Cost report: prices of the stack's own region, the usage lines, paused/scheduled figures, prod's HA sizing.

Expected figures are worked out here from prices.yaml and the stack's shape, not read back from the report.
"""

from __future__ import annotations

import dataclasses

import pytest

from preview.capacity import MIB, Resources, always_on_pods, gke_allocatable, unplaced_after_zone_loss
from preview.cost import PriceError, estimate, gke_system_requests, load_prices, machine_price, regional_prices
from preview.harness import Capture
from tests.conftest import run_stack

PRICES = load_prices()
HOURS = PRICES["hours_per_month"]
US = regional_prices(PRICES, "us-central1")
EU = regional_prices(PRICES, "europe-west4")
ASSUME = {key: entry["value"] for key, entry in PRICES["assumptions"].items()}
BERLIN_OFFICE = "Mon-Fri 08:00-18:00 Europe/Berlin"
# 2027 (the parser's reference year) has 261 weekdays; Europe's DST changes fall on Sundays (03-28, 10-31),
# so every weekday window is 10 real hours: 2610 h a year.
BERLIN_OFFICE_HOURS_PER_MONTH = 261 * 10 / 12
# 2027 starts on a Friday: 52 Mondays, 52 Wednesdays, 53 Fridays; UTC has no DST: 157 x 8 h a year.
THREE_DAYS = "Mon,Wed,Fri 09:00-17:00 UTC"
THREE_DAYS_HOURS_PER_MONTH = 157 * 8 / 12


def row(capture: Capture, item: str):
    found = [i for i in estimate(capture, PRICES).items if i.item == item]
    assert len(found) == 1, [i.item for i in estimate(capture, PRICES).items]
    return found[0]


def dev_paused_by_hand() -> float:
    """What a paused dev keeps paying, from its shape: 10 GiB SSD, 1 GiB backups, one NAT IP, the image,
    the bucket's logs (30 days kept + 7 soft-deleted), 10 kept image versions, the cluster fee net of the free tier (zonal: $0),
    and its one alert condition (billed whether or not anything runs)."""
    sql, storage = US["cloud_sql"], US["storage"]
    registry = storage["artifact_registry_per_gib_month"]
    image = ASSUME["registry_image_gib"] + (10 - 1) * ASSUME["registry_changed_gib_per_version"] - registry["free_gib"]
    logs = (30 + 7) * ASSUME["task_logs_gib_per_day"] * storage["standard_per_gib_month"]["usd"]
    return (10 * sql["storage_per_gib_month"]["PD_SSD"]["usd"] + ASSUME["database_data_gib"] * sql["backup_per_gib_month"]["usd"]
            + ASSUME["nat_ips"] * US["network"]["nat_ip_per_hour"]["usd"] * HOURS
            + image * registry["usd"] + logs + PRICES["monitoring"]["alert_condition_per_month"]["usd"])


# -- region -----------------------------------------------------------------------------------------

def test_prod_is_priced_at_europe_west4_and_dev_at_us_central1(dev, prod):
    assert EU["machine_types"]["e2-standard-4"]["usd_per_hour"] != US["machine_types"]["e2-standard-4"]["usd_per_hour"]
    eu_rates, us_rates = EU["custom_machine_rates"]["e2"], US["custom_machine_rates"]["e2"]
    assert eu_rates["vcpu_per_hour"]["usd"] > us_rates["vcpu_per_hour"]["usd"]
    nodes = row(prod, "nodes (e2-custom-4-7168)")
    assert nodes.unit_usd == pytest.approx(4 * eu_rates["vcpu_per_hour"]["usd"] + 7 * eu_rates["memory_gib_per_hour"]["usd"])
    sql = EU["cloud_sql"]  # HA: primary + standby at the Netherlands rate
    instance = row(prod, "instance (db-custom-1-3840)")
    assert instance.monthly_usd == pytest.approx(
        2 * (sql["vcpu_per_hour"]["usd"] + 3.75 * sql["memory_gib_per_hour"]["usd"]) * HOURS, abs=0.01)
    assert row(prod, "storage (PD_SSD)").unit_usd == sql["storage_per_gib_month"]["PD_SSD"]["usd"] != \
        US["cloud_sql"]["storage_per_gib_month"]["PD_SSD"]["usd"]
    assert row(dev, "nodes (e2-custom-2-4864)").unit_usd == pytest.approx(
        2 * us_rates["vcpu_per_hour"]["usd"] + 4.75 * us_rates["memory_gib_per_hour"]["usd"])
    assert estimate(prod, PRICES).region == "europe-west4" and estimate(dev, PRICES).region == "us-central1"


def test_an_unpriced_region_fails_naming_it_and_the_fix():
    capture = run_stack("dev", **{"gcp:region": "asia-east1", "zone": "asia-east1-a"})
    with pytest.raises(PriceError, match=r"region 'asia-east1'.*prices\.yaml.*regions\.asia-east1.*gcp:region"):
        estimate(capture, PRICES)


# -- usage lines ------------------------------------------------------------------------------------

def test_nat_data_flow_logs_and_soft_delete_are_priced_from_stated_assumptions(dev, prod):
    nat = row(dev, "NAT data processing")
    assert nat.monthly_usd == pytest.approx(ASSUME["nat_data_gib_per_month"] * US["network"]["nat_data_per_gib"]["usd"])
    vended = PRICES["logging"]["vended_network_logs_per_gib"]["usd"]  # no free allotment for flow logs
    assert row(dev, "VPC flow logs to Cloud Logging").monthly_usd == pytest.approx(
        1 * ASSUME["flow_log_gib_per_node_month"] * vended)
    assert row(prod, "VPC flow logs to Cloud Logging").monthly_usd == pytest.approx(
        3 * ASSUME["flow_log_gib_per_node_month"] * vended)
    soft = row(dev, "soft-deleted logs (Standard)")
    assert soft.quantity == pytest.approx(7 * ASSUME["task_logs_gib_per_day"])  # GCS default: 7 days
    bucket = dev.one("gcp:storage/bucket:Bucket")
    off = dataclasses.replace(bucket, raw_inputs={**bucket.raw_inputs, "softDeletePolicy": {"retentionDurationSeconds": 0}})
    without = dataclasses.replace(dev, resources=[off if r is bucket else r for r in dev.resources])
    assert not [i for i in estimate(without, PRICES).items if i.item.startswith("soft-deleted")]


def test_front_door_and_monitoring_are_priced_only_when_declared(dev):
    items = [i.item for i in estimate(dev, PRICES).items]
    assert not any("front door" in i for i in items)
    assert sum("alert" in i for i in items) == len(dev.of_type("gcp:monitoring/alertPolicy:AlertPolicy")) == 1
    base = dev.resources[0]
    rule = dataclasses.replace(base, type="gcp:compute/globalForwardingRule:GlobalForwardingRule", name="door",
                               custom=True, raw_inputs={})
    alert = dataclasses.replace(base, type="gcp:monitoring/alertPolicy:AlertPolicy", name="alerts", custom=True,
                                raw_inputs={"conditions": [{"displayName": "a"}, {"displayName": "b"}]})
    more = dataclasses.replace(dev, resources=[*dev.resources, rule, alert])
    added = estimate(more, PRICES).total - estimate(dev, PRICES).total
    expected = (US["network"]["forwarding_rule_per_hour"]["usd"] * HOURS
                + 2 * PRICES["monitoring"]["alert_condition_per_month"]["usd"])
    assert added == pytest.approx(expected, abs=0.02)


# -- paused and scheduled ---------------------------------------------------------------------------

def test_dev_paused_keeps_only_storage_backups_ip_image_and_logs(dev):
    report = estimate(dev, PRICES)
    assert report.paused_total == pytest.approx(dev_paused_by_hand(), abs=0.02)
    assert report.paused_total <= PRICES["goals"]["dev_paused_monthly_usd"]["usd"]
    assert report.scheduled_total is None  # no activeHours: always on


@pytest.mark.parametrize("window, awake", [(BERLIN_OFFICE, BERLIN_OFFICE_HOURS_PER_MONTH),
                                           (THREE_DAYS, THREE_DAYS_HOURS_PER_MONTH)])
def test_scheduled_cost_is_paused_plus_the_awake_share_of_the_rest(window, awake):
    capture = run_stack("dev", activeHours=window)
    report = estimate(capture, PRICES)
    paused = dev_paused_by_hand()
    assert report.schedule.awake_hours_per_month == pytest.approx(awake)
    assert report.scheduled_total == pytest.approx(paused + (report.total - paused) * awake / HOURS, abs=0.02)
    cost_json = report.to_json()
    assert cost_json["scheduled_monthly_usd"] == report.scheduled_total
    assert cost_json["paused_monthly_usd"] == pytest.approx(paused, abs=0.02)


def test_dev_goals_on_office_hours():
    report = estimate(run_stack("dev", activeHours=BERLIN_OFFICE), PRICES)
    assert report.scheduled_total <= PRICES["goals"]["dev_scheduled_monthly_usd"]["usd"]
    assert report.paused_total <= PRICES["goals"]["dev_paused_monthly_usd"]["usd"]
    assert any(line.startswith("Goal dev scheduled: <= $30/month") and "within it" in line for line in report.lines())


# -- prod: <= $500 idle with the same HA --------------------------------------------------------------

def test_prod_idle_within_goal_with_the_same_ha(prod):
    report = estimate(prod, PRICES)
    assert report.total <= PRICES["goals"]["prod_idle_monthly_usd"]["usd"]
    cluster = prod.one("gcp:container/cluster:Cluster")
    assert cluster.inputs["location"] == "europe-west4"  # regional: three zones
    assert row(prod, "nodes (e2-custom-4-7168)").quantity == 3
    assert prod.one("gcp:sql/databaseInstance:DatabaseInstance").inputs["settings"]["availabilityType"] == "REGIONAL"
    replicas = {name: count for name, count, _ in always_on_pods([m for _, m in prod.kubernetes_objects()])}
    assert replicas["airflow"] == 2
    assert any(m["kind"] == "PodDisruptionBudget" for _, m in prod.kubernetes_objects())
    spot = [r for r in prod.of_type("gcp:container/nodePool:NodePool") if r.inputs["nodeConfig"].get("spot")]
    assert spot and all(r.inputs["autoscaling"]["minNodeCount"] == 0 for r in spot)


def test_zone_loss_packing():
    per_node, per_cluster = Resources(0.3, 600 * MIB), Resources(0.4, 400 * MIB)
    node = gke_allocatable(4, 7)
    pod = Resources(1.5, 3300 * MIB)
    # three zones, one node each: two pods fit on the two nodes left
    assert unplaced_after_zone_loss([("a", pod), ("b", pod)], [(node, 1)], 3, per_node, per_cluster) == []
    # a third pod needs the lost zone's node
    assert unplaced_after_zone_loss([("a", pod), ("b", pod), ("c", pod)], [(node, 1)], 3, per_node, per_cluster) == ["c"]


@pytest.mark.parametrize("stack", ["prod"])
def test_prod_always_on_pods_survive_a_zone_loss(stack, prod):
    pool = next(r for r in prod.of_type("gcp:container/nodePool:NodePool") if not r.inputs["nodeConfig"].get("spot"))
    machine = machine_price(EU, pool.inputs["nodeConfig"]["machineType"], pool, "nodeMachineType")
    pods = [(f"{name}-{i}", requests) for name, count, requests in always_on_pods([m for _, m in prod.kubernetes_objects()])
            for i in range(count)]
    per_zone = pool.inputs["autoscaling"]["minNodeCount"]
    allocatable = gke_allocatable(machine["vcpu"], machine["memory_gib"])
    assert unplaced_after_zone_loss(pods, [(allocatable, per_zone)], 3, *gke_system_requests(EU)) == []
    assert not any("zones down" in note for note in estimate(prod, PRICES).notes)


def test_a_node_shape_that_loses_pods_with_a_zone_down_is_called_out():
    # 2 vCPU nodes hold every pod with three zones up, not with one down
    small = run_stack("prod", nodeMachineType="e2-custom-2-6144")
    notes = estimate(small, PRICES).notes
    assert any("with one of 3 zones down" in note for note in notes), notes
    assert not any("do not fit beside GKE's own pods" in note for note in notes)
