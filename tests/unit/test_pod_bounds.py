"""Every failure mode of the Airflow pods bounded (issue 16): logs volumes groomed in every pod that has
one, the groomer sparing open trigger logs, no sidecar readiness behind the execution API, the JWT
secret only where tokens are signed or verified, trigger logs reachable by pod IP, the api-server sized
from measurement. Rendered over the golden matrix (dev, prod and every branch the builders take)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from components.airflow.pod import maintenance
from tests.golden_manifests import MATRIX, render
from tests.unit.container_helpers import env, every_container

# Pods that run to completion: their logs volume ends with them (a Job's pod, a CronJob's, a task pod).
RUN_TO_COMPLETION = {"Job", "CronJob", "Pod"}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=sorted(MATRIX))
def case(request) -> tuple[str, list[dict]]:
    return request.param, [yaml.safe_load(text) for text in render(request.param).values()]


def pod_specs(objects: list[dict]) -> list[tuple[str, str, dict]]:
    """(kind, name, pod spec) of every pod the objects create, the task pod template included."""
    found = []
    for obj in objects:
        spec = obj.get("spec") or {}
        if obj["kind"] == "CronJob":
            found.append(("CronJob", obj["metadata"]["name"], spec["jobTemplate"]["spec"]["template"]["spec"]))
        elif "template" in spec:
            found.append((obj["kind"], obj["metadata"]["name"], spec["template"]["spec"]))
        if obj["kind"] == "ConfigMap" and "pod_template_file.yaml" in obj.get("data", {}):
            found.append(("Pod", "task-pod-template", yaml.safe_load(obj["data"]["pod_template_file.yaml"])["spec"]))
    return found


def mounts_logs_emptydir(pod: dict) -> bool:
    empty_dirs = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    return any(m["name"] == "logs" and "logs" in empty_dirs
               for c in every_container(pod) for m in c.get("volumeMounts", []))


def grooms_logs(pod: dict) -> bool:
    return any(c.get("command") == maintenance.groomer_command()
               and {e["name"]: e.get("value") for e in c.get("env", [])}.items() >= maintenance.GROOM_ENV.items()
               and any(m["name"] == "logs" and m["mountPath"] == maintenance.LOGS_DIR for m in c["volumeMounts"])
               for c in pod["containers"])


# --- 1. logs volumes ------------------------------------------------------------------------------

def test_every_long_running_pod_with_a_logs_emptydir_runs_the_groomer(case):
    name, objects = case
    checked = 0
    for kind, obj_name, pod in pod_specs(objects):
        if kind in RUN_TO_COMPLETION or not mounts_logs_emptydir(pod):
            continue
        checked += 1
        assert grooms_logs(pod), f"{name}: {kind} {obj_name} mounts a logs emptyDir and has no groomer"
    assert checked >= 1


def test_the_dag_processor_pod_of_git_bundle_mode_is_groomed():
    objects = [yaml.safe_load(text) for text in render("prod").values()]
    pods = {name: pod for kind, name, pod in pod_specs(objects) if kind == "Deployment"}
    assert "airflow-dag-processor" in pods, "prod runs git-bundle: the dag-processor has its own Deployment"
    assert grooms_logs(pods["airflow-dag-processor"])


def write(path: Path, size: int, age_minutes: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    stamp = time.time() - age_minutes * 60
    os.utime(path, (stamp, stamp))
    return path


def test_groomer_on_real_files_spares_open_trigger_logs_and_bounds_processor_logs(tmp_path):
    """The rendered groomer script, run by bash on a logs tree as Airflow 3.3.2 lays it out."""
    old = maintenance.LOG_RETENTION_MINUTES + 60
    big = maintenance.LOG_FILE_CAP_BYTES + 4096
    processor = tmp_path / "dag_processor"
    stale = write(processor / "2026-01-01" / "dags-folder" / "a_dag.py.log", 100, old)
    growing = write(processor / "2026-01-02" / "dags-folder" / "b_dag.py.log", big, 1)
    fresh = write(processor / "2026-01-02" / "dags-folder" / "c_dag.py.log", 100, 1)
    task = tmp_path / "dag_id=d" / "run_id=r" / "task_id=t"
    quiet_trigger = write(task / "attempt=1.log.trigger.7.log", 100, old)  # deferred for hours, still open
    big_trigger = write(task / "attempt=2.log.trigger.7.log", big, 1)
    environment = {**os.environ, **maintenance.GROOM_ENV, "LOGS_DIR": str(tmp_path), "GROOM_INTERVAL_SECONDS": "3600"}
    groomer = subprocess.Popen(maintenance.groomer_command(), env=environment, start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (stale.exists() or growing.stat().st_size):
            time.sleep(0.1)
        time.sleep(0.3)  # the empty-directory pass follows the truncation
    finally:
        os.killpg(groomer.pid, signal.SIGTERM)
        assert groomer.wait(timeout=10) == 0, "the groomer exits 0 on SIGTERM"
    assert not stale.exists(), "a processor log untouched for the retention is deleted"
    assert growing.stat().st_size == 0, "a processor log over the cap is truncated"
    assert fresh.stat().st_size == 100
    assert quiet_trigger.stat().st_size == 100, "an open trigger log is not deleted for being quiet"
    assert big_trigger.stat().st_size == big, "an open trigger log is not truncated (uploaded when it ends)"


# --- 2. the execution API does not depend on sidecars or the database ------------------------------

def api_service_pods(objects: list[dict]) -> list[tuple[str, dict]]:
    service = next(o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "airflow-api")
    selector = service["spec"]["selector"].items()
    return [(name, pod) for obj in objects if obj["kind"] == "Deployment"
            for name, pod in [(obj["metadata"]["name"], obj["spec"]["template"]["spec"])]
            if selector <= obj["spec"]["template"]["metadata"]["labels"].items()]


def test_pods_behind_the_execution_api_have_no_sidecar_readiness(case):
    name, objects = case
    pods = api_service_pods(objects)
    assert pods
    for deployment, pod in pods:
        ready = sorted(c["name"] for c in every_container(pod) if "readinessProbe" in c)
        assert ready == ["api-server"], f"{name}: {deployment} readiness hangs on {ready}"


def test_api_server_liveness_and_startup_touch_no_database(case):
    from components.airflow.pod.airflow_processes import HEALTH_PATH, LIVENESS_PATH

    name, objects = case
    for _, pod in api_service_pods(objects):
        api = next(c for c in pod["containers"] if c["name"] == "api-server")
        assert api["livenessProbe"]["httpGet"]["path"] == LIVENESS_PATH == "/execution/health", name
        assert api["startupProbe"]["httpGet"]["path"] == LIVENESS_PATH, name
        assert api["readinessProbe"]["httpGet"]["path"] == HEALTH_PATH, name  # readiness may follow the DB


# --- 4. trigger logs readable from any replica -----------------------------------------------------

def test_trigger_logs_are_addressed_by_ip_and_open_between_airflow_pods(case):
    name, objects = case
    for _, pod in api_service_pods(objects):
        for container in pod["containers"]:
            if container["name"] in ("triggerer", "api-server"):
                variables = {k: v.get("value") for k, v in env(container).items()}
                assert variables["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == "airflow.utils.net.get_host_ip_address"
                assert variables["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] == "8794"
    labels = next(pod_labels for obj in objects if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "airflow"
                  for pod_labels in [obj["spec"]["template"]["metadata"]["labels"]])
    opened = [rule for obj in objects if obj["kind"] == "NetworkPolicy"
              and obj["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
              and obj["spec"]["podSelector"]
              for rule in obj["spec"].get("ingress", []) if any(p["port"] == 8794 for p in rule["ports"])]
    assert opened, f"{name}: no NetworkPolicy lets the api-server reach the triggerer's log server"
    assert all(f["podSelector"]["matchLabels"].items() <= labels.items() for rule in opened for f in rule["from"])


# --- 5. the JWT secret only where tokens are signed or verified -------------------------------------

def test_jwt_secret_reaches_only_the_scheduler_and_the_api_server(case):
    name, objects = case
    holders = set()
    for kind, obj_name, pod in pod_specs(objects):
        for container in every_container(pod):
            if "AIRFLOW__API_AUTH__JWT_SECRET" in {e["name"] for e in container.get("env", [])}:
                holders.add(container["name"])
    assert holders == {"scheduler", "api-server"}, name


def test_worker_pods_are_created_concurrently_per_loop():
    objects = [yaml.safe_load(text) for text in render("dev").values()]
    pod = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    scheduler = {k: v.get("value") for k, v in env(next(c for c in pod["containers"]
                                                         if c["name"] == "scheduler")).items()}
    assert scheduler["AIRFLOW__KUBERNETES_EXECUTOR__ASYNC_POD_CREATION"] == "True"
    assert int(scheduler["AIRFLOW__KUBERNETES_EXECUTOR__WORKER_PODS_CREATION_BATCH_SIZE"]) > 1


def test_no_reference_to_options_the_pinned_provider_does_not_have():
    provider = (ROOT / ".venv-airflow/lib/python3.11/site-packages/airflow/providers/cncf/kubernetes/"
                "get_provider_info.py")
    if not provider.exists():
        pytest.skip(".venv-airflow is not installed")
    known = provider.read_text()
    assert "worker_pods_pending_timeout" not in known, "sanity: the option really is gone from the provider"
    files = [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("examples/*.py"), *ROOT.glob("tests/**/*.py"),
             *ROOT.glob("components/**/*.py")]
    stale = [str(p.relative_to(ROOT)) for p in files
             if p != Path(__file__) and "worker_pods_pending_timeout" in p.read_text()]
    assert not stale, f"these refer to [kubernetes_executor] worker_pods_pending_timeout: {stale}"


def test_every_network_policy_is_declared():
    from components.airflow.access import NETWORK_POLICY_NAMES, network_policies
    from tests.unit.test_workload_spec import make_spec

    assert tuple(p["metadata"]["name"] for p in network_policies(make_spec())) == NETWORK_POLICY_NAMES
