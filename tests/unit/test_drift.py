"""The second `pulumi up`: drift rules (rehearse/drift_rules.yaml, rehearse/drift.py) flag a field the program
sets that the platform moves; the committed stacks set none without ignoreChanges; the database keeps its
initial disk size without diffing once autoresize grew it."""

from __future__ import annotations

import json
import re

import pulumi
import pulumi_gcp as gcp
import pytest
import yaml

from components.database import Database
from preview.harness import Capture, run_program
from rehearse.__main__ import main
from rehearse.drift import DRIFT_FILE, check_drift, covers, load_drift_rules, parse_path
from rehearse.graph import Graph
from rehearse.rules import RulesError

RULES = load_drift_rules()
SQL = "gcp:sql/databaseInstance:DatabaseInstance"
POOL = "gcp:container/nodePool:NodePool"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
SOURCE = re.compile(r"https://\S+|[\w.-]+/[\w.-]+#\d+|[\w.-]+/[\w.-]+@[0-9a-f]{40}")


def item(name: str, type_: str, inputs: dict, ignore: tuple[str, ...] = ()) -> dict:
    return {"urn": f"urn:pulumi:t::p::{type_}::{name}", "type": type_, "name": name, "custom": True,
            "inputs": inputs, "ignoreChanges": list(ignore)}


def drift(*items: dict) -> list[tuple[str, str]]:
    return [(v.rule_id, v.resource) for v in check_drift(Graph.from_json(list(items)), RULES)]


# ---- the committed program ------------------------------------------------------------------------
@pytest.mark.parametrize("stack", ["dev", "prod", "autopilot"])
def test_committed_stacks_set_no_drifting_field(request, stack):
    capture: Capture = request.getfixturevalue(stack)
    found = check_drift(Graph.from_capture(capture), RULES)
    assert found == [], "\n".join(f"{v.rule_id} {v.resource}: {v.missing}" for v in found)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_database_ignores_its_disk_size_once_created(request, stack):
    instance = request.getfixturevalue(stack).one(SQL)
    assert instance.inputs["settings"]["diskAutoresize"] is True
    assert instance.inputs["settings"]["diskSize"] > 0  # the initial size is still declared
    assert "settings.diskSize" in instance.ignore_changes


def test_automatic_growth_can_be_capped_and_is_not_by_default(dev):
    assert "diskAutoresizeLimit" not in dev.one(SQL).inputs["settings"]  # the API's 0: no cap

    def program() -> None:
        Database("capped", {"project": "p", "region": "europe-west1", "network_id": "projects/p/global/networks/n",
                            "version": "POSTGRES_17", "tier": "db-custom-1-3840", "high_availability": False,
                            "disk_size_gb": 20, "disk_autoresize_limit_gb": 200, "backup_retention_count": 7,
                            "log_retention_days": 7, "maintenance_day": 7, "maintenance_hour": 3})

    instance = run_program("capped", {"gcp:project": "p"}, program=program).one(SQL)
    assert instance.inputs["settings"]["diskAutoresizeLimit"] == 200
    assert instance.ignore_changes == ["settings.diskSize"]


def test_a_program_setting_disk_size_without_ignore_changes_is_flagged():
    def program() -> None:
        settings = gcp.sql.DatabaseInstanceSettingsArgs(tier="db-custom-1-3840", disk_size=20, disk_autoresize=True)
        gcp.sql.DatabaseInstance("grows", database_version="POSTGRES_17", settings=settings)
        gcp.sql.DatabaseInstance("ignored", database_version="POSTGRES_17", settings=settings,
                                 opts=pulumi.ResourceOptions(ignore_changes=["settings.diskSize"]))
        gcp.sql.DatabaseInstance("fixed", database_version="POSTGRES_17", settings=gcp.sql.DatabaseInstanceSettingsArgs(
            tier="db-custom-1-3840", disk_size=20, disk_autoresize=False))

    capture = run_program("drift", {"gcp:project": "p", "gcp:region": "europe-west1"}, program=program)
    found = check_drift(Graph.from_capture(capture), RULES)
    assert [(v.rule_id, v.resource) for v in found] == [("sql-disk-size-under-autoresize", "grows")]
    assert "settings.diskSize = 20" in found[0].missing and "ignoreChanges" in found[0].missing


def test_autoresize_is_on_when_unset_and_an_ancestor_path_covers_the_field():
    unset = {"settings": {"diskSize": 20}}
    assert drift(item("a", SQL, unset)) == [("sql-disk-size-under-autoresize", "a")]
    assert drift(item("b", SQL, unset, ignore=("settings",))) == []
    assert drift(item("c", SQL, {"settings": {"tier": "db-f1-micro"}})) == []  # size left to the API


def test_settings_version_is_never_the_programs_to_set():
    assert drift(item("a", SQL, {"settings": {"version": 3}})) == [("sql-settings-version", "a")]


def test_node_pool_counts_and_version_under_the_autoscaler_and_auto_upgrade():
    autoscaled = {"autoscaling": {"minNodeCount": 1, "maxNodeCount": 3}}
    assert drift(item("p", POOL, {**autoscaled, "nodeCount": 2})) == [("node-pool-node-count-under-autoscaling", "p")]
    assert drift(item("q", POOL, {"nodeCount": 2})) == []  # a fixed-size pool: nodeCount is the program's
    assert drift(item("r", POOL, {**autoscaled, "initialNodeCount": 1})) == [("node-pool-initial-node-count", "r")]
    assert drift(item("s", POOL, {**autoscaled, "initialNodeCount": 1}, ignore=("initialNodeCount",))) == []
    assert drift(item("t", POOL, {"version": "1.33.5-gke.1200000"})) == [("node-pool-version-under-auto-upgrade", "t")]
    assert drift(item("u", POOL, {"version": "1.33.5-gke.1200000", "management": {"autoUpgrade": False}})) == []


def test_cluster_default_pool_fields_need_ignore_changes():
    cluster = {"removeDefaultNodePool": True, "initialNodeCount": 1, "nodeConfig": {"machineType": "e2-small"}}
    assert sorted(drift(item("c", "gcp:container/cluster:Cluster", cluster))) == [
        ("cluster-default-pool-node-config", "c"), ("cluster-initial-node-count", "c")]
    assert drift(item("c", "gcp:container/cluster:Cluster", cluster, ignore=("nodeConfig", "initialNodeCount"))) == []


def test_replicas_drift_only_under_an_hpa_targeting_the_workload():
    deployment = item("web", DEPLOYMENT, {"metadata": {"name": "web", "namespace": "a"}, "spec": {"replicas": 2}})
    hpa = item("web-hpa", HPA, {"metadata": {"namespace": "a"},
                                "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}}})
    elsewhere = item("other-hpa", HPA, {"metadata": {"namespace": "b"},
                                        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}}})
    assert drift(deployment) == [] and drift(deployment, elsewhere) == []
    assert drift(deployment, hpa) == [("k8s-replicas-under-hpa", "web")]


def test_controller_annotations_drift_only_when_declared():
    declared = {"metadata": {"annotations": {"deployment.kubernetes.io/revision": "1", "team": "data"}}}
    assert drift(item("d", DEPLOYMENT, declared)) == [("k8s-deployment-revision-annotation", "d")]
    assert drift(item("e", DEPLOYMENT, {"metadata": {"annotations": {"team": "data"}}})) == []


def test_property_paths_as_ignore_changes_writes_them():
    assert parse_path('metadata.annotations["deployment.kubernetes.io/revision"]') == (
        "metadata", "annotations", "deployment.kubernetes.io/revision")
    assert parse_path("settings.databaseFlags[0].name") == ("settings", "databaseFlags", "0", "name")
    assert covers(parse_path("settings"), parse_path("settings.diskSize"))
    assert covers(parse_path("spec.*.replicas"), parse_path("spec.x.replicas"))
    assert not covers(parse_path("settings.diskType"), parse_path("settings.diskSize"))
    assert not covers(parse_path("settings.diskSize.x"), parse_path("settings.diskSize"))
    with pytest.raises(RulesError):
        parse_path('a["unterminated')


# ---- the data file ---------------------------------------------------------------------------------
def test_every_drift_rule_and_checked_field_has_a_public_source():
    data = yaml.safe_load(DRIFT_FILE.read_text())
    for rule in RULES:
        assert SOURCE.search(rule.source), rule.id
        assert "TPG" not in rule.source.split(), rule.id  # abbreviations expanded to repo@commit
    for entry in data["not_drift"]:
        assert entry["why"] and entry["source"], entry["path"]
    declared = {(r.type, r.path) for r in RULES}
    assert not declared & {(e["type"], e["path"]) for e in data["not_drift"]}


def test_a_rule_without_a_source_or_with_a_bad_condition_fails_loudly(tmp_path):
    data = yaml.safe_load(DRIFT_FILE.read_text())
    broken = dict(data, drift=[{k: v for k, v in data["drift"][0].items() if k != "source"}])
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(broken))
    with pytest.raises(RulesError, match="lacks source"):
        load_drift_rules(tmp_path / "a.yaml")
    bad = dict(data, drift=[{**data["drift"][0], "when": {"settings.diskAutoresize": True}}])
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(RulesError, match="takes a list"):
        load_drift_rules(tmp_path / "b.yaml")


# ---- make rehearse ---------------------------------------------------------------------------------
def test_make_rehearse_reports_drift_and_fails(tmp_path, dev: Capture, capsys):
    items = [r.to_json() for r in dev.resources]
    for entry in items:
        if entry["type"] == SQL:
            entry["ignoreChanges"] = [i for i in entry["ignoreChanges"] if i != "settings.diskSize"]
    graph_file = tmp_path / "resources.json"
    graph_file.write_text(json.dumps(items))
    assert main(["--stack", "drifting", "--resources", str(graph_file), "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "[sql-disk-size-under-autoresize]" in out and "FAILED in second pulumi up (drift)" in out
    assert "source: hashicorp/terraform-provider-google@" in out
