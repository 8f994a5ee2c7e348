"""Each rehearsal rule turns red on a program that breaks it: broken variants of the real dev graph
(the committed program, run under mocks) with one ordering or setting taken away."""

from __future__ import annotations

import copy
import dataclasses
from typing import Callable, Optional

import pytest

from preview.harness import Capture
from rehearse.graph import Graph
from rehearse.rules import DurationEntry, load_rules
from rehearse.simulate import Timeline, rehearse_destroy, rehearse_up
from rehearse.teardown import run_teardown_config

RULES = load_rules()
CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"
SQL = "gcp:sql/databaseInstance:DatabaseInstance"
CONNECTION = "gcp:servicenetworking/connection:Connection"
ADDRESS = "gcp:compute/globalAddress:GlobalAddress"
SUBNET = "gcp:compute/subnetwork:Subnetwork"
NETWORK = "gcp:compute/network:Network"
SERVICE = "gcp:projects/service:Service"
SLEEP = "time:index/sleep:Sleep"
PROJECT_IAM = "gcp:projects/iAMMember:IAMMember"
SA_IAM = "gcp:serviceaccount/iAMMember:IAMMember"
SERVICE_IDENTITY = "gcp:projects/serviceIdentity:ServiceIdentity"
BUCKET = "gcp:storage/bucket:Bucket"
K8S_PROVIDER = "pulumi:providers:kubernetes"
Items = list[dict]


@pytest.fixture(scope="module")
def dev_items(dev: Capture) -> Items:
    return [r.to_json() for r in dev.resources]


@pytest.fixture(scope="module")
def autopilot_items(autopilot: Capture) -> Items:
    return [r.to_json() for r in autopilot.resources]


@pytest.fixture(scope="module")
def teardown_items() -> Items:
    return [r.to_json() for r in run_teardown_config("dev").resources]


def edited(items: Items, edit: Callable[[Items], None]) -> Items:
    copied = copy.deepcopy(items)
    edit(copied)
    return copied


def of_type(items: Items, resource_type: str, where: Optional[Callable[[dict], bool]] = None) -> list[dict]:
    found = [i for i in items if i["type"] == resource_type and (where is None or where(i))]
    assert found, f"no {resource_type} in the graph"
    return found


def drop_edges(targets: list[dict], removed: list[dict]) -> None:
    gone = {r["urn"] for r in removed}
    for target in targets:
        before = len(target["dependencies"])
        target["dependencies"] = [d for d in target["dependencies"] if d not in gone]
        assert len(target["dependencies"]) < before, f"{target['name']} had no such dependency"


def up(items: Items, rules=RULES) -> Timeline:
    return rehearse_up(Graph.from_json(items), rules)


def teardown(items: Items) -> Timeline:
    return rehearse_destroy(Graph.from_json(items), RULES, "teardown", require_complete=True)


def fired(timeline: Timeline) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for v in timeline.violations + timeline.refusals:
        found.setdefault(v.rule_id, set()).add(v.resource)
    return found


def test_the_unbroken_graphs_are_clean(dev_items, autopilot_items, teardown_items):
    assert fired(up(dev_items)) == {} and fired(up(autopilot_items)) == {}
    assert fired(teardown(teardown_items)) == {} and teardown(teardown_items).ok


# ---- pulumi up ---------------------------------------------------------------------------------
def test_binding_without_the_cluster_dependency_fires_wi_pool_exists(dev_items):
    def edit(items):
        drop_edges(of_type(items, SA_IAM, lambda i: i["inputs"]["role"] == "roles/iam.workloadIdentityUser"),
                   of_type(items, CLUSTER))
    assert fired(up(edited(dev_items, edit))) == {"wi-pool-exists": {"airflow-wi-airflow", "airflow-wi-airflow-worker",
                                                                   "airflow-wi-task-analytics"}}


def test_a_race_won_by_luck_is_still_a_violation(dev_items):
    # Bindings that happen to start long after the cluster is done still lack the edge: real durations vary.
    slow_accounts = DurationEntry(type="gcp:serviceaccount/account:Account", match={"accountId": "~-(airflow|worker|task-analytics)$"},
                                  create="30m", delete="0s", source="test")
    rules = dataclasses.replace(RULES, durations=(slow_accounts, *RULES.durations))

    def edit(items):
        drop_edges(of_type(items, SA_IAM, lambda i: i["inputs"]["role"] == "roles/iam.workloadIdentityUser"),
                   of_type(items, CLUSTER))
    timeline = up(edited(dev_items, edit), rules)
    (cluster,) = [s for s in timeline.steps.values() if s.node.type == CLUSTER]
    bindings = [s for s in timeline.steps.values() if s.node.name.startswith("airflow-wi-")]
    assert all(cluster.end <= b.start for b in bindings)
    assert "wi-pool-exists" in fired(timeline)


def test_dropping_the_propagation_sleep_fires_api_enabled_before_use(dev_items):
    def edit(items):
        (sleep,) = of_type(items, SLEEP)
        items.remove(sleep)
        for item in items:
            if sleep["urn"] in item["dependencies"]:  # wait for the Services directly instead
                item["dependencies"] = [d for d in item["dependencies"] if d != sleep["urn"]] + sleep["dependencies"]
    found = fired(up(edited(dev_items, edit)))
    assert set(found) == {"api-enabled-before-use"}
    assert {"airflow-vpc", "airflow-pg", "airflow-gke", "airflow-psa"} <= found["api-enabled-before-use"]


def test_a_sleep_shorter_than_the_propagation_wait_fires(dev_items):
    def edit(items):
        of_type(items, SLEEP)[0]["inputs"]["createDuration"] = "10s"
    assert "airflow-vpc" in fired(up(edited(dev_items, edit)))["api-enabled-before-use"]


def test_a_resource_not_waiting_for_its_api_fires(dev_items):
    def edit(items):
        drop_edges(of_type(items, NETWORK), of_type(items, SLEEP))
    assert fired(up(edited(dev_items, edit))) == {"api-enabled-before-use": {"airflow-vpc"}}


def test_a_service_agent_generated_before_its_api_propagates_fires(dev_items):
    def edit(items):
        drop_edges(of_type(items, SERVICE_IDENTITY), of_type(items, SLEEP))
    found = fired(up(edited(dev_items, edit)))
    assert found == {"api-enabled-before-use": {"airflow-servicenetworking-agent"}}


def test_an_api_the_program_does_not_enable_fires(dev_items):
    def edit(items):
        (sqladmin,) = of_type(items, SERVICE, lambda i: i["inputs"]["service"] == "sqladmin.googleapis.com")
        items.remove(sqladmin)
        for item in items:
            item["dependencies"] = [d for d in item["dependencies"] if d != sqladmin["urn"]]
    found = fired(up(edited(dev_items, edit)))
    assert found == {"api-enabled-before-use": {"airflow-pg", "airflow-db", "airflow-user"}}


def test_peering_without_the_service_agent_fires_service_identity_before_peering(dev_items):
    def edit(items):
        agent = of_type(items, SERVICE_IDENTITY, lambda i: i["inputs"]["service"] == "servicenetworking.googleapis.com")
        agent_role = of_type(items, PROJECT_IAM, lambda i: "servicenetworking" in i["inputs"]["role"])
        drop_edges(of_type(items, CONNECTION), agent + agent_role)
    assert fired(up(edited(dev_items, edit))) == {"service-identity-before-peering": {"airflow-psa"}}


def test_private_sql_without_the_peering_fires_peering_before_private_sql(dev_items):
    def edit(items):
        drop_edges(of_type(items, SQL), of_type(items, CONNECTION))
    assert fired(up(edited(dev_items, edit))) == {"peering-before-private-sql": {"airflow-pg"}}


def test_peering_range_racing_the_subnet_fires_peering_range_after_subnets(dev_items):
    (fixed,) = of_type(dev_items, ADDRESS)
    assert fixed["inputs"]["address"] and up(dev_items).violations == []  # a fixed range need not wait

    def edit(items):  # back to an auto-allocated range, still not waiting for the subnet
        del of_type(items, ADDRESS)[0]["inputs"]["address"]
    assert fired(up(edited(dev_items, edit))) == {"peering-range-after-subnets": {"airflow-psa-range"}}


DEPLOYMENT = "kubernetes:apps/v1:Deployment"
JOB = "kubernetes:batch/v1:Job"


def init_containers(item: dict) -> list[dict]:
    return item["inputs"]["spec"]["template"]["spec"]["initContainers"]


def without_the_wait(items: Items) -> None:
    """The Deployment's pods no longer wait for migrations (no check-migrations init container)."""
    init = init_containers(of_type(items, DEPLOYMENT)[0])
    init[:] = [c for c in init if c["name"] != "wait-for-migrations"]


def step_named(timeline: Timeline, name: str):
    (step,) = [s for s in timeline.steps.values() if s.node.name == name]
    return step


def test_an_airflow_deployment_neither_after_the_job_nor_waiting_fires_airflow_pods_wait_for_migrations(dev_items):
    (deployment,) = of_type(dev_items, DEPLOYMENT)
    (job,) = of_type(dev_items, JOB)
    assert job["urn"] not in deployment["dependencies"] and up(dev_items).violations == []

    assert fired(up(edited(dev_items, without_the_wait))) == {"airflow-pods-wait-for-migrations": {"airflow-deployment"}}

    def waiting_before_the_proxy(items):  # init containers start in order: it could never reach the database
        init = init_containers(of_type(items, DEPLOYMENT)[0])
        wait = next(c for c in init if c["name"] == "wait-for-migrations")
        init.remove(wait)
        init.insert(0, wait)
    assert fired(up(edited(dev_items, waiting_before_the_proxy))) == {
        "airflow-pods-wait-for-migrations": {"airflow-deployment"}}

    def after_the_job_instead(items):  # the old ordering is fine too, only slower
        without_the_wait(items)
        of_type(items, DEPLOYMENT)[0]["dependencies"].append(of_type(items, JOB)[0]["urn"])
    assert fired(up(edited(dev_items, after_the_job_instead))) == {}


def test_a_rollout_waiting_for_migrations_is_ready_only_after_the_migration_job(dev_items):
    (wait,) = [w for w in RULES.readiness_waits if w.id == "rollout-waits-for-migrations"]
    timeline = up(dev_items)
    deployment, job = step_named(timeline, "airflow-deployment"), step_named(timeline, "airflow-migrations")
    assert deployment.start < job.end  # created alongside the Job
    assert deployment.end == max(deployment.start + RULES.duration(DEPLOYMENT, {}, "up"), job.end + wait.seconds)
    assert timeline.critical_path[-2:] == [job.node.urn, deployment.node.urn]
    # Without the readiness wait the model would let the rollout finish with the migration still running.
    blind = up(dev_items, dataclasses.replace(RULES, readiness_waits=()))
    assert step_named(blind, "airflow-deployment").end <= step_named(blind, "airflow-migrations").end < deployment.end
    # Pods that do not wait for migrations are not held back by the Job (nor is anything else).
    unheld = up(edited(dev_items, without_the_wait))
    assert step_named(unheld, "airflow-deployment").end == deployment.start + RULES.duration(DEPLOYMENT, {}, "up") \
        < job.end + wait.seconds


def forget_node_roles(items: Items) -> None:
    """Nothing waits for the node service account's roles any more."""
    roles = {i["urn"] for i in of_type(items, PROJECT_IAM, lambda i: "-nodes-" in i["name"])}
    for item in items:
        item["dependencies"] = [d for d in item["dependencies"] if d not in roles]


def test_node_pool_before_the_node_roles_fires_node_sa_roles_before_nodes(dev_items):
    def edit(items):
        drop_edges(of_type(items, NODE_POOL), of_type(items, PROJECT_IAM, lambda i: "-nodes-" in i["name"]))
        forget_node_roles(items)
    assert fired(up(edited(dev_items, edit))) == {"node-sa-roles-before-nodes": {"airflow-pool"}}


def test_autopilot_pods_before_the_node_roles_fire_node_sa_roles_before_nodes(autopilot_items):
    found = fired(up(edited(autopilot_items, forget_node_roles)))
    assert found == {"node-sa-roles-before-nodes": {"airflow-migrations", "airflow-deployment"}}


def test_kubernetes_provider_not_waiting_for_pools_fires_k8s_provider_after_node_pools(dev_items):
    def edit(items):
        drop_edges(of_type(items, K8S_PROVIDER), of_type(items, NODE_POOL))
    assert fired(up(edited(dev_items, edit))) == {"k8s-provider-after-node-pools": {"airflow-k8s"}}


# ---- pulumi destroy (the documented dev teardown) ------------------------------------------------
def test_a_protected_resource_refuses_the_whole_destroy(teardown_items):
    def edit(items):
        of_type(items, BUCKET)[0]["protect"] = True
    timeline = teardown(edited(teardown_items, edit))
    assert fired(timeline) == {"pulumi-protect": {"airflow-logs-bucket"}}
    assert not timeline.ok and {s.status for s in timeline.steps.values()} == {"kept"}


@pytest.mark.parametrize("resource_type, key, value", [
    (SQL, "deletionProtection", True),
    (CLUSTER, "deletionProtection", None),  # unset: the provider's default is on
    (CONNECTION, "deletionPolicy", "PREVENT"),
])
def test_deletion_protection_refuses_the_teardown(teardown_items, resource_type, key, value):
    def edit(items):
        (target,) = of_type(items, resource_type)
        if value is None:
            target["inputs"].pop(key, None)
        else:
            target["inputs"][key] = value
    timeline = teardown(edited(teardown_items, edit))
    assert set(fired(timeline)) == {"deletion-protection"}
    assert not timeline.ok and any(s.status == "blocked" for s in timeline.steps.values())


def test_a_bucket_without_force_destroy_refuses_the_teardown(teardown_items):
    def edit(items):
        of_type(items, BUCKET)[0]["inputs"]["forceDestroy"] = False
    timeline = teardown(edited(teardown_items, edit))
    assert fired(timeline) == {"bucket-not-empty": {"airflow-logs-bucket"}} and not timeline.ok


def test_deleting_the_peering_cloud_sql_held_fires_peering_released_before_delete(teardown_items):
    def edit(items):
        of_type(items, CONNECTION)[0]["inputs"].pop("deletionPolicy")
    timeline = teardown(edited(teardown_items, edit))
    assert fired(timeline) == {"peering-released-before-delete": {"airflow-psa"}}
    statuses = {s.node.name: s.status for s in timeline.steps.values()}
    assert statuses["airflow-psa"] == "failed" and statuses["airflow-vpc"] == "blocked"
    assert statuses["airflow-pg"] == "deleted"


def test_an_abandoned_peering_blocks_the_network(teardown_items):
    def edit(items):
        of_type(items, CONNECTION)[0]["inputs"]["deletionPolicy"] = "ABANDON"
    timeline = teardown(edited(teardown_items, edit))
    assert fired(timeline) == {"network-empty-before-delete": {"airflow-vpc"}} and not timeline.ok


def test_deleting_the_network_while_a_subnet_is_still_going_fires_network_empty_before_delete(teardown_items):
    def edit(items):
        drop_edges(of_type(items, SUBNET), of_type(items, NETWORK))
    timeline = teardown(edited(teardown_items, edit))
    assert fired(timeline) == {"network-empty-before-delete": {"airflow-vpc"}}


BREAKING_TESTS = {
    "wi-pool-exists": test_binding_without_the_cluster_dependency_fires_wi_pool_exists,
    "api-enabled-before-use": test_dropping_the_propagation_sleep_fires_api_enabled_before_use,
    "service-identity-before-peering": test_peering_without_the_service_agent_fires_service_identity_before_peering,
    "peering-before-private-sql": test_private_sql_without_the_peering_fires_peering_before_private_sql,
    "peering-range-after-subnets": test_peering_range_racing_the_subnet_fires_peering_range_after_subnets,
    "node-sa-roles-before-nodes": test_node_pool_before_the_node_roles_fires_node_sa_roles_before_nodes,
    "k8s-provider-after-node-pools": test_kubernetes_provider_not_waiting_for_pools_fires_k8s_provider_after_node_pools,
    "pulumi-protect": test_a_protected_resource_refuses_the_whole_destroy,
    "deletion-protection": test_deletion_protection_refuses_the_teardown,
    "bucket-not-empty": test_a_bucket_without_force_destroy_refuses_the_teardown,
    "peering-released-before-delete": test_deleting_the_peering_cloud_sql_held_fires_peering_released_before_delete,
    "network-empty-before-delete": test_an_abandoned_peering_blocks_the_network,
    "airflow-pods-wait-for-migrations":
        test_an_airflow_deployment_neither_after_the_job_nor_waiting_fires_airflow_pods_wait_for_migrations,
}


def test_every_rule_has_a_breaking_test_here():
    assert set(BREAKING_TESTS) == {r.id for r in RULES.rules}


def test_cloud_sql_waiting_for_gke_puts_both_on_the_critical_path(dev_items):
    def edit(items):
        of_type(items, SQL)[0]["dependencies"].append(of_type(items, CLUSTER)[0]["urn"])
    parallel, serial = up(dev_items), up(edited(dev_items, edit))
    on_path = {serial.steps[u].node.type for u in serial.critical_path}
    assert {SQL, CLUSTER} <= on_path
    (sql,) = [s for s in serial.steps.values() if s.node.type == SQL]
    (cluster,) = [s for s in serial.steps.values() if s.node.type == CLUSTER]
    assert serial.total >= sql.duration + cluster.duration > parallel.total
