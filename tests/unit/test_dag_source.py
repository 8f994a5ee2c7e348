"""airflow-gke:dagSource: the key's validation, and what git-bundle mode renders (components/airflow/pod/git_bundle.py)
compared with git-sync mode. Real Airflow runs of both are in tests/integration/test_dag_bundle.py."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from components.airflow.pod import git_bundle as ds
from components.airflow.dag_processor import dag_processor_deployment
from components.airflow.pod import fetch_dag_version
from components.airflow.config_map import config_map
from components.airflow.deployment import deployment, pod_checksums
from components.airflow.jobs import migration_job
from components.airflow.pod.git_bundle import FETCH_SCRIPT_PATH
from components.airflow.workload_spec import CONFIGMAP_NAME, WorkloadSpec
from components.config import load_stack_config
from tests.unit.container_helpers import containers, env, env_value, every_container, relayed_airflow_command
from tests.unit.test_config import fix_argv, load, load_error, problem_for
from tests.unit.test_workload_spec import make_spec

AIRFLOW_CONTAINERS = ("scheduler", "api-server", "dag-processor", "triggerer", "maintenance")


def bundle_spec(**overrides) -> WorkloadSpec:
    return make_spec(dag_source="git-bundle", **overrides)


def deployment_pod(spec: WorkloadSpec) -> dict:
    return deployment(spec)["spec"]["template"]["spec"]


def airflow_containers(spec: WorkloadSpec) -> dict[str, dict]:
    """Every Airflow process of the stack by name, whichever Deployment runs it."""
    found = containers(deployment_pod(spec))
    extra = dag_processor_deployment(spec)
    if extra:
        found.update(containers(extra["spec"]["template"]["spec"]))
    return {n: c for n, c in found.items() if n in AIRFLOW_CONTAINERS}


def task_pod(spec: WorkloadSpec) -> dict:
    return yaml.safe_load(config_map(spec)["data"]["pod_template_file.yaml"])["spec"]


# --- the config key ----------------------------------------------------------------------------------

@pytest.mark.parametrize("environment, expected",
                         [("dev", "git-sync"), ("staging", "git-sync"), ("prod", "git-bundle")])
def test_default_dag_source_per_environment(environment, expected):
    assert load(environment=environment).airflow.dag_source == expected


def test_unknown_dag_source_is_refused_with_the_fix():
    problem = problem_for(load_error(dagSource="bundle"), "airflow-gke:dagSource")
    assert "git-sync" in problem and "git-bundle" in problem
    assert fix_argv(problem)[:4] == ["pulumi", "config", "set", "airflow-gke:dagSource"]


@pytest.mark.parametrize("key, value", [("gitSyncPeriod", "20s"), ("gitSyncMaxFailures", "3")])
def test_git_sync_keys_are_refused_in_git_bundle_mode(key, value):
    problem = problem_for(load_error(dagSource="git-bundle", **{key: value}), f"airflow-gke:{key}")
    assert "git-bundle" in problem and fix_argv(problem) == ["pulumi", "config", "rm", f"airflow-gke:{key}"]
    assert load(dagSource="git-sync", **{key: value}).airflow.dag_source == "git-sync"  # fine in its own mode


def test_git_sync_resources_are_refused_in_git_bundle_mode():
    resources = json.dumps({"git-sync": {"cpu": "50m"}})
    problem = problem_for(load_error(dagSource="git-bundle", containerResources=resources),
                          "airflow-gke:containerResources.git-sync")
    assert "pulumi config rm --path" in problem
    assert load(dagSource="git-bundle", containerResources=json.dumps({"worker": {"cpu": "1"}})).airflow.dag_source


# --- the Deployment ---------------------------------------------------------------------------------

def test_git_bundle_deployment_runs_no_git_sync():
    spec = bundle_spec()
    pods = [deployment_pod(spec), dag_processor_deployment(spec)["spec"]["template"]["spec"]]
    names = [c["name"] for pod in pods for c in every_container(pod)]
    assert not [n for n in names if n.startswith("git-sync")], names
    assert set(AIRFLOW_CONTAINERS) <= set(names)


@pytest.mark.parametrize("replicas", [1, 2, 5])
def test_git_bundle_runs_exactly_one_dag_processor_whatever_the_replicas(replicas):
    """Two dag-processors tracking one bundle can record an older commit after a newer one (dag_processor.py);
    in git-bundle mode one Deployment, one replica, Recreate, runs the only one."""
    spec = bundle_spec(replicas=replicas)
    assert "dag-processor" not in containers(deployment_pod(spec))
    assert deployment(spec)["spec"]["replicas"] == replicas
    own = dag_processor_deployment(spec)
    assert own["spec"]["replicas"] == 1 and own["spec"]["strategy"] == {"type": "Recreate"}
    container, groomer = own["spec"]["template"]["spec"]["containers"]  # the processor and its logs groomer
    assert groomer["name"] == "maintenance"
    assert container["name"] == "dag-processor" and relayed_airflow_command(container) == ["airflow", "dag-processor"]
    assert container["startupProbe"]["exec"]["command"][-3:] == ["--job-type", "DagProcessorJob", "--local"]
    init = [c["name"] for c in own["spec"]["template"]["spec"]["initContainers"]]
    assert init == ["cloud-sql-proxy", "wait-for-migrations"]
    assert own["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_git_sync_keeps_the_dag_processor_in_the_airflow_pod():
    spec = make_spec(replicas=2)
    assert dag_processor_deployment(spec) is None
    assert "dag-processor" in containers(deployment_pod(spec))


def test_every_airflow_container_tracks_the_same_bundle():
    spec = bundle_spec()
    volumes = {v["name"]: v for v in deployment_pod(spec)["volumes"]}
    found = airflow_containers(spec)
    assert set(found) == set(AIRFLOW_CONTAINERS)
    for name, container in found.items():
        [bundle] = json.loads(env_value(container, "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"))
        assert bundle == {"name": "dags", "classpath": "airflow.providers.git.bundles.git.GitDagBundle",
                          "kwargs": {"git_conn_id": "dags_git", "tracking_ref": "release/2024",
                                     "repo_url": "https://git.example.com/acme/dags.git",
                                     "subdir": "pipelines/dags", "refresh_interval": 40}}, name
        storage = env_value(container, "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH")
        [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == storage]
        assert not mount.get("readOnly") and "emptyDir" in volumes[mount["name"]], name  # writable, per pod
        if name == "dag-processor":  # the only one that fetches (and the task pod's entry point)
            connection = json.loads(env_value(container, "AIRFLOW_CONN_DAGS_GIT"))
            assert connection == {"conn_type": "git", "host": "https://git.example.com/acme/dags.git"}, name
        else:  # the api-server would serve it to any task through the execution API
            assert "AIRFLOW_CONN_DAGS_GIT" not in env(container), name


def test_git_sync_mode_renders_no_bundle():
    spec = make_spec()
    for container in [*every_container(deployment_pod(spec)), *every_container(task_pod(spec))]:
        assert not {n for n in env(container) if "BUNDLE" in n or n.startswith("AIRFLOW_CONN_")}, container["name"]
    assert ds.FETCH_SCRIPT_KEY not in config_map(spec)["data"]
    dags = [m for m in containers(deployment_pod(spec))["scheduler"]["volumeMounts"] if m["name"] == "dags"]
    assert [m["readOnly"] for m in dags] == [True]


def test_database_jobs_carry_no_dag_source():
    spec = bundle_spec(git_credentials_kind="token")
    job_pod = migration_job(spec)["spec"]["template"]["spec"]
    for container in every_container(job_pod):
        assert "AIRFLOW_CONN_DAGS_GIT" not in env(container), container["name"]


# --- the task pod ------------------------------------------------------------------------------------

def test_task_pod_enters_through_the_fetch_script_from_the_config_map():
    spec = bundle_spec()
    config = config_map(spec)["data"]
    pod = task_pod(spec)
    assert "initContainers" not in pod  # no clone of the branch head before the task
    [base] = pod["containers"]
    assert base["command"] == ["python", FETCH_SCRIPT_PATH] and "args" not in base  # the executor adds args
    [mount] = [m for m in base["volumeMounts"] if m["mountPath"] == FETCH_SCRIPT_PATH]
    assert mount["readOnly"] and config[mount["subPath"]] == ds.FETCH_SCRIPT_SOURCE.read_text()
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == CONFIGMAP_NAME
    assert "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST" in env(base)
    assert base["securityContext"]["readOnlyRootFilesystem"] is True


def test_changing_the_fetch_script_rolls_the_pods():
    spec = bundle_spec()
    before = pod_checksums(spec)["checksum/config"]
    original = ds.fetch_script
    try:
        ds.fetch_script = lambda: original() + "\n# changed\n"
        assert pod_checksums(spec)["checksum/config"] != before
    finally:
        ds.fetch_script = original


# --- the fetch script's reading of the executor's command -------------------------------------------------

def workload_args(bundle_info) -> list[str]:
    return ["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string",
            json.dumps({"type": "ExecuteTask", "bundle_info": bundle_info, "dag_rel_path": "x.py"})]


@pytest.mark.parametrize("args, expected", [
    (workload_args({"name": "dags", "version": "a" * 40}), ("dags", "a" * 40)),
    (workload_args({"name": "dags", "version": None}), None),  # disable_bundle_versioning: latest, no pin
    (workload_args({"name": "dags"}), None),
    (["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string", "{not json"], None),
    (["airflow", "version"], None),
])
def test_fetch_script_reads_the_pinned_commit_from_the_command(args, expected):
    assert fetch_dag_version.bundle_version(args) == expected


def test_stack_config_of_prod_renders_git_bundle():
    from tests.conftest import stack_config
    from tests.unit.test_config import DictSource

    config = load_stack_config(DictSource(stack_config("prod")), deploying=False)  # as the offline preview reads it
    assert config.airflow.dag_source == "git-bundle" and config.airflow.replicas == 2


@pytest.mark.parametrize("fetch_fails, clone_fails", [(False, False), (True, False), (True, True)])
def test_the_git_token_leaves_the_task_environment_on_every_path(monkeypatch, fetch_fails, clone_fails):
    """Whether the shallow fetch works, fails (the bundle's clone runs here, token still present), or the
    clone fails too: the exec'd task never sees the git connection."""
    conn = "AIRFLOW_CONN_DAGS_GIT"
    config = [{"name": "dags", "classpath": "x", "kwargs": {"git_conn_id": "dags_git"}}]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(config))
    monkeypatch.setenv(conn, '{"conn_type": "git", "host": "https://h/r.git", "login": "git", "password": "ghp_token", '
                       '"extra": {"key_file": "/k"}}')
    seen: dict = {}

    def fetch(name, commit):
        if fetch_fails:
            raise RuntimeError("server refuses to serve a commit by id")
        return 10, "dags_git"

    def clone(name, commit):
        seen["token_at_clone"] = os.environ.get(conn)
        if clone_fails:
            raise RuntimeError("Error cloning repository")

    monkeypatch.setattr(fetch_dag_version, "fetch_commit", fetch)
    monkeypatch.setattr(fetch_dag_version, "clone_with_bundle", clone)
    monkeypatch.setattr(fetch_dag_version.os, "execvp", lambda *a: seen.setdefault("env", dict(os.environ)))
    workload = json.dumps({"bundle_info": {"name": "dags", "version": "a" * 40}})
    fetch_dag_version.main(["fetch_dag_version.py", "python", "-m", "x", "--json-string", workload])
    # Only what names the repository is left (the task's bundle builds its hook from it, without a traceback).
    assert json.loads(seen["env"][conn]) == {"conn_type": "git", "host": "https://h/r.git"}
    assert "ghp_token" not in json.dumps(seen["env"]) and "/k" not in seen["env"][conn]
    if fetch_fails:
        assert seen["token_at_clone"]  # the fallback clone still had its credentials


def test_every_container_that_fetches_bounds_a_stalled_transfer():
    settings = load(dagSource="git-bundle").airflow
    fetching = {e["name"]: e.get("value") for e in ds.bundle_env(settings, "/d", "s", "/k", "/h", fetches=True)}
    assert fetching["GIT_HTTP_LOW_SPEED_LIMIT"] == "1000" and fetching["GIT_HTTP_LOW_SPEED_TIME"] == "60"
    quiet = {e["name"] for e in ds.bundle_env(settings, "/d", "s", "/k", "/h", fetches=False)}
    assert "GIT_HTTP_LOW_SPEED_TIME" not in quiet  # no git runs there


def test_the_bundle_fetches_at_its_own_interval_not_at_every_local_refresh():
    """The remote fetch follows gitBundleRefreshInterval (default 30 s, as git-sync's period), not the
    10 s local re-listing of dagRefreshInterval: 8,640 fetches a day would hit the git host for nothing."""
    from components.config.airflow import GIT_BUNDLE_REFRESH_DEFAULT

    assert load(dagSource="git-bundle").airflow.git_bundle_refresh_seconds == GIT_BUNDLE_REFRESH_DEFAULT
    assert GIT_BUNDLE_REFRESH_DEFAULT >= 30
    settings = load(dagSource="git-bundle", gitBundleRefreshInterval="2m").airflow
    assert settings.git_bundle_refresh_seconds == 120
    assert json.loads(ds.bundle_config_list(settings))[0]["kwargs"]["refresh_interval"] == 120
    # a key of the other mode is refused, not ignored
    problem = problem_for(load_error(gitBundleRefreshInterval="60s"), "airflow-gke:gitBundleRefreshInterval")
    assert "pulumi config rm" in problem

