"""Settings for a long-running workload as rendered (components/airflow/pod/airflow_processes.py
long_running_env, pod/shared.py image_pull_policy)."""

from __future__ import annotations

import pytest
import yaml

from components.airflow.pod.shared import image_pull_policy
from tests.conftest import run_stack


def manifests(capture) -> list[dict]:
    return [m for _, m in capture.kubernetes_objects()]


def pod_specs(objects: list[dict]) -> list[dict]:
    template = yaml.safe_load(next(o for o in objects if o["kind"] == "ConfigMap")["data"]["pod_template_file.yaml"])
    specs = [template["spec"]]
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            specs.append(obj["spec"]["template"]["spec"])
        elif obj["kind"] == "CronJob":
            specs.append(obj["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return specs


def env_of(objects: list[dict], container: str) -> dict[str, str]:
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    found = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == container)
    return {e["name"]: e.get("value") for e in found["env"]}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_pinned_images_are_not_pulled_again(request, stack):
    """Always on a pinned tag only adds registry round-trips; a registry blip then fails pending task
    pods with ErrImagePull (issue 9 item 7)."""
    containers = [c for spec in pod_specs(manifests(request.getfixturevalue(stack)))
                  for c in [*spec.get("initContainers", []), *spec["containers"]]]
    assert len(containers) > 10
    assert {c["imagePullPolicy"] for c in containers} == {"IfNotPresent"}


def test_unpinned_image_would_be_pulled_always():
    assert image_pull_policy("apache/airflow:3.3.2-python3.12") == "IfNotPresent"
    assert image_pull_policy("apache/airflow@sha256:" + "a" * 64) == "IfNotPresent"
    assert image_pull_policy("apache/airflow") == "Always"
    assert image_pull_policy("apache/airflow:latest") == "Always"


def test_unchanged_files_are_reparsed_less_often_than_listed(dev):
    env = env_of(manifests(dev), "dag-processor")
    assert env["AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL"] == "10"
    assert env["AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL"] == "120"
    other = env_of(manifests(run_stack("dev", dagReparseInterval="5m")), "dag-processor")
    assert other["AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL"] == "300"


def test_base_url_is_the_port_forward_address_unless_set(dev):
    assert env_of(manifests(dev), "api-server")["AIRFLOW__API__BASE_URL"] == "http://localhost:8080"
    exposed = run_stack("dev", baseUrl="https://airflow.example.com")
    assert env_of(manifests(exposed), "scheduler")["AIRFLOW__API__BASE_URL"] == "https://airflow.example.com"


def test_burst_of_task_pods_is_created_in_few_scheduler_loops(dev):
    assert int(env_of(manifests(dev), "scheduler")["AIRFLOW__KUBERNETES_EXECUTOR__WORKER_PODS_CREATION_BATCH_SIZE"]) >= 16


def test_task_pods_get_a_writable_home(dev):
    template = pod_specs(manifests(dev))[0]
    base = next(c for c in template["containers"] if c["name"] == "base")
    home = next(e["value"] for e in base["env"] if e["name"] == "HOME")
    assert any(home == m["mountPath"] or home.startswith(m["mountPath"] + "/") for m in base["volumeMounts"]
               if not m.get("readOnly")), home
