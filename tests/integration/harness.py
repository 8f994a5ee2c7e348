"""Set-up shared by the integration tests and `make bench`: render, database, pod, DAG repo."""

from __future__ import annotations

import contextlib
import datetime
import glob
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import yaml

from preview.harness import run_program
from preview.render import write_outputs

from .gitsync import DagRepo, GitSyncEmulator
from .kube import LocalCluster
from .pod import AIRFLOW_VENV, ROOT, LocalPod, find, free_port, load_manifests, reset_dir, secret_data, wait_until

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


def pod_spec_of(obj: dict) -> dict:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def make_pod(objects: list[dict], kind: str, name: str | None, workdir: str) -> LocalPod:
    """The pod of the rendered `kind`/`name` (Deployment, Job, CronJob) laid out under build/integration/."""
    obj = find(objects, kind, name)
    work = reset_dir(WORK / workdir)
    return LocalPod.create(objects, pod_spec_of(obj), work / "root", work / "volumes", obj["metadata"]["namespace"])


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


AIRFLOW_CONTAINERS = ("scheduler", "api-server", "dag-processor", "triggerer")
API_CONTAINER_PORT = 8080

HELLO_DAG = '''\
from airflow.sdk import dag, task


@dag(dag_id="hello", schedule=None, catchup=False, tags=["airflow-gke"])
def hello():
    @task
    def say_hello():
        print("hello from airflow-gke")
        return 42

    say_hello()


hello()
'''


def dag_source(dag_id: str, marker: str = "") -> str:
    return HELLO_DAG.replace('"hello"', f'"{dag_id}"').replace("hello from airflow-gke", f"hello {marker}")


def api_address(pod: LocalPod, container: str = "scheduler") -> str:
    """host:port of the rendered execution API URL (the api Service's cluster DNS name)."""
    return urlsplit(pod.rendered_env(pod.container(container))["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]).netloc


def deviations(pod: LocalPod, api_port: int, container: str = "scheduler",
               kubeconfig: Path | None = None) -> dict[str, str]:
    rendered_url = pod.rendered_env(pod.container(container))["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    parts = urlsplit(rendered_url)
    overrides = {
        "AIRFLOW__LOGGING__REMOTE_LOGGING": "False",
        # Only host and port change; the path (/execution/) is the rendered one.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": urlunsplit(parts._replace(netloc=f"127.0.0.1:{api_port}")),
    }
    if container == "scheduler" and kubeconfig is not None:
        # The rendered KubernetesExecutor, pointed at the loopback API emulator by a kubeconfig
        # file instead of the in-cluster service account (the one deviation of the task path).
        overrides["AIRFLOW__KUBERNETES_EXECUTOR__IN_CLUSTER"] = "False"
        overrides["AIRFLOW__KUBERNETES_EXECUTOR__CONFIG_FILE"] = str(kubeconfig)
    return overrides


def worker_template(objects: list[dict]) -> dict:
    """The rendered KubernetesExecutor pod template (from the ConfigMap the scheduler mounts)."""
    return yaml.safe_load(find(objects, "ConfigMap", "airflow-config")["data"]["pod_template_file.yaml"])


def local_cluster(pod: LocalPod, api_port: int, dag_repo: DagRepo | None, workdir: str) -> LocalCluster:
    """API emulator + local kubelet for the executor's pods: the Airflow image runs on .venv-airflow,
    the api Service's DNS name resolves to the local api-server, remote logging is off."""
    scheduler_env = pod.rendered_env(pod.container("scheduler"))
    airflow_images = {c["image"] for c in pod.containers() if c["name"] in AIRFLOW_CONTAINERS}
    airflow_images |= {c["image"] for c in worker_template(pod.objects)["spec"]["containers"]}
    return LocalCluster(pod.objects, reset_dir(WORK / workdir), scheduler_env["AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE"],
                        dag_repo, airflow_images, services={api_address(pod): f"127.0.0.1:{api_port}"},
                        overrides={"AIRFLOW__LOGGING__REMOTE_LOGGING": "False"})


class Api:
    def __init__(self, port: int, healthy_after: float = 0.0) -> None:
        self.port = port
        self.healthy_after = healthy_after  # seconds from start of the processes to a passing startup probe
        self.base = f"http://127.0.0.1:{port}"
        self.token: str | None = None
        self.cluster: LocalCluster | None = None  # the API emulator + kubelet running the task pods
        self.processes: dict[str, subprocess.Popen] = {}  # container name -> its current process

    def request(self, method: str, path: str, body: dict | None = None, auth: bool = True) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"}
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, {"error": error.read().decode(errors="replace")[:1000]}

    def login(self, username: str, password: str) -> int:
        status, body = self.request("POST", "/auth/token", {"username": username, "password": password}, auth=False)
        self.token = body.get("access_token")
        return status

    def dag_ids(self) -> set[str]:
        status, body = self.request("GET", "/api/v2/dags?limit=100")
        return {d["dag_id"] for d in body.get("dags", [])} if status == 200 else set()



def admin_credentials(objects: list[dict]) -> tuple[str, str]:
    """Admin user name from the rendered create-admin-user container, password from the rendered Secret."""
    job = find(objects, "Job")
    container = next(c for c in job["spec"]["template"]["spec"]["containers"] if c["name"] == "create-admin-user")
    username = next(e["value"] for e in container["env"] if e["name"] == "AIRFLOW_ADMIN_USERNAME")
    return username, secret_data(find(objects, "Secret", "airflow-secrets"))["admin-password"]


def start_container(pod: LocalPod, name: str, api_port: int, cluster: LocalCluster) -> subprocess.Popen:
    return pod.start(name, deviations(pod, api_port, name, cluster.kubeconfig),
                     replace_args={str(API_CONTAINER_PORT): str(api_port)})


def restart_container(pod: LocalPod, api: "Api", name: str) -> subprocess.Popen:
    """Stop one container's process as the kubelet does in a rollout (SIGTERM, then wait), start it again."""
    old = api.processes[name]
    os.killpg(old.pid, signal.SIGTERM)
    old.wait(timeout=60)
    shutil.copy(pod.root / f"{name}.log", pod.root / f"{name}.previous.log")
    api.processes[name] = start_container(pod, name, api.port, api.cluster)
    return api.processes[name]


@contextlib.contextmanager
def airflow_running(pod: LocalPod, api_port: int | None = None, dag_repo: DagRepo | None = None):
    """Start the Kubernetes API emulator and local kubelet, then api-server, dag-processor, triggerer
    and scheduler (KubernetesExecutor) from their rendered commands; yield the API client (with
    `.cluster`) once the rendered api-server startup probe passes; stop them all afterwards."""
    api_port = api_port or free_port()
    cluster = local_cluster(pod, api_port, dag_repo, f"{pod.root.parent.name}-cluster").start()
    started = time.monotonic()
    try:
        processes = {name: start_container(pod, name, api_port, cluster) for name in AIRFLOW_CONTAINERS}
        wait_until(lambda: pod.probe("api-server", "startupProbe", port_map={API_CONTAINER_PORT: api_port})[0],
                   180, what="api-server healthy")
        api = Api(api_port, healthy_after=time.monotonic() - started)
        api.cluster, api.processes = cluster, processes
        yield api
    finally:
        pod.stop_all()
        cluster.stop()


def sync_latency(api: Api, repo: DagRepo, emulator: GitSyncEmulator, subpath: str, dag_id: str,
                 change: bool, timeout: float) -> float:
    """Commit a new DAG file (or a change to an existing one) and return the seconds until
    GET /api/v2/dags shows it, with the git-sync emulator running at the rendered period."""
    tag = f"rev-{time.time_ns()}"
    source = dag_source(dag_id, tag).replace('tags=["airflow-gke"]', f'tags=["airflow-gke", "{tag}"]')
    committed = time.monotonic()
    repo.commit({f"{subpath}/{dag_id}.py".lstrip("/"): source}, f"{'change' if change else 'add'} {dag_id}")

    def visible():
        status, body = api.request("GET", f"/api/v2/dags?dag_id_pattern={dag_id}&limit=100")
        return any(d["dag_id"] == dag_id and tag in {t["name"] for t in d.get("tags", [])}
                   for d in body.get("dags", [])) if status == 200 else False

    wait_until(visible, timeout, 0.5, what=f"DAG {dag_id} ({'changed' if change else 'new'}) visible in the API")
    return time.monotonic() - committed


def trigger_to_task_start(api: Api, dag_id: str, timeout: float = 300) -> float:
    """Trigger a run of `dag_id` and return the seconds until its first task instance started, i.e. the
    task pod's process reported `running` through the execution API (its start_date)."""
    status, body = api.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    assert status == 200, body
    triggered = time.time()
    status, run = api.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None})
    assert status == 200, run

    def started():
        _, body = api.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances")
        dates = [t["start_date"] for t in body.get("task_instances", []) if t.get("start_date")]
        return min(dates) if dates else None

    start = wait_until(started, timeout, 0.5, what=f"a task of {dag_id} started")
    return datetime.datetime.fromisoformat(start).timestamp() - triggered
