"""Prod refuses a UI without its address (airflow-gke:baseUrl) and an image outside Artifact Registry
(airflow-gke:airflowImage); other stacks warn. The committed prod stack's placeholders for both preview
offline with a warning and are refused by `pulumi up`, like the dagsRepo placeholder."""

from __future__ import annotations

import logging

import pytest

from components.config import ConfigError
from preview.harness import run_program
from tests.conftest import stack_config
from tests.unit.test_config import PROD_REQUIRED, config_with, load_error
from components.config import load_stack_config

OWN = {"dagsRepo": "https://github.com/acme/airflow-gke.git", "baseUrl": "https://airflow.acme-data.dev",
       "airflowImage": "europe-west4-docker.pkg.dev/acme-prod/airflow/airflow:v1.0"}


def _warnings(caplog, key: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if f"airflow-gke:{key} =" in r.getMessage()]


@pytest.mark.parametrize("key, value, allowed", [
    ("baseUrl", "", "the https URL users open the UI at"),
    ("airflowImage", "apache/airflow:3.3.2-python3.12", "an image in Artifact Registry"),
    ("airflowImage", "ghcr.io/acme/airflow:3.3.2", "an image in Artifact Registry"),
    ("airflowImage", "gcr.io/acme/airflow:3.3.2", "an image in Artifact Registry"),
])
def test_prod_refuses_a_missing_base_url_and_an_image_outside_artifact_registry(key, value, allowed):
    overrides = {"environment": "prod", key: value} if value else {"environment": "prod"}
    drop = () if value else (f"airflow-gke:{key}",)
    source = config_with(**overrides)
    for full in drop:
        source.values.pop(full)
    with pytest.raises(ConfigError) as info:
        load_stack_config(source)
    (problem,) = info.value.problems
    assert problem.startswith(f"airflow-gke:{key} = {value!r} is not allowed: {allowed}"), problem
    assert f"Fix: pulumi config set airflow-gke:{key} " in problem


def test_dev_warns_about_both_and_deploys(caplog):
    with caplog.at_level(logging.WARNING):
        capture = run_program("dev", stack_config("dev", dagsRepo=OWN["dagsRepo"]), deploying=True)
    assert capture.outputs["kubeconfig"]
    (base_url,) = _warnings(caplog, "baseUrl")
    (image,) = _warnings(caplog, "airflowImage")
    assert "http://localhost:8080" in base_url and "Fix: pulumi config set airflow-gke:baseUrl" in base_url
    assert "Artifact Registry" in image and "apache/airflow:" in image


def test_committed_prod_placeholders_warn_offline_and_are_refused_at_pulumi_up(caplog):
    committed = stack_config("prod")
    assert committed["airflow-gke:baseUrl"] and committed["airflow-gke:airflowImage"]
    with caplog.at_level(logging.WARNING):
        assert run_program("prod").outputs["kubeconfig"]
    for key in ("baseUrl", "airflowImage"):
        (warning,) = _warnings(caplog, key)
        assert "`pulumi up` refuses it" in warning and committed[f"airflow-gke:{key}"] in warning
    with pytest.raises(ConfigError) as info:
        run_program("prod", stack_config("prod", **{k: v for k, v in OWN.items() if k == "dagsRepo"},
                                         masterAuthorizedNetworks='["100.64.8.0/28"]'), deploying=True)
    refused = sorted(p.split(" = ")[0] for p in info.value.problems)
    assert refused == ["airflow-gke:airflowImage", "airflow-gke:baseUrl"], info.value.problems


@pytest.mark.parametrize("url", ["https://airflow.example.com", "https://example.org/airflow",
                                 "http://localhost:8080", "https://airflow.test"])
def test_reserved_documentation_hosts_are_refused_at_pulumi_up(url):
    with pytest.raises(ConfigError) as info:
        run_program("prod", stack_config("prod", **{**OWN, "baseUrl": url},
                                         masterAuthorizedNetworks='["100.64.8.0/28"]'), deploying=True)
    (problem,) = info.value.problems
    assert problem.startswith(f"airflow-gke:baseUrl = {url!r} is not allowed: your UI's real address")


def test_prod_with_its_own_values_deploys_without_warning(caplog):
    with caplog.at_level(logging.WARNING):
        capture = run_program("prod", stack_config("prod", **OWN, masterAuthorizedNetworks='["100.64.8.0/28"]'),
                              deploying=True)
    assert capture.outputs["kubeconfig"]
    assert not _warnings(caplog, "baseUrl") and not _warnings(caplog, "airflowImage")


def test_prod_required_values_of_the_config_tests_pass():
    assert load_stack_config(config_with(environment="prod")).airflow.base_url == PROD_REQUIRED["airflow-gke:baseUrl"]
    assert load_error(environment="prod", baseUrl="https://x.example").problems
