"""The git-bundle DAG source (airflow-gke:dagSource = git-bundle): Airflow 3's versioned GitDagBundle.

The dag-processor fetches `dagsRef` every `dagRefreshInterval` and records the commit it parsed on the
DAG version and on each DAG run it creates (`dag_run.bundle_version`); every task of that run is started
with that commit in its workload and runs exactly that code, however far the branch moved since. No
git-sync container runs in this mode (git_sync.py is the other DAG source). Here: the bundle's env and git
connection, how an Airflow container becomes a bundle user (`git_bundle_container`), and the task pod's
entry point (fetch_dag_version.py beside this module, shipped in the ConfigMap).

Facts this models (public sources):
- `[dag_processor] dag_bundle_config_list` / `dag_bundle_storage_path`, bundle versions and
  `disable_bundle_versioning` (default False): Airflow docs "Dag Bundles",
  https://airflow.apache.org/docs/apache-airflow/3.3.2/administration-and-deployment/dag-bundles.html
  ("a Dag run [uses] the same code for the whole run, even if the Dag is updated mid-way through").
- GitDagBundle (apache-airflow-providers-git, shipped in the official image through its default
  `git` extra: apache/airflow Dockerfile AIRFLOW_EXTRAS) keeps a full bare clone per bundle and serves a
  version from `<storage>/<bundle>/versions/<commit>`; a version folder without `.git` is used as is
  (providers/git/src/airflow/providers/git/bundles/git.py `_is_pruned_worktree`).
- The git connection (conn_type `git`): host = repository URL, password = token (handed to git by a
  credential helper scoped to the host), extra `key_file`, `known_hosts_file`, `strict_host_key_checking`
  (GitHook docstring, providers/git/src/airflow/providers/git/hooks/git.py; provider docs
  https://airflow.apache.org/docs/apache-airflow-providers-git/stable/bundles/index.html).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from ...config import AirflowSettings
from ..workload_spec import (AIRFLOW_HOME, DAGS_MOUNT, GIT_KNOWN_HOSTS_PATH, GIT_SECRET_NAME, GIT_SSH_KEY_PATH,
                             WorkloadSpec)
from .shared import git_ssh_mounts

GIT_BUNDLE = "git-bundle"
BUNDLE_NAME = "dags"
BUNDLE_CLASS = "airflow.providers.git.bundles.git.GitDagBundle"
GIT_CONN_ID = "dags_git"
GIT_CONN_ENV = f"AIRFLOW_CONN_{GIT_CONN_ID.upper()}"
GIT_CONN_SECRET_KEY = "connection"  # key of the git credentials Secret holding the connection (token mode)
FETCH_SCRIPT_KEY = "fetch_dag_version.py"  # ConfigMap key and file name of the task pods' entry point
FETCH_SCRIPT_SOURCE = Path(__file__).with_name(FETCH_SCRIPT_KEY)
FETCH_SCRIPT_PATH = f"{AIRFLOW_HOME}/{FETCH_SCRIPT_KEY}"  # task pods' entry point in git-bundle mode


# GitDagBundle has no fetch timeout: a connection that stalls holds the bundle lock and parsing waits. git
# aborts an http(s) transfer slower than LIMIT bytes/s for TIME seconds (`http.lowSpeedLimit` /
# `http.lowSpeedTime`, overridden by these variables: https://git-scm.com/docs/git-config#Documentation/git-config.txt-httplowSpeedLimit),
# which bounds a hung fetch as git-sync's --sync-timeout bounds its own; the next refresh retries.
GIT_LOW_SPEED_ENV = [{"name": "GIT_HTTP_LOW_SPEED_LIMIT", "value": "1000"},
                     {"name": "GIT_HTTP_LOW_SPEED_TIME", "value": "60"}]


def is_git_bundle(settings: AirflowSettings) -> bool:
    return settings.dag_source == GIT_BUNDLE


def bundle_config_list(settings: AirflowSettings) -> str:
    """`[dag_processor] dag_bundle_config_list`: one GitDagBundle tracking dagsRef."""
    # repo_url: processes without the connection (no credentials: they never fetch) still build the bundle.
    kwargs: dict = {"git_conn_id": GIT_CONN_ID, "repo_url": settings.dags_repo, "tracking_ref": settings.dags_ref,
                    "refresh_interval": settings.dag_refresh_seconds}
    if settings.dags_subpath:
        kwargs["subdir"] = settings.dags_subpath
    return json.dumps([{"name": BUNDLE_NAME, "classpath": BUNDLE_CLASS, "kwargs": kwargs}], sort_keys=True)


def git_connection(settings: AirflowSettings, ssh_key_path: str, known_hosts_path: str,
                   token: Optional[str] = None) -> str:
    """The git connection as Airflow reads it from AIRFLOW_CONN_<ID> (JSON form)."""
    connection: dict = {"conn_type": "git", "host": settings.dags_repo}
    if settings.git_credentials_kind == "token":
        connection.update(login="git", password=token if token is not None else "")
    elif settings.git_credentials_kind == "ssh":
        extra = {"key_file": ssh_key_path}
        if settings.git_ssh_known_hosts:
            extra.update(known_hosts_file=known_hosts_path, strict_host_key_checking="yes")
        else:  # as git-sync with GITSYNC_SSH_KNOWN_HOSTS=false: docs/configuration.md: set dagsSshKnownHosts
            extra.update(strict_host_key_checking="no")
        connection["extra"] = extra
    return json.dumps(connection, sort_keys=True)


def bundle_env(settings: AirflowSettings, storage_path: str, secret_name: str, ssh_key_path: str,
               known_hosts_path: str, fetches: bool) -> list[dict]:
    """Env of an Airflow process or task pod in git-bundle mode (empty in git-sync mode). Only the
    containers that fetch (`fetches`: the dag-processor, the task pod's entry point) get the git
    connection: the api-server would otherwise serve it to any task through the execution API (3.3.2
    api_fastapi/execution_api/routes/connections.py: `has_connection_access` is always True, and the
    lookup includes the api-server's own AIRFLOW_CONN_* variables)."""
    if not is_git_bundle(settings):
        return []
    bundle = [
        {"name": "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", "value": bundle_config_list(settings)},
        {"name": "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH", "value": storage_path},
    ]
    if not fetches:
        return bundle
    if settings.git_credentials_kind == "token":  # the token is inside: only a reference to the Secret
        connection = {"name": GIT_CONN_ENV, "valueFrom": {"secretKeyRef": {"name": secret_name,
                                                                           "key": GIT_CONN_SECRET_KEY}}}
    else:  # public repo, or an SSH key that stays a mounted file: nothing secret in the value
        connection = {"name": GIT_CONN_ENV, "value": git_connection(settings, ssh_key_path, known_hosts_path)}
    return [*bundle, connection, *GIT_LOW_SPEED_ENV]


def task_command(script_path: str) -> list[str]:
    """Command of the task pod's base container: the executor's args (execute_workload ...) follow it."""
    return ["python", script_path]


def fetch_script() -> str:
    return FETCH_SCRIPT_SOURCE.read_text()


def git_bundle_container(spec: WorkloadSpec, container: dict, fetches: bool = False) -> dict:
    """In git-bundle mode an Airflow container gets its DAGs itself (GitDagBundle): the bundle env and the
    dags volume writable as bundle storage; the git connection and SSH key only if it `fetches`.
    Unchanged in git-sync mode."""
    if not is_git_bundle(spec.settings):
        return container
    env = bundle_env(spec.settings, DAGS_MOUNT, GIT_SECRET_NAME, GIT_SSH_KEY_PATH, GIT_KNOWN_HOSTS_PATH, fetches)
    mounts = [{**m, "readOnly": False} if m["name"] == "dags" else m for m in container["volumeMounts"]]
    return {**container, "env": [*container["env"], *env],
            "volumeMounts": [*mounts, *(git_ssh_mounts(spec) if fetches else [])]}
