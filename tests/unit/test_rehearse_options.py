"""resources.json records the resource options a change plan and the drift rules need, as the engine
receives them (RegisterResourceRequest in the pinned SDK's pulumi/runtime/proto/resource_pb2.pyi)."""

from __future__ import annotations

import json

import pulumi
import pulumi_gcp as gcp
import pytest

from preview.harness import run_program
from preview.render import write_outputs
from rehearse.graph import Graph

BUCKET = "gcp:storage/bucket:Bucket"
OPTIONS = ("ignoreChanges", "replaceOnChanges", "deleteBeforeReplace", "retainOnDelete", "aliases", "protect")


def program() -> None:
    gcp.storage.Bucket("plain", location="EU")
    gcp.storage.Bucket("optioned", location="EU", labels={"team": "data"}, opts=pulumi.ResourceOptions(
        # Python names are translated to the wire's camelCase; nested paths pass through as written.
        ignore_changes=["labels", "lifecycle_rules", "versioning.enabled"], replace_on_changes=["location"],
        delete_before_replace=True, retain_on_delete=True, protect=True,
        aliases=[pulumi.Alias(name="old-logs")]))
    gcp.storage.Bucket("dbr-off", location="EU", opts=pulumi.ResourceOptions(delete_before_replace=False))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> dict[str, dict]:
    capture = run_program("options", {"gcp:project": "p"}, program=program)
    resources_file, _ = write_outputs(capture, tmp_path_factory.mktemp("build"))
    return {item["name"]: item for item in json.loads(resources_file.read_text())}


def test_each_option_is_recorded_for_the_resource_that_sets_it(recorded):
    optioned = recorded["optioned"]
    assert optioned["ignoreChanges"] == ["labels", "lifecycleRules", "versioning.enabled"]
    assert optioned["replaceOnChanges"] == ["location"]
    assert optioned["deleteBeforeReplace"] is True
    assert optioned["retainOnDelete"] is True
    assert optioned["protect"] is True
    assert optioned["aliases"] == ["urn:pulumi:options::airflow-gke::gcp:storage/bucket:Bucket::old-logs"]


def test_unset_options_read_as_unset(recorded):
    plain = recorded["plain"]
    assert all(option in plain for option in OPTIONS)
    assert (plain["ignoreChanges"], plain["replaceOnChanges"], plain["aliases"]) == ([], [], [])
    assert plain["deleteBeforeReplace"] is None and plain["retainOnDelete"] is False and plain["protect"] is False
    # An explicit false differs from "not set": the provider may still ask for delete-before-replace then.
    assert recorded["dbr-off"]["deleteBeforeReplace"] is False


def test_graph_reads_the_options_and_older_json_without_them(recorded):
    node = Graph.from_json(list(recorded.values())).of_type(BUCKET)
    optioned = next(n for n in node if n.name == "optioned")
    assert optioned.ignore_changes == ("labels", "lifecycleRules", "versioning.enabled")
    assert optioned.replace_on_changes == ("location",) and optioned.retain_on_delete
    assert optioned.delete_before_replace is True and optioned.aliases and optioned.protect
    legacy = {k: v for k, v in recorded["optioned"].items() if k not in OPTIONS}
    old = Graph.from_json([legacy]).nodes[legacy["urn"]]
    assert old.ignore_changes == () and old.delete_before_replace is None and not old.retain_on_delete


def test_committed_program_records_its_options(dev):
    items = {(r.type, r.name): r.to_json() for r in dev.resources}
    cluster = next(v for (t, _), v in items.items() if t == "gcp:container/cluster:Cluster")
    assert "nodeConfig" in cluster["ignoreChanges"]
    aliased = [v for v in items.values() if v["aliases"]]
    assert aliased, "the program aliases the Airflow KSA's Workload Identity binding"
