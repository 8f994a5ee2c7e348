"""The rendered workload, run for real: the pinned Airflow release against a real PostgreSQL.

Each container runs with the command, args, env and files rendered in build/dev/manifests/.
The deviations from the cluster are only these (see `deviations()`): the scheduler runs
LocalExecutor (no Kubernetes API here), remote logging writes to the local logs folder (the GCS
provider is not installed), and the execution API URL / api-server port point at a free local port.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

import pytest

from .harness import make_pod, sync_dags
from .pod import AIRFLOW_VENV, ROOT, LocalPod, find, free_port, secret_data, wait_until

AIRFLOW_CONTAINERS = ("scheduler", "api-server", "dag-processor", "triggerer")
API_CONTAINER_PORT = 8080

HELLO_DAG = '''\
from airflow.sdk import dag, task


@dag(dag_id="hello", schedule=None, catchup=False, tags=["airflow-gke"])
def hello():
    @task
    def say_hello():
        print("hello from airflow-gke")
        return 42

    say_hello()


hello()
'''


def dag_source(dag_id: str, marker: str = "") -> str:
    return HELLO_DAG.replace('"hello"', f'"{dag_id}"').replace("hello from airflow-gke", f"hello {marker}")


def deviations(pod: LocalPod, api_port: int, container: str = "scheduler") -> dict[str, str]:
    rendered_url = pod.rendered_env(pod.container(container))["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    parts = urlsplit(rendered_url)
    overrides = {
        "AIRFLOW__LOGGING__REMOTE_LOGGING": "False",
        # Only host and port change; the path (/execution/) is the rendered one.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": urlunsplit(parts._replace(netloc=f"127.0.0.1:{api_port}")),
    }
    if container == "scheduler":
        overrides["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
    return overrides


class Api:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.token: str | None = None

    def request(self, method: str, path: str, body: dict | None = None, auth: bool = True) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"}
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, {"error": error.read().decode(errors="replace")[:1000]}

    def login(self, username: str, password: str) -> int:
        status, body = self.request("POST", "/auth/token", {"username": username, "password": password}, auth=False)
        self.token = body.get("access_token")
        return status

    def dag_ids(self) -> set[str]:
        status, body = self.request("GET", "/api/v2/dags?limit=100")
        return {d["dag_id"] for d in body.get("dags", [])} if status == 200 else set()


@pytest.fixture(scope="module")
def migration_job(rendered) -> LocalPod:
    return make_pod(rendered, "Job", find(rendered, "Job")["metadata"]["name"], "migration-job")


@pytest.fixture(scope="module")
def migrated(migration_job, database) -> list[subprocess.CompletedProcess]:
    """Runs the rendered `db-migrate` container twice: on the empty database, then as a no-op."""
    overrides = {"AIRFLOW__LOGGING__REMOTE_LOGGING": "False"}
    return [migration_job.run("db-migrate", overrides) for _ in range(2)]


@pytest.fixture(scope="module")
def admin_runs(migration_job, migrated) -> list[subprocess.CompletedProcess]:
    overrides = {"AIRFLOW__LOGGING__REMOTE_LOGGING": "False"}
    return [migration_job.run("create-admin-user", overrides) for _ in range(2)]


@pytest.fixture(scope="module")
def running(airflow_pod, migrated, admin_runs):
    """api-server, dag-processor, triggerer and scheduler started from their rendered commands."""
    _, sync = sync_dags(airflow_pod, "dags-repo", {"hello_dag.py": HELLO_DAG})
    api_port = free_port()
    airflow_pod.api_port = api_port
    started = time.monotonic()
    for name in AIRFLOW_CONTAINERS:
        airflow_pod.start(name, deviations(airflow_pod, api_port, name),
                          replace_args={str(API_CONTAINER_PORT): str(api_port)})
    api = Api(api_port)
    try:
        wait_until(lambda: airflow_pod.probe("api-server", "startupProbe",
                                             port_map={API_CONTAINER_PORT: api_port})[0], 120, what="api-server healthy")
        airflow_pod.api_healthy_after = time.monotonic() - started
        yield airflow_pod, api, sync
    finally:
        sync.stop()
        airflow_pod.stop_all()
        for name in AIRFLOW_CONTAINERS:
            print(f"--- {name} log tail ---\n{airflow_pod.log_tail(name, 15)}")


def admin_credentials(rendered, migration_job) -> tuple[str, str]:
    command = migration_job.container("create-admin-user")["args"]
    username = command[command.index("--username") + 1]
    return username, secret_data(find(rendered, "Secret", "airflow-secrets"))["admin-password"]


# 1. migrations ------------------------------------------------------------------------------

def test_migrations_run_on_empty_db_then_as_no_op(migrated):
    first, second = migrated
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Database migration done" in first.stdout + first.stderr
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Running stamp_revision" not in second.stdout + second.stderr, "second run must be a no-op"


def test_rendered_check_migrations_succeeds(airflow_pod, migrated):
    result = airflow_pod.run("wait-for-migrations", {"AIRFLOW__LOGGING__REMOTE_LOGGING": "False"}, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


# 2. admin user and API token ------------------------------------------------------------------

def test_admin_user_command_is_idempotent(admin_runs):
    for run in admin_runs:
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "already exist" in admin_runs[1].stdout + admin_runs[1].stderr


def test_admin_gets_api_token_with_rendered_password(running, rendered, migration_job):
    _, api, _ = running
    username, password = admin_credentials(rendered, migration_job)
    assert api.login(username, "wrong-" + password) == 401
    assert api.login(username, password) == 201 and api.token
    status, _ = api.request("GET", "/api/v2/dags")
    assert status == 200


# 3. processes, probes and a DAG run through the execution API ----------------------------------

@pytest.mark.parametrize("container", AIRFLOW_CONTAINERS)
def test_rendered_probes_pass(running, container):
    pod, api, _ = running
    probes = [k for k in ("startupProbe", "livenessProbe", "readinessProbe") if k in pod.container(container)]
    assert probes, f"{container} has no probes"
    for kind in probes:
        ok, detail = wait_until(
            lambda: (lambda r: r if r[0] else None)(pod.probe(container, kind, deviations(pod, pod.api_port, container),
                                                              port_map={API_CONTAINER_PORT: pod.api_port})),
            timeout=120, interval=5, what=f"{container} {kind}")
        assert ok, detail


def test_dag_run_completes_through_execution_api(running, rendered, migration_job):
    pod, api, _ = running
    api.login(*admin_credentials(rendered, migration_job))
    wait_until(lambda: "hello" in api.dag_ids(), 120, 2, what="DAG 'hello' parsed by the dag-processor")
    status, body = api.request("PATCH", "/api/v2/dags/hello", {"is_paused": False})
    assert status == 200, body
    status, run = api.request("POST", "/api/v2/dags/hello/dagRuns", {"logical_date": None})
    assert status == 200, run

    def finished():
        _, state = api.request("GET", f"/api/v2/dags/hello/dagRuns/{run['dag_run_id']}")
        return state if state.get("state") in ("success", "failed") else None

    final = wait_until(finished, 180, 3, what="DAG run finished")
    assert final["state"] == "success", pod.log_tail("scheduler", 60)
    _, instances = api.request("GET", f"/api/v2/dags/hello/dagRuns/{run['dag_run_id']}/taskInstances")
    assert [t["state"] for t in instances["task_instances"]] == ["success"]
    _, xcom = api.request("GET", f"/api/v2/dags/hello/dagRuns/{run['dag_run_id']}/taskInstances/say_hello/"
                                 "xcomEntries/return_value")
    assert str(xcom.get("value")) == "42", xcom


# 4. every AIRFLOW__SECTION__KEY is a real option ------------------------------------------------

def known_options() -> set[tuple[str, str]]:
    output = subprocess.run([str(AIRFLOW_VENV / "bin" / "airflow"), "config", "list", "--defaults"],
                            capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin",
                                                                             "AIRFLOW_HOME": str(ROOT / "build")}).stdout
    options, section = set(), None
    for line in output.splitlines():
        if match := re.match(r"^\[(\w+)\]$", line):
            section = match.group(1)
        elif section and (match := re.match(r"^#?\s?([a-z0-9_]+) = ", line)):
            options.add((section, match.group(1)))
    return options


def test_every_rendered_airflow_variable_is_a_real_option(rendered):
    options = known_options()
    assert ("core", "executor") in options and len(options) > 200
    template = next(o for o in rendered if o["kind"] == "ConfigMap")["data"]["pod_template_file.yaml"]
    import yaml

    pod_specs = [o["spec"]["template"]["spec"] for o in rendered if o["kind"] in ("Deployment", "Job")]
    pod_specs.append(yaml.safe_load(template)["spec"])
    names = {v["name"] for spec in pod_specs for c in [*spec.get("initContainers", []), *spec["containers"]]
             for v in c.get("env", [])}
    airflow_vars = {n for n in names if n.startswith("AIRFLOW__")}
    assert len(airflow_vars) >= 10
    unknown = sorted(n for n in airflow_vars
                     if tuple(p.lower() for p in n[len("AIRFLOW__"):].split("__", 1)) not in options)
    assert not unknown, f"not options of the pinned Airflow (silently ignored): {unknown}"
