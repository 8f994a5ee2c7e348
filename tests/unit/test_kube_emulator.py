"""The loopback Kubernetes API emulator of the integration harness keeps the API semantics the
KubernetesExecutor relies on (tests/integration/kube/apiserver.py lists them with sources)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from tests.integration.kube.apiserver import KubeApiEmulator, field_matcher, label_matcher

NS = "airflow"


@pytest.fixture()
def emulator():
    server = KubeApiEmulator().start()
    yield server
    server.stop()


def call(emulator, method: str, path: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(emulator.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def pod(name: str, **labels) -> dict:
    return {"metadata": {"name": name, "labels": labels}, "spec": {"containers": [{"name": "base", "image": "x"}]}}


def watch(emulator, query: str) -> list[tuple[str, str, dict]]:
    with urllib.request.urlopen(f"{emulator.url}/api/v1/namespaces/{NS}/pods?watch=true&timeoutSeconds=1&{query}",
                                timeout=10) as stream:
        events = [json.loads(line) for line in stream]
    return [(e["type"], e["object"]["metadata"]["name"], e["object"]) for e in events]


def test_label_and_field_selectors():
    obj = {"metadata": {"name": "p", "namespace": NS, "labels": {"airflow-worker": "7", "kubernetes_executor": "True"}},
           "status": {"phase": "Running"}}
    assert label_matcher("airflow-worker=7,airflow_executor_done!=True")(obj)
    assert not label_matcher("airflow-worker=8")(obj)
    assert label_matcher("airflow-worker in (6,7),kubernetes_executor,!airflow_executor_done")(obj)
    assert not label_matcher("airflow-worker notin (7)")(obj)
    assert field_matcher("status.phase!=Succeeded")(obj)
    assert not field_matcher("status.phase=Succeeded,metadata.name=p")(obj)
    with pytest.raises(ValueError):
        field_matcher("spec.nodeName=x")


def test_create_fills_server_fields_and_list_filters(emulator):
    status, created = call(emulator, "POST", f"/api/v1/namespaces/{NS}/pods", pod("a", **{"airflow-worker": "1"}))
    assert status == 201
    assert created["metadata"]["uid"] and created["metadata"]["creationTimestamp"]
    assert created["metadata"]["resourceVersion"] == "1" and created["status"]["phase"] == "Pending"
    call(emulator, "POST", f"/api/v1/namespaces/{NS}/pods", pod("b", **{"airflow-worker": "2"}))
    assert call(emulator, "POST", f"/api/v1/namespaces/{NS}/pods", pod("a"))[0] == 409
    _, listed = call(emulator, "GET", f"/api/v1/namespaces/{NS}/pods?labelSelector=airflow-worker%3D1")
    assert listed["kind"] == "PodList" and listed["metadata"]["resourceVersion"] == "2"
    assert [p["metadata"]["name"] for p in listed["items"]] == ["a"]
    assert emulator.store.posted[0] == pod("a", **{"airflow-worker": "1"}), "the body is kept exactly as posted"


def test_status_subresource_and_main_resource_patches(emulator):
    call(emulator, "POST", f"/api/v1/namespaces/{NS}/pods", pod("a", x="1"))
    _, patched = call(emulator, "PATCH", f"/api/v1/namespaces/{NS}/pods/a",
                      {"metadata": {"labels": {"y": "2"}}, "status": {"phase": "Succeeded"}})
    assert patched["metadata"]["labels"] == {"x": "1", "y": "2"}
    assert patched["status"]["phase"] == "Pending", "status changes only through /status"
    _, patched = call(emulator, "PATCH", f"/api/v1/namespaces/{NS}/pods/a/status", {"status": {"phase": "Running"}})
    assert patched["status"]["phase"] == "Running" and patched["metadata"]["labels"]["y"] == "2"
    _, patched = call(emulator, "PATCH", f"/api/v1/namespaces/{NS}/pods/a",
                      [{"op": "remove", "path": "/metadata/labels/x"}])
    assert patched["metadata"]["labels"] == {"y": "2"}


def test_watch_replays_after_resource_version_and_follows_selector_membership(emulator):
    call(emulator, "POST", f"/api/v1/namespaces/{NS}/pods", pod("a", **{"airflow-worker": "1"}))
    call(emulator, "POST", f"/api/v1/namespaces/{NS}/pods", pod("b", **{"airflow-worker": "1"}))
    # unset resourceVersion: the current objects as ADDED
    assert [(t, n) for t, n, _ in watch(emulator, "labelSelector=airflow-worker%3D1")] == [("ADDED", "a"), ("ADDED", "b")]
    call(emulator, "PATCH", f"/api/v1/namespaces/{NS}/pods/a", {"metadata": {"labels": {"airflow-worker": "2"}}})
    call(emulator, "DELETE", f"/api/v1/namespaces/{NS}/pods/b")
    old_owner = watch(emulator, "labelSelector=airflow-worker%3D1&resourceVersion=2")
    assert [(t, n) for t, n, _ in old_owner] == [("DELETED", "a"), ("DELETED", "b")]
    adopted, deleted = old_owner[0][2], old_owner[1][2]
    assert "deletionTimestamp" not in adopted["metadata"], "leaving the selector is not a deletion"
    assert deleted["metadata"]["deletionTimestamp"], "the executor tells deletion from adoption by this field"
    new_owner = watch(emulator, "labelSelector=airflow-worker%3D2&resourceVersion=2")
    assert [(t, n) for t, n, _ in new_owner] == [("ADDED", "a")]


def test_watch_streams_events_as_they_happen(emulator):
    events: list = []
    reader = threading.Thread(target=lambda: events.extend(watch(emulator, "resourceVersion=0")))
    reader.start()
    call(emulator, "POST", f"/api/v1/namespaces/{NS}/pods", pod("late"))
    reader.join(timeout=10)
    assert [(t, n) for t, n, _ in events] == [("ADDED", "late")]


def test_discovery_for_the_dynamic_client(emulator):
    _, resources = call(emulator, "GET", "/api/v1")
    assert {"name": "pods", "kind": "Pod", "namespaced": True}.items() <= resources["resources"][0].items()
    assert call(emulator, "GET", "/version")[1]["major"] == "1"


def test_local_pod_maps_rendered_container_paths_but_not_host_side_overrides(tmp_path):
    """A checkout under /tmp or /home (CI runners) must not turn the scheduler's kubeconfig path into
    a path inside the container's root."""
    from tests.integration.pod import LocalPod

    container = {"name": "scheduler", "env": [{"name": "AIRFLOW__CORE__DAGS_FOLDER", "value": "/opt/airflow/dags"}]}
    pod = LocalPod.create([], {"containers": [container]}, tmp_path / "root", tmp_path / "volumes", NS)
    host_file = "/tmp/checkout/build/kubeconfig.yaml"
    env = pod.env(container, {"AIRFLOW__KUBERNETES_EXECUTOR__CONFIG_FILE": host_file})
    assert env["AIRFLOW__KUBERNETES_EXECUTOR__CONFIG_FILE"] == host_file
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(tmp_path / "root" / "scheduler" / "opt/airflow/dags")
