"""Run two Airflow pods' worth of the rendered processes for a while and measure them.

Shared by tests/integration/test_soak_dev_tier.py (short run) and `make bench` (long run): the
database is a throw-away PostgreSQL with the dev tier's max_connections (devtier.py); both pods run
scheduler, api-server, dag-processor, triggerer and the maintenance container (log groomer) from
their rendered commands, over DAG_FILES DAG files, while their rendered probes and API calls run.

Measured: peak client connections, peak RSS of each container's process tree (psutil), each exec
probe's wall time, CPU seconds and peak RSS (getrusage), the logs volume over time, and the time each
container takes to exit on SIGTERM.

The scheduler runs as rendered, with the KubernetesExecutor, against the Kubernetes API emulator and
local kubelet of tests/integration/kube/ (one for both pods, as both would share the cluster); task
pods reach the first pod's api-server.

SIGTERM is delivered as the kubelet does: to PID 1 of the container. Containers that keep the
image's entrypoint run under dumb-init, which forwards the signal to its child's process group
(https://github.com/Yelp/dumb-init#signal-forwarding), so here the process group gets it: for the
Airflow containers that is the SIGTERM relay of components/airflow/pod/shutdown.py, which passes it on to
Airflow's own process group. A container whose `command` replaces the entrypoint is PID 1 itself,
so here it runs as PID 1 of a new PID namespace (`unshare --pid`), where the kernel drops signals the
process has no handler for (pid_namespaces(7)), exactly like `sleep infinity` in a pod.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import psutil

from .devtier import REFUSED_MARKERS, DevTier
from .harness import (API_CONTAINER_PORT, Api, admin_credentials, dag_source, deviations, local_cluster, make_pod,
                      sync_dags)
from .kube import LocalCluster
from .pod import AIRFLOW_VENV, LocalPod, free_port, kill_tree, wait_until

AIRFLOW_PROCESSES = ("scheduler", "api-server", "dag-processor", "triggerer")
PID1_CONTAINERS = ("maintenance",)  # `command` set: no dumb-init in front
DAG_FILES = 40
EXEC_PROBE_EVERY_SECONDS = 20
# Concurrent API requests per pod and round: workers x (pool + overflow) = 6 drives the api-server pools to
# their ceiling. More wait for a connection (up to pool_timeout, 30 s, then 500): seen with 12 on a
# loaded machine, see docs/operations.md "Database connections".
API_BURST = 6
# Runs a probe command and reports its CPU seconds and peak RSS (getrusage of the waited child).
MEASURE = ("import resource, subprocess, sys\n"
           "code = subprocess.run(sys.argv[1:]).returncode\n"
           "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
           "print(f'PROBE-MEASURE {u.ru_utime + u.ru_stime} {u.ru_maxrss * 1024}', file=sys.stderr)\n"
           "sys.exit(code)\n")


@dataclass
class Running:
    pod: LocalPod
    api: Api
    processes: dict[str, subprocess.Popen]
    pid1: dict[str, int] = field(default_factory=dict)  # container -> pid of its PID-1 process
    cluster: LocalCluster | None = None  # set on the pod that started it

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

    def tree_cpu_seconds(self, name: str) -> float:
        """CPU seconds of the container's processes so far, reaped children (DAG parsers) included."""
        try:
            root = psutil.Process(self.pid1.get(name, self.processes[name].pid))
            total = sum(root.cpu_times()[:4])
            for child in root.children(recursive=True):
                try:
                    total += sum(child.cpu_times()[:2])
                except psutil.NoSuchProcess:
                    pass
            return total
        except psutil.NoSuchProcess:
            return 0.0


@dataclass
class Measurements:
    peak_connections: int = 0
    peak_rss: dict[str, int] = field(default_factory=dict)
    probe_runs: list[dict] = field(default_factory=list)  # container, ok, wall, cpu, rss
    log_samples: list[tuple[float, int, int]] = field(default_factory=list)  # (t, processor bytes, other bytes)
    max_processor_file: list[tuple[float, int]] = field(default_factory=list)
    api_errors: list[str] = field(default_factory=list)
    api_slow: list[str] = field(default_factory=list)  # client-side timeouts (a loaded machine), not errors
    refused: list[str] = field(default_factory=list)
    exit_seconds: dict[str, float] = field(default_factory=dict)
    exited: set[str] = field(default_factory=set)  # "pod index:container" that stopped during the soak
    parses: int = 0
    processor_bytes: int = 0
    processor_cpu_per_hour: list[float] = field(default_factory=list)  # per pod, CPU seconds per hour


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


def start_pod(tier: DevTier, objects: list[dict], label: str, extra_env: dict[str, dict[str, str]],
              cluster: LocalCluster | None = None) -> Running:
    """One pod's containers; without `cluster`, it starts the cluster its task pods run on."""
    pod = make_pod(objects, "Deployment", "airflow", f"soak-pod-{label}")
    repo, _ = sync_dags(pod, f"soak-dags-{label}",
                        {f"soak_{i}.py": dag_source(f"soak_{i}") for i in range(DAG_FILES)})
    port = free_port()
    own_cluster = None
    if cluster is None:
        cluster = own_cluster = local_cluster(pod, port, repo, f"soak-cluster-{label}").start()
    processes, pid1 = {}, {}
    try:
        for name in AIRFLOW_PROCESSES:
            overrides = {**deviations(pod, port, name, cluster.kubeconfig), **tier.overrides(),
                         **extra_env.get(name, {})}
            processes[name] = pod.start(name, overrides, replace_args={str(API_CONTAINER_PORT): str(port)})
        for name in PID1_CONTAINERS:
            processes[name], pid1[name] = start_pid1(pod, name, {**tier.overrides(), **extra_env.get(name, {})})
    except BaseException:
        pod.stop_all()
        if own_cluster:
            own_cluster.stop()
        raise
    return Running(pod, Api(port), processes, pid1, own_cluster)


def stop_pods(pods: list["Running"]) -> None:
    for running in pods:
        running.pod.stop_all()
    for running in pods:
        if running.cluster:
            running.cluster.stop()


def wait_healthy(running: Running, timeout: float = 300) -> None:
    pod, api = running.pod, running.api
    wait_until(lambda: pod.probe("api-server", "startupProbe", port_map={API_CONTAINER_PORT: api.port})[0],
               timeout, 2, what="api-server startup probe")
    api.login(*admin_credentials(pod.objects))


def start_pods(tier: DevTier, objects: list[dict], labels: tuple[str, str],
               extra_env: tuple[dict, dict]) -> list[Running]:
    """The old pod, serving with every DAG parsed, then the new pod of a rolling update. (Two
    dag-processors meeting the same new DAGs at once race on the INSERT of the dag row and one exits;
    it restarts in a cluster, and that race is not what is measured here.)"""
    first = start_pod(tier, objects, labels[0], extra_env[0])
    pods = [first]
    try:
        wait_healthy(first)
        wait_until(lambda: len(first.api.dag_ids()) >= DAG_FILES, 300, 2, what="every DAG parsed in the first pod")
        pods.append(start_pod(tier, objects, labels[1], extra_env[1], first.cluster))
        wait_healthy(pods[1])
    except BaseException:
        stop_pods(pods)
        raise
    return pods


def run_exec_probe(running: Running, tier: DevTier, name: str, kind: str = "livenessProbe") -> dict:
    """The rendered exec probe, measured: exit status, wall and CPU seconds, peak RSS."""
    pod = running.pod
    command = pod.container(name)[kind]["exec"]["command"]
    started = time.monotonic()
    result = pod.run(name, tier.overrides(), argv=[str(AIRFLOW_VENV / "bin" / "python"), "-c", MEASURE, *command],
                     timeout=300)
    wall = time.monotonic() - started
    line = next((l for l in result.stderr.splitlines() if l.startswith("PROBE-MEASURE")), "")
    parts = line.split()
    cpu = float(parts[1]) if len(parts) == 3 else 0.0
    rss = int(parts[2]) if len(parts) == 3 else 0
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

    # The kubelet acts on a probe only after failureThreshold failures in a row (restart for liveness, out of
    # the Service for readiness: https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-
    # readiness-startup-probes/#configure-probes). A single late answer on a loaded test machine is recorded
    # as slow; a run of failures as long as the rendered threshold is an error.
    failures_in_a_row: dict[tuple[int, str], int] = {}

    def api_calls():
        while not stop.is_set():
            for index, running in enumerate(pods):
                for kind in ("livenessProbe", "readinessProbe"):
                    ok, detail = running.pod.probe("api-server", kind, port_map={API_CONTAINER_PORT: running.api.port})
                    streak = 0 if ok else failures_in_a_row.get((index, kind), 0) + 1
                    failures_in_a_row[(index, kind)] = streak
                    threshold = running.pod.container("api-server")[kind].get("failureThreshold", 3)
                    if streak >= threshold:
                        measured.api_errors.append(f"{kind}: {streak} failures in a row: {detail[:300]}")
                    elif not ok:
                        measured.api_slow.append(f"{kind}: {detail[:300]}")
            burst = [threading.Thread(target=api_get, args=(running,)) for running in pods for _ in range(API_BURST)]
            for thread in burst:
                thread.start()
            for thread in burst:
                thread.join()
            stop.wait(5)

    def api_get(running: Running):
        # A long client timeout: a pool that cannot serve answers 500 after its own pool_timeout (30 s);
        # a busy shared test machine only answers late, which is recorded, not failed.
        request = urllib.request.Request(running.api.base + "/api/v2/dags?limit=100",
                                          headers={"Authorization": f"Bearer {running.api.token}"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                response.read()
        except urllib.error.HTTPError as error:
            measured.api_errors.append(f"GET /api/v2/dags: {error.code} {error.read()[:300]!r}")
        except OSError as error:
            measured.api_slow.append(repr(error))

    workers = [threading.Thread(target=probes), threading.Thread(target=api_calls)]
    for worker in workers:
        worker.start()
    started = time.monotonic()
    cpu_before = [running.tree_cpu_seconds("dag-processor") for running in pods]
    try:
        while time.monotonic() - started < seconds:
            measured.peak_connections = max(measured.peak_connections, tier.server.client_connections(tier.user))
            for index, running in enumerate(pods):
                for name, process in running.processes.items():
                    measured.peak_rss[name] = max(measured.peak_rss.get(name, 0), running.tree_memory(name))
                    if process.poll() is not None:
                        measured.exited.add(f"{index}:{name}")
            processor, other, largest = log_sizes(pods[log_pod].pod)
            now = time.monotonic() - started
            measured.log_samples.append((now, processor, other))
            measured.max_processor_file.append((now, largest))
            time.sleep(1)
    finally:
        elapsed = time.monotonic() - started
        measured.processor_cpu_per_hour = [(running.tree_cpu_seconds("dag-processor") - before) / elapsed * 3600
                                           for running, before in zip(pods, cpu_before)]
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
            kill_tree(process)
    return exits
