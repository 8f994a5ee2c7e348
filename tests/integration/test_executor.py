"""Task pods through the real KubernetesExecutor, end to end, offline.

The scheduler runs as rendered (KubernetesExecutor, the rendered pod template file, the rendered
env); its one deviation is a kubeconfig pointing at the Kubernetes API emulator on loopback
(tests/integration/kube/). The local kubelet runs each pod the executor POSTs with only that pod's
env and volumes. api-server, dag-processor, triggerer and PostgreSQL are real. One Airflow
environment (the session's `running` fixture) serves every test here; the runs start together.
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from dataclasses import dataclass

import pytest

from .harness import admin_credentials, dags_subpath, restart_container, worker_template
from .pod import find, secret_data, wait_until

VARIABLE = ("airflow_gke_greeting", "hello from a Variable")
CONNECTION = {"connection_id": "airflow_gke_service", "conn_type": "generic", "host": "service.example.internal",
              "login": "reader", "port": 5439}
CUSTOM_IMAGE = "europe-west1-docker.pkg.dev/example/airflow/custom-airflow:1.0"  # built FROM the Airflow image
MISSING_IMAGE = "apache/airflow:0.0.0-no-such-tag"
OVERRIDE_RESOURCES = {"requests": {"cpu": "300m", "memory": "600Mi"}, "limits": {"cpu": "1500m", "memory": "1200Mi"}}
SECRET_SETTINGS = ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET",
                   "AIRFLOW__API__SECRET_KEY")

DAGS = {
    "exec_api.py": f'''
import os

from airflow.sdk import Connection, Variable, dag, get_current_context, task

SECRET_SETTINGS = {SECRET_SETTINGS!r}


@dag(dag_id="exec_api", schedule=None, catchup=False)
def exec_api():
    @task
    def use_api():
        connection = Connection.get("{CONNECTION["connection_id"]}")
        get_current_context()["ti"].xcom_push(key="pushed", value={{"from": "task pod"}})
        return {{"variable": Variable.get("{VARIABLE[0]}"),
                "connection": f"{{connection.login}}@{{connection.host}}:{{connection.port}}",
                "secret_settings_in_env": {{k: v for k, v in os.environ.items()
                                           if k in SECRET_SETTINGS or "DATABASE" in k}}}}

    use_api()


exec_api()
''',
    "exec_override.py": f'''
from kubernetes.client import models as k8s

from airflow.sdk import dag, task

OVERRIDE = k8s.V1Pod(spec=k8s.V1PodSpec(containers=[k8s.V1Container(
    name="base", image="{CUSTOM_IMAGE}",
    resources=k8s.V1ResourceRequirements(requests={OVERRIDE_RESOURCES["requests"]!r},
                                         limits={OVERRIDE_RESOURCES["limits"]!r}))]))


@dag(dag_id="exec_override", schedule=None, catchup=False)
def exec_override():
    @task(executor_config={{"pod_override": OVERRIDE}})
    def heavy():
        return "ran in the custom image"

    heavy()


exec_override()
''',
    "exec_fails.py": '''
from airflow.sdk import dag, task


@dag(dag_id="exec_fails", schedule=None, catchup=False, default_args={"retries": 0})
def exec_fails():
    @task
    def boom():
        raise ValueError("this task fails on purpose")

    boom()


exec_fails()
''',
    "exec_pull.py": f'''
from kubernetes.client import models as k8s

from airflow.sdk import dag, task


@dag(dag_id="exec_pull", schedule=None, catchup=False, default_args={{"retries": 0}})
def exec_pull():
    @task(executor_config={{"pod_override": k8s.V1Pod(spec=k8s.V1PodSpec(containers=[
        k8s.V1Container(name="base", image="{MISSING_IMAGE}")]))}})
    def never_starts():
        return "unreachable"

    never_starts()


exec_pull()
''',
    "exec_adopt.py": '''
import time

from airflow.sdk import Variable, dag, task


@dag(dag_id="exec_adopt", schedule=None, catchup=False, default_args={"retries": 0})
def exec_adopt():
    @task
    def wait_for_release():
        # Runs until the test sets the Variable, so the scheduler restart happens while it runs.
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if Variable.get("airflow_gke_release", default=None):
                return "released"
            time.sleep(1)
        raise TimeoutError("never released")

    wait_for_release()


exec_adopt()
''',
}
TRIGGERED_TOGETHER = ("exec_api", "exec_override", "exec_fails", "exec_pull")
# The executor's settings the tests check the behaviour against: the rendered value, else Airflow's default.
SETTINGS = {"delete_worker_pods": ("kubernetes_executor", "delete_worker_pods"),
            "delete_worker_pods_on_failure": ("kubernetes_executor", "delete_worker_pods_on_failure"),
            "pod_launch_failure_retries": ("kubernetes_executor", "pod_launch_failure_retries"),
            "task_queued_timeout": ("scheduler", "task_queued_timeout")}


@dataclass
class Executor:
    pod: object
    api: object
    runs: dict[str, tuple[str, float]]  # dag_id -> (run_id, time triggered)
    settings: dict[str, str]

    @property
    def cluster(self):
        return self.api.cluster

    def scheduler_log(self) -> str:
        return (self.pod.root / "scheduler.log").read_text(errors="replace")

    def posted(self, dag_id: str) -> list[dict]:
        return [p for p in self.cluster.posted if p["metadata"]["annotations"]["dag_id"] == dag_id]

    def finished(self, dag_id: str, timeout: float = 240) -> dict:
        run_id = self.runs[dag_id][0]

        def done():
            _, state = self.api.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            return state if state.get("state") in ("success", "failed") else None

        try:
            return wait_until(done, timeout, 2, what=f"{dag_id} run finished")
        except TimeoutError:
            print(self.pod.log_tail("scheduler", 80), file=sys.stderr)
            raise

    def task_instance(self, dag_id: str) -> dict:
        _, body = self.api.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{self.runs[dag_id][0]}/taskInstances")
        (instance,) = body["task_instances"]
        return instance

    def xcom(self, dag_id: str, task_id: str, key: str = "return_value"):
        _, body = self.api.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{self.runs[dag_id][0]}/taskInstances/"
                                          f"{task_id}/xcomEntries/{key}?deserialize=true")
        return body.get("value")


def trigger(api, dag_id: str) -> tuple[str, float]:
    status, body = api.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    assert status == 200, body
    triggered = time.time()
    status, run = api.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None})
    assert status == 200, run
    return run["dag_run_id"], triggered


def effective_settings(pod) -> dict[str, str]:
    """The values the scheduler runs with: read by Airflow itself in the scheduler container's env."""
    code = "; ".join(["from airflow.configuration import conf", "import json",
                      f"print(json.dumps({{k: conf.get(*v) for k, v in {SETTINGS!r}.items()}}))"])
    result = pod.run("scheduler", {"AIRFLOW__LOGGING__REMOTE_LOGGING": "False"}, argv=["python", "-c", code],
                     timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def executor(running, rendered) -> Executor:
    pod, api, (repo, sync) = running
    api.login(*admin_credentials(rendered))
    status, body = api.request("POST", "/api/v2/variables", {"key": VARIABLE[0], "value": VARIABLE[1]})
    assert status == 201, body
    status, body = api.request("POST", "/api/v2/connections", CONNECTION)
    assert status == 201, body
    api.cluster.kubelet.airflow_images.add(CUSTOM_IMAGE)  # the "registry" holds the custom image
    subpath = dags_subpath(pod)
    repo.commit({f"{subpath}/{name}".lstrip("/"): text for name, text in DAGS.items()}, "executor test DAGs")
    sync.sync_once()
    settings = effective_settings(pod)
    wanted = {name.removesuffix(".py") for name in DAGS}
    wait_until(lambda: wanted <= api.dag_ids(), 180, 2, what=f"DAGs {sorted(wanted)} parsed")
    return Executor(pod, api, {dag_id: trigger(api, dag_id) for dag_id in TRIGGERED_TOGETHER}, settings)


def as_bool(text: str) -> bool:
    return text.strip().lower() == "true"


def by_name(items: list[dict]) -> dict[str, dict]:
    return {item["name"]: item for item in items}


def template_difference(template: dict, posted: dict) -> dict:
    """The posted pod minus the template: what the executor (and a pod_override) added or changed."""
    spec, base_spec = posted["spec"], template["spec"]
    (base,), (template_base,) = spec["containers"], base_spec["containers"]
    return {
        "namespace": posted["metadata"]["namespace"],
        "labels_dropped": {k: v for k, v in template["metadata"]["labels"].items()
                           if posted["metadata"]["labels"].get(k) != v},
        "labels_added": sorted(set(posted["metadata"]["labels"]) - set(template["metadata"]["labels"])),
        "pod_spec_changed": sorted(k for k in {*spec, *base_spec} if k != "containers" and spec.get(k) != base_spec.get(k)),
        "base_changed": sorted(k for k in {*base, *template_base} if k not in ("env", "args")
                               and base.get(k) != template_base.get(k)),
        "env_dropped_or_changed": sorted(n for n, e in by_name(template_base["env"]).items()
                                         if by_name(base["env"]).get(n) != e),
        "env_added": sorted(set(by_name(base["env"])) - set(by_name(template_base["env"]))),
        "args": base.get("args", []),
    }


EXECUTOR_LABELS = {"airflow-worker", "airflow_version", "dag_id", "kubernetes_executor", "run_id", "task_id",
                   "try_number"}


def assert_template_plus_executor_additions(difference: dict, namespace: str, base_changed: list[str]) -> None:
    assert difference["namespace"] == namespace
    assert difference["labels_dropped"] == {}
    assert set(difference["labels_added"]) - {"ti_id", "airflow_task_instance_id"} <= EXECUTOR_LABELS, difference
    assert difference["pod_spec_changed"] == [], "the pod spec must be the template's (SA, security, volumes, init)"
    assert difference["base_changed"] == base_changed
    assert difference["env_dropped_or_changed"] == []
    assert difference["env_added"] == ["AIRFLOW_IS_K8S_EXECUTOR_POD"]
    assert difference["args"][:3] == ["python", "-m", "airflow.sdk.execution_time.execute_workload"]


# --- a run through the executor, the pod as posted -----------------------------------------------

def test_dag_run_succeeds_through_kubernetes_executor(executor, rendered):
    final = executor.finished("exec_api")
    assert final["state"] == "success", executor.pod.log_tail("scheduler", 60)
    (posted,) = executor.posted("exec_api")
    template = worker_template(rendered)
    namespace = executor.pod.rendered_env(executor.pod.container("scheduler"))["AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE"]
    assert_template_plus_executor_additions(template_difference(template, posted), namespace, base_changed=[])
    assert posted["spec"]["serviceAccountName"] == template["spec"]["serviceAccountName"] == "airflow-worker"
    started = datetime.datetime.fromisoformat(executor.task_instance("exec_api")["start_date"]).timestamp()
    print(f"trigger-to-task-start through the executor: {started - executor.runs['exec_api'][1]:.1f}s",
          file=sys.stderr)
    # The rendered delete_worker_pods removes the pod of a task that succeeded.
    assert as_bool(executor.settings["delete_worker_pods"])
    wait_until(lambda: executor.cluster.pod(posted["metadata"]["name"]) is None, 60, 1, what="succeeded pod deleted")
    assert executor.cluster.kubelet.statuses[posted["metadata"]["name"]]["phase"] == "Succeeded"


def test_posted_task_pod_holds_no_database_url_fernet_or_signing_key(executor, rendered):
    executor.finished("exec_api")
    secrets = secret_data(find(rendered, "Secret", "airflow-secrets"))
    for posted in executor.cluster.posted:
        text = json.dumps(posted)
        for key in ("sql-alchemy-conn", "fernet-key", "jwt-secret", "api-secret-key"):
            assert secrets[key] not in text, f"pod {posted['metadata']['name']} carries the {key} value"
        assert "airflow-secrets" not in text
        names = {e["name"] for c in posted["spec"]["containers"] + posted["spec"].get("initContainers", [])
                 for e in c.get("env", [])}
        assert not names & set(SECRET_SETTINGS)


def test_task_reads_variable_and_connection_and_pushes_xcom_through_execution_api(executor):
    assert executor.finished("exec_api")["state"] == "success"
    assert executor.xcom("exec_api", "use_api") == {
        "variable": VARIABLE[1],
        "connection": f"{CONNECTION['login']}@{CONNECTION['host']}:{CONNECTION['port']}",
        # What the task process saw: no key, and as DB URL only the Task SDK's blocker, which its
        # supervisor sets so that ORM access fails (airflow/sdk/execution_time/supervisor.py).
        "secret_settings_in_env": {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "airflow-db-not-allowed:///"},
    }
    assert executor.xcom("exec_api", "use_api", "pushed") == {"from": "task pod"}


# --- executor_config pod_override ----------------------------------------------------------------

def test_pod_override_changes_image_and_resources_and_keeps_the_rest(executor, rendered):
    assert executor.finished("exec_override")["state"] == "success"
    assert executor.xcom("exec_override", "heavy") == "ran in the custom image"
    (posted,) = executor.posted("exec_override")
    base = posted["spec"]["containers"][0]
    assert base["image"] == CUSTOM_IMAGE
    assert base["resources"] == OVERRIDE_RESOURCES
    namespace = executor.pod.rendered_env(executor.pod.container("scheduler"))["AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE"]
    assert_template_plus_executor_additions(template_difference(worker_template(rendered), posted), namespace,
                                            base_changed=["image", "resources"])


# --- a failing task ------------------------------------------------------------------------------

def test_failing_task_ends_failed_and_its_pod_is_handled_per_rendered_delete_setting(executor):
    assert executor.finished("exec_fails")["state"] == "failed"
    assert executor.task_instance("exec_fails")["state"] == "failed"
    (posted,) = executor.posted("exec_fails")
    name = posted["metadata"]["name"]
    kubelet = executor.cluster.kubelet
    phase = wait_until(lambda: kubelet.statuses.get(name, {}).get("phase") in ("Succeeded", "Failed")
                       and kubelet.statuses[name]["phase"], 120, 1, what="failing task's pod finished")
    delete = as_bool(executor.settings["delete_worker_pods"]) and (
        phase != "Failed" or as_bool(executor.settings["delete_worker_pods_on_failure"]))
    if delete:
        wait_until(lambda: executor.cluster.pod(name) is None, 60, 1, what="pod of the failed task deleted")
    else:  # kept for `kubectl logs` / `describe`, once the executor has handled its Failed event
        wait_until(lambda: f"Event: {name} Failed" in executor.scheduler_log(), 60, 1,
                   what="executor saw the pod fail")
        time.sleep(5)
        assert executor.cluster.pod(name) is not None, "pod deleted despite delete_worker_pods_on_failure=False"


# --- a pod that never starts ---------------------------------------------------------------------

def test_pod_with_image_pull_error_fails_task_within_queued_timeout_with_actionable_message(executor):
    final = executor.finished("exec_pull", timeout=float(executor.settings["task_queued_timeout"]) + 60)
    assert final["state"] == "failed"
    instance = executor.task_instance("exec_pull")
    assert instance["state"] == "failed"
    failed_after = datetime.datetime.fromisoformat(final["end_date"]).timestamp() - executor.runs["exec_pull"][1]
    assert failed_after < float(executor.settings["task_queued_timeout"])
    posted = executor.posted("exec_pull")
    # The executor requeues a pod that failed before the task started, pod_launch_failure_retries times.
    assert len(posted) == 1 + int(executor.settings["pod_launch_failure_retries"])
    scheduler_log = executor.scheduler_log()
    for pod in posted:
        name = pod["metadata"]["name"]
        assert pod["spec"]["containers"][0]["image"] == MISSING_IMAGE
        # What an operator sees: the scheduler names pod, container and reason ...
        assert f"Event: {name} has container base with fatal reason ErrImagePull" in scheduler_log
        # ... and the pod is kept (failed pods are, with delete_worker_pods_on_failure=False), its status
        # naming the image that cannot be pulled (`kubectl get pod` / `describe`).
        if not as_bool(executor.settings["delete_worker_pods_on_failure"]):
            waiting = executor.cluster.pod(name)["status"]["containerStatuses"][0]["state"]["waiting"]
            assert waiting["reason"] in ("ErrImagePull", "ImagePullBackOff")
            assert MISSING_IMAGE in waiting["message"]
    print(f"image pull error -> task failed after {failed_after:.1f}s "
          f"(task_queued_timeout {executor.settings['task_queued_timeout']}s)", file=sys.stderr)


# --- scheduler restart while a task runs ---------------------------------------------------------

def test_scheduler_restart_adopts_running_task_pod_and_run_completes(executor):
    for dag_id in TRIGGERED_TOGETHER:  # the adoption run on its own: the others are done
        executor.finished(dag_id)
    api, cluster = executor.api, executor.cluster
    executor.runs["exec_adopt"] = trigger(api, "exec_adopt")
    (posted,) = wait_until(lambda: executor.posted("exec_adopt"), 120, 1, what="exec_adopt pod created")
    name = posted["metadata"]["name"]
    wait_until(lambda: cluster.kubelet.statuses.get(name, {}).get("phase") == "Running", 120, 1,
               what="exec_adopt pod running")
    wait_until(lambda: executor.task_instance("exec_adopt")["state"] == "running", 120, 1, what="task running")
    first_owner = cluster.pod(name)["metadata"]["labels"]["airflow-worker"]

    restart_container(executor.pod, api, "scheduler")
    adopted = wait_until(lambda: (lambda pod: pod if pod["metadata"]["labels"]["airflow-worker"] != first_owner
                                  else None)(cluster.pod(name)), 180, 2, what="pod adopted by the new scheduler")
    assert adopted["status"]["phase"] == "Running", "the task pod kept running through the restart"
    status, body = api.request("POST", "/api/v2/variables", {"key": "airflow_gke_release", "value": "go"})
    assert status == 201, body
    assert executor.finished("exec_adopt")["state"] == "success"
    assert executor.xcom("exec_adopt", "wait_for_release") == "released"
    assert len(executor.posted("exec_adopt")) == 1, "adoption must not start the task again in a new pod"
    wait_until(lambda: cluster.pod(name) is None, 60, 1, what="adopted pod deleted by the new scheduler")
