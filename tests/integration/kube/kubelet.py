"""A kubelet for the API emulator: runs the pods the executor creates as local processes.

It watches pods through the emulator's HTTP API like a node agent does, and for each new pod:
lays out the pod's own volumes (emptyDir folders, ConfigMap/Secret files) with `LocalPod`, runs
the init containers one after the other, then the containers, each with ONLY the pod's env (plus
what the image itself sets, `pod.IMAGE_ENV`) and the pod's mounts, and writes the status back
through `/status` (Pending -> Running -> Succeeded/Failed, with the container statuses the executor
reads). A DELETE stops the pod's processes.

Images are not pulled; each known image maps to a local runtime (`IMAGE_RUNTIMES`):
- the Airflow image (the rendered `apache/airflow:<version>-python<x>`) -> the command/args run
  with `.venv-airflow/bin` first on PATH, as the image's entrypoint would exec them;
- `registry.k8s.io/git-sync/git-sync:*` -> the harness's git-sync emulator (tests/integration/
  gitsync.py) on the pod's GITSYNC_* env, with GITSYNC_REPO read from the local DAG repository.
An image that is not in the map cannot be "pulled": the container waits with reason ErrImagePull,
then ImagePullBackOff, alternating as the kubelet's back-off does, and the pod stays Pending.

Cluster networking: a pod reaches Services by DNS name; here `services` maps those host:port
pairs (from the rendered env) to the local processes' loopback addresses. Remote logging is off
(the GCS provider is not installed), the same deviation as the harness's other pods. A container's
arguments naming a path under one of its mounts are given the mount's local folder, as the mount
namespace would resolve them (e.g. the git-bundle pod template's `python /opt/airflow/<script>`).

Two hooks for tests, both off by default:
- `extra_env`: variables added to every container of the Airflow image, rendered or not, for a
  deviation the node itself must supply (e.g. git's `GIT_CONFIG_*` URL rewrite to a local repository);
  `overrides`, by contrast, only replaces variables the pod renders.
- `admit`: a predicate on the pod manifest, polled while the pod is Pending; its containers start once
  it returns True (as when a node is still coming up), so a test can act between the executor
  creating a pod and the task starting. A deleted pod or a stopped kubelet ends the wait.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Optional

from ..gitsync import DagRepo, GitSyncEmulator
from ..pod import LocalPod

GIT_SYNC_IMAGES = "registry.k8s.io/git-sync/git-sync:*"
# Seconds between the ErrImagePull and ImagePullBackOff states of a missing image. The real kubelet
# backs off from 10 s doubling to 300 s (kubernetes/kubernetes pkg/kubelet/kubelet.go: backOffPeriod,
# MaxContainerBackOff); shorter here, which changes nothing for the executor: it fails the task on
# the first ErrImagePull ([kubernetes_executor] worker_pod_pending_fatal_container_state_reasons).
PULL_BACKOFF_SECONDS = 5.0
ADMIT_POLL_SECONDS = 0.2


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def waiting(container: dict, reason: str, message: str = "") -> dict:
    return {"name": container["name"], "image": container["image"], "imageID": "", "ready": False,
            "restartCount": 0, "started": False,
            "state": {"waiting": {"reason": reason, **({"message": message} if message else {})}}}


def running(container: dict, started: str) -> dict:
    return {"name": container["name"], "image": container["image"], "imageID": f"local://{container['image']}",
            "ready": True, "restartCount": 0, "started": True, "state": {"running": {"startedAt": started}}}


def terminated(container: dict, started: str, code: int) -> dict:
    return {"name": container["name"], "image": container["image"], "imageID": f"local://{container['image']}",
            "ready": False, "restartCount": 0, "started": False,
            "state": {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                     "startedAt": started, "finishedAt": now()}}}


def pull_error_message(image: str) -> str:
    return (f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and unpack image '
            f'"{image}": not found')


def mounted_args(pod: LocalPod, container: dict, overrides: dict[str, str]) -> dict[str, str]:
    """The container's arguments that name a path under one of its mounts -> that path on this machine."""
    mounts = [m["mountPath"].rstrip("/") for m in container.get("volumeMounts", [])]
    argv = pod.argv(container, pod.env(container, overrides))
    return {a: pod.host_path(container, a) for a in argv
            if any(a == m or a.startswith(f"{m}/") for m in mounts)}


class LocalKubelet:
    """Runs the emulator's pods on this machine. `airflow_images` are the images served by .venv-airflow."""

    def __init__(self, api_url: str, namespace: str, objects: list[dict], work: Path, dag_repo: Optional[DagRepo],
                 airflow_images: set[str], services: dict[str, str], overrides: dict[str, str]) -> None:
        self.api_url = api_url
        self.namespace = namespace
        self.objects = objects
        self.work = work
        self.dag_repo = dag_repo
        self.airflow_images = set(airflow_images)
        self.services = services
        self.overrides = overrides
        self.extra_env: dict[str, str] = {}  # see the module docstring: test hooks
        self.admit: Optional[Callable[[dict], bool]] = None
        self.pods: dict[str, LocalPod] = {}
        self.statuses: dict[str, dict] = {}  # pod name -> last status posted
        self.deleted: set[str] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # --- API client -----------------------------------------------------------------------
    def _call(self, method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.api_url + path, data=data, method=method,
                                         headers={"Content-Type": "application/merge-patch+json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def _post_status(self, name: str, status: dict) -> None:
        if name in self.deleted:
            return
        self.statuses[name] = status
        try:
            self._call("PATCH", f"/api/v1/namespaces/{self.namespace}/pods/{name}/status", {"status": status})
        except urllib.error.HTTPError as error:
            if error.code != 404:  # deleted meanwhile
                raise

    # --- runtimes -------------------------------------------------------------------------
    def known_image(self, image: str) -> bool:
        return image in self.airflow_images or fnmatch.fnmatch(image, GIT_SYNC_IMAGES)

    def _run_container(self, pod: LocalPod, container: dict) -> int:
        if fnmatch.fnmatch(container["image"], GIT_SYNC_IMAGES):
            return self._git_sync(pod, container)
        overrides = self._overrides(pod, container)
        process = pod.start(container["name"], overrides, replace_args=mounted_args(pod, container, overrides))
        return process.wait()

    def _overrides(self, pod: LocalPod, container: dict) -> dict[str, str]:
        env = pod.rendered_env(container)
        mapped = {}
        for key, value in env.items():
            for address, local in self.services.items():
                if address in value:
                    mapped[key] = value.replace(address, local)
        return {**mapped, **{k: v for k, v in self.overrides.items() if k in env}, **self.extra_env}

    def _git_sync(self, pod: LocalPod, container: dict) -> int:
        env = pod.rendered_env(container)
        if self.dag_repo is None or env.get("GITSYNC_ONE_TIME", "").lower() != "true":
            return 1
        root_mount = next(m for m in container["volumeMounts"] if m["mountPath"] == env["GITSYNC_ROOT"])
        try:
            GitSyncEmulator(self.dag_repo, pod.volume_path(root_mount["name"]), env).sync_once()
        except subprocess.CalledProcessError as error:
            (pod.root / f"{container['name']}.log").write_text(str(error.stderr))
            return 1
        return 0

    # --- pod lifecycle --------------------------------------------------------------------
    def _run_pod(self, manifest: dict) -> None:
        name = manifest["metadata"]["name"]
        spec = manifest["spec"]
        inits, mains = spec.get("initContainers", []), spec["containers"]
        base = {"conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now()}],
                "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "startTime": now(), "qosClass": "Burstable"}
        init_statuses = [waiting(c, "PodInitializing") for c in inits]
        main_statuses = [waiting(c, "PodInitializing" if inits else "ContainerCreating") for c in mains]

        def post(phase: str) -> None:
            self._post_status(name, {**base, "phase": phase, "initContainerStatuses": init_statuses,
                                     "containerStatuses": main_statuses})

        post("Pending")
        if not self._admitted(manifest):
            return
        work = self.work / name
        shutil.rmtree(work, ignore_errors=True)
        pod = LocalPod.create(self.objects, spec, work / "root", work / "volumes", self.namespace)
        (work / "root").mkdir(parents=True, exist_ok=True)
        with self._lock:
            self.pods[name] = pod
        for index, container in enumerate(inits):
            if not self._pulled(name, container, init_statuses, index, post):
                return
            started = now()
            init_statuses[index] = running(container, started)
            post("Pending")
            code = self._run_container(pod, container)
            init_statuses[index] = terminated(container, started, code)
            if code != 0 or name in self.deleted:
                post("Failed")
                return
        for index, container in enumerate(mains):
            if not self._pulled(name, container, main_statuses, index, post):
                return
        started = now()
        main_statuses[:] = [running(c, started) for c in mains]
        post("Running")
        codes = [self._run_container(pod, c) for c in mains]  # the Airflow worker pod has one container
        main_statuses[:] = [terminated(c, started, code) for c, code in zip(mains, codes)]
        post("Succeeded" if all(code == 0 for code in codes) else "Failed")

    def _admitted(self, manifest: dict) -> bool:
        name = manifest["metadata"]["name"]
        while self.admit is not None and not self.admit(manifest):
            if self._stop.is_set() or name in self.deleted:
                return False
            time.sleep(ADMIT_POLL_SECONDS)
        return True

    def _pulled(self, name: str, container: dict, statuses: list[dict], index: int, post) -> bool:
        """True once the image is available; for an unknown image, cycle the pull-error states until deleted."""
        if self.known_image(container["image"]):
            return True
        name_reason = ["ErrImagePull", "ImagePullBackOff"]
        turn = 0
        while not self._stop.is_set() and name not in self.deleted:
            reason = name_reason[turn % 2]
            message = pull_error_message(container["image"]) if reason == "ErrImagePull" else \
                f'Back-off pulling image "{container["image"]}"'
            statuses[index] = waiting(container, reason, message)
            post("Pending")
            turn += 1
            time.sleep(PULL_BACKOFF_SECONDS)
        return False

    # --- reading pods ---------------------------------------------------------------------
    def container_state(self, name: str, container: str) -> Optional[dict]:
        status = self.statuses.get(name) or {}
        for entry in status.get("initContainerStatuses", []) + status.get("containerStatuses", []):
            if entry["name"] == container:
                return entry["state"]
        return None

    def read_log(self, namespace: str, name: str, container: Optional[str]) -> tuple[int, str]:
        """pods/log as the API serves it: the log text, or 400 while the container waits to start."""
        pod = self.pods.get(name)
        if name not in self.statuses:
            return 404, f'pods "{name}" not found'
        container = container or self.statuses[name]["containerStatuses"][0]["name"]
        state = self.container_state(name, container) or {}
        if "waiting" in state:
            reason = state["waiting"]["reason"]
            detail = "trying and failing to pull image" if "Image" in reason else reason
            return 400, f'container "{container}" in pod "{name}" is waiting to start: {detail}'
        log = pod.root / f"{container}.log" if pod else None
        return 200, log.read_text(errors="replace") if log and log.exists() else ""

    # --- watch loop -----------------------------------------------------------------------
    def _on_event(self, kind: str, obj: dict) -> None:
        name = obj["metadata"]["name"]
        if kind == "DELETED":
            self.deleted.add(name)
            with self._lock:
                pod = self.pods.get(name)
            if pod:
                pod.stop_all()
        elif kind == "ADDED" and name not in self.statuses and not obj.get("status", {}).get("startTime"):
            self.statuses[name] = {}
            thread = threading.Thread(target=self._run_pod_logged, args=(obj,), name=f"kubelet-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run_pod_logged(self, obj: dict) -> None:
        try:
            self._run_pod(obj)
        except Exception as error:  # keep the node alive; the pod shows the failure
            (self.work / f"{obj['metadata']['name']}.kubelet-error").write_text(repr(error))
            self._post_status(obj["metadata"]["name"], {"phase": "Failed", "reason": "KubeletError",
                                                        "message": repr(error)})

    def _watch_loop(self) -> None:
        version = ""
        while not self._stop.is_set():
            path = f"/api/v1/namespaces/{self.namespace}/pods?watch=true&timeoutSeconds=5"
            if version:
                path += f"&resourceVersion={version}"
            try:
                with urllib.request.urlopen(self.api_url + path, timeout=30) as stream:
                    for line in stream:
                        event = json.loads(line)
                        version = event["object"]["metadata"]["resourceVersion"]
                        self._on_event(event["type"], event["object"])
            except OSError:
                if not self._stop.is_set():
                    time.sleep(0.5)

    def start(self) -> "LocalKubelet":
        self.work.mkdir(parents=True, exist_ok=True)
        thread = threading.Thread(target=self._watch_loop, name="kubelet-watch", daemon=True)
        self._threads.append(thread)
        thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            pods = list(self.pods.values())
        for pod in pods:
            pod.stop_all()
