"""The change plan (rehearse/changes.py): which config change replaces what, and the data-loss refusal."""

from __future__ import annotations

import json
import multiprocessing
import resource
import time
from concurrent.futures import ProcessPoolExecutor

import pytest
import yaml

from preview.harness import ROOT, load_stack_file, run_program
from rehearse.changes import (DATA_LOSS_NAMES, DATA_LOSS_TYPES, GCP_RULES, Rules, changed_paths, conditional_replace, plan,
                              provider_replaced, _suppressed)
from rehearse.changes_cli import (ACK_KEY, check_change, declared_keys, load_alternates, plan_all, text_table,
                                  write)

NAMESPACE = "kubernetes:core/v1:Namespace"
PROVIDER = "pulumi:providers:kubernetes"
# Prod refuses these alternates by design (its deletion protections); every other alternate must be valid.
PROD_REFUSES = {"clusterDeletionProtection", "dbDeletionProtection", "dbPulumiProtect", "logsForceDestroy"}


@pytest.fixture(scope="module")
def plans() -> dict[str, dict[str, dict]]:
    """The plan of every declared key on dev and prod (the budget: about 90 s of CPU for both). The two stacks
    are planned side by side, one process each (CI has two cores); the bound is CPU time of those processes,
    not wall time, so it holds on a loaded machine too."""
    stacks = ("dev", "prod")
    started = _cpu_seconds()
    # spawn, not fork: earlier tests leave the mocks' gRPC threads in this process, and a forked child can
    # inherit one of their locks held (it then waits forever)
    with ProcessPoolExecutor(len(stacks), mp_context=multiprocessing.get_context("spawn")) as pool:
        result = {stack: {e["key"]: e for e in entries} for stack, entries in zip(stacks, pool.map(plan_all, stacks))}
    elapsed = _cpu_seconds() - started  # the pool's processes are reaped on exit: their CPU is counted
    assert elapsed < 120, f"the change plan over every key took {elapsed:.0f}s of CPU"
    return result


def _cpu_seconds() -> float:
    """CPU time of this process and of its reaped children (the planning processes)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _types(entry: dict, field: str = "replaced") -> set[str]:
    return {item["resource"].split()[0] for item in entry[field]}


def _kubernetes(entry: dict) -> list[str]:
    return [r["urn"] for r in entry["replaced"] if "::kubernetes:" in r["urn"] or "$kubernetes:" in r["urn"]]


def test_every_declared_key_has_an_alternate_value():
    alternates = load_alternates()
    missing = [k for k in declared_keys() if k not in alternates]
    assert not missing, f"add an alternate value for {missing} to rehearse/change_alternates.yaml"


def test_declared_keys_are_read_with_or_without_a_type(tmp_path):
    project = tmp_path / "Pulumi.yaml"
    project.write_text(yaml.safe_dump({"name": "x", "config": {
        "typed": {"type": "string", "default": "a"}, "untyped": {"description": "no type"}, "bare": 3,
        "gcp:region": {"type": "string"}, "airflow-gke:full": {"default": 1}}}))
    assert sorted(declared_keys(project)) == ["bare", "full", "typed", "untyped"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_alternate_is_planned_and_valid(plans, stack):
    refused = {k for k, e in plans[stack].items() if e.get("refused")}
    assert refused == (PROD_REFUSES if stack == "prod" else set()), \
        {k: plans[stack][k]["refused"] for k in refused}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_control_plane_access_keeps_every_kubernetes_object(plans, stack):
    entry = plans[stack]["controlPlaneAccess"]
    assert entry["from"] != entry["to"]
    assert _kubernetes(entry) == [] and not entry["data_loss"], entry["replaced"]
    # The kubeconfig did change: the provider is updated in place, not replaced.
    assert "kubeconfig" in next(u["paths"] for u in entry["updated"] if u["resource"].startswith("kubernetes "))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_replaced_cluster_replaces_the_provider_and_the_namespace(plans, stack):
    entry = plans[stack]["masterCidr"]
    assert {"Cluster", "NodePool", "kubernetes", "Namespace"} <= _types(entry)
    assert entry["data_loss"] and any(NAMESPACE.split(":")[-1] in r for r in entry["data_loss_resources"])


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_renaming_everything_loses_the_data(plans, stack):
    entry = plans[stack]["namePrefix"]
    lost = {r.split()[0] for r in entry["data_loss_resources"]}
    assert lost == {t.split(":")[-1] for t in [*DATA_LOSS_TYPES, *(t for t, _ in DATA_LOSS_NAMES)]}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_password_rotation_replaces_the_password_and_updates_the_user(plans, stack):
    entry = plans[stack]["dbPasswordVersion"]
    assert "RandomPassword" in _types(entry) and "User" in _types(entry, "updated")
    assert "DatabaseInstance" not in _types(entry) | _types(entry, "updated") and not entry["data_loss"]


def test_node_pool_resize_is_an_update(plans):
    entry = plans["prod"]["nodeMachineType"]
    assert _types(entry, "updated") == {"NodePool"} and entry["replaced"] == []


def test_a_new_region_replaces_the_instance_and_its_database_and_user():
    config, _ = load_stack_file("dev")
    base = run_program("dev", config=dict(config))
    moved = run_program("dev", config={**config, "gcp:region": "us-east1", "airflow-gke:zone": "us-east1-b"})
    result = plan(base, moved)
    replaced = {result.types[u].split(":")[-1]: why for u, why in result.replaced.items()}
    assert "region changed" in replaced["DatabaseInstance"]
    # Their `instance` input comes from the replaced instance (unknown at preview) and is ForceNew.
    assert "instance unknown at preview" in replaced["Database"]
    assert "instance unknown at preview" in replaced["User"]


def test_ignore_changes_never_diffs():
    old = {"nodeConfig": {"machineType": "a"}, "location": "x"}
    new = {"nodeConfig": {"machineType": "b"}, "location": "x"}
    assert changed_paths(old, new, ["nodeConfig"]) == []
    assert changed_paths(old, new, []) == ["nodeConfig.machineType"]


def test_kubeconfig_rule_follows_the_cluster_identifier():
    def kubeconfig(server: str) -> str:
        return json.dumps({"current-context": "c", "contexts": [{"name": "c", "context": {"cluster": "k"}}],
                           "clusters": [{"name": "k", "cluster": {"server": server}}]})
    old, new = {"kubeconfig": kubeconfig("https://a")}, {"kubeconfig": kubeconfig("https://b")}
    assert provider_replaced(old, new, set())  # no identifier: the server change replaces
    assert provider_replaced(old, dict(old), {"kubeconfig"})  # unknown kubeconfig replaces
    same = {"clusterIdentifier": "id-1"}
    assert provider_replaced({**old, **same}, {**new, **same}, set()) is None
    assert provider_replaced({**old, **same}, {**new, **same}, {"kubeconfig"}) is None
    assert provider_replaced({**old, **same}, {**new, "clusterIdentifier": "id-2"}, set())
    assert provider_replaced({**old, **same}, {**old, **same}, {"clusterIdentifier"})
    # Adding an identifier is judged by the kubeconfig as before (on-boarding replaces nothing by itself).
    assert provider_replaced(old, {**old, **same}, set()) is None


def test_cloud_sql_disk_shrink_replaces_only_without_autoresize():
    rule = next(r for r in Rules.load().conditional["gcp:sql/databaseInstance:DatabaseInstance"]
                if r["path"] == "settings.diskSize")
    old = {"settings": {"diskSize": 50, "diskAutoresize": False}}
    shrink = {"settings": {"diskSize": 20, "diskAutoresize": False}}
    assert conditional_replace(rule, old, shrink)
    auto = {"settings": {"diskSize": 20, "diskAutoresize": True}}
    assert not conditional_replace(rule, old, auto) and _suppressed(rule, old, auto)


def test_generated_rules_name_their_source():
    data = yaml.safe_load(GCP_RULES.read_text())
    assert len(data["source"]["commit"]) == 40
    for typ, rules in data["types"].items():
        for rule in rules:
            assert rule["source"].startswith("google/") and "#L" in rule["source"], (typ, rule)
    cluster = {r["path"] for r in data["types"]["gcp:container/cluster:Cluster"]}
    assert {"location", "privateClusterConfig.masterIpv4CidrBlock", "network"} <= cluster


def test_changes_json_and_table(plans, tmp_path):
    entries = list(plans["prod"].values())
    paths = write("prod", entries, tmp_path)
    written = json.loads(paths[0].read_text())
    assert {"key", "from", "to", "replaced", "updated", "data_loss", "acknowledged"} <= set(written[0])
    assert "DATA LOSS" in text_table("prod", entries)


def _namespace_change(stack: str, acknowledge: bool) -> tuple[dict, dict]:
    base, _ = load_stack_file(stack)
    new = {**base, "airflow-gke:namespace": "airflow2"}
    if acknowledge:
        new[ACK_KEY] = json.dumps(["namespace"])
    return base, new


def test_prod_refuses_an_unacknowledged_data_loss():
    code, message = check_change("prod", *_namespace_change("prod", acknowledge=False))
    assert code == 1 and "refused" in message and "namespace" in message and ACK_KEY in message


def test_prod_accepts_an_acknowledged_data_loss():
    code, message = check_change("prod", *_namespace_change("prod", acknowledge=True))
    assert code == 0 and "acknowledged" in message


def test_dev_warns_on_a_data_loss():
    code, message = check_change("dev", *_namespace_change("dev", acknowledge=False))
    assert code == 0 and message.splitlines()[-1].startswith("warning")


def test_prod_passes_a_change_without_data_loss():
    base, _ = load_stack_file("prod")
    code, message = check_change("prod", base, {**base, "airflow-gke:replicas": "3"})
    assert code == 0 and "refused" not in message


def test_acknowledge_key_is_declared_with_a_default():
    config = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert config["acknowledgeReplace"]["default"] == []
