"""Run two Airflow pods' worth of the rendered processes for a while and measure them.

Shared by tests/integration/test_soak_dev_tier.py (short run) and `make bench` (long run): the
database is a throw-away PostgreSQL with the dev tier's max_connections (devtier.py); both pods run
scheduler, api-server, dag-processor, triggerer and the maintenance container (log groomer) from
their rendered commands, over DAG_FILES DAG files, while their rendered probes and API calls run.

Measured: peak client connections, peak RSS of each container's process tree (psutil), each exec
probe's wall time, CPU seconds and peak RSS (GNU time), the logs volume over time, and the time each
container takes to exit on SIGTERM.

SIGTERM is delivered as the kubelet does: to PID 1 of the container. Containers that keep the
image's entrypoint run under dumb-init, which forwards the signal to its child's process group
(https://github.com/Yelp/dumb-init#signal-forwarding), so here the process group gets it; a
container whose `command` replaces the entrypoint is PID 1 itself, so here it runs as PID 1 of a new
PID namespace (`unshare --pid`), where the kernel drops signals the process has no handler for
(pid_namespaces(7)), exactly like `sleep infinity` in a pod.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

import psutil

from .devtier import REFUSED_MARKERS, DevTier
from .harness import API_CONTAINER_PORT, Api, admin_credentials, dag_source, deviations, make_pod, sync_dags
from .pod import LocalPod, free_port, wait_until

AIRFLOW_PROCESSES = ("scheduler", "api-server", "dag-processor", "triggerer")
PID1_CONTAINERS = ("maintenance",)  # `command` set: no dumb-init in front
DAG_FILES = 40
EXEC_PROBE_EVERY_SECONDS = 20
API_BURST = 24  # concurrent API requests per pod and round: drives the api-server pools to their ceiling
TIME_FORMAT = "PROBE-MEASURE %e %U %S %M"


@dataclass
class Running:
    pod: LocalPod
    api: Api
    processes: dict[str, subprocess.Popen]
    pid1: dict[str, int] = field(default_factory=dict)  # container -> pid of its PID-1 process

    def tree_memory(self, name: str) -> int:
        """PSS of the container's process tree: forked children share pages with their parent, and
        PSS counts each shared page once across them, as the container's memory cgroup does."""
        total = 0
        try:
            root = psutil.Process(self.pid1.get(name, self.processes[name].pid))
            for process in [root, *root.children(recursive=True)]:
                try:
                    total += process.memory_full_info().pss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
        except psutil.NoSuchProcess:
            pass
        return total


@dataclass
class Measurements:
    peak_connections: int = 0
    peak_rss: dict[str, int] = field(default_factory=dict)
    probe_runs: list[dict] = field(default_factory=list)  # container, ok, wall, cpu, rss
    log_samples: list[tuple[float, int, int]] = field(default_factory=list)  # (t, processor bytes, other bytes)
    max_processor_file: list[tuple[float, int]] = field(default_factory=list)
    api_errors: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    exit_seconds: dict[str, float] = field(default_factory=dict)
    parses: int = 0
    processor_bytes: int = 0


def start_pid1(pod: LocalPod, name: str, overrides: dict[str, str]) -> tuple[subprocess.Popen, int]:
    container = pod.container(name)
    env = pod.env(container, overrides)
    argv = ["unshare", "--pid", "--fork", "--kill-child", *pod.argv(container, env)]
    log = open(pod.root / f"{name}.log", "w")
    process = subprocess.Popen(argv, env=env, cwd=pod.host_path(container, "/opt/airflow"), stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    pod.processes.append(process)
    child = wait_until(lambda: next(iter(psutil.Process(process.pid).children()), None), 20, 0.1,
                       what=f"{name} PID 1 started")
    return process, child.pid


def start_pod(tier: DevTier, objects: list[dict], label: str, extra_env: dict[str, dict[str, str]]) -> Running:
    pod = make_pod(objects, "Deployment", "airflow", f"soak-pod-{label}")
    sync_dags(pod, f"soak-dags-{label}", {f"soak_{i}.py": dag_source(f"soak_{i}") for i in range(DAG_FILES)})
    port = free_port()
    processes, pid1 = {}, {}
    for name in AIRFLOW_PROCESSES:
        overrides = {**deviations(pod, port, name), **tier.overrides(), **extra_env.get(name, {})}
        if name == "scheduler":
            # LocalExecutor stands in for the KubernetesExecutor here; one worker process, like the
            # KubernetesExecutor's one watcher process, keeps the scheduler's memory comparable.
            overrides["AIRFLOW__CORE__PARALLELISM"] = "1"
        processes[name] = pod.start(name, overrides, replace_args={str(API_CONTAINER_PORT): str(port)})
    for name in PID1_CONTAINERS:
        processes[name], pid1[name] = start_pid1(pod, name, {**tier.overrides(), **extra_env.get(name, {})})
    return Running(pod, Api(port), processes, pid1)


def wait_healthy(running: Running, timeout: float = 300) -> None:
    pod, api = running.pod, running.api
    wait_until(lambda: pod.probe("api-server", "startupProbe", port_map={API_CONTAINER_PORT: api.port})[0],
               timeout, 2, what="api-server startup probe")
    api.login(*admin_credentials(pod.objects))


def run_exec_probe(running: Running, tier: DevTier, name: str, kind: str = "livenessProbe") -> dict:
    """The rendered exec probe, under GNU time: exit status, wall and CPU seconds, peak RSS."""
    pod = running.pod
    command = pod.container(name)[kind]["exec"]["command"]
    started = time.monotonic()
    result = pod.run(name, tier.overrides(), argv=["/usr/bin/time", "-f", TIME_FORMAT, *command], timeout=300)
    wall = time.monotonic() - started
    line = next((l for l in result.stderr.splitlines() if l.startswith("PROBE-MEASURE")), "")
    parts = line.split()
    cpu = float(parts[2]) + float(parts[3]) if len(parts) == 5 else 0.0
    rss = int(parts[4]) * 1024 if len(parts) == 5 else 0
    return {"container": name, "ok": result.returncode == 0, "wall": wall, "cpu": cpu, "rss": rss,
            "timeout": pod.container(name)[kind]["timeoutSeconds"],
            "output": (result.stdout + result.stderr)[-500:]}


def log_sizes(pod: LocalPod) -> tuple[int, int, int]:
    """(bytes of dag-processor per-file logs, bytes of every other log, largest per-file log)."""
    processor, other, largest = 0, 0, 0
    for path in pod.volume_path("logs").rglob("*"):
        if path.is_file() and not path.is_symlink():
            size = path.stat().st_size
            if "dag_processor" in path.parts:
                processor += size
                largest = max(largest, size)
            else:
                other += size
    return processor, other, largest


def parse_count(pod: LocalPod) -> tuple[int, int]:
    """(parses recorded, bytes) in the dag-processor per-file logs: one JSON line per parse."""
    lines = size = 0
    for path in pod.volume_path("logs").rglob("*.py.log"):
        text = path.read_bytes()
        lines += text.count(b'"Filling up the DagBag')
        size += len(text)
    return lines, size


def soak(tier: DevTier, pods: list[Running], seconds: float, measured: Measurements, log_pod: int = 0) -> None:
    """Probes, API calls and sampling for `seconds`, all pods running."""
    stop = threading.Event()

    def probes():
        while not stop.is_set():
            threads = [threading.Thread(target=lambda r=r, n=n: measured.probe_runs.append(run_exec_probe(r, tier, n)))
                       for r in pods for n in ("scheduler", "dag-processor", "triggerer")]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            stop.wait(EXEC_PROBE_EVERY_SECONDS)

    def api_calls():
        while not stop.is_set():
            for running in pods:
                for kind in ("livenessProbe", "readinessProbe"):
                    ok, detail = running.pod.probe("api-server", kind, port_map={API_CONTAINER_PORT: running.api.port})
                    if not ok:
                        measured.api_errors.append(f"{kind}: {detail[:300]}")
            burst = [threading.Thread(target=api_get, args=(running,)) for running in pods for _ in range(API_BURST)]
            for thread in burst:
                thread.start()
            for thread in burst:
                thread.join()
            stop.wait(2)

    def api_get(running: Running):
        status, body = running.api.request("GET", "/api/v2/dags?limit=100")
        if status != 200:
            measured.api_errors.append(f"GET /api/v2/dags: {status} {str(body)[:300]}")

    workers = [threading.Thread(target=probes), threading.Thread(target=api_calls)]
    for worker in workers:
        worker.start()
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            measured.peak_connections = max(measured.peak_connections, tier.server.client_connections(tier.user))
            for running in pods:
                for name in running.processes:
                    measured.peak_rss[name] = max(measured.peak_rss.get(name, 0), running.tree_memory(name))
            processor, other, largest = log_sizes(pods[log_pod].pod)
            now = time.monotonic() - started
            measured.log_samples.append((now, processor, other))
            measured.max_processor_file.append((now, largest))
            time.sleep(1)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=300)


def refused_connections(tier: DevTier, pods: list[Running]) -> list[str]:
    found = [line for line in tier.server.server_log().splitlines() if any(m in line for m in REFUSED_MARKERS)]
    for running in pods:
        for path in [*running.pod.root.glob("*.log"), *running.pod.volume_path("logs").rglob("*.log")]:
            text = path.read_text(errors="replace")
            found += [f"{path.name}: {line[:200]}" for line in text.splitlines()
                      if any(m in line for m in REFUSED_MARKERS)]
    return found


def terminate_all(running: Running, timeout: float = 120) -> dict[str, float]:
    """SIGTERM every container at once, as the kubelet does on pod deletion; seconds until each exits."""
    started = time.monotonic()
    for name, process in running.processes.items():
        if name in running.pid1:
            os.kill(running.pid1[name], signal.SIGTERM)
        else:
            os.killpg(process.pid, signal.SIGTERM)
    exits: dict[str, float] = {}
    while len(exits) < len(running.processes) and time.monotonic() - started < timeout:
        for name, process in running.processes.items():
            if name not in exits and process.poll() is not None:
                exits[name] = time.monotonic() - started
        time.sleep(0.1)
    for name, process in running.processes.items():
        if name not in exits:
            exits[name] = float("inf")
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return exits
