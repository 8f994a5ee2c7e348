"""Set-up for git-bundle mode (airflow-gke:dagSource = git-bundle) on real Airflow: a stack rendered in
that mode, a local DAG repository standing in for the remote one, the rendered dag-processor, api-server
and scheduler, and task pods run from the rendered pod template with the command the executor gives.

Deviations from the cluster, besides those of harness.py (`deviations()`):
- git reaches the local repository instead of the rendered remote URL through git's own URL rewriting
  (`url.<local>.insteadOf=<rendered URL>` in GIT_CONFIG_* env): every git call Airflow or the task pod's
  entry point makes is otherwise as rendered (connection, bundle config, storage path).
- the scheduler's executor is tests/integration/spool_executor.py: it writes the command the
  KubernetesExecutor would put in the task pod instead of creating the pod; `TaskPods` runs the
  rendered pod template with that command and only the pod's env and volumes.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from preview.harness import run_program
from preview.render import write_outputs
from tests.conftest import stack_config

from .gitsync import DagRepo
from .harness import WORK, Api, deviations, make_pod
from .pod import ROOT, LocalPod, find, free_port, load_manifests, reset_dir, wait_until

BUNDLE_REPO_URL = "https://git.example.test/acme/dags.git"
BUNDLE_SUBPATH = "dags"
BUNDLE_PROCESSES = ("api-server", "dag-processor", "scheduler")
SPOOL_EXECUTOR = "tests.integration.spool_executor.SpoolExecutor"

PINNED_DAG = '''\
from airflow.sdk import dag, task

MARKER = "{marker}"


@dag(dag_id="{dag_id}", schedule=None, catchup=False, tags=["airflow-gke", "{tag}"])
def pinned():
    @task
    def first():
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
class Spooled:
    """One task the scheduler handed to the executor: the task pod's command."""

    path: Path
    dag_id: str
    task_id: str
    run_id: str
    args: list[str]

    @property
    def workload(self) -> dict:
        return json.loads(self.args[self.args.index("--json-string") + 1])

    @property
    def bundle_version(self) -> str | None:
        return self.workload["bundle_info"]["version"]


@dataclass
class TaskPods:
    """Runs task pods from the rendered pod template, one fresh pod (empty volumes) per task, like a new
    node would: the container's command from the template, the executor's args after it."""

    objects: list[dict]
    spool: Path
    api_port: int
    git_env: dict[str, str]
    started: list[LocalPod] = field(default_factory=list)

    def next_task(self, dag_id: str, task_id: str, run_id: str, timeout: float = 120) -> Spooled:
        def spooled():
            for path in sorted(self.spool.glob("*.json")):
                record = json.loads(path.read_text())
                if (record["dag_id"], record["task_id"], record["run_id"]) == (dag_id, task_id, run_id):
                    return Spooled(path, dag_id, task_id, run_id, record["args"])
            return None

        return wait_until(spooled, timeout, 0.5, what=f"{dag_id}.{task_id} of {run_id} handed to the executor")

    def run(self, task: Spooled, name: str, timeout: float = 300) -> subprocess.CompletedProcess:
        template = rendered_pod_template(self.objects)
        work = reset_dir(WORK / "task-pods" / name)
        pod = LocalPod.create(self.objects, template["spec"], work / "root", work / "volumes",
                              template["metadata"]["namespace"])
        self.started.append(pod)
        base = pod.container("base")
        overrides = {**deviations(pod, self.api_port, "base"), **self.git_env}
        env = pod.env(base, overrides)
        argv = [pod.host_path(base, a) if a.startswith("/opt/airflow/") else a for a in pod.argv(base, env, task.args)]
        result = subprocess.run(argv, env=env, cwd=pod.host_path(base, "/opt/airflow"), capture_output=True,
                                text=True, timeout=timeout)
        (work / "output.log").write_text(result.stdout + result.stderr)
        (self.spool / f"{task.path.stem}.result").write_text(str(result.returncode))
        task.path.unlink()
        return result

    @staticmethod
    def storage(pod: LocalPod) -> Path:
        """The bundle storage folder of a task pod (the rendered DAG_BUNDLE_STORAGE_PATH)."""
        base = pod.container("base")
        return Path(pod.host_path(base, pod.rendered_env(base)["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH"]))


@contextlib.contextmanager
def bundle_airflow(objects: list[dict], repo: DagRepo, workdir: str, spool: Path,
                   processes: tuple[str, ...] = BUNDLE_PROCESSES, pod: LocalPod | None = None):
    """The rendered api-server, dag-processor and scheduler of the Deployment (git-bundle mode); yields
    (pod, Api); the scheduler's executor spools task commands to `spool`."""
    pod = pod or make_pod(objects, "Deployment", "airflow", workdir)
    api_port = free_port()
    git_env = git_redirect(repo.path)
    for name in processes:
        overrides = {**deviations(pod, api_port, name), **git_env}
        if name == "scheduler":
            overrides.update({"AIRFLOW__CORE__EXECUTOR": SPOOL_EXECUTOR, "AIRFLOW_GKE_SPOOL_DIR": str(spool),
                              "PYTHONPATH": str(ROOT)})
        pod.start(name, overrides, replace_args={"8080": str(api_port)})
    try:
        wait_until(lambda: pod.probe("api-server", "startupProbe", port_map={8080: api_port})[0], 180,
                   what="api-server healthy")
        yield pod, Api(api_port)
    finally:
        pod.stop_all()


def storage_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


