"""The keyless CI identity (components/ci_identity.py) and the bootstrap stack, run under the mock harness."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

from components.ci_identity import (DEPLOYER_ROLES, GRANTABLE_ROLES, GITHUB_ISSUER, attribute_condition,
                                    check_args)
from components.config import ConfigError
from components.identity import AIRFLOW_PROJECT_ROLES, NODE_ROLES
from preview.harness import MOCK_PROJECT_NUMBER, Capture, run_program

ROOT = Path(__file__).resolve().parents[2]
REPO = "my-org/airflow-gke"


def run_bootstrap(**config: str) -> Capture:
    values = {"gcp:project": "my-airflow-project", **{f"airflow-gke:{k}": v for k, v in config.items()}}
    return run_program("ci", values, program=lambda: runpy.run_path(str(ROOT / "bootstrap" / "__main__.py")))


@pytest.fixture(scope="module")
def bootstrap() -> Capture:
    return run_bootstrap(repository=REPO, repositoryId="123456", stateBucket="my-pulumi-state")


def test_provider_trusts_github_and_only_this_repository(bootstrap):
    provider = bootstrap.one("gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider").inputs
    assert provider["oidc"]["issuerUri"] == GITHUB_ISSUER
    assert provider["attributeCondition"] == "assertion.repository == 'my-org/airflow-gke' && assertion.repository_id == '123456'"
    assert provider["attributeMapping"]["attribute.repository"] == "assertion.repository"


def test_attribute_condition_rejects_other_repositories():
    # The CEL is a conjunction of equalities; evaluate it on claims as Google's STS would.
    def admits(condition: str, claims: dict) -> bool:
        pairs = re.findall(r"assertion\.(\w+) == '([^']*)'", condition)
        assert pairs and condition.count("&&") == len(pairs) - 1 and "||" not in condition
        return all(claims.get(key) == value for key, value in pairs)

    condition = attribute_condition(REPO, "42")
    assert admits(condition, {"repository": REPO, "repository_id": "42"})
    assert not admits(condition, {"repository": "my-org/other", "repository_id": "42"})
    assert not admits(condition, {"repository": REPO, "repository_id": "43"})  # re-created repo, same name
    assert not admits(attribute_condition(REPO), {"repository": "evil/airflow-gke"})


def test_deployer_is_bound_to_the_repository_principal_set(bootstrap):
    binding = bootstrap.one("gcp:serviceaccount/iAMMember:IAMMember").inputs
    assert binding["role"] == "roles/iam.workloadIdentityUser"
    assert binding["member"] == (f"principalSet://iam.googleapis.com/projects/{MOCK_PROJECT_NUMBER}/locations/global/"
                                 f"workloadIdentityPools/github/attribute.repository/{REPO}")
    deployer = bootstrap.one("gcp:serviceaccount/account:Account")
    assert binding["serviceAccountId"] == deployer.outputs["name"]
    assert bootstrap.outputs["workload_identity_provider"] == (
        f"projects/{MOCK_PROJECT_NUMBER}/locations/global/workloadIdentityPools/github/providers/github-actions")


def test_deployer_roles_are_exactly_the_documented_ones(bootstrap):
    granted = sorted(r.inputs["role"] for r in bootstrap.of_type("gcp:projects/iAMMember:IAMMember"))
    assert granted == sorted(DEPLOYER_ROLES)
    documented = (ROOT / "docs" / "ci.md").read_text()
    in_docs = sorted(set(re.findall(r"`(roles/[A-Za-z.]+)`", documented.split("## Deployer roles")[1].split("\n## ")[0])))
    assert in_docs == sorted(DEPLOYER_ROLES), "docs/ci.md 'Deployer roles' must list exactly DEPLOYER_ROLES"
    assert not any(role in granted for role in ("roles/owner", "roles/editor", "roles/iam.serviceAccountKeyAdmin"))


def test_project_iam_admin_may_grant_only_what_the_stack_grants(bootstrap):
    admin = next(r.inputs for r in bootstrap.of_type("gcp:projects/iAMMember:IAMMember")
                 if r.inputs["role"] == "roles/resourcemanager.projectIamAdmin")
    expression = admin["condition"]["expression"]
    assert set(re.findall(r"'(roles/[^']+)'", expression)) == set(GRANTABLE_ROLES) == {*NODE_ROLES, *AIRFLOW_PROJECT_ROLES}
    assert "modifiedGrantsByRole" in expression and ".hasOnly(" in expression


def test_state_bucket_access_only_when_asked(bootstrap):
    assert bootstrap.one("gcp:storage/bucketIAMMember:BucketIAMMember").inputs["bucket"] == "my-pulumi-state"
    assert not run_bootstrap(repository=REPO).of_type("gcp:storage/bucketIAMMember:BucketIAMMember")


def test_no_service_account_key_anywhere(bootstrap, dev, prod):
    for capture in (bootstrap, dev, prod):
        assert not [r for r in capture.resources if "key" in r.type.lower().split(":")[-1]], capture.stack
    workflows = ROOT / ".github" / "workflows"
    for workflow in workflows.glob("*.yml"):
        text = workflow.read_text()
        assert "credentials_json" not in text and "GOOGLE_APPLICATION_CREDENTIALS" not in text, workflow.name


def test_bad_repository_fails_before_any_resource():
    assert check_args("my-org/airflow-gke", "github") == []
    with pytest.raises(ConfigError, match="repository = 'not-a-repo' is not OWNER/REPO"):
        run_bootstrap(repository="not-a-repo")
