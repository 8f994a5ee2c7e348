"""git-bundle mode on real Airflow 3.3.2 and a local git repository: every task runs the commit its DAG
run was parsed at: the scheduler's KubernetesExecutor creates each task's pod on the Kubernetes API
emulator and the local kubelet runs it from the rendered pod template. See bundle.py for the set-up and
its deviations from the cluster (it uses a database of its own: no lock needed).
"""

from __future__ import annotations

import sys

import pytest

from .bundle import (BUNDLE_SUBPATH, bundle_airflow, bundle_storage, pinned_dag, migrate, own_database,
                     render_bundle_stack, wait_parsed)
from .gitsync import DagRepo
from .harness import WORK, admin_credentials, sync_latency
from .pod import reset_dir, wait_until

DAG_ID = "pinned"
LATENCY_GOAL_SECONDS = 45  # README: a pushed DAG is visible within 45 s (p95)


@pytest.fixture(scope="module")
def bundle_rendered() -> list[dict]:
    return render_bundle_stack()


@pytest.fixture(scope="module")
def bundle_running(bundle_rendered):
    database = own_database(bundle_rendered)
    migrate(bundle_rendered, database, "bundle-migration-job")
    repo = DagRepo(reset_dir(WORK / "bundle-dags-repo"), "main")
    commit_a = repo.commit({f"{BUNDLE_SUBPATH}/{DAG_ID}.py": pinned_dag(DAG_ID, "A")}, "A")
    # A short workdir: the scheduler's TMPDIR under it holds a unix socket (bundle.SOCKET_PATH_MAX).
    with bundle_airflow(bundle_rendered, repo, "bundle", database) as (pods, api, tasks):
        api.login(*admin_credentials(bundle_rendered))
        try:
            yield pods, api, repo, commit_a, tasks
        finally:
            for name, deployment in (("dag-processor", "airflow-dag-processor"), ("scheduler", "airflow")):
                print(f"--- {name} ---\n{pods[deployment].log_tail(name, 20)}", file=sys.stderr)


def xcom(api, run_id: str, task_id: str):
    status, body = api.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/"
                                      "xcomEntries/return_value")
    return body.get("value") if status == 200 else None


def test_commit_between_parse_and_task_start_runs_the_parsed_commit(bundle_running):
    _, api, repo, commit_a, tasks = bundle_running
    wait_parsed(api, DAG_ID, commit_a)
    assert api.request("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})[0] == 200
    status, run = api.request("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None})
    assert status == 200, run
    run_id = run["dag_run_id"]
    first = tasks.next_task(DAG_ID, "first", run_id)
    assert first.bundle_version == commit_a

    # A push lands after the task's pod was created and before the task starts; the dag-processor parses it.
    commit_b = repo.commit({f"{BUNDLE_SUBPATH}/{DAG_ID}.py": pinned_dag(DAG_ID, "B")}, "B")
    wait_parsed(api, DAG_ID, commit_b)
    assert tasks.held(first)  # B landed while the task's pod waited to start

    result = tasks.run(first)
    assert result.returncode == 0, result.stdout[-6000:]
    assert "running code of commit A" in result.stdout
    assert xcom(api, run_id, "first") == "A"
    assert "git credentials in the task's env: False" in result.stdout  # the entry point dropped them
    assert "isn't defined" not in result.stdout  # the bundle found its (credential-free) connection

    # The task pod fetched that one commit, shallow, where GitDagBundle serves it: no clone of the repository.
    storage = bundle_storage(tasks.started[-1], "base")
    assert sorted(p.name for p in (storage / "dags" / "versions").iterdir()) == [commit_a]
    assert not (storage / "dags" / "bare").exists() and not (storage / "dags" / "versions" / commit_a / ".git").exists()
    assert tasks.started[-1].written_outside_mounts("base") == []  # readOnlyRootFilesystem holds

    # The run's second task starts in another pod (a fresh node) after the push: still commit A.
    second = tasks.next_task(DAG_ID, "second", run_id)
    assert second.bundle_version == commit_a
    result = tasks.run(second)
    assert result.returncode == 0, result.stdout[-6000:]
    assert "running code of commit A after A" in result.stdout
    assert xcom(api, run_id, "second") == "A"
    wait_until(lambda: api.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")[1].get("state") == "success",
               60, 1, what="run 1 succeeded")

    # A run created after the push runs the new commit: pinned, not stuck.
    status, run = api.request("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None})
    assert status == 200, run
    newer = tasks.next_task(DAG_ID, "first", run["dag_run_id"])
    assert newer.bundle_version == commit_b
    result = tasks.run(newer)
    assert result.returncode == 0 and "running code of commit B" in result.stdout, result.stdout[-3000:]


def test_dag_sync_latency_goal_holds(bundle_running):
    """Push → visible in GET /api/v2/dags with the rendered bundle refresh settings, for a new file and a
    change; the goal (p95 ≤ 45 s) must hold for each sample. `make bench` takes more samples."""
    _, api, repo, _, _ = bundle_running
    samples = [sync_latency(api, repo, None, BUNDLE_SUBPATH, "bundle_synced", change=change,
                            timeout=LATENCY_GOAL_SECONDS + 30) for change in (False, True)]
    print(f"git-bundle DAG-sync latency: new file {samples[0]:.1f}s, changed file {samples[1]:.1f}s", file=sys.stderr)
    assert max(samples) <= LATENCY_GOAL_SECONDS, samples
