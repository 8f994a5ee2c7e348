"""Set-up shared by the integration tests and `make bench`: render, database, pod, DAG repo."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from urllib.parse import unquote, urlsplit

from preview.harness import run_program
from preview.render import write_outputs

from .gitsync import DagRepo, GitSyncEmulator
from .pod import AIRFLOW_VENV, ROOT, LocalPod, find, load_manifests, reset_dir, secret_data

PG_SOCKET = os.environ.get("PGSOCKET", "/tmp/airflow-gke-pg/sock")
WORK = ROOT / "build" / "integration"


class SetupError(RuntimeError):
    """Something `make test` should have installed or started is missing."""


def psql(sql: str, database: str = "postgres") -> str:
    candidates = [shutil.which("psql"), *sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))]
    binary = next((c for c in candidates if c), None)
    if binary is None:
        raise SetupError("psql not found: run `make test` (scripts/ensure-postgres.sh installs PostgreSQL)")
    result = subprocess.run([binary, "-h", PG_SOCKET, "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1",
                             "-Atc", sql], capture_output=True, text=True)
    if result.returncode != 0:
        raise SetupError(f"psql failed (is PostgreSQL running? `make test` starts it): {result.stderr.strip()}")
    return result.stdout


def render_dev() -> list[dict]:
    """The dev stack's manifests, written by the preview code to build/dev/manifests/."""
    if not (AIRFLOW_VENV / "bin" / "airflow").exists():
        raise SetupError(f"{AIRFLOW_VENV} is missing: run `make test` (it installs requirements-airflow.txt)")
    capture = run_program("dev")
    _, manifests_dir = write_outputs(capture, ROOT / "build" / "dev")
    return load_manifests(manifests_dir)


def prepare_database(objects: list[dict]) -> dict:
    """An empty database named and owned as the rendered connection string says, on 127.0.0.1:5432."""
    url = urlsplit(secret_data(find(objects, "Secret", "airflow-secrets"))["sql-alchemy-conn"])
    if (url.hostname, url.port) != ("127.0.0.1", 5432):
        raise AssertionError(f"the rendered DB URL must target the proxy sidecar on 127.0.0.1:5432, not {url.netloc}")
    user, password, name = unquote(url.username), unquote(url.password), url.path.lstrip("/")
    psql(f'drop database if exists "{name}" with (force)')
    psql(f"do $$ begin if not exists (select from pg_roles where rolname = '{user}') then "
         f"create role \"{user}\" login; end if; end $$")
    psql(f"alter role \"{user}\" with login password '{password}'")
    psql(f'create database "{name}" owner "{user}"')
    return {"user": user, "password": password, "name": name}


def make_pod(objects: list[dict], kind: str, name: str, workdir: str, pod_spec: dict | None = None) -> LocalPod:
    obj = find(objects, kind, name) if pod_spec is None else None
    spec = pod_spec if pod_spec is not None else (obj["spec"]["template"]["spec"])
    work = reset_dir(WORK / workdir)
    namespace = obj["metadata"]["namespace"] if obj else find(objects, "Namespace")["metadata"]["name"]
    return LocalPod.create(objects, spec, work / "root", work / "volumes", namespace)


def dags_subpath(pod: LocalPod) -> str:
    """The subpath of the repo holding the DAGs, read back from the rendered DAGS_FOLDER."""
    link = pod.rendered_env(pod.container("git-sync-init"))["GITSYNC_LINK"]
    dags_folder = pod.rendered_env(pod.container("scheduler"))["AIRFLOW__CORE__DAGS_FOLDER"]
    return dags_folder.split(f"/{link}", 1)[1].strip("/")


def sync_dags(pod: LocalPod, repo_dir: str, files: dict[str, str]) -> tuple[DagRepo, GitSyncEmulator]:
    """A DAG repo with `files` under the DAG subpath, synced into the pod's DAG volume as the rendered
    git-sync-init container would, plus an emulator of the git-sync sidecar for later commits."""
    git_sync_init = pod.container("git-sync-init")
    env = pod.rendered_env(git_sync_init)
    root_mount = next(m for m in git_sync_init["volumeMounts"] if m["mountPath"] == env["GITSYNC_ROOT"])
    repo = DagRepo(reset_dir(WORK / repo_dir), env["GITSYNC_REF"])
    subpath = dags_subpath(pod)
    repo.commit({f"{subpath}/{k}".lstrip("/"): v for k, v in files.items()}, "initial DAGs")
    emulator = GitSyncEmulator(repo, pod.volume_path(root_mount["name"]), pod.rendered_env(pod.container("git-sync")))
    emulator.sync_once()
    return repo, emulator
