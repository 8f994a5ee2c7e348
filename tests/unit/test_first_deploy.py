"""Orderings a fresh GCP project enforces and mocks do not (issue 8): each is an explicit edge of the
declared graph, so it shows in resources.json `dependencies` and `make rehearse` can check it.

The public source of each rule sits next to the code that models it (components/*.py)."""

from __future__ import annotations

from preview.harness import Capture, Resource, StackMocks
from tests.conftest import run_stack
from tests.unit.test_gcp_components import (  # noqa: F401  (stack: a fixture)
    CLUSTER, GLOBAL_ADDRESS, K8S_PROVIDER, NODE_POOL, PROJECT_IAM_MEMBER, PSA_CONNECTION, SA_IAM_MEMBER, SERVICE,
    SUBNET, member, stack, transitive_dependencies)

SLEEP = "time:index/sleep:Sleep"
SERVICE_IDENTITY = "gcp:projects/serviceIdentity:ServiceIdentity"


def waits_for(capture: Capture, resource: Resource, other: Resource) -> bool:
    return other.urn in transitive_dependencies(capture, resource)


def workload_identity_bindings(capture: Capture) -> list[Resource]:
    bindings = [r for r in capture.of_type(SA_IAM_MEMBER) if r.inputs["role"] == "roles/iam.workloadIdentityUser"]
    # The Airflow and worker accounts, and one per task identity (taskIdentities: both committed stacks have one).
    assert len([r for r in bindings if "-wi-task-" not in r.name]) == 2, [r.name for r in bindings]
    return bindings


# --- 1. Workload Identity pool ------------------------------------------------------------------------------

def test_workload_identity_bindings_wait_for_the_cluster_that_creates_the_pool(stack):
    capture = stack.capture
    cluster = capture.one(CLUSTER)
    pool = cluster.outputs["workloadIdentityConfig"]["workloadPool"]
    for binding in workload_identity_bindings(capture):
        assert cluster.urn in binding.dependencies, f"{binding.name} does not wait for the cluster"
        assert binding.inputs["member"].startswith(f"serviceAccount:{pool}["), binding.inputs["member"]


def test_the_pool_is_taken_from_the_cluster_output_not_rebuilt_from_the_project(monkeypatch):
    # A cluster that reports another pool (as one in a fleet host project would): the bindings follow it.
    original = StackMocks.new_resource

    def new_resource(self, args):
        resource_id, outputs = original(self, args)
        if args.typ == CLUSTER:
            outputs = {**outputs, "workloadIdentityConfig": {"workloadPool": "fleet-host.svc.id.goog"}}
        return resource_id, outputs

    monkeypatch.setattr(StackMocks, "new_resource", new_resource)
    capture = run_stack("dev")
    members = {r.inputs["member"] for r in workload_identity_bindings(capture)}
    assert members == {"serviceAccount:fleet-host.svc.id.goog[airflow/airflow]",
                       "serviceAccount:fleet-host.svc.id.goog[airflow/airflow-worker]",
                       "serviceAccount:fleet-host.svc.id.goog[airflow/task-analytics]"}


def test_existing_stacks_keep_their_bindings_where_they_moved_from(stack):
    # Before issue 8 the bindings were children of Identity, named after the Google account. Without an
    # alias `pulumi up` would create the new binding, then delete the old one: the same member, removed.
    capture = stack.capture
    previous = {f"urn:pulumi:{capture.stack}::airflow-gke::airflow-gke:index:Identity$"
                f"gcp:serviceaccount/iAMMember:IAMMember::airflow-{suffix}-wi" for suffix in ("airflow", "worker")}
    aliased = {urn for binding in workload_identity_bindings(capture) for urn in binding.aliases}
    assert previous <= aliased
    assert not {r.urn for r in capture.resources} & previous


def test_the_airflow_workload_waits_for_the_bindings(stack):
    capture = stack.capture
    bindings = workload_identity_bindings(capture)
    workload = [r for r, _ in capture.kubernetes_objects()]
    assert workload
    for resource in workload:
        for binding in bindings:
            assert waits_for(capture, resource, binding), f"{resource.name} starts before {binding.name}"


# --- 2. API enablement propagates before use ------------------------------------------------------------------

def test_every_gcp_resource_waits_for_the_propagation_sleep_after_the_apis(stack):
    capture = stack.capture
    sleep = capture.one(SLEEP)
    assert sleep.inputs["createDuration"].endswith("s") and int(sleep.inputs["createDuration"][:-1]) >= 60
    assert {r.urn for r in capture.of_type(SERVICE)} <= set(sleep.dependencies)
    for resource in capture.resources:
        if resource.custom and resource.type.startswith("gcp:") and resource.type != SERVICE:
            assert waits_for(capture, resource, sleep), f"{resource.type} {resource.name} does not wait"


def test_the_peering_waits_for_the_service_networking_agent_and_its_range(stack):
    capture = stack.capture
    (agent,) = [r for r in capture.of_type(SERVICE_IDENTITY) if r.inputs["service"] == "servicenetworking.googleapis.com"]
    connection = capture.one(PSA_CONNECTION)
    assert agent.urn in connection.dependencies
    assert waits_for(capture, connection, capture.one(GLOBAL_ADDRESS))
    grants = [r for r in capture.of_type(PROJECT_IAM_MEMBER) if r.inputs["role"] == "roles/servicenetworking.serviceAgent"]
    assert [g.inputs["member"] for g in grants] == [agent.outputs["member"]]
    assert waits_for(capture, connection, grants[0])


# --- 4. Teardown ------------------------------------------------------------------------------------------------

def test_the_peering_can_be_deleted_while_cloud_sql_still_holds_it(stack):
    connection = stack.capture.one(PSA_CONNECTION).inputs
    # REMOVE_PEERING, not ABANDON: an abandoned peering keeps the VPC from being deleted.
    assert connection["deletionPolicy"] == "REMOVE_PEERING"
    assert connection["updateOnCreationFail"] is True


# --- 7. Races -----------------------------------------------------------------------------------------------------

def test_nodes_wait_for_the_node_account_roles(stack):
    capture = stack.capture
    node_grants = [r for r in capture.of_type(PROJECT_IAM_MEMBER) if r.inputs["member"] == member(capture, "nodes")]
    assert len(node_grants) >= 2
    nodes = capture.of_type(NODE_POOL) or [capture.one(CLUSTER)]  # Autopilot: the cluster provisions nodes
    for resource in nodes:
        for grant in node_grants:
            assert grant.urn in resource.dependencies, f"{resource.name} does not wait for {grant.inputs['role']}"


def test_kubernetes_resources_wait_for_the_node_pools(stack):
    capture = stack.capture
    provider = capture.one(K8S_PROVIDER)
    pools = capture.of_type(NODE_POOL)
    assert len(pools) == (0 if stack.name == "autopilot" else 2 if stack.cfg("spotPool") == "true" else 1)
    for pool in pools:
        assert pool.urn in provider.dependencies, f"the Kubernetes provider does not wait for {pool.name}"
    assert all(r.provider.startswith(provider.urn) for r, _ in capture.kubernetes_objects())


def test_the_peering_range_is_a_fixed_block_so_it_does_not_wait_for_the_subnet(stack):
    # An auto-allocated range could take the subnet's block and must wait for it (test_reuse.py covers that
    # mode of the Network component); the stack's range is fixed and checked against the subnet's ranges
    # before any resource is declared (test_config.py), so it is created as soon as the VPC is.
    capture = stack.capture
    address = capture.one(GLOBAL_ADDRESS)
    assert address.inputs["address"] and address.inputs["prefixLength"] <= 24
    assert capture.one(SUBNET).urn not in transitive_dependencies(capture, address)
