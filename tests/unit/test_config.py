"""components.config.load_stack_config: validation, error messages, defaults, and Pulumi.yaml agreement."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from pathlib import Path
from typing import Optional

import pytest
import yaml

import preview.harness as harness
from components.config import PROJECT, ConfigError, StackConfig, load_stack_config
from tests.conftest import run_stack

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILE = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
DECLARED = PROJECT_FILE["config"]

# Retired keys: read only to be refused with their migration message, no longer declared.
RETIRED_KEYS = {f"{PROJECT}:privateServicesPrefixLength"}
# Provider settings: declared by the gcp provider, not by this project.
PROVIDER_KEYS = {"gcp:project", "gcp:region"}

MINIMAL = {
    "gcp:project": "acme-data-123",
    "gcp:region": "us-central1",
    f"{PROJECT}:dagsRepo": "https://github.com/acme/dags.git",
}


def full_key(key: str) -> str:
    return key if ":" in key else f"{PROJECT}:{key}"


class DictSource:
    """The smallest config source: `get(namespace, key)` over a dict of full keys; secrets in a second dict."""

    def __init__(self, values: dict[str, str], secrets: Optional[dict[str, object]] = None) -> None:
        self.values = dict(values)
        self.secrets = dict(secrets or {})

    def get(self, namespace: str, key: str) -> Optional[str]:
        return self.values.get(f"{namespace}:{key}")

    def get_secret(self, namespace: str, key: str):
        return self.secrets.get(f"{namespace}:{key}")


class RecordingSource(DictSource):
    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.plain: set[str] = set()
        self.secret: set[str] = set()

    def get(self, namespace: str, key: str) -> Optional[str]:
        self.plain.add(f"{namespace}:{key}")
        return super().get(namespace, key)

    def get_secret(self, namespace: str, key: str):
        self.secret.add(f"{namespace}:{key}")
        return super().get_secret(namespace, key)


# What a prod stack must set besides MINIMAL (components/config/airflow.py `_check_production_endpoints`).
PROD_REQUIRED = {
    f"{PROJECT}:baseUrl": "https://airflow.acme-data.dev",
    f"{PROJECT}:airflowImage": "us-central1-docker.pkg.dev/acme-data-123/airflow/airflow:1.0",
}


def config_with(*, drop: tuple[str, ...] = (), secrets: Optional[dict] = None, **overrides: str) -> DictSource:
    prod = "prod" in (overrides.get("environment"), overrides.get(f"{PROJECT}:environment"))
    values = {**MINIMAL, **(PROD_REQUIRED if prod else {}), **{full_key(k): v for k, v in overrides.items()}}
    for key in drop:
        values.pop(full_key(key), None)
    return DictSource(values, {full_key(k): v for k, v in (secrets or {}).items()})


def load(**overrides: str) -> StackConfig:
    return load_stack_config(config_with(**overrides))


def load_error(**overrides: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(**overrides)
    return info.value


def problem_for(error: ConfigError, key: str) -> str:
    lines = [p for p in error.problems if p.startswith(key + " ")]
    assert len(lines) == 1, f"expected one problem about {key}, got: {error.problems}"
    return lines[0]


def fix_argv(problem: str) -> list[str]:
    """The `Fix:` command of one problem line as argv (<placeholders> count as one word)."""
    assert "Fix: " in problem, problem
    command = problem.split("Fix: ", 1)[1]
    return shlex.split(re.sub(r"<[^<>]*>", "PLACEHOLDER", command))


def assert_valid_set_command(problem: str, key: str) -> list[str]:
    """The fix is a well-formed `pulumi config set [--path] KEY VALUE` (or `rm [--path]`) for that key."""
    argv = fix_argv(problem)
    assert argv[:2] == ["pulumi", "config"], problem
    flags = [a for a in argv[3:] if a.startswith("--")]
    positional = [a for a in argv[3:] if not a.startswith("--")]
    assert set(flags) <= {"--path", "--secret"}, problem
    assert positional, problem
    if "--path" in flags:
        # A path into a list or object value: KEY[0], KEY.field or exactly the nested key named.
        assert positional[0] == key or positional[0].startswith((key + "[", key + ".")), problem
    else:
        assert positional[0] == key, problem
    if argv[2] == "set":
        assert len(positional) == 2, f"`pulumi config set` takes KEY and one VALUE: {problem}"
    else:
        assert argv[2] == "rm" and len(positional) == 1, problem
    return argv


# (overrides, key the problem must name, text of the bad value that must appear in it)
BAD_INPUTS = [
    pytest.param({"gcp:region": "us_central1"}, "gcp:region", "us_central1", id="region-underscore"),
    pytest.param({"gcp:region": "US-Central1"}, "gcp:region", "US-Central1", id="region-uppercase"),
    pytest.param({"gcp:project": "My_Project"}, "gcp:project", "My_Project", id="project-format"),
    pytest.param({"gcp:project": "abc"}, "gcp:project", "abc", id="project-too-short"),
    pytest.param({"environment": "production"}, "environment", "production", id="environment-unknown"),
    pytest.param({"clusterMode": "hybrid"}, "clusterMode", "hybrid", id="clusterMode-unknown"),
    pytest.param({"replicas": "0"}, "replicas", "0", id="replicas-zero"),
    pytest.param({"replicas": "two"}, "replicas", "two", id="replicas-not-a-number"),
    pytest.param({"dbDiskSizeGb": "-5"}, "dbDiskSizeGb", "-5", id="dbDiskSizeGb-negative"),
    pytest.param({"dbDiskSizeGb": "0"}, "dbDiskSizeGb", "0", id="dbDiskSizeGb-zero"),
    pytest.param({"dbBackupRetentionCount": "0"}, "dbBackupRetentionCount", "0", id="backups-zero"),
    pytest.param({"dbBackupRetentionCount": "400"}, "dbBackupRetentionCount", "400", id="backups-too-many"),
    pytest.param({"dbLogRetentionDays": "8"}, "dbLogRetentionDays", "8", id="pitr-days-8"),
    pytest.param({"dbVersion": "POSTGRES_14"}, "dbVersion", "POSTGRES_14", id="postgres-too-old"),
    pytest.param({"dbTier": "n1-standard-1"}, "dbTier", "n1-standard-1", id="dbTier-format"),
    pytest.param({"dbMaintenanceHour": "24"}, "dbMaintenanceHour", "24", id="maintenance-hour-24"),
    pytest.param({"subnetCidr": "not-a-cidr"}, "subnetCidr", "not-a-cidr", id="cidr-unparseable"),
    pytest.param({"podsCidr": "10.20.0.0/33"}, "podsCidr", "10.20.0.0/33", id="cidr-bad-prefix"),
    pytest.param({"subnetCidr": "10.10.0.1/20"}, "subnetCidr", "10.10.0.1/20", id="cidr-host-bits"),
    pytest.param({"podsCidr": "10.10.0.0/16"}, "podsCidr", "10.10.0.0/16", id="pods-overlap-subnet"),
    pytest.param({"masterCidr": "10.10.0.16/28"}, "masterCidr", "10.10.0.16/28", id="master-overlap-subnet"),
    pytest.param({"masterCidr": "172.16.0.0/24"}, "masterCidr", "172.16.0.0/24", id="master-not-28"),
    pytest.param({"privateServicesPrefixLength": "20"}, "privateServicesPrefixLength", "20", id="psa-prefix-retired"),
    pytest.param({"privateServicesRange": "10.10.0.0/16"}, "privateServicesRange", "10.10.0.0/16",
                 id="psa-overlaps-subnet"),
    pytest.param({"privateServicesRange": "10.20.128.0/20"}, "privateServicesRange", "10.20.128.0/20",
                 id="psa-inside-pods"),
    pytest.param({"privateServicesRange": "172.16.0.0/24"}, "privateServicesRange", "172.16.0.0/24",
                 id="psa-overlaps-master"),
    pytest.param({"privateServicesRange": "34.120.0.0/16"}, "privateServicesRange", "34.120.0.0/16",
                 id="psa-public"),
    pytest.param({"privateServicesRange": "10.40.0.0/26"}, "privateServicesRange", "10.40.0.0/26",
                 id="psa-smaller-than-24"),
    pytest.param({"privateServicesRange": "10.40.0.1/16"}, "privateServicesRange", "10.40.0.1/16",
                 id="psa-host-bits"),
    pytest.param({"kubernetesVersion": "1.27"}, "kubernetesVersion", "1.27", id="k8s-1.27"),
    pytest.param({"kubernetesVersion": "latest"}, "kubernetesVersion", "latest", id="k8s-not-a-version"),
    pytest.param({"releaseChannel": "beta"}, "releaseChannel", "beta", id="release-channel-unknown"),
    pytest.param({"nodeMinCount": "3", "nodeMaxCount": "2"}, "nodeMaxCount", "2", id="node-max-below-min"),
    pytest.param({"nodeMachineType": "e2-custom-3-4096"}, "nodeMachineType", "e2-custom-3-4096", id="custom-odd-vcpus"),
    pytest.param({"nodeMachineType": "e2-custom-2-5000"}, "nodeMachineType", "e2-custom-2-5000", id="custom-not-256mb"),
    pytest.param({"spotMachineType": "e2-custom-2-20480"}, "spotMachineType", "e2-custom-2-20480",
                 id="custom-too-much-memory-per-vcpu"),
    pytest.param({"nodeMachineType": "n2-custom-2-4096"}, "nodeMachineType", "n2-custom-2-4096", id="custom-not-e2"),
    pytest.param({"nodeDiskSizeGb": "10"}, "nodeDiskSizeGb", "10", id="node-disk-too-small"),
    pytest.param({"masterAuthorizedNetworks": '["203.0.113.0/24", "bad-cidr"]'}, "masterAuthorizedNetworks",
                 "bad-cidr", id="authorized-networks-bad-entry"),
    pytest.param({"masterAuthorizedNetworks": "203.0.113.0/24"}, "masterAuthorizedNetworks", "203.0.113.0/24",
                 id="authorized-networks-not-a-list"),
    pytest.param({"environment": "prod", "dbDeletionProtection": "false"}, "dbDeletionProtection", "false",
                 id="prod-db-deletion-protection-off"),
    pytest.param({"environment": "prod", "dbPulumiProtect": "false"}, "dbPulumiProtect", "false",
                 id="prod-pulumi-protect-off"),
    pytest.param({"environment": "prod", "clusterDeletionProtection": "false"}, "clusterDeletionProtection",
                 "false", id="prod-cluster-deletion-protection-off"),
    pytest.param({"zone": "europe-west4-a"}, "zone", "europe-west4-a", id="zone-outside-region"),
    pytest.param({"zone": "us-central1"}, "zone", "us-central1", id="zone-is-a-region"),
    pytest.param({"airflowImage": "apache/airflow"}, "airflowImage", "apache/airflow", id="image-no-tag"),
    pytest.param({"airflowImage": "apache/airflow:latest"}, "airflowImage", "apache/airflow:latest",
                 id="image-latest"),
    pytest.param({"airflowImage": "Apache/Airflow 3"}, "airflowImage", "Apache/Airflow 3", id="image-malformed"),
    pytest.param({"dagsRepo": "http://github.com/acme/dags.git"}, "dagsRepo", "http://github.com/acme/dags.git",
                 id="dagsRepo-http"),
    pytest.param({"dagsRepo": "file:///srv/dags"}, "dagsRepo", "file:///srv/dags", id="dagsRepo-file"),
    pytest.param({"dagsRef": "release/../main"}, "dagsRef", "release/../main", id="dagsRef-dotdot"),
    pytest.param({"dagsRef": "my branch"}, "dagsRef", "my branch", id="dagsRef-space"),
    pytest.param({"dagsSubpath": "../etc"}, "dagsSubpath", "../etc", id="dagsSubpath-escapes"),
    pytest.param({"gitSyncPeriod": "soon"}, "gitSyncPeriod", "soon", id="gitSyncPeriod-words"),
    pytest.param({"gitSyncPeriod": "0s"}, "gitSyncPeriod", "0s", id="gitSyncPeriod-zero"),
    pytest.param({"gitSyncMaxFailures": "-2"}, "gitSyncMaxFailures", "-2", id="gitSyncMaxFailures-negative"),
    pytest.param({"gitSyncMaxFailures": "-1"}, "gitSyncMaxFailures", "-1", id="gitSyncMaxFailures-forever"),
    pytest.param({"gitSyncMaxFailures": "100"}, "gitSyncMaxFailures", "100", id="gitSyncMaxFailures-stall-too-long"),
    pytest.param({"gitSyncPeriod": "1h"}, "gitSyncPeriod", "1h", id="gitSyncPeriod-stall-too-long"),
    pytest.param({"dagRefreshInterval": "2h"}, "dagRefreshInterval", "2h", id="dagRefresh-too-long"),
    pytest.param({"dagRefreshInterval": "1s"}, "dagRefreshInterval", "1s", id="dagRefresh-too-short"),
    pytest.param({"containerResources": json.dumps({"scheduler": {"cpu": "500x"}})},
                 "containerResources.scheduler.cpu", "500x", id="resources-bad-cpu"),
    pytest.param({"containerResources": json.dumps({"worker": {"memoryLimit": "1GB"}})},
                 "containerResources.worker.memoryLimit", "1GB", id="resources-bad-memory"),
    pytest.param({"containerResources": json.dumps({"webserver": {"cpu": "1"}})},
                 "containerResources.webserver", "'cpu': '1'", id="resources-unknown-container"),
    pytest.param({"containerResources": json.dumps({"scheduler": {"cpus": "1"}})},
                 "containerResources.scheduler.cpus", "1", id="resources-unknown-field"),
    pytest.param({"containerResources": json.dumps({"scheduler": {"cpu": "2"}})},
                 "containerResources.scheduler.cpu", "2", id="resources-request-above-limit"),
    pytest.param({"containerResources": json.dumps({"worker": {"memory": "3Gi", "memoryLimit": "2Gi"}})},
                 "containerResources.worker.memory", "3Gi", id="resources-memory-request-above-limit"),
    pytest.param({"containerResources": json.dumps({"maintenance": {"cpuLimit": "200m"}}),
                  "maintenanceCpuLimit": "300m"},
                 "containerResources.maintenance.cpuLimit", "200m", id="maintenance-cpu-limit-set-twice"),
    pytest.param({"environment": "prod", "logsForceDestroy": "true"}, "logsForceDestroy", "true",
                 id="prod-logs-force-destroy"),
    pytest.param({"dbFlags": '["max_connections"]'}, "dbFlags", "max_connections", id="dbFlags-not-an-object"),
    pytest.param({"maintenanceCpuLimit": "lots"}, "maintenanceCpuLimit", "lots", id="maintenance-cpu-bad"),
    pytest.param({"namespace": "Airflow_NS"}, "namespace", "Airflow_NS", id="namespace-not-dns-label"),
    pytest.param({"namespace": "-airflow"}, "namespace", "-airflow", id="namespace-leading-dash"),
    pytest.param({"namePrefix": "Airflow"}, "namePrefix", "Airflow", id="namePrefix-uppercase"),
    pytest.param({"serviceType": "NodePort"}, "serviceType", "NodePort", id="serviceType-unknown"),
    pytest.param({"serviceType": "LoadBalancer"}, "loadBalancerSourceRanges", "[]", id="lb-no-source-ranges"),
    pytest.param({"serviceType": "InternalLoadBalancer", "loadBalancerSourceRanges": "[]"},
                 "loadBalancerSourceRanges", "[]", id="internal-lb-empty-source-ranges"),
    pytest.param({"serviceType": "LoadBalancer", "loadBalancerSourceRanges": '["0.0.0.0/0"]'},
                 "loadBalancerSourceRanges", "0.0.0.0/0", id="lb-open-to-world"),
    pytest.param({"serviceType": "LoadBalancer", "loadBalancerSourceRanges": '["0.0.0.0/1", "128.0.0.0/1"]'},
                 "loadBalancerSourceRanges", "128.0.0.0/1", id="lb-open-to-world-in-two-halves"),
    pytest.param({"logRetentionDays": "0"}, "logRetentionDays", "0", id="logRetentionDays-zero"),
    pytest.param({"registryKeepVersions": "0"}, "registryKeepVersions", "0", id="registryKeepVersions-zero"),
    pytest.param({"adminEmail": "not-an-email"}, "adminEmail", "not-an-email", id="adminEmail"),
    pytest.param({"spotPool": "yes"}, "spotPool", "yes", id="bool-yes"),
    pytest.param({"dbHighAvailability": "1"}, "dbHighAvailability", "1", id="bool-one"),
    pytest.param({"allowPublicUi": "on"}, "allowPublicUi", "on", id="bool-on"),
]


@pytest.mark.parametrize("overrides, key, bad_value", BAD_INPUTS)
def test_bad_input_is_rejected_with_key_value_and_fix(overrides, key, bad_value):
    key = full_key(key)
    error = load_error(**overrides)
    # One bad setting is reported once, without knock-on complaints about good settings.
    assert len(error.problems) == 1, error.problems
    problem = problem_for(error, key)
    assert key in str(error)
    assert bad_value in problem
    # "pulumi config set KEY" (or "pulumi config set --path 'KEY...'" for a value inside a list/object).
    assert re.search(r"pulumi config (set|rm) (--path )?'?" + re.escape(key), problem), problem
    argv = assert_valid_set_command(problem, key)
    if argv[2] == "set":
        assert argv[-1] != bad_value or "--path" in argv, "the fix must not suggest the rejected value"


def test_private_services_range_overlap_names_both_keys_and_a_fix():
    problem = problem_for(load_error(privateServicesRange="10.30.0.0/16"), full_key("privateServicesRange"))
    assert "airflow-gke:servicesCidr (10.30.0.0/20)" in problem
    assert "pulumi config set airflow-gke:privateServicesRange" in problem
    # Checked against the configured ranges, not the defaults: moving the subnet away makes it fine.
    assert load(privateServicesRange="10.10.0.0/16", subnetCidr="10.11.0.0/20").network.private_services_range \
        == "10.10.0.0/16"
    assert load().network.private_services_range == "10.40.0.0/16"


def test_table_covers_enough_keys():
    assert len(BAD_INPUTS) >= 30
    assert len({full_key(p.values[1]).split(".")[0] for p in BAD_INPUTS}) >= 30


def test_suggested_fix_values_are_accepted():
    """Applying a concrete `pulumi config set KEY VALUE` fix from the table makes that problem go away."""
    applied = 0
    for case in BAD_INPUTS:
        overrides, key, _ = case.values
        key = full_key(key)
        argv = fix_argv(problem_for(load_error(**overrides), key))
        if argv[2] != "set" or "--path" in argv or "PLACEHOLDER" in argv[-1]:
            continue  # a path into a list/object, or a placeholder the user must fill in
        fixed = {**{full_key(k): v for k, v in overrides.items()}, argv[3]: argv[4]}
        try:
            load(**fixed)
        except ConfigError as error:  # pragma: no cover - reported with the case id
            pytest.fail(f"{case.id}: applying {' '.join(argv)} still fails: {error.problems}")
        applied += 1
    assert applied >= 40


@pytest.mark.parametrize("key", ["gcp:project", "gcp:region", f"{PROJECT}:dagsRepo"])
def test_missing_required_value_names_the_set_command(key):
    error = load_error(drop=(key,))
    assert len(error.problems) == 1, error.problems
    problem = problem_for(error, key)
    assert "required" in problem and "not set" in problem
    assert f"Fix: pulumi config set {key} " in problem
    argv = assert_valid_set_command(problem, key)
    assert argv[:4] == ["pulumi", "config", "set", key]


MARKER_KEYS = ["airflow-gke:replicas", "airflow-gke:dagsSubpath", "airflow-gke:kubernetesVersion",
               "airflow-gke:dagsSshKnownHosts"]


@pytest.mark.parametrize("key, empty", [
    *[(k, e) for k in ["airflow-gke:dagsRepo", "gcp:region", "airflow-gke:dbTier",
                       "airflow-gke:masterAuthorizedNetworks"] for e in ("", "  ")],
    *[(k, "  ") for k in MARKER_KEYS],
])
def test_an_empty_string_is_a_bad_value_not_unset(key, empty):
    problem = problem_for(load_error(**{key: empty}), key)  # exactly one problem, required or not
    assert "empty string" in problem and "required" not in problem
    assert problem.endswith(f"Fix: pulumi config set {key} <value>, or pulumi config rm {key}")


@pytest.mark.parametrize("key", MARKER_KEYS)
def test_the_unset_marker_default_reads_as_unset(key):
    """Pulumi.yaml declares these `default: ""`; the CLI hands the program "" when the stack leaves them out."""
    assert DECLARED[key.partition(":")[2]]["default"] == ""
    assert load(**{key: ""}) == load()


@pytest.mark.parametrize("backups, log_days, ok", [("7", "7", True), ("14", "7", True), ("3", "4", False),
                                                   ("1", "7", False)])
def test_fewer_backups_than_log_days_is_refused(backups, log_days, ok):
    # Cloud SQL: "backup retention should be > transaction log retention" (terraform-google-sql-db#785).
    overrides = {"dbBackupRetentionCount": backups, "dbLogRetentionDays": log_days}
    if ok:
        assert load(**overrides).database.backup_retention_count == int(backups)
        return
    problem = problem_for(load_error(**overrides), f"{PROJECT}:dbBackupRetentionCount")
    assert "dbLogRetentionDays" in problem
    argv = assert_valid_set_command(problem, f"{PROJECT}:dbBackupRetentionCount")
    assert load(**{**overrides, "dbBackupRetentionCount": argv[4]}).database.backup_retention_count >= int(log_days)


def test_an_enterprise_plus_tier_is_refused_on_the_enterprise_edition():
    problem = problem_for(load_error(dbTier="db-perf-optimized-n-4"), f"{PROJECT}:dbTier")
    argv = assert_valid_set_command(problem, f"{PROJECT}:dbTier")
    assert load(dbTier=argv[4]).database.tier == argv[4]


def test_missing_region_fix_suggests_a_usable_region():
    argv = fix_argv(problem_for(load_error(drop=("gcp:region",)), "gcp:region"))
    assert load(**{"gcp:region": argv[4]}).region == argv[4]


def test_all_problems_reported_together():
    error = load_error(drop=("dagsRepo",), replicas="0", dbTier="huge", environment="qa",
                       masterCidr="172.16.0.0/24", spotPool="maybe")
    keys = {full_key(k) for k in ("dagsRepo", "replicas", "dbTier", "environment", "masterCidr", "spotPool")}
    assert len(error.problems) == len(keys)
    for key in keys:
        problem_for(error, key)
        assert key in str(error)
    assert str(error).startswith("Invalid stack configuration:")
    assert str(error).count("Fix: pulumi config set") == len(keys)


def test_config_error_is_a_pulumi_run_error():
    import pulumi
    assert isinstance(load_error(replicas="0"), pulumi.RunError)


def test_both_git_credentials_rejected():
    with pytest.raises(ConfigError) as info:
        load_stack_config(config_with(secrets={"dagsGitToken": "t", "dagsSshKey": "k"}))
    problem = problem_for(info.value, f"{PROJECT}:dagsSshKey")
    assert "dagsGitToken" in problem and "pulumi config set airflow-gke:dagsSshKey" in problem
    assert "[secret]" in problem and "'k'" not in problem  # the secret itself is never echoed


def test_ssh_key_needs_an_ssh_repo():
    with pytest.raises(ConfigError) as info:
        load_stack_config(config_with(secrets={"dagsSshKey": "k"}))
    assert "pulumi config set airflow-gke:dagsRepo" in problem_for(info.value, f"{PROJECT}:dagsRepo")
    ok = load_stack_config(config_with(dagsRepo="git@github.com:acme/dags.git", secrets={"dagsSshKey": "k"}))
    assert ok.airflow.git_credentials_kind == "ssh" and ok.airflow.git_credentials == "k"


def test_minimal_config_loads():
    cfg = load()
    assert cfg.project == MINIMAL["gcp:project"]
    assert cfg.region == MINIMAL["gcp:region"]
    assert cfg.airflow.dags_repo == MINIMAL[f"{PROJECT}:dagsRepo"]
    assert cfg.environment == "dev" and not cfg.is_prod
    assert cfg.airflow.git_credentials_kind == "none"
    assert cfg.labels["environment"] == "dev"


@pytest.mark.parametrize("overrides, attribute, expected", [
    pytest.param({"airflowImage": "postgres:16"}, "image", "postgres:16", id="image-name-colon-tag"),
    pytest.param({"airflowImage": "localhost:5000/airflow:1.2"}, "image", "localhost:5000/airflow:1.2",
                 id="image-registry-port"),
    pytest.param({"airflowImage": "us-central1-docker.pkg.dev/p-1/repo/airflow@sha256:" + "a" * 64}, "image",
                 "us-central1-docker.pkg.dev/p-1/repo/airflow@sha256:" + "a" * 64, id="image-digest"),
    pytest.param({"dagsRepo": "ssh://git@example.com/acme/dags.git"}, "dags_repo",
                 "ssh://git@example.com/acme/dags.git", id="dagsRepo-ssh"),
    pytest.param({"dagsRef": "release/3.1"}, "dags_ref", "release/3.1", id="dagsRef-slash"),
    pytest.param({"gitSyncPeriod": "1m30s"}, "git_sync_period_seconds", 90, id="duration-compound"),
    pytest.param({"dagRefreshInterval": "45"}, "dag_refresh_seconds", 45, id="duration-bare-seconds"),
    pytest.param({"dagsSubpath": "dags/"}, "dags_subpath", "dags", id="subpath-trailing-slash-trimmed"),
    pytest.param({"serviceType": "LoadBalancer", "allowPublicUi": "true"}, "allow_public_ui", True,
                 id="public-ui-opt-in"),
    pytest.param({"serviceType": "LoadBalancer", "loadBalancerSourceRanges": '["198.51.100.0/24"]'},
                 "load_balancer_source_ranges", ("198.51.100.0/24",), id="lb-with-ranges"),
    pytest.param({"serviceType": "InternalLoadBalancer", "loadBalancerSourceRanges": '["10.0.0.0/8"]'},
                 "load_balancer_source_ranges", ("10.0.0.0/8",), id="internal-lb-private-slash-8"),
])
def test_valid_values_are_accepted(overrides, attribute, expected):
    assert getattr(load(**overrides).airflow, attribute) == expected


def test_container_resources_override_merges_with_defaults():
    cfg = load(containerResources=json.dumps({"scheduler": {"cpu": "750m", "memoryLimit": "4Gi"}}),
               maintenanceCpuLimit="250m")
    scheduler = cfg.airflow.resources["scheduler"]
    assert (scheduler.cpu, scheduler.memory_limit) == ("750m", "4Gi")
    default_scheduler = load().airflow.resources["scheduler"]
    assert (scheduler.memory, scheduler.cpu_limit) == (default_scheduler.memory, default_scheduler.cpu_limit)
    assert cfg.airflow.resources["maintenance"].cpu_limit == "250m"


def test_maintenance_cpu_limit_can_come_from_container_resources():
    cfg = load(containerResources=json.dumps({"maintenance": {"cpuLimit": "300m"}}))
    assert cfg.airflow.resources["maintenance"].cpu_limit == "300m"
    assert load().airflow.resources["maintenance"].cpu_limit == "100m"


ENV_DEFAULTS = {
    # environment: (replicas, db HA, regional cluster, pulumi protect, daily backups kept)
    "prod": (2, True, True, True, 14),
    "dev": (1, False, False, False, 7),
    "staging": (1, False, False, False, 7),
}


@pytest.mark.parametrize("environment", list(ENV_DEFAULTS))
def test_environment_dependent_defaults(environment):
    cfg = load(environment=environment)
    replicas, ha, regional, protect, backups = ENV_DEFAULTS[environment]
    assert cfg.airflow.replicas == replicas
    assert cfg.database.high_availability is ha
    assert cfg.cluster.regional is regional
    assert cfg.database.pulumi_protect is protect
    assert cfg.database.backup_retention_count == backups
    assert cfg.is_prod is (environment == "prod")
    # Regional cluster -> the region; zonal -> the default zone of the region.
    assert cfg.cluster.location == (MINIMAL["gcp:region"] if regional else MINIMAL["gcp:region"] + "-a")
    # Protections that do not depend on the environment stay on by default.
    assert cfg.database.deletion_protection and cfg.cluster.deletion_protection


def test_explicit_values_beat_environment_defaults():
    cfg = load(environment="prod", replicas="3", dbHighAvailability="false", clusterRegional="false",
               zone="us-central1-b")
    assert cfg.airflow.replicas == 3
    assert cfg.database.high_availability is False
    assert cfg.cluster.location == "us-central1-b"
    dev = load(dbPulumiProtect="true", clusterRegional="true")
    assert dev.database.pulumi_protect is True and dev.cluster.location == MINIMAL["gcp:region"]


def test_autopilot_is_always_regional():
    cfg = load(clusterMode="autopilot")
    assert cfg.cluster.mode == "autopilot" and cfg.cluster.location == MINIMAL["gcp:region"]


# --- Pulumi.yaml agreement ------------------------------------------------------------------------------

def _yaml_default_as_config_string(value) -> str:
    """What the Pulumi CLI hands the program for a project default: strings; lists/objects as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def project_defaults() -> dict[str, str]:
    return {full_key(key): _yaml_default_as_config_string(schema["default"])
            for key, schema in DECLARED.items() if isinstance(schema, dict) and "default" in schema}


@pytest.mark.parametrize("environment", [None, "dev", "staging", "prod"])
def test_pulumi_yaml_defaults_agree_with_config_py(environment):
    base = {**MINIMAL, **(PROD_REQUIRED if environment == "prod" else {})}
    if environment:
        base[f"{PROJECT}:environment"] = environment
    without_defaults = load_stack_config(DictSource(base))
    with_defaults = load_stack_config(DictSource({**project_defaults(), **base}))
    for section in dataclasses.fields(StackConfig):
        assert getattr(with_defaults, section.name) == getattr(without_defaults, section.name), section.name
    assert with_defaults == without_defaults


def test_env_dependent_keys_declare_the_unset_marker_and_dags_repo_no_default():
    """The CLI requires every declared key without a default (pkg/workspace/config.go mergeConfig); an
    environment-dependent default is the marker "", which the program reads as unset."""
    env_dependent = {"replicas", "dbHighAvailability", "clusterRegional", "dbPulumiProtect",
                     "dbBackupRetentionCount", "zone", "dagSource"}
    for key in env_dependent:
        assert DECLARED[key].get("default") == "", key
    assert "default" not in DECLARED["dagsRepo"]


def _keys_read() -> RecordingSource:
    source = RecordingSource(MINIMAL)
    load_stack_config(source)
    return source


def test_every_key_config_reads_is_declared_in_pulumi_yaml():
    source = _keys_read()
    read = {k for k in source.plain | source.secret if k.startswith(PROJECT + ":")}
    declared = {full_key(k) for k in DECLARED}
    # Only retired keys are read (to be refused) without being declared.
    assert read - declared == RETIRED_KEYS
    # And nothing is declared that the program ignores.
    assert declared - read == set()
    assert {k for k in source.plain | source.secret if not k.startswith(PROJECT + ":")} == PROVIDER_KEYS


def test_secret_keys_are_read_as_secrets():
    source = _keys_read()
    secret_keys = {full_key(k) for k, schema in DECLARED.items() if schema.get("secret")}
    assert secret_keys, "Pulumi.yaml declares secret keys"
    assert secret_keys <= source.secret
    assert not secret_keys & source.plain
    assert source.secret <= secret_keys


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_files_only_set_keys_the_program_reads(stack):
    """A typo in Pulumi.<stack>.yaml would otherwise be silently ignored."""
    stack_keys = set((yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text()).get("config") or {}))
    source = _keys_read()
    assert stack_keys - (source.plain | source.secret) == set()


@pytest.mark.parametrize("key, bad", [
    *[(k, "not-a-number") for k, s in DECLARED.items() if s.get("type") == "integer"],
    *[(k, "maybe") for k, s in DECLARED.items() if s.get("type") == "boolean"],
    *[(k, "not-json[") for k, s in DECLARED.items() if s.get("type") == "array"],
])
def test_declared_types_are_enforced(key, bad):
    problem = problem_for(load_error(**{key: bad}), full_key(key))
    assert bad in problem


# --- the program itself ---------------------------------------------------------------------------------

def test_program_with_bad_config_declares_no_resource(monkeypatch):
    registered: list[str] = []

    class CountingMonitor(harness.RecordingMonitor):
        def RegisterResource(self, request):
            registered.append(request.type)
            return super().RegisterResource(request)

    monkeypatch.setattr(harness, "RecordingMonitor", CountingMonitor)
    with pytest.raises(ConfigError) as info:
        run_stack("dev", dbDiskSizeGb="0")
    assert "airflow-gke:dbDiskSizeGb" in str(info.value)
    # Only the root Stack (registered by the Pulumi runtime before the program starts) exists.
    assert registered == ["pulumi:pulumi:Stack"]

    # The same harness with a good config registers the foundation: the counter really sees resources.
    registered.clear()
    capture = run_stack("dev")
    assert len(registered) == len(capture.resources) + 1 > 20


# --- keys Pulumi.yaml does not declare ------------------------------------------------------------------
# The CLI passes an undeclared airflow-gke: key to the program unchecked (mergeConfig only walks the
# declarations); the program refuses it. Through run_stack: the harness sets config with the SDK's
# set_all_config, the same map the Python language host fills from PULUMI_CONFIG on a real run.

def _config_error(**overrides: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        run_stack("dev", **overrides)
    return info.value


def test_a_misspelt_key_is_refused_naming_the_key_it_meant():
    error = _config_error(nodeMachineTpye="e2-standard-4")
    (problem,) = [p for p in error.problems if "nodeMachineTpye" in p]
    assert "did you mean airflow-gke:nodeMachineType?" in problem
    assert problem.endswith("Fix: pulumi config rm airflow-gke:nodeMachineTpye && "
                            "pulumi config set airflow-gke:nodeMachineType <value>")


def test_unknown_keys_are_collected_with_the_other_problems():
    error = _config_error(dbDiskSizeGb="0", **{"airflow-gke:wholeNewThing": "1"})
    assert any("airflow-gke:dbDiskSizeGb" in p for p in error.problems)
    (unknown,) = [p for p in error.problems if "wholeNewThing" in p]
    assert "did you mean" not in unknown and unknown.endswith("Fix: pulumi config rm airflow-gke:wholeNewThing")


def test_other_namespaces_are_not_checked():
    capture = run_stack("dev", **{"gcp:impersonateServiceAccount": "ci@p.iam.gserviceaccount.com",
                                  "kubernetes:enableServerSideApply": "true"})
    assert capture.resources


def test_a_retired_key_gets_its_migration_message_only():
    error = _config_error(privateServicesPrefixLength="20")
    (problem,) = [p for p in error.problems if "privateServicesPrefixLength" in p]
    assert "privateServicesRange" in problem and "not a setting" not in problem


def test_unknown_keys_are_read_from_pulumi_config_as_the_language_host_passes_them(monkeypatch):
    import pulumi.runtime.config as runtime_config
    from components.config import PulumiConfigSource

    monkeypatch.setattr(runtime_config, "CONFIG", runtime_config.ContextVar("test_config", default={}))
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({**MINIMAL, f"{PROJECT}:replicaz": "2"}))
    with pytest.raises(ConfigError) as info:
        load_stack_config(PulumiConfigSource(), deploying=False)
    assert any("airflow-gke:replicaz" in p and "airflow-gke:replicas?" in p for p in info.value.problems)


def test_optional_secrets_left_unset_read_as_unset(monkeypatch):
    """The CLI hands the program the "" default of an optional secret; it must not count as a given secret."""
    import pulumi.runtime.config as runtime_config
    from components.config import PulumiConfigSource

    markers = {full_key(k): "" for k, s in DECLARED.items() if s.get("secret")}
    assert markers and all(DECLARED[k.partition(":")[2]].get("default") == "" for k in markers)
    monkeypatch.setattr(runtime_config, "CONFIG", runtime_config.ContextVar("test_config", default={}))
    runtime_config.set_all_config({**MINIMAL, **markers})
    cfg = load_stack_config(PulumiConfigSource(), deploying=False)
    assert cfg.airflow.admin_password is None and cfg.airflow.git_credentials is None
    assert cfg.airflow.git_credentials_kind == "none"
