"""The api-server's worker count and memory follow the measurement in preview/measured.yaml (`make bench`,
tests/integration/api_memory.py), not a guess: one uvicorn worker per process (scale with replicas;
upstream's default is 1 since apache/airflow#52270, #55707), and a memory limit with headroom over the
memory measured at 1,000 serialized DAGs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from preview.capacity import parse_quantity

MEASURED = yaml.safe_load((Path(__file__).resolve().parents[2] / "preview" / "measured.yaml").read_text())["api_server"]
MIB = 2**20


def api_server(capture) -> dict:
    [deployment] = [m for _, m in capture.kubernetes_objects()
                    if m["kind"] == "Deployment" and m["metadata"]["name"] == "airflow"]
    return next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "api-server")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_one_worker_per_api_server_process(request, stack):
    env = {e["name"]: e.get("value") for e in api_server(request.getfixturevalue(stack))["env"]}
    assert env["AIRFLOW__API__WORKERS"] == str(MEASURED["workers"]) == "1"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_memory_limit_has_headroom_over_the_measured_figure(request, stack):
    resources = api_server(request.getfixturevalue(stack))["resources"]
    measured = max(MEASURED["pss_mib"], MEASURED["rss_mib"]) * MIB
    assert MEASURED["dags"] >= 1000 and MEASURED["headroom"] >= 1.5
    assert parse_quantity(resources["limits"]["memory"]) >= measured * MEASURED["headroom"]
    assert parse_quantity(resources["requests"]["memory"]) >= measured  # scheduled where it fits at rest
