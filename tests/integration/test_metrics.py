"""Proof that the dashboard and the alerts query metrics real Airflow emits: the pinned Airflow's processes,
started from the rendered `airflow` pod (the shared `running` fixture), send StatsD to the rendered host and
port (the exporter sidecar's, on the pod's loopback); a UDP listener there records every line; the exporter's
mapping (the rendered ConfigMap's) is evaluated on each line as statsd_exporter does it; every Prometheus name
the queries select must come out. Task outcomes (`ti.finish`) are emitted by the task runner: one task run
in-process (`airflow dags test`, the scheduler container's env) emits it; the parse-loop summary comes from
a brief dag-processor (see the test).

The mapping is evaluated here, not by the real exporter binary (it is not on PyPI): rules in order, first
match wins; `glob` rules match whole dot-separated names with `*` standing for one part; `regex` rules
match anywhere; `action: drop` drops (prometheus/statsd_exporter README, "Glob matching", "Regular
expression matching", "Drop action"). Tags after the first ',' are InfluxDB tags, labels not name parts."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml

from components.airflow.pod.metrics_exporter import MAPPING_KEY
from components.monitoring_specs import Scope, alert_query, checks, dashboard_widgets, queried_prometheus_names

from .pod import find

WAIT_SECONDS = 45


def mapped_name(line: str, rules: list[dict]) -> str | None:
    """The Prometheus name statsd_exporter gives a StatsD line under `rules`, or None when dropped."""
    name = line.split(":", 1)[0].split(",", 1)[0]
    for rule in rules:
        if rule.get("match_type") == "regex":
            matched = re.search(rule["match"], name)
        else:
            pattern = "^" + r"\.".join("([^.]*)" if part == "*" else re.escape(part)
                                       for part in rule["match"].split(".")) + "$"
            matched = re.match(pattern, name)
        if matched:
            return None if rule.get("action") == "drop" else re.sub(
                r"\$\{?(\d+)\}?", lambda m: matched.group(int(m.group(1))), rule["name"])
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)  # unmatched: the exporter's escaping


def test_mapping_evaluation_keeps_listed_names_and_drops_the_rest():
    rules = [{"match": "airflow.pool.*", "name": "airflow_pool_$1"}, {"match": ".", "match_type": "regex",
                                                                     "action": "drop", "name": "dropped"}]
    assert mapped_name("airflow.pool.open_slots,pool_name=default_pool:128|g", rules) == "airflow_pool_open_slots"
    assert mapped_name("airflow.other:1|c", rules) is None


class Listener:
    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.5)
        self.lines: list[str] = []
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done:
            try:
                data = self.sock.recv(65535)
            except socket.timeout:
                continue
            self.lines += [line for line in data.decode(errors="replace").splitlines() if line]

    def close(self) -> None:
        self.done = True
        self.thread.join(timeout=2)
        self.sock.close()


@pytest.fixture(scope="module")
def statsd(rendered, airflow_pod):
    env = airflow_pod.rendered_env(airflow_pod.container("scheduler"))
    assert env["AIRFLOW__METRICS__STATSD_HOST"] == "localhost"
    try:
        listener = Listener(int(env["AIRFLOW__METRICS__STATSD_PORT"]))
    except OSError as error:
        pytest.fail(f"cannot listen on the rendered StatsD port {env['AIRFLOW__METRICS__STATSD_PORT']}: {error}")
    yield listener
    listener.close()


GCP_METRICS = Path(__file__).resolve().parents[1] / "data" / "gcp_metrics.yaml"


def queried_names() -> set[str]:
    scope = Scope("p", "c", "airflow", "pg")
    queries = [alert_query(checks(scope, 100))]
    queries += [d["prometheusQuery"] for w in dashboard_widgets(scope, 100) for d in w["xyChart"]["dataSets"]
                if "prometheusQuery" in d]
    # Google's own metrics (read through PromQL) are proven by tests/data/gcp_metrics.yaml, not by Airflow.
    google = {entry["promql"] for entry in yaml.safe_load(GCP_METRICS.read_text())["metrics"].values()}
    names = queried_prometheus_names(queries)
    assert names & google, "the alert condition reads Google's metrics too"
    return names - google


def test_every_queried_airflow_metric_is_emitted_by_real_airflow(statsd, running, rendered):
    pod, _, _ = running
    rules = yaml.safe_load(find(rendered, "ConfigMap", "airflow-config")["data"][MAPPING_KEY])["mappings"]
    wanted = queried_names()

    def exported() -> set[str]:
        return {n for n in (mapped_name(line, rules) for line in list(statsd.lines)) if n}

    # One task run in-process emits the task runner's outcome metric (ti.finish) with the rendered env.
    done = pod.run("scheduler", {"AIRFLOW__LOGGING__REMOTE_LOGGING": "False"},
                   argv=["airflow", "dags", "test", "hello"], timeout=WAIT_SECONDS)
    assert done.returncode == 0, done.stderr[-2000:]
    # The parse-loop summary (import errors, parse time, DAG count) is sent once a parse loop has queued
    # files and the queue ran dry: the rendered dag-processor re-queues a parsed file only after
    # min_file_process_interval (minutes). A short-lived dag-processor from the same container, with that
    # interval at 0 (the one deviation), runs a few loops and exits.
    loops = pod.run("dag-processor", {"AIRFLOW__LOGGING__REMOTE_LOGGING": "False",
                                      "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "0"},
                    argv=["airflow", "dag-processor", "--num-runs", "3"], timeout=WAIT_SECONDS)
    assert loops.returncode == 0, loops.stderr[-2000:]
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline and not wanted <= exported():
        time.sleep(1)
    missing = wanted - exported()
    seen = sorted({line.split(":", 1)[0].split(",", 1)[0] for line in statsd.lines})
    assert not missing, f"queried but never exported: {sorted(missing)}; StatsD names seen: {seen}"
