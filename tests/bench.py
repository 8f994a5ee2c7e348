"""`make bench`: the project's benchmark figures, one line each.

- offline preview wall time (dev, prod): `python -m preview` as a user runs it, interpreter start included
- unit-suite wall time: `pytest -m "not integration"`
- api-server time-to-healthy: rendered command start → rendered startup probe passes
- DAG-sync latency p50/p95: commit → visible in GET /api/v2/dags, with the rendered git-sync period
  and dag-processor settings, commits at a random point of the sync cycle (as pushes arrive)
- connection budget per stack (worst case from the rendered manifests vs the tier's max_connections; each
  api-server worker counts its sync and async engine)
- logs volume bound of the git-bundle dag-processor pod at 1,000 DAG files (the groomer's steady state)
- api-server memory (PSS/RSS of the process tree) at 1,000 serialized DAGs (tests/integration/api_memory.py;
  preview/measured.yaml holds the figure the sizing test checks)
- a long soak (tests/integration/soak.py) on a PostgreSQL with the dev tier's limit: peak
  connections, peak memory per container, probe cost, dag-processor CPU per hour (rendered re-parse
  interval vs 10 s), logs growth and the steady state the groomer keeps
- trigger-to-task-start latency p50/p95 through the KubernetesExecutor: POST dagRuns → the task pod's
  process reports `running` (task instance start_date); scheduler, pod creation on the loopback
  API emulator, the local kubelet's git-sync-init and the task process start included, image pull not
- the same in git-bundle mode (airflow-gke:dagSource git-bundle): the real GitDagBundle fetching the
  local repository at the rendered refresh interval
- git-bundle task start on a repository with history: git bytes and seconds per task pod start, through
  the rendered entry point (one commit, shallow) and with GitDagBundle alone (full bare clone)

Usage: python -m tests.bench [--commits N] [--task-runs N] [--soak-seconds S]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time

from tests.integration.bundle import (BUNDLE_SUBPATH, bundle_airflow, history_repo, migrate, own_database,
                                      render_bundle_stack, task_start_cost)
from tests.integration.harness import (HELLO_DAG, admin_credentials, airflow_running, dags_subpath, make_pod,
                                       prepare_database, render_dev, sync_dags, sync_latency, trigger_to_task_start)
from tests.integration.gitsync import DagRepo
from tests.integration.pod import ROOT, reset_dir

PYTHON = str(ROOT / ".venv" / "bin" / "python")


def announce(step: str) -> None:
    """Say what the next minutes are spent on (stderr: the figures on stdout stay one line each)."""
    print(f"==> bench: {step}", file=sys.stderr, flush=True)


def timed(command: list[str]) -> float:
    started = time.monotonic()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def migrate_and_create_admin(objects: list[dict]) -> None:
    job = make_pod(objects, "Job", None, "bench-job")
    for container in ("db-migrate", "create-admin-user"):
        result = job.run(container, {"AIRFLOW__LOGGING__REMOTE_LOGGING": "False"})
        if result.returncode != 0:
            raise SystemExit(f"{container} failed: {result.stderr[-2000:]}")


def connection_budgets() -> None:

    from components.airflow.connections import budget_from_manifests
    from components.config.connection_budget import max_connections
    from preview.harness import run_program
    from tests.conftest import stack_config

    for stack in ("dev", "prod"):
        objects = [m for _, m in run_program(stack).kubernetes_objects()]
        config = stack_config(stack)
        limit = max_connections(config["airflow-gke:dbTier"], json.loads(config.get("airflow-gke:dbFlags") or "{}"))
        print(f"connection_budget_{stack}: {budget_from_manifests(objects).describe(limit)}", flush=True)


# Bytes a dag-processor writes to a DAG file's log per parse: 2.7 MiB a day per file at a 10 s re-parse
# (the soak, docs/benchmarks.md "Running for months"); `long_soak` re-measures it.
BYTES_PER_PARSE = 2.7 * 2**20 / 8640


def logs_volume_bound() -> None:
    from components.airflow.pod import maintenance
    from preview.capacity import parse_quantity
    from preview.harness import run_program

    objects = [m for _, m in run_program("prod").kubernetes_objects()]  # prod: git-bundle mode
    processor = next(o for o in objects
                     if o["kind"] == "Deployment" and o["metadata"]["name"] == "airflow-dag-processor")
    pod = processor["spec"]["template"]["spec"]
    limit = next(v["emptyDir"]["sizeLimit"] for v in pod["volumes"] if v["name"] == "logs")
    container = next(c for c in pod["containers"] if c["name"] == "dag-processor")
    interval = int(next(e["value"] for e in container["env"]
                        if e["name"] == "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL"))
    steady = maintenance.steady_state_bytes(maintenance.DOCUMENTED_DAG_FILES, BYTES_PER_PARSE / interval)
    print(f"logs_volume_bound_git_bundle_dag_processor_pod_{maintenance.DOCUMENTED_DAG_FILES}_files_mib: "
          f"{steady / 2**20:.0f} of {limit} ({steady / parse_quantity(limit):.0%}; re-parse every {interval}s)",
          flush=True)


def api_server_memory(dags: int) -> None:
    from tests.integration.api_memory import measure

    measured = measure(dags, "bench-api-memory")
    print(f"api_server_memory_{dags}_dags_mib: PSS {measured.pss_bytes / 2**20:.0f}, RSS "
          f"{measured.rss_bytes / 2**20:.0f} ({measured.workers} worker(s); preview/measured.yaml)", flush=True)


def long_soak(objects: list[dict], seconds: float) -> None:
    from components.airflow.pod import maintenance
    from components.airflow.pod.shared import LOGS_SIZE_LIMIT
    from tests.integration.devtier import start_dev_tier
    from tests.integration.soak import (DAG_FILES, Measurements, parse_count, refused_connections, soak,
                                        start_pods, stop_pods)

    tier = start_dev_tier(objects)
    pods = []
    try:
        for result in tier.run_job(make_pod(objects, "Job", None, "bench-soak-job")):
            if result.returncode != 0:
                raise SystemExit(f"migration Job failed: {result.stderr[-2000:]}")
        # Pod A: rendered settings. Pod B: dag-processor re-parsing every 10 s (the former setting).
        pods = start_pods(tier, objects, ("bench-a", "bench-b"),
                          ({}, {"dag-processor": {"AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10"}}))
        measured = Measurements()
        soak(tier, pods, seconds, measured)
        parses, size = parse_count(pods[1].pod)
        measured.refused = refused_connections(tier, pods)
        rendered_interval = int(pods[0].pod.rendered_env(pods[0].pod.container("dag-processor"))
                                ["AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL"])
    finally:
        stop_pods(pods)
        tier.server.stop()
    print(f"soak_seconds: {seconds:.0f} (2 pods, {DAG_FILES} DAG files each, dev-tier max_connections "
          f"{tier.server.max_connections})")
    print(f"soak_peak_connections: {measured.peak_connections}")
    for name, peak in sorted(measured.peak_rss.items()):
        print(f"peak_memory_{name}_mib: {peak / 2**20:.0f}")
    for name in ("scheduler", "dag-processor", "triggerer"):
        runs = [r for r in measured.probe_runs if r["container"] == name]
        print(f"probe_{name}: {len(runs)} runs, all ok {all(r['ok'] for r in runs)}, CPU s max "
              f"{max(r['cpu'] for r in runs):.2f}, peak RSS MiB {max(r['rss'] for r in runs) / 2**20:.0f}, "
              f"wall s max {max(r['wall'] for r in runs):.1f}")
    print(f"dag_processor_cpu_s_per_hour_{DAG_FILES}_files: {measured.processor_cpu_per_hour[0]:.0f} "
          f"(re-parse every {rendered_interval}s), {measured.processor_cpu_per_hour[1]:.0f} (every 10s)")
    per_parse = size / max(parses, 1)
    per_file_day = per_parse / rendered_interval * 86400
    steady = maintenance.steady_state_bytes(maintenance.DOCUMENTED_DAG_FILES, per_parse / rendered_interval)
    print(f"dag_processor_log_bytes_per_parse: {per_parse:.0f}; per DAG file per day at {rendered_interval}s: "
          f"{per_file_day / 2**20:.2f} MiB (at 10s: {per_parse * 8640 / 2**20:.2f} MiB)")
    print(f"logs_volume_steady_state_{maintenance.DOCUMENTED_DAG_FILES}_files_mib: {steady / 2**20:.0f} "
          f"of {LOGS_SIZE_LIMIT}")
    print(f"api_errors: {len(measured.api_errors)}, refused connections: {len(measured.refused)}, "
          f"processes stopped: {sorted(measured.exited)}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=6, help="DAG commits to time (alternating new/changed)")
    parser.add_argument("--soak-seconds", type=float, default=600, help="length of the two-pod soak (0: skip)")
    parser.add_argument("--task-runs", type=int, default=8, help="DAG runs to time trigger-to-task-start")
    parser.add_argument("--history-commits", type=int, default=300, help="commits of the git-bundle history repo")
    parser.add_argument("--api-dags", type=int, default=1000, help="serialized DAGs for the api-server memory")
    parser.add_argument("--blob-kib", type=int, default=256, help="incompressible KiB rewritten by each commit")
    args = parser.parse_args()
    announce("connection budgets from the rendered manifests, the git-bundle logs volume bound")
    connection_budgets()
    logs_volume_bound()
    announce(f"api-server memory at {args.api_dags} serialized DAGs (~2 min)")
    api_server_memory(args.api_dags)

    announce("offline preview wall time (dev, prod), then the unit suite (~2 min)")
    with tempfile.TemporaryDirectory() as out:
        for stack in ("dev", "prod"):
            seconds = timed([PYTHON, "-m", "preview", "--stack", stack, "--out", out])
            print(f"preview_wall_time_{stack}_s: {seconds:.2f}", flush=True)
    seconds = timed([PYTHON, "-m", "pytest", "-q", "-m", "not integration", "-p", "no:cacheprovider"])
    print(f"unit_suite_wall_time_s: {seconds:.2f}", flush=True)

    announce("real Airflow on PostgreSQL: migrate, start the rendered pod, time the api-server and DAG sync")
    objects = render_dev()
    prepare_database(objects)
    migrate_and_create_admin(objects)
    pod = make_pod(objects, "Deployment", "airflow", "bench-pod")
    repo, sync = sync_dags(pod, "bench-dags-repo", {"hello_dag.py": HELLO_DAG})
    with airflow_running(pod, dag_repo=repo) as api:
        print(f"api_server_time_to_healthy_s: {api.healthy_after:.2f}", flush=True)
        api.login(*admin_credentials(objects))
        refresh = int(pod.rendered_env(pod.container("dag-processor"))["AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL"])
        bound = sync.period + refresh + 45
        subpath = dags_subpath(pod)
        sync.start()
        latencies = []
        for index in range(args.commits):
            time.sleep(random.uniform(0, sync.period))  # pushes arrive at any point of the sync cycle
            change = index % 2 == 1
            seconds = sync_latency(api, repo, sync, subpath, f"bench_dag_{index // 2}", change, timeout=bound)
            latencies.append(seconds)
            print(f"  commit {index + 1}: {'changed' if change else 'new'} file visible after {seconds:.1f}s",
                  file=sys.stderr, flush=True)
        sync.stop()
        starts = []
        for index in range(args.task_runs):  # one at a time: the latency of a run on an idle scheduler
            starts.append(trigger_to_task_start(api, "hello"))
            print(f"  run {index + 1}: task started {starts[-1]:.1f}s after the trigger", file=sys.stderr, flush=True)
    print(f"dag_sync_latency_p50_s: {statistics.median(latencies):.1f}")
    print(f"dag_sync_latency_p95_s: {percentile(latencies, 0.95):.1f} "
          f"(n={len(latencies)}, git-sync period {sync.period:.0f}s, dag-processor refresh {refresh}s)", flush=True)
    print(f"trigger_to_task_start_p50_s: {statistics.median(starts):.1f}")
    print(f"trigger_to_task_start_p95_s: {percentile(starts, 0.95):.1f} (n={len(starts)}, KubernetesExecutor)")
    announce("git-bundle mode: DAG sync latency, then task start cost on a repository with history")
    bundle_latency(args.commits)
    bundle_task_start(args.history_commits, args.blob_kib)
    if args.soak_seconds > 0:
        announce(f"the two-pod soak ({args.soak_seconds:.0f} s)")
        long_soak(objects, args.soak_seconds)
    return 0


def bundle_latency(commits: int) -> None:
    objects = render_bundle_stack("bench-bundle")
    database = own_database(objects)
    migrate(objects, database, "bench-bundle-job")
    work = ROOT / "build" / "integration"
    repo = DagRepo(reset_dir(work / "bench-bundle-repo"), "main")
    repo.commit({f"{BUNDLE_SUBPATH}/hello_dag.py": HELLO_DAG}, "initial DAGs")
    with bundle_airflow(objects, repo, "bench-bdl", database) as (pods, api, _):
        api.login(*admin_credentials(objects))
        processor_pod = pods["airflow-dag-processor"]
        processor_env = processor_pod.rendered_env(processor_pod.container("dag-processor"))
        [bundle] = json.loads(processor_env["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
        refresh = int(bundle["kwargs"]["refresh_interval"])  # the fetch interval (gitBundleRefreshInterval)
        latencies = []
        for index in range(commits):
            time.sleep(random.uniform(0, refresh))  # pushes arrive at any point of the refresh cycle
            change = index % 2 == 1
            seconds = sync_latency(api, repo, None, BUNDLE_SUBPATH, f"bench_dag_{index // 2}", change, timeout=120)
            latencies.append(seconds)
            print(f"  git-bundle commit {index + 1}: {'changed' if change else 'new'} file visible after "
                  f"{seconds:.1f}s", file=sys.stderr, flush=True)
    print(f"bundle_dag_sync_latency_p50_s: {statistics.median(latencies):.1f}")
    print(f"bundle_dag_sync_latency_p95_s: {percentile(latencies, 0.95):.1f} "
          f"(n={len(latencies)}, bundle refresh {refresh}s)")


def bundle_task_start(commits: int, blob_kib: int, runs: int = 3) -> None:
    objects = render_bundle_stack("bench-bundle")
    repo, head = history_repo(ROOT / "build" / "integration" / "bench-history-repo", commits, blob_kib * 1024)
    for entry_point, label in ((True, "entry_point_shallow"), (False, "gitdagbundle_clone")):
        costs = [task_start_cost(objects, repo, head, f"bench-task-{label}-{i}", entry_point) for i in range(runs)]
        print(f"bundle_task_start_{label}_mb: {statistics.median(c.git_bytes for c in costs) / 1e6:.2f} "
              f"(repo: {commits} commits x {blob_kib} KiB)")
        print(f"bundle_task_start_{label}_s: {statistics.median(c.seconds for c in costs):.2f} (median of {runs})")


if __name__ == "__main__":
    sys.exit(main())
