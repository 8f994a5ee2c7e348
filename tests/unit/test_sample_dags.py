"""The committed stacks deploy this repository's own examples/ from the user's fork: the placeholder fork
URL previews offline with a warning and is refused by `pulumi up` (as the documentation IP ranges are)."""

from __future__ import annotations

import logging

import pytest

from components.config import ConfigError
from preview.harness import ROOT, run_program
from tests.conftest import stack_config, stack_settings

FORK = "https://github.com/acme/airflow-gke.git"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_committed_stacks_parse_this_repositorys_examples(stack):
    airflow = stack_settings(stack).airflow
    assert airflow.dags_repo.endswith("/airflow-gke.git") and airflow.dags_ref == "main"
    assert airflow.dags_subpath == "examples" and (ROOT / airflow.dags_subpath).is_dir()
    assert list((ROOT / airflow.dags_subpath).glob("*.py"))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_placeholder_only_warns_in_the_offline_preview(stack, caplog):
    with caplog.at_level(logging.WARNING):
        capture = run_program(stack)
    assert capture.outputs["kubeconfig"]
    (warning,) = [r.getMessage() for r in caplog.records if "dagsRepo" in r.getMessage()]
    assert "`pulumi up` will refuse it" in warning
    assert "Fix: pulumi config set airflow-gke:dagsRepo https://github.com/" in warning


@pytest.mark.parametrize("repo", ["https://github.com/YOUR-ORG/airflow-gke.git",
                                  "https://github.com/your-org/airflow-gke.git",
                                  "https://github.com/<you>/airflow-gke.git",
                                  "git@github.com:YOUR-ORG/airflow-gke.git"])
def test_pulumi_up_refuses_the_placeholder(repo):
    config = stack_config("dev", dagsRepo=repo)
    with pytest.raises(ConfigError) as info:
        run_program("dev", config, deploying=True)
    (problem,) = info.value.problems
    assert problem.startswith(f"airflow-gke:dagsRepo = {repo!r} is not allowed: your fork")
    assert "Fix: pulumi config set airflow-gke:dagsRepo https://github.com/" in problem


def test_pulumi_up_takes_a_real_fork(caplog):
    with caplog.at_level(logging.WARNING):
        capture = run_program("dev", stack_config("dev", dagsRepo=FORK), deploying=True)
    assert capture.outputs["kubeconfig"]
    assert not [r for r in caplog.records if "dagsRepo" in r.getMessage()]
