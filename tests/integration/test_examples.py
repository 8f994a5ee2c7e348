"""examples/*.py parse with the pinned Airflow, and their pod overrides merge with the rendered pod
template into pods the Kubernetes API accepts (another Airflow-based image with its own size; a task
on the Spot pool, matching the taint components/cluster.py puts on it)."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from components.cluster import SPOT_TAINT
from preview.capacity import Resources, gke_allocatable, pod_requests
from preview.cost import gke_system_requests, load_prices, machine_price
from tests.conftest import run_stack, stack_config

from .pod import AIRFLOW_VENV, ROOT, find

# The folder both committed stacks give the DAG processor (dagsSubpath of the user's fork of this repo).
EXAMPLES = ROOT / stack_config("dev")["airflow-gke:dagsSubpath"]

PARSE_AND_MERGE = """
import json, os, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

bag = DagBag(dag_folder=sys.argv[1])
template = PodGenerator.deserialize_model_file(sys.argv[2])
pods = {}
for dag_id, dag in bag.dags.items():
    for t in dag.tasks:
        override = (t.executor_config or {}).get("pod_override")
        pod = PodGenerator.construct_pod(
            dag_id=dag_id, task_id=t.task_id, pod_id=f"{dag_id}-{t.task_id}".replace("_", "-"), try_number=1,
            kube_image=None, date=None, args=["python", "-m", "airflow.sdk.execution_time.execute_workload"],
            pod_override_object=override, base_worker_pod=template, namespace="airflow", scheduler_job_id="1",
            run_id="manual__1")
        pods[f"{dag_id}.{t.task_id}"] = PodGenerator.serialize_pod(pod)
files = sorted({os.path.basename(dag.fileloc) for dag in bag.dags.values()})
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "pods": pods, "files": files}))
"""


@pytest.fixture(scope="module")
def parsed(rendered, tmp_path_factory) -> dict:
    template = tmp_path_factory.mktemp("template") / "pod_template_file.yaml"
    template.write_text(find(rendered, "ConfigMap", "airflow-config")["data"]["pod_template_file.yaml"])
    result = subprocess.run([str(AIRFLOW_VENV / "bin" / "python"), "-c", PARSE_AND_MERGE, str(EXAMPLES), str(template)],
                            capture_output=True, text=True, timeout=300,
                            env={"AIRFLOW_HOME": str(tmp_path_factory.mktemp("airflow-home")), "PATH": "/usr/bin:/bin",
                                 "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_examples_parse_without_errors(parsed):
    assert parsed["errors"] == {}
    # Every file of the DAG folder holds a DAG (a helper module there would be parsed for nothing).
    assert parsed["files"] == sorted(f.name for f in EXAMPLES.glob("*.py"))
    assert {"example_custom_image_task.transform", "example_spot_task.crunch", "example_hello.greet",
            "example_task_identity.query"} <= set(parsed["pods"])


def test_task_identity_example_runs_as_its_service_account_and_keeps_the_template(parsed, rendered):
    """pod_override swaps only the service account: the task container, its env and security stay the template's."""
    pod = parsed["pods"]["example_task_identity.query"]
    template = yaml.safe_load(find(rendered, "ConfigMap", "airflow-config")["data"]["pod_template_file.yaml"])
    assert pod["spec"]["serviceAccountName"] == "task-analytics" != template["spec"]["serviceAccountName"]
    assert find(rendered, "ServiceAccount", "task-analytics")["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
    assert base(pod)["image"] == base(template)["image"]
    assert base(pod)["securityContext"] == base(template)["securityContext"]


def base(pod: dict) -> dict:
    return next(c for c in pod["spec"]["containers"] if c["name"] == "base")


def test_custom_image_task_gets_its_image_and_size_and_keeps_the_template(parsed, rendered):
    import kubernetes_validate

    from tests.conftest import kubernetes_schema_version

    pod = parsed["pods"]["example_custom_image_task.transform"]
    template = yaml.safe_load(find(rendered, "ConfigMap", "airflow-config")["data"]["pod_template_file.yaml"])
    assert base(pod)["image"] != base(template)["image"] and base(pod)["image"].endswith("airflow-dbt:1.0.0")
    assert base(pod)["resources"] == {"requests": {"cpu": "1", "memory": "2560Mi"},
                                      "limits": {"cpu": "1500m", "memory": "2560Mi"}}
    assert base(pod)["securityContext"] == base(template)["securityContext"]
    # Remote logging stays on in the task pod: the image must carry the google provider (README).
    env = {e["name"]: e.get("value") for e in base(pod)["env"]}
    assert env["AIRFLOW__LOGGING__REMOTE_LOGGING"] == "True"
    kubernetes_validate.validate(pod, kubernetes_schema_version("dev"), strict=True)


def test_spot_task_tolerates_the_spot_pool_taint(parsed):
    pod = parsed["pods"]["example_spot_task.crunch"]
    effect = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule", "NO_EXECUTE": "NoExecute"}
    wanted = {"key": SPOT_TAINT["key"], "value": SPOT_TAINT["value"], "effect": effect[SPOT_TAINT["effect"]]}
    assert any(wanted.items() <= t.items() for t in pod["spec"].get("tolerations", [])), pod["spec"].get("tolerations")
    assert pod["spec"]["nodeSelector"] == {"cloud.google.com/gke-spot": "true"}
    assert base(pod)["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_example_task_fits_a_fresh_node_it_may_land_on(parsed, stack):
    """A task pod bigger than any node it may run on stays Pending: the cluster autoscaler adds no
    node that cannot hold it, and the scheduler fails the task once queued past [scheduler] task_queued_timeout."""
    prices = load_prices()
    per_node, _ = gke_system_requests(prices)
    pools = run_stack(stack).of_type("gcp:container/nodePool:NodePool")
    checked = 0
    for name, pod in parsed["pods"].items():
        wants_spot = (pod["spec"].get("nodeSelector") or {}).get("cloud.google.com/gke-spot") == "true"
        candidates = [p for p in pools if bool(p.inputs["nodeConfig"].get("spot")) == wants_spot]
        if not candidates:
            continue  # a Spot task on a stack without the Spot pool: documented, spotPool is opt-in
        requests = pod_requests(pod["spec"])
        rooms = []
        for pool in candidates:
            key = "spotMachineType" if wants_spot else "nodeMachineType"
            machine = machine_price(prices, pool.inputs["nodeConfig"]["machineType"], pool, key)
            node = gke_allocatable(machine["vcpu"], machine["memory_gib"])
            rooms.append(Resources(node.cpu - per_node.cpu, node.memory - per_node.memory))
        assert any(requests.fits_in(room) for room in rooms), (
            f"{stack}: {name} requests {requests.describe()}; a fresh node leaves {[r.describe() for r in rooms]}")
        checked += 1
    assert checked >= 1
