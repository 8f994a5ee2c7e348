"""Set-up for git-bundle mode (airflow-gke:dagSource = git-bundle) on real Airflow: a stack rendered in
that mode, a local DAG repository standing in for the remote one, the rendered dag-processor, api-server
and scheduler (its KubernetesExecutor creating task pods on the Kubernetes API emulator), and the
local kubelet running those pods (tests/integration/kube/).

Deviations from the cluster, besides those of harness.py (`deviations()`, `local_cluster()`):
- git reaches the local repository instead of the rendered remote URL through git's own URL rewriting
  (`url.<local>.insteadOf=<rendered URL>` in GIT_CONFIG_* env): every git call Airflow or the task pod's
  entry point makes is otherwise as rendered (connection, bundle config, storage path).
- a PostgreSQL database and role of its own (`airflow_bundle`, same password), so these tests share the
  server with the other integration tests without their lock: the rendered connection string with only
  user and database name changed (`own_database`); task pods render no connection (tasks reach the
  execution API), so they need none;
- task pods stay Pending until the test lets them start (`TaskPods.run`, the kubelet's `admit` hook),
  so a test can push a commit between the executor creating a task's pod and the task starting.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from urllib.parse import quote, unquote, urlsplit, urlunsplit

import yaml

from preview.harness import run_program
from preview.render import write_outputs
from tests.conftest import stack_config

from .gitsync import DagRepo
from .harness import WORK, Api, SetupError, deviations, local_cluster, make_pod, psql
from .kube import LocalCluster
from .pod import ROOT, LocalPod, find, free_port, kill_tree, load_manifests, reset_dir, secret_data, wait_until

BUNDLE_REPO_URL = "https://git.example.test/acme/dags.git"
BUNDLE_SUBPATH = "dags"
# process → rendered Deployment that runs it in git-bundle mode (the dag-processor has its own, dag_processor.py)
BUNDLE_PROCESSES = {"api-server": "airflow", "scheduler": "airflow", "dag-processor": "airflow-dag-processor"}
# The KubernetesExecutor starts a multiprocessing Manager, whose unix socket is
# <TMPDIR>/pymp-XXXXXXXX/listener-XXXXXXXX; a socket path has at most 107 bytes (unix(7): sun_path[108]).
SOCKET_SUFFIX_BYTES = len("/pymp-XXXXXXXX/listener-XXXXXXXX")
SOCKET_PATH_MAX = 107

PINNED_DAG = '''\
import os

from airflow.sdk import dag, task

MARKER = "{marker}"


@dag(dag_id="{dag_id}", schedule=None, catchup=False, tags=["airflow-gke", "{tag}"])
def pinned():
    @task
    def first():
        print("git credentials in the task's env:",
              any(k in os.environ.get("AIRFLOW_CONN_DAGS_GIT", "") for k in ("password", "key_file")))
        print("running code of commit", MARKER)
        return MARKER

    @task
    def second(upstream):
        print("running code of commit", MARKER, "after", upstream)
        return MARKER

    second(first())


pinned()
'''


def pinned_dag(dag_id: str, marker: str, tag: str = "v") -> str:
    return PINNED_DAG.format(dag_id=dag_id, marker=marker, tag=tag)


def render_bundle_stack(name: str = "dev-bundle", **overrides: str) -> list[dict]:
    """The dev stack in git-bundle mode, written to build/<name>/manifests/."""
    config = stack_config("dev", **{"dagSource": "git-bundle", "dagsRepo": BUNDLE_REPO_URL, "dagsRef": "main",
                                    "dagsSubpath": BUNDLE_SUBPATH, **overrides})
    for key in ("gitSyncPeriod", "gitSyncMaxFailures"):  # git-sync-only keys are refused in this mode
        config.pop(f"airflow-gke:{key}", None)
    _, manifests_dir = write_outputs(run_program("dev", config), ROOT / "build" / name)
    return load_manifests(manifests_dir)


def own_database(objects: list[dict], name: str = "airflow_bundle") -> dict[str, str]:
    """An empty database `name` owned by role `name` (rendered password); the env override pointing
    Airflow at it."""
    url = urlsplit(secret_data(find(objects, "Secret", "airflow-secrets"))["sql-alchemy-conn"])
    password = unquote(url.password)
    psql(f'drop database if exists "{name}" with (force)')
    psql(f"do $$ begin if not exists (select from pg_roles where rolname = '{name}') then "
         f"create role \"{name}\" login; end if; end $$")
    psql(f"alter role \"{name}\" with login password '{password}'")
    psql(f'create database "{name}" owner "{name}"')
    netloc = f"{quote(name, safe='')}:{quote(password, safe='')}@{url.hostname}:{url.port}"
    return {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": urlunsplit(url._replace(netloc=netloc, path=f"/{name}"))}


def migrate(objects: list[dict], database: dict[str, str], workdir: str) -> None:
    """The rendered migration Job's containers (db-migrate, create-admin-user) against `database`."""
    job = make_pod(objects, "Job", None, workdir)
    for container in ("db-migrate", "create-admin-user"):
        result = job.run(container, {"AIRFLOW__LOGGING__REMOTE_LOGGING": "False", **database})
        if result.returncode != 0:
            raise AssertionError(f"{container} failed: {result.stdout[-2000:]}{result.stderr[-3000:]}")


def rendered_pod_template(objects: list[dict]) -> dict:
    return yaml.safe_load(find(objects, "ConfigMap", "airflow-config")["data"]["pod_template_file.yaml"])


def git_redirect(repo: Path, url: str = BUNDLE_REPO_URL) -> dict[str, str]:
    """Env that makes git fetch `url` from the local repository (git-config(1) url.<base>.insteadOf)."""
    return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"url.file://{repo}.insteadOf", "GIT_CONFIG_VALUE_0": url}


def bundle_version_of(api: Api, dag_id: str) -> str | None:
    status, body = api.request("GET", f"/api/v2/dags/{dag_id}")
    return body.get("bundle_version") if status == 200 else None


def wait_parsed(api: Api, dag_id: str, commit: str, timeout: float = 120) -> float:
    """Seconds until the dag-processor recorded `commit` as the DAG's bundle version."""
    started = time.monotonic()
    wait_until(lambda: bundle_version_of(api, dag_id) == commit, timeout, 0.5,
               what=f"{dag_id} parsed at {commit[:10]}")
    return time.monotonic() - started


@dataclass
class TaskPod:
    """One task pod the KubernetesExecutor created, as it POSTed it; the kubelet holds it until `TaskPods.run`."""

    name: str
    args: list[str]

    @property
    def workload(self) -> dict:
        return json.loads(self.args[self.args.index("--json-string") + 1])

    @property
    def bundle_version(self) -> str | None:
        return self.workload["bundle_info"]["version"]


@dataclass
class TaskResult:
    """The exit code of the task pod's base container and its log (stdout and stderr)."""

    returncode: int
    stdout: str


class TaskPods:
    """The executor's task pods on the local kubelet: each is a fresh pod (empty volumes, as on a new node)
    running the rendered template's command with the executor's args; each stays Pending until `run`."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.released: list[str] = []  # pod names, in the order they were let start
        cluster.kubelet.admit = lambda manifest: manifest["metadata"]["name"] in self.released

    @property
    def started(self) -> list[LocalPod]:
        """The pods let start, in that order."""
        return [self.cluster.kubelet.pods[name] for name in self.released if name in self.cluster.kubelet.pods]

    def next_task(self, dag_id: str, task_id: str, run_id: str, timeout: float = 120) -> TaskPod:
        def created():
            for posted in self.cluster.posted:
                notes = posted["metadata"]["annotations"]
                if (notes["dag_id"], notes["task_id"], notes["run_id"]) == (dag_id, task_id, run_id):
                    [base] = [c for c in posted["spec"]["containers"] if c["name"] == "base"]
                    return TaskPod(posted["metadata"]["name"], base["args"])
            return None

        return wait_until(created, timeout, 0.5, what=f"the pod of {dag_id}.{task_id} of {run_id} created")

    def held(self, task: TaskPod) -> bool:
        """The pod is Pending and its task container has not started."""
        kubelet = self.cluster.kubelet
        return ((kubelet.statuses.get(task.name) or {}).get("phase") == "Pending"
                and "waiting" in (kubelet.container_state(task.name, "base") or {}))

    def run(self, task: TaskPod, timeout: float = 300) -> TaskResult:
        """Let the pod start; wait until its base container exited."""
        kubelet = self.cluster.kubelet
        self.released.append(task.name)
        state = wait_until(lambda: (kubelet.container_state(task.name, "base") or {}).get("terminated"), timeout,
                           0.5, what=f"task pod {task.name} finished")
        return TaskResult(state["exitCode"], kubelet.pods[task.name].log_tail("base", 100_000))


@contextlib.contextmanager
def bundle_airflow(objects: list[dict], repo: DagRepo, workdir: str, database: dict[str, str]):
    """The rendered api-server and scheduler (Deployment `airflow`) and dag-processor (Deployment
    `airflow-dag-processor`) of git-bundle mode, the scheduler's KubernetesExecutor creating task pods on
    the API emulator; yields ({deployment name: pod}, Api, TaskPods)."""
    pods = {name: make_pod(objects, "Deployment", name, f"{workdir}-{name}")
            for name in sorted(set(BUNDLE_PROCESSES.values()))}
    tmpdir = pods["airflow"].env(pods["airflow"].container("scheduler"))["TMPDIR"]
    if len(tmpdir.encode()) + SOCKET_SUFFIX_BYTES > SOCKET_PATH_MAX:
        raise SetupError(f"the scheduler's TMPDIR {tmpdir} is too long for the KubernetesExecutor's unix socket "
                         f"(≤ {SOCKET_PATH_MAX} bytes with {SOCKET_SUFFIX_BYTES} added): use a shorter workdir "
                         "or checkout path")
    api_port = free_port()
    git_env = git_redirect(repo.path)
    cluster = local_cluster(pods["airflow"], api_port, None, f"{workdir}-cluster")
    cluster.kubelet.extra_env.update(git_env)
    tasks = TaskPods(cluster.start())
    started: dict[str, subprocess.Popen] = {}
    try:
        for process, deployment in BUNDLE_PROCESSES.items():
            pod = pods[deployment]
            overrides = {**deviations(pod, api_port, process, cluster.kubeconfig), **git_env, **database}
            started[process] = pod.start(process, overrides, replace_args={"8080": str(api_port)})
        wait_until(lambda: pods["airflow"].probe("api-server", "startupProbe", port_map={8080: api_port})[0], 180,
                   what="api-server healthy")
        api = Api(api_port)
        api.cluster = cluster
        yield pods, api, tasks
    finally:
        # Killed, not stopped: on SIGTERM the KubernetesExecutor waits 20 s for its job watcher, which
        # ignores SIGTERM (it inherits the scheduler's handler, a no-op outside the parent process:
        # airflow/jobs/scheduler_job_runner.py _exit_gracefully; the bounded join: apache/airflow#52662).
        # Nothing is asserted after this point.
        if "scheduler" in started and started["scheduler"].poll() is None:
            kill_tree(started["scheduler"])  # the relay and Airflow's own process group
        for pod in pods.values():
            pod.stop_all()
        cluster.stop()


def storage_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


# --- one container of a rendered pod, running a bundle operation (no scheduler, no database) -------------

TRACK = """
from airflow.dag_processing.bundles.manager import DagBundlesManager
bundle = DagBundlesManager().get_bundle("dags")
bundle.initialize()
print("TRACKING", bundle.get_current_version().version)
"""

# What the task runner does first with a workload (task_runner.parse): the bundle at the pinned version.
AT_VERSION = """
import json, sys
from airflow.dag_processing.bundles.manager import DagBundlesManager
info = json.loads(sys.argv[sys.argv.index("--json-string") + 1])["bundle_info"]
bundle = DagBundlesManager().get_bundle(info["name"], version=info["version"])
bundle.initialize()
print("TASK", (bundle.path / "pinned.py").read_text().split("MARKER = ")[1].split()[0])
"""


def run_python(pod: LocalPod, container: str, script: str, overrides: dict) -> subprocess.CompletedProcess:
    """`python -c script` with the container's rendered env (+ overrides) and its folders."""
    env = pod.env(pod.container(container), {"AIRFLOW__LOGGING__REMOTE_LOGGING": "False", **overrides})
    return subprocess.run(["python", "-c", script], env=env, capture_output=True, text=True, timeout=300,
                          cwd=pod.host_path(pod.container(container), "/opt/airflow"))


def task_pod(objects: list[dict], name: str) -> LocalPod:
    """A fresh task pod (empty volumes, as on a new node) from the rendered pod template."""
    template = rendered_pod_template(objects)
    work = reset_dir(WORK / name)
    return LocalPod.create(objects, template["spec"], work / "root", work / "volumes",
                           template["metadata"]["namespace"])


def start_task(pod: LocalPod, commit: str, overrides: dict, entry_point: bool = True) -> subprocess.CompletedProcess:
    """Start the task pod's base container on an execute_workload-shaped command pinned to `commit`:
    through the rendered command (the fetch script), or with GitDagBundle alone (`entry_point=False`)."""
    base = pod.container("base")
    env = pod.env(base, {"AIRFLOW__LOGGING__REMOTE_LOGGING": "False", **overrides})
    workload = json.dumps({"bundle_info": {"name": "dags", "version": commit}})
    args = ["python", "-c", AT_VERSION, "--json-string", workload]
    argv = pod.argv(base, env, args) if entry_point else args
    argv = [pod.host_path(base, a) if a.startswith("/opt/airflow/") else a for a in argv]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300,
                          cwd=pod.host_path(base, "/opt/airflow"))


def bundle_storage(pod: LocalPod, container: str) -> Path:
    """The container's bundle storage folder (the rendered DAG_BUNDLE_STORAGE_PATH) on this machine."""
    c = pod.container(container)
    return Path(pod.host_path(c, pod.rendered_env(c)["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH"]))


def history_repo(path: Path, commits: int, blob_bytes: int) -> tuple[DagRepo, str]:
    """A DAG repository with history: every commit rewrites an incompressible file of `blob_bytes`."""
    repo = DagRepo(reset_dir(path), "main")
    commit = ""
    for index in range(commits):
        blob = base64.b64encode(os.urandom(blob_bytes * 3 // 4)).decode()
        commit = repo.commit({f"{BUNDLE_SUBPATH}/pinned.py": pinned_dag("pinned", f"c{index}"),
                              "data/blob.txt": blob}, f"commit {index}")
    return repo, commit


@dataclass
class TaskStartCost:
    seconds: float
    git_bytes: int  # git objects the task pod got: the fetch script's report, or GitDagBundle's bare clone
    cloned: bool  # GitDagBundle's bare clone of the whole repository is there


def task_start_cost(objects: list[dict], repo: DagRepo, commit: str, name: str, entry_point: bool) -> TaskStartCost:
    pod = task_pod(objects, name)
    started = time.monotonic()
    result = start_task(pod, commit, git_redirect(repo.path), entry_point)
    seconds = time.monotonic() - started
    if result.returncode != 0 or "TASK" not in result.stdout:
        raise AssertionError(f"task start failed: {result.stdout[-2000:]}{result.stderr[-3000:]}")
    bare = bundle_storage(pod, "base") / "dags" / "bare"
    if bare.exists():
        return TaskStartCost(seconds, storage_bytes(bare / "objects"), True)
    report = next(json.loads(line) for line in result.stdout.splitlines() if '"fetched_bytes"' in line)
    return TaskStartCost(seconds, report["fetched_bytes"], False)


