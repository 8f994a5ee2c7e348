"""The keyless CI identity (components/ci_identity.py) and the bootstrap stack, run under the mock harness.

The attribute condition, the attribute mapping and the IAM conditions are CEL; they are evaluated here by
a real CEL interpreter (cel-python), not matched as text."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import celpy
import pytest
from celpy import celtypes

from components.ci_identity import (DEPLOYER_ROLES, GITHUB_ISSUER, GRANTABLE_ROLES, PREVIEW_ROLES,
                                    STATE_BUCKET_PREVIEW_ROLE, STATE_BUCKET_ROLE, check_args, pause_roles_of_stacks)
from components.config import ConfigError
from components.identity import AIRFLOW_PROJECT_ROLES, NODE_ROLES
from preview.harness import MOCK_PROJECT_NUMBER, Capture, load_stack_file, run_program
from tests.conftest import run_stack

ROOT = Path(__file__).resolve().parents[2]
REPO, REPO_ID = "my-org/airflow-gke", "123456"
STATE_BUCKET = "my-pulumi-state"
PROVIDER = "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider"
ACCOUNT = "gcp:serviceaccount/account:Account"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"


def run_bootstrap(**config: str) -> Capture:
    values = {"gcp:project": "my-airflow-project", **{f"airflow-gke:{k}": v for k, v in config.items()}}
    return run_program("ci", values, program=lambda: runpy.run_path(str(ROOT / "bootstrap" / "__main__.py")))


@pytest.fixture(scope="module")
def bootstrap() -> Capture:
    return run_bootstrap(repository=REPO, repositoryId=REPO_ID, stateBucket=STATE_BUCKET)


# --- CEL, as Google evaluates it -------------------------------------------------------------------------

def _extract(value: celtypes.StringType, template: celtypes.StringType) -> celtypes.StringType:
    """IAM's extract(): the text between the template's prefix and suffix, '' when absent.
    https://cloud.google.com/iam/docs/conditions-attribute-reference#extract"""
    prefix, rest = str(template).split("{", 1)
    suffix = rest.split("}", 1)[1]
    start = str(value).find(prefix)
    if start < 0:
        return celtypes.StringType("")
    start += len(prefix)
    end = str(value).find(suffix, start) if suffix else len(value)
    return celtypes.StringType(str(value)[start:end] if end >= 0 else "")


def _has_only(values: celtypes.ListType, allowed: celtypes.ListType) -> celtypes.BoolType:
    """IAM's hasOnly(): every element is one of the allowed ones.
    https://cloud.google.com/iam/docs/setting-limits-on-granting-roles"""
    return celtypes.BoolType(all(value in allowed for value in values))


def cel(expression: str, activation: dict):
    environment = celpy.Environment()
    program = environment.program(environment.compile(expression),
                                  functions={"extract": _extract, "hasOnly": _has_only})
    result = program.evaluate(celpy.json_to_cel(activation))
    if isinstance(result, celpy.CELEvalError):
        raise result
    return bool(result) if isinstance(result, celtypes.BoolType) else result


def claims(environment: str | None = None, ref: str = "refs/heads/main", event: str = "push",
           repository: str = REPO, repository_id: str = REPO_ID) -> dict:
    """A GitHub Actions OIDC token's claims (the documented shape; `environment` only when the job has one)."""
    if environment:
        sub = f"repo:{repository}:environment:{environment}"
    elif event == "pull_request":
        sub = f"repo:{repository}:pull_request"
    else:
        sub = f"repo:{repository}:ref:{ref}"
    token = {"iss": GITHUB_ISSUER, "sub": sub, "aud": "https://iam.googleapis.com/", "repository": repository,
             "repository_id": repository_id, "repository_owner": repository.split("/")[0], "ref": ref,
             "ref_type": "branch", "event_name": event, "workflow": "deploy",
             "job_workflow_ref": f"{repository}/.github/workflows/deploy.yml@{ref}"}
    if environment:
        token["environment"] = environment
    return token


_PRINCIPAL_SET = re.compile(r"^principalSet://iam\.googleapis\.com/projects/(\d+)/locations/global/"
                            r"workloadIdentityPools/([^/]+)/attribute\.([a-z_]+)/(.+)$")
_PRINCIPAL = re.compile(r"^principal://iam\.googleapis\.com/projects/(\d+)/locations/global/"
                        r"workloadIdentityPools/([^/]+)/subject/(.+)$")


def impersonable(capture: Capture, token: dict) -> set[str]:
    """Account ids a token can act as: STS checks the provider's condition, maps the attributes (a mapping
    that fails rejects the token), then IAM matches the federated principal against each account's
    roles/iam.workloadIdentityUser members."""
    provider = capture.one(PROVIDER).inputs
    pool = capture.one("gcp:iam/workloadIdentityPool:WorkloadIdentityPool").inputs["workloadIdentityPoolId"]
    if cel(provider["attributeCondition"], {"assertion": token}) is not True:
        return set()
    mapped = {key: str(cel(expression, {"assertion": token}))
              for key, expression in provider["attributeMapping"].items()}

    def matches(member: str) -> bool:
        if found := _PRINCIPAL_SET.match(member):
            number, pool_id, attribute, value = found.groups()
            return (number, pool_id) == (MOCK_PROJECT_NUMBER, pool) and mapped.get(f"attribute.{attribute}") == value
        if found := _PRINCIPAL.match(member):
            number, pool_id, subject = found.groups()
            return (number, pool_id) == (MOCK_PROJECT_NUMBER, pool) and mapped["google.subject"] == subject
        return False

    accounts = {a.outputs["name"]: a.inputs["accountId"] for a in capture.of_type(ACCOUNT)}
    return {accounts[b.inputs["serviceAccountId"]] for b in capture.of_type("gcp:serviceaccount/iAMMember:IAMMember")
            if b.inputs["role"] == "roles/iam.workloadIdentityUser" and matches(b.inputs["member"])}


CASES = {
    "pull request from a branch of the repository": (claims(ref="refs/pull/1/merge", event="pull_request"),
                                                     {"pulumi-preview"}),
    "pull request job that names environment prod": (claims("prod", ref="refs/pull/1/merge", event="pull_request"),
                                                     {"pulumi-preview"}),
    "push to main, no environment": (claims(), set()),
    "push to main, environment dev": (claims("dev"), {"pulumi-deploy-dev"}),
    "push to main, environment prod": (claims("prod"), {"pulumi-deploy-prod"}),
    "workflow_dispatch on main, environment dev (e2e)": (claims("dev", event="workflow_dispatch"),
                                                         {"pulumi-deploy-dev"}),
    "environment prod from a feature branch": (claims("prod", ref="refs/heads/feature"), set()),
    "environment prod, workflow_dispatch from a feature branch": (
        claims("prod", ref="refs/heads/feature", event="workflow_dispatch"), set()),
    "pull_request_target on main with environment prod": (claims("prod", event="pull_request_target"), set()),
    "tag push with environment prod": (claims("prod", ref="refs/tags/v1"), set()),
    "another repository, environment prod on main": (claims("prod", repository="evil/airflow-gke"), set()),
    "a fork's own pull request run": (claims(ref="refs/pull/1/merge", event="pull_request",
                                             repository="someone/airflow-gke", repository_id="999"), set()),
    "a re-created repository of the same name": (claims("prod", repository_id="654321"), set()),
}


@pytest.mark.parametrize("case", list(CASES))
def test_which_account_each_github_token_can_act_as(bootstrap, case):
    token, expected = CASES[case]
    assert impersonable(bootstrap, token) == expected


def test_the_sample_claims_are_realistic():
    # The model must reject what Google would: a condition that is not a bool, or a claim it lacks.
    with pytest.raises(celpy.CELEvalError):
        cel("assertion.environment", {"assertion": claims()})
    assert cel("assertion.environment", {"assertion": claims("dev")}) == "dev"


def test_environments_config_decides_the_deployers():
    capture = run_bootstrap(repository=REPO, environments='["prod"]')
    assert {a.inputs["accountId"] for a in capture.of_type(ACCOUNT)} == {"pulumi-preview", "pulumi-deploy-prod"}
    assert impersonable(capture, claims("dev")) == set()
    assert impersonable(capture, claims("prod")) == {"pulumi-deploy-prod"}
    assert set(capture.outputs["deployer_service_accounts"]) == {"prod"}


def test_provider_trusts_github_and_only_this_repository(bootstrap):
    provider = bootstrap.one(PROVIDER).inputs
    assert provider["oidc"]["issuerUri"] == GITHUB_ISSUER
    assert provider["attributeCondition"] == f"assertion.repository == '{REPO}' && assertion.repository_id == '{REPO_ID}'"
    unpinned = run_bootstrap(repository=REPO).one(PROVIDER).inputs["attributeCondition"]
    assert cel(unpinned, {"assertion": claims()}) is True
    assert cel(unpinned, {"assertion": claims(repository="evil/airflow-gke")}) is False


# --- Re-runnable bootstrap -------------------------------------------------------------------------------

def test_pool_id_is_never_a_soft_deleted_one(bootstrap):
    # A destroyed pool stays soft-deleted for 30 days and its id cannot be re-created (409): every new
    # stack draws a new suffix from the random provider; a changed poolId draws a new one too.
    suffix = bootstrap.one("random:index/randomId:RandomId")
    pool_id = bootstrap.one("gcp:iam/workloadIdentityPool:WorkloadIdentityPool").inputs["workloadIdentityPoolId"]
    assert pool_id == f"github-{suffix.outputs['hex']}" and len(suffix.outputs["hex"]) >= 4
    assert re.fullmatch(r"[a-z][a-z0-9-]{3,31}", pool_id)
    assert suffix.inputs["keepers"] == {"pool_id": "github"}
    other = run_bootstrap(repository=REPO, poolId="gh-actions")
    assert other.one("gcp:iam/workloadIdentityPool:WorkloadIdentityPool").inputs["workloadIdentityPoolId"] \
        .startswith("gh-actions-")
    assert other.one("random:index/randomId:RandomId").outputs["hex"] != suffix.outputs["hex"]
    assert bootstrap.outputs["workload_identity_provider"] == (
        f"projects/{MOCK_PROJECT_NUMBER}/locations/global/workloadIdentityPools/{pool_id}/providers/github-actions")
    with pytest.raises(ConfigError, match="poolId"):
        run_bootstrap(repository=REPO, poolId="a-pool-id-too-long-for-a-suffix")


# --- Least privilege -------------------------------------------------------------------------------------

def grants(capture: Capture, account_id: str) -> dict[str, dict]:
    email = f"serviceAccount:{account_id}@my-airflow-project.iam.gserviceaccount.com"
    return {r.inputs["role"]: r.inputs for r in capture.of_type(PROJECT_MEMBER) if r.inputs["member"] == email}


def table_roles(section: str) -> list[str]:
    """The roles of the table in docs/ci.md's section (one row per role)."""
    documented = (ROOT / "docs" / "ci.md").read_text().split(f"\n## {section}\n")[1].split("\n## ")[0]
    return sorted(re.findall(r"^\| `(roles/[A-Za-z.]+)` \|", documented, flags=re.M))


def test_deployer_roles_are_exactly_the_documented_ones(bootstrap):
    for env in ("dev", "prod"):
        granted = grants(bootstrap, f"pulumi-deploy-{env}")
        assert sorted(granted) == sorted(DEPLOYER_ROLES)
    assert table_roles("Deployer roles") == sorted(DEPLOYER_ROLES), "docs/ci.md 'Deployer roles' must list DEPLOYER_ROLES"
    assert table_roles("Preview roles") == sorted(PREVIEW_ROLES), "docs/ci.md 'Preview roles' must list PREVIEW_ROLES"
    assert all(len(why) > 20 for why in [*DEPLOYER_ROLES.values(), *PREVIEW_ROLES.values()])
    everyone = {r.inputs["role"] for r in bootstrap.of_type(PROJECT_MEMBER)}
    assert not everyone & {"roles/owner", "roles/editor", "roles/iam.serviceAccountKeyAdmin",
                           "roles/iam.serviceAccountTokenCreator"}


def test_preview_account_cannot_deploy(bootstrap):
    granted = grants(bootstrap, "pulumi-preview")
    assert sorted(granted) == sorted(PREVIEW_ROLES)
    assert all(role.endswith(("viewer", "Viewer")) for role in granted)
    assert not set(granted) & set(DEPLOYER_ROLES)


def test_project_iam_admin_may_grant_only_what_the_stack_grants(bootstrap, dev, prod, autopilot):
    expression = grants(bootstrap, "pulumi-deploy-prod")["roles/resourcemanager.projectIamAdmin"]["condition"]["expression"]
    # Exactly the project roles the program grants: its own, and the committed stacks' task roles, which
    # bootstrap reads from their files (a grant outside the list fails the deploy).
    scheduled = run_stack("dev", activeHours="Mon-Fri 08:00-18:00 Europe/Berlin")
    granted = {r.inputs["role"] for c in (dev, prod, autopilot, scheduled) for r in c.of_type(PROJECT_MEMBER)}
    # The pause workflow's custom role holds the namePrefix: bootstrap lists it for each committed stack that
    # sleeps (the committed ones don't; the scheduled variant's config is what a sleeping stack commits).
    custom = {role for role in granted if role.startswith("projects/")}
    assert custom == {"projects/my-airflow-project/roles/airflow_pause"}
    sleeping = {**load_stack_file("dev")[0], "airflow-gke:activeHours": "Mon-Fri 08:00-18:00 Europe/Berlin"}
    assert set(pause_roles_of_stacks([sleeping, load_stack_file("prod")[0]], "my-airflow-project")) == custom
    assert not pause_roles_of_stacks([sleeping], "another-project")
    granted -= custom
    task_roles = set(bootstrap.outputs["grantable_task_roles"])
    assert task_roles and not task_roles & set(GRANTABLE_ROLES)
    assert set(GRANTABLE_ROLES) | task_roles == granted and {*NODE_ROLES, *AIRFLOW_PROJECT_ROLES} < granted

    def may_grant(roles: list[str]) -> bool:
        # api.getAttribute is IAM's; modelled by substituting the attribute's value.
        listed = "[" + ", ".join(f"'{role}'" for role in roles) + "]"
        return cel(expression.replace("api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', [])", listed), {})

    assert "api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', [])" in expression
    assert may_grant(sorted(granted)) is True
    assert may_grant(["roles/owner"]) is False and may_grant([*granted, "roles/editor"]) is False


@pytest.fixture(scope="module")
def e2e_stack() -> Capture:
    return run_stack("dev", namePrefix="e2e-4711")  # what e2e.yml sets


def test_account_roles_reach_only_the_accounts_the_stacks_create(bootstrap, dev, prod, e2e_stack):
    deployer = grants(bootstrap, "pulumi-deploy-dev")
    assert not deployer["roles/iam.serviceAccountCreator"].get("condition")  # create is checked on the project
    for role in ("roles/iam.serviceAccountAdmin", "roles/iam.serviceAccountUser"):
        expression = deployer[role]["condition"]["expression"]

        def reaches(email: str) -> bool:
            return cel(expression, {"resource": {"name": f"projects/my-airflow-project/serviceAccounts/{email}",
                                                 "type": "iam.googleapis.com/ServiceAccount"}}) is True

        created = [a.outputs["email"] for c in (dev, prod, e2e_stack) for a in c.of_type(ACCOUNT)]
        assert len(created) == 12 and all(reaches(email) for email in created), role
        ci_accounts = [a.outputs["email"] for a in bootstrap.of_type(ACCOUNT)]
        others = [*ci_accounts, f"{MOCK_PROJECT_NUMBER}-compute@developer.gserviceaccount.com",
                  "my-airflow-project@appspot.gserviceaccount.com", "terraform@my-airflow-project.iam.gserviceaccount.com"]
        assert not any(reaches(email) for email in others), role
        # The unique-id form of a name has no account id: it matches nothing (fails closed).
        assert cel(expression, {"resource": {"name": "projects/-/serviceAccounts/112233445566778899"}}) is False


def test_storage_admin_reaches_the_stacks_buckets_never_the_state(bootstrap, dev, prod, e2e_stack):
    expression = grants(bootstrap, "pulumi-deploy-dev")["roles/storage.admin"]["condition"]["expression"]

    def reaches(name: str, typ: str = "storage.googleapis.com/Bucket") -> bool:
        return cel(expression, {"resource": {"name": name, "type": typ}}) is True

    buckets = [b.outputs["name"] for c in (dev, prod, e2e_stack) for b in c.of_type("gcp:storage/bucket:Bucket")]
    assert len(buckets) == 3
    for bucket in buckets:
        assert reaches(f"projects/_/buckets/{bucket}")
        assert reaches(f"projects/_/buckets/{bucket}/objects/dag_id=x/run_id=y/attempt=1.log", "storage.googleapis.com/Object")
    assert reaches("projects/my-airflow-project", "cloudresourcemanager.googleapis.com/Project")  # buckets.create
    for other in (STATE_BUCKET, "my-org-backups", "artifacts.my-airflow-project.appspot.com"):
        assert not reaches(f"projects/_/buckets/{other}")
        assert not reaches(f"projects/_/buckets/{other}/objects/.pulumi/stacks/airflow-gke/prod.json",
                           "storage.googleapis.com/Object")


def test_state_bucket_is_reached_only_through_its_own_grants(bootstrap):
    state = {r.inputs["member"].split(":")[1].split("@")[0]: r.inputs["role"]
             for r in bootstrap.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
             if r.inputs["bucket"] == STATE_BUCKET}
    assert state == {"pulumi-preview": STATE_BUCKET_PREVIEW_ROLE, "pulumi-deploy-dev": STATE_BUCKET_ROLE,
                     "pulumi-deploy-prod": STATE_BUCKET_ROLE}
    assert not run_bootstrap(repository=REPO).of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
    with pytest.raises(ConfigError, match="stateBucket 'airflow-state' starts with resourcePrefixes"):
        run_bootstrap(repository=REPO, stateBucket="airflow-state")


def test_no_service_account_key_anywhere(bootstrap, dev, prod):
    for capture in (bootstrap, dev, prod):
        assert not [r for r in capture.resources if "key" in r.type.lower().split(":")[-1]], capture.stack
    workflows = ROOT / ".github" / "workflows"
    for workflow in workflows.glob("*.yml"):
        text = workflow.read_text()
        assert "credentials_json" not in text and "GOOGLE_APPLICATION_CREDENTIALS" not in text, workflow.name


def test_bad_config_fails_before_any_resource():
    assert check_args("my-org/airflow-gke", "github") == []
    with pytest.raises(ConfigError, match="repository = 'not-a-repo' is not OWNER/REPO"):
        run_bootstrap(repository="not-a-repo")
    with pytest.raises(ConfigError, match="would let a deployer administer the CI accounts"):
        run_bootstrap(repository=REPO, resourcePrefixes='["pulumi-"]')
    with pytest.raises(ConfigError, match="environments"):
        run_bootstrap(repository=REPO, environments='["Prod Env"]')
    with pytest.raises(ConfigError, match="environments"):
        run_bootstrap(repository=REPO, environments='["dev", "dev"]')


def test_roles_of_stacks_configured_elsewhere_are_added_and_checked():
    more = run_bootstrap(repository=REPO, taskRoles='["roles/pubsub.subscriber"]')
    expression = grants(more, "pulumi-deploy-dev")["roles/resourcemanager.projectIamAdmin"]["condition"]["expression"]
    attribute = "api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', [])"
    assert cel(expression.replace(attribute, "['roles/pubsub.subscriber']"), {}) is True
    with pytest.raises(ConfigError) as info:
        run_bootstrap(repository=REPO, taskRoles='["roles/editor"]')
    assert "roles/editor" in str(info.value) and "basic role" in str(info.value)
