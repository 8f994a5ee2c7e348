"""Private DAG repositories: a token or an SSH key from a Pulumi secret reaches git-sync (in the
Airflow pod and in task pods) only through the `airflow-git-credentials` Kubernetes Secret."""

from __future__ import annotations

import pytest

from components.airflow.config_map import config_map
from components.airflow.deployment import deployment
from components.airflow.jobs import migration_job
from components.airflow.pod.task_pod import pod_template
from components.airflow.workload_spec import GIT_SECRET_NAME, WorkloadSpec
from preview.harness import run_program
from tests.conftest import stack_config
from tests.unit.container_helpers import env, every_container
from tests.unit.test_workload_spec import make_spec

TOKEN = "ghp_exampleTokenValue1234567890"
SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
KNOWN_HOSTS = "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def git_sync_containers(pod: dict) -> list[dict]:
    return [c for c in every_container(pod) if c["name"] in ("git-sync", "git-sync-init")]


def pods(spec: WorkloadSpec) -> list[dict]:
    return [deployment(spec)["spec"]["template"]["spec"], pod_template(spec)["spec"]]


def test_public_repo_has_no_credentials():
    spec = make_spec()
    for pod in pods(spec):
        assert not any(v["name"] == "git-ssh-key" for v in pod["volumes"])
        for container in git_sync_containers(pod):
            assert not {"GITSYNC_USERNAME", "GITSYNC_PASSWORD", "GITSYNC_SSH_KEY_FILE"} & set(env(container))


def test_token_reaches_git_sync_as_secret_references():
    spec = make_spec(git_credentials_kind="token")
    for pod in pods(spec):
        containers = git_sync_containers(pod)
        assert {c["name"] for c in containers} >= {"git-sync-init"}
        for container in containers:
            variables = env(container)
            for name, key in (("GITSYNC_USERNAME", "username"), ("GITSYNC_PASSWORD", "token")):
                assert variables[name]["valueFrom"]["secretKeyRef"] == {"name": GIT_SECRET_NAME, "key": key}


@pytest.mark.parametrize("known_hosts", ["", KNOWN_HOSTS])
def test_ssh_key_is_mounted_read_only_from_the_secret(known_hosts):
    spec = make_spec(git_credentials_kind="ssh", git_ssh_known_hosts=known_hosts)
    for pod in pods(spec):
        volume = next(v for v in pod["volumes"] if v["name"] == "git-ssh-key")
        assert volume["secret"]["secretName"] == GIT_SECRET_NAME
        assert volume["secret"]["defaultMode"] == 0o440
        for container in git_sync_containers(pod):
            variables = env(container)
            mounts = {m["mountPath"]: m for m in container["volumeMounts"] if m["name"] == "git-ssh-key"}
            assert variables["GITSYNC_SSH_KEY_FILE"]["value"] in mounts
            assert all(m["readOnly"] for m in mounts.values())
            if known_hosts:
                assert variables["GITSYNC_SSH_KNOWN_HOSTS"]["value"] == "true"
                assert variables["GITSYNC_SSH_KNOWN_HOSTS_FILE"]["value"] in mounts
            else:
                assert variables["GITSYNC_SSH_KNOWN_HOSTS"]["value"] == "false"
    # The migration Job clones nothing: it does not carry the key.
    job_pod = migration_job(spec)["spec"]["template"]["spec"]
    assert not any(v["name"] == "git-ssh-key" for v in job_pod["volumes"])


@pytest.mark.parametrize("kind, repo, secret_key, value", [
    ("token", "https://github.com/acme/private-dags.git", "airflow-gke:dagsGitToken", TOKEN),
    ("ssh", "git@github.com:acme/private-dags.git", "airflow-gke:dagsSshKey", SSH_KEY),
])
def test_rendered_stack_stores_the_credential_only_in_the_git_secret(kind, repo, secret_key, value):
    config = stack_config("dev", dagsRepo=repo, **{secret_key: value})
    if kind == "ssh":
        config["airflow-gke:dagsSshKnownHosts"] = KNOWN_HOSTS
    capture = run_program("dev", config, secret_keys=[secret_key])
    secrets = {r.name: r for r in capture.of_type("kubernetes:core/v1:Secret")}
    git_secret = secrets["airflow-git-credentials"]
    stored = git_secret.inputs["stringData"]
    assert (stored["token"] if kind == "token" else stored["ssh-key"]) == value
    if kind == "ssh":
        assert stored["known_hosts"] == KNOWN_HOSTS
    assert value not in str(git_secret.masked_inputs), "secret shown unmasked in resources.json"
    for resource, manifest in capture.kubernetes_objects():
        if resource.name != "airflow-git-credentials":
            assert value not in str(manifest), f"{resource.name} carries the credential"
    deployment = next(m for _, m in capture.kubernetes_objects() if m["kind"] == "Deployment")
    git_sync = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "git-sync")
    assert env(git_sync)["GITSYNC_REPO"]["value"] == repo


def test_known_hosts_without_ssh_key_or_malformed_is_refused():
    from components.config import ConfigError, load_stack_config
    from tests.unit.test_config import config_with

    with pytest.raises(ConfigError) as alone:
        load_stack_config(config_with(dagsSshKnownHosts=KNOWN_HOSTS))
    assert "airflow-gke:dagsSshKnownHosts" in str(alone.value) and "dagsSshKey" in str(alone.value)
    with pytest.raises(ConfigError) as malformed:
        load_stack_config(config_with(dagsRepo="git@github.com:acme/dags.git", dagsSshKnownHosts="github.com",
                                      secrets={"dagsSshKey": SSH_KEY}))
    assert "airflow-gke:dagsSshKnownHosts" in str(malformed.value) and "ssh-keyscan" in str(malformed.value)
    ok = load_stack_config(config_with(dagsRepo="git@github.com:acme/dags.git", dagsSshKnownHosts=KNOWN_HOSTS,
                                       secrets={"dagsSshKey": SSH_KEY}))
    assert ok.airflow.git_ssh_known_hosts == KNOWN_HOSTS and ok.airflow.git_credentials_kind == "ssh"


# --- git-bundle mode (airflow-gke:dagSource git-bundle): the credential reaches GitDagBundle's connection ---

def bundle_pods(spec: WorkloadSpec) -> list[dict]:
    """The containers that fetch DAGs in git-bundle mode: the dag-processor and the task pod's base."""
    import yaml

    from components.airflow.dag_processor import dag_processor_deployment

    processor_pod = dag_processor_deployment(spec)["spec"]["template"]["spec"]
    task_pod = yaml.safe_load(config_map(spec)["data"]["pod_template_file.yaml"])["spec"]
    fetchers = [c for c in processor_pod["containers"] if c["name"] == "dag-processor"]  # not its log groomer
    return [(processor_pod, fetchers), (task_pod, task_pod["containers"])]


@pytest.mark.parametrize("kind", ["token", "ssh"])
def test_bundle_credentials_stay_out_of_containers_that_do_not_fetch(kind):
    """The api-server serves connections it can see to any task (execution API): it, the scheduler, the
    triggerer and the maintenance shell get neither the git connection nor the SSH key."""
    spec = make_spec(dag_source="git-bundle", git_credentials_kind=kind, git_ssh_known_hosts=KNOWN_HOSTS
                     if kind == "ssh" else "", dags_repo="git@git.example.com:acme/dags.git" if kind == "ssh"
                     else "https://git.example.com/acme/dags.git")
    from components.airflow.dag_processor import dag_processor_deployment

    groomer = [c for c in dag_processor_deployment(spec)["spec"]["template"]["spec"]["containers"]
               if c["name"] != "dag-processor"]
    for container in [*deployment(spec)["spec"]["template"]["spec"]["containers"], *groomer]:
        assert "AIRFLOW_CONN_DAGS_GIT" not in env(container), container["name"]
        assert not [m for m in container["volumeMounts"] if m["name"] == "git-ssh-key"], container["name"]


def test_bundle_token_reaches_the_connection_only_as_a_secret_reference():
    spec = make_spec(dag_source="git-bundle", git_credentials_kind="token")
    for pod, airflow_containers in bundle_pods(spec):
        assert not git_sync_containers(pod)
        for container in airflow_containers:
            connection = env(container)["AIRFLOW_CONN_DAGS_GIT"]
            assert connection["valueFrom"]["secretKeyRef"] == {"name": GIT_SECRET_NAME, "key": "connection"}


@pytest.mark.parametrize("known_hosts", ["", KNOWN_HOSTS])
def test_bundle_ssh_key_and_known_hosts_are_files_the_connection_names(known_hosts):
    import json

    spec = make_spec(dag_source="git-bundle", git_credentials_kind="ssh", git_ssh_known_hosts=known_hosts,
                     dags_repo="git@git.example.com:acme/dags.git")
    for pod, airflow_containers in bundle_pods(spec):
        volume = next(v for v in pod["volumes"] if v["name"] == "git-ssh-key")
        assert volume["secret"]["secretName"] == GIT_SECRET_NAME and volume["secret"]["defaultMode"] == 0o440
        for container in airflow_containers:
            connection = json.loads(env(container)["AIRFLOW_CONN_DAGS_GIT"]["value"])
            assert connection["host"] == "git@git.example.com:acme/dags.git"
            mounts = {m["mountPath"]: m for m in container["volumeMounts"] if m["name"] == "git-ssh-key"}
            assert connection["extra"]["key_file"] in mounts
            assert all(m["readOnly"] for m in mounts.values())
            if known_hosts:  # the host key is checked against the configured lines, never learnt
                assert connection["extra"]["strict_host_key_checking"] == "yes"
                assert connection["extra"]["known_hosts_file"] in mounts
            else:  # as git-sync with GITSYNC_SSH_KNOWN_HOSTS=false
                assert connection["extra"]["strict_host_key_checking"] == "no"
                assert "known_hosts_file" not in connection["extra"]


@pytest.mark.parametrize("kind, repo, secret_key, value", [
    ("token", "https://github.com/acme/private-dags.git", "airflow-gke:dagsGitToken", TOKEN),
    ("ssh", "git@github.com:acme/private-dags.git", "airflow-gke:dagsSshKey", SSH_KEY),
])
def test_bundle_stack_stores_the_credential_only_in_the_git_secret(kind, repo, secret_key, value):
    import json

    config = stack_config("dev", dagsRepo=repo, dagSource="git-bundle", **{secret_key: value})
    for key in ("airflow-gke:gitSyncPeriod", "airflow-gke:gitSyncMaxFailures"):
        config.pop(key, None)
    capture = run_program("dev", config, secret_keys=[secret_key])
    git_secret = {r.name: r for r in capture.of_type("kubernetes:core/v1:Secret")}["airflow-git-credentials"]
    stored = git_secret.inputs["stringData"]
    if kind == "token":
        connection = json.loads(stored["connection"])
        assert connection == {"conn_type": "git", "host": repo, "login": "git", "password": TOKEN}
    else:
        assert stored["ssh-key"] == value and "connection" not in stored
    assert value not in str(git_secret.masked_inputs), "secret shown unmasked in resources.json"
    for resource, manifest in capture.kubernetes_objects():
        if resource.name != "airflow-git-credentials":
            assert value not in str(manifest), f"{resource.name} carries the credential"
