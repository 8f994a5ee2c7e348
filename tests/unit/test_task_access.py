"""What tasks reach (docs/task-access.md): worker roles, task identities, Secret Manager as the secrets backend
with a prefix-scoped grant, and Airflow settings from airflowConfig, under the real program and mocks.

IAM conditions are evaluated with a real CEL interpreter (tests/unit/test_ci_identity.py `cel`)."""

from __future__ import annotations

import ast
import itertools
import json
from pathlib import Path

import pytest
import yaml

from components.airflow.pod.settings_env import SECRET_MANAGER_BACKEND
from components.config import DEFAULT_AIRFLOW_IMAGE, ConfigError
from components.config.airflow_overrides import OWNED, env_name, known_options, owner_of
from components.config.task_access import (secret_prefixes, secrets_prefix_problem, task_account_id, task_ksa)
from components.identity import SECRET_ACCESSOR_ROLE
from preview.harness import MOCK_PROJECT_NUMBER, Capture, load_stack_file
from tests.conftest import run_stack, stack_settings
from tests.unit.container_helpers import env, every_container
from tests.unit.test_ci_identity import cel

ROOT = Path(__file__).resolve().parents[2]
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
ACCOUNT = "gcp:serviceaccount/account:Account"
WI_MEMBER = "gcp:serviceaccount/iAMMember:IAMMember"
BUCKET_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
KSA = "kubernetes:core/v1:ServiceAccount"
TASKS = {"analytics": ["roles/bigquery.jobUser", "roles/bigquery.dataViewer"],
         "loader": ["projects/my-airflow-project-prod/roles/gcsLoader"]}


def problems(stack: str = "dev", **overrides: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        stack_settings(stack, **overrides)
    return info.value.problems


def one_problem(key: str, stack: str = "dev", **overrides: str) -> str:
    found = [p for p in problems(stack, **overrides) if p.startswith(f"airflow-gke:{key}")]
    assert len(found) == 1, found
    return found[0]


def grants(capture: Capture, email: str) -> dict[str, dict]:
    return {r.inputs["role"]: r.inputs for r in capture.of_type(PROJECT_MEMBER)
            if r.inputs["member"] == f"serviceAccount:{email}"}


def email_of(capture: Capture, account_id: str) -> str:
    return next(a.outputs["email"] for a in capture.of_type(ACCOUNT) if a.inputs["accountId"] == account_id)


def pod_specs(capture: Capture) -> dict[str, dict]:
    """Every pod spec the stack renders, the task pod template included (name -> spec)."""
    specs = {}
    for _, manifest in capture.kubernetes_objects():
        spec = manifest.get("spec") or {}
        template = (spec.get("jobTemplate", {}).get("spec", spec)).get("template")
        if template:
            specs[f"{manifest['kind']}/{manifest['metadata']['name']}"] = template["spec"]
        if manifest["kind"] == "ConfigMap" and "pod_template_file.yaml" in manifest.get("data", {}):
            specs["task-pod"] = yaml.safe_load(manifest["data"]["pod_template_file.yaml"])["spec"]
    return specs


def airflow_containers(capture: Capture, stack: str = "prod") -> dict[str, dict]:
    """The containers that run the stack's Airflow image (not git-sync, the proxy or other sidecars)."""
    image = load_stack_file(stack)[0].get("airflow-gke:airflowImage", DEFAULT_AIRFLOW_IMAGE)
    return {f"{pod}/{c['name']}": c for pod, spec in pod_specs(capture).items() for c in every_container(spec)
            if c["image"] == image}


@pytest.fixture(scope="module")
def with_tasks() -> Capture:
    return run_stack("prod", workerRoles=json.dumps(["roles/bigquery.dataViewer", "roles/pubsub.publisher"]),
                     taskIdentities=json.dumps(TASKS), airflowConfig=json.dumps(
                         {"core": {"parallelism": 64}, "scheduler.max_dagruns_to_create_per_loop": 5}))


# --- worker roles --------------------------------------------------------------------------------

def test_worker_roles_are_granted_to_the_worker_account_only(with_tasks):
    worker = email_of(with_tasks, "airflow-worker")
    granted = grants(with_tasks, worker)
    assert set(granted) == {"roles/bigquery.dataViewer", "roles/pubsub.publisher"}
    assert all(not g.get("condition") for g in granted.values())
    airflow = grants(with_tasks, email_of(with_tasks, "airflow-airflow"))
    assert "roles/bigquery.dataViewer" not in airflow


@pytest.mark.parametrize("role, expected", [
    ("roles/owner", "basic role"), ("roles/editor", "basic role"), ("roles/viewer", "basic role"),
    ("roles/iam.serviceAccountTokenCreator", "acts as other service accounts"),
    ("roles/resourcemanager.projectIamAdmin", "IAM administrator"),
    ("roles/iam.serviceAccountOpenIdTokenCreator", "acts as other service accounts"),
    ("roles/secretmanager.secretAccessor", "every secret of the project"),
    ("roles/secretmanager.admin", "every secret of the project"),
    ("roles/container.developer", "runs pods as any Kubernetes"),
    ("roles/compute.instanceAdmin.v1", "cluster's nodes"),
    ("roles/iap.admin", "who may sign in"),
    ("bigquery.dataViewer", "roles/SERVICE.ROLE"), ("projects/someone-else/roles/reader", "custom role of this project"),
])
def test_a_worker_role_a_task_must_not_hold_is_refused_before_any_resource(role, expected):
    problem = one_problem("workerRoles[0]", workerRoles=json.dumps([role]))
    assert repr(role) in problem and expected in problem
    assert "Fix: pulumi config set --path 'airflow-gke:workerRoles[0]' roles/" in problem


def test_a_custom_role_of_the_stacks_project_is_accepted():
    settings = stack_settings("dev", workerRoles=json.dumps(["projects/my-airflow-project/roles/gcsLoader"]))
    assert settings.airflow.worker_roles == ("projects/my-airflow-project/roles/gcsLoader",)


# --- task identities -------------------------------------------------------------------------------

def test_each_task_identity_is_a_bound_account_pair_with_its_roles_and_the_logs_bucket(with_tasks):
    namespace = stack_settings("prod").airflow.namespace
    bindings = {r.inputs["member"]: r for r in with_tasks.of_type(WI_MEMBER)}
    service_accounts = {m["metadata"]["name"]: m for r, m in with_tasks.kubernetes_objects() if r.type == KSA}
    for identity, roles in TASKS.items():
        account_id = task_account_id("airflow", identity)
        email = email_of(with_tasks, account_id)
        assert set(grants(with_tasks, email)) == set(roles)
        assert any(r.inputs["member"] == f"serviceAccount:{email}" for r in with_tasks.of_type(BUCKET_MEMBER))
        ksa = task_ksa(identity)
        binding = bindings[f"serviceAccount:my-airflow-project-prod.svc.id.goog[{namespace}/{ksa}]"]
        assert binding.inputs["role"] == "roles/iam.workloadIdentityUser"
        assert binding.inputs["serviceAccountId"].endswith(email)
        manifest = service_accounts[ksa]
        assert manifest["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == email
        assert manifest["automountServiceAccountToken"] is False


@pytest.mark.parametrize("name", ["Analytics", "a_b", "-x", "far-too-long-identity-name"])
def test_a_bad_task_identity_name_is_refused(name):
    problem = one_problem(f"taskIdentities.{name}", taskIdentities=json.dumps({name: ["roles/bigquery.jobUser"]}))
    assert "at most 30 characters" in problem and "Fix: pulumi config rm --path" in problem


def test_a_task_identity_role_is_checked_like_a_worker_role():
    problem = one_problem("taskIdentities.etl[1]", taskIdentities=json.dumps({"etl": ["roles/bigquery.jobUser",
                                                                                      "roles/editor"]}))
    assert "basic role" in problem


def test_the_example_dag_selects_an_identity_both_committed_stacks_declare():
    tree = ast.parse((ROOT / "examples" / "task_identity.py").read_text())
    names = {kw.value.value for node in ast.walk(tree) if isinstance(node, ast.Call)
             for kw in node.keywords if kw.arg == "service_account_name"}
    assert len(names) == 1
    for stack in ("dev", "prod"):
        declared = {task_ksa(i) for i, _ in stack_settings(stack).airflow.task_identities}
        assert names <= declared, (stack, names, declared)


# --- Secret Manager --------------------------------------------------------------------------------

def secret_grants(capture: Capture) -> list:
    return [r for r in capture.of_type(PROJECT_MEMBER) if r.inputs["role"] == SECRET_ACCESSOR_ROLE]


def test_prod_reads_connections_from_secret_manager_dev_does_not(prod, dev):
    assert len(secret_grants(prod)) == 1 and secret_grants(dev) == []
    services = {r.inputs["service"] for r in prod.of_type("gcp:projects/service:Service")}
    assert "secretmanager.googleapis.com" in services
    assert "secretmanager.googleapis.com" not in {r.inputs["service"] for r in dev.of_type("gcp:projects/service:Service")}


def reaches(expression: str, secret_id: str, number: str = MOCK_PROJECT_NUMBER) -> bool:
    name = f"projects/{number}/secrets/{secret_id}/versions/latest"
    return cel(expression, {"resource": {"name": name, "type": "secretmanager.googleapis.com/SecretVersion"}}) is True


def test_the_secret_grant_is_the_airflow_accounts_and_scoped_to_its_prefixes(with_tasks):
    grant, = secret_grants(with_tasks)
    assert grant.inputs["member"] == f"serviceAccount:{email_of(with_tasks, 'airflow-airflow')}"
    expression = grant.inputs["condition"]["expression"]
    assert reaches(expression, "airflow-connections-warehouse") and reaches(expression, "airflow-variables-env")
    for other in ("airflow-connections", "airflow-connections2-x", "other-team-connections-db", "payroll-db",
                  "airflow-config-x"):
        assert not reaches(expression, other), other
    # The project id form is not how Secret Manager names resources: the number must be in the condition.
    assert not reaches(expression, "airflow-connections-warehouse", number="my-airflow-project-prod")


def test_task_pods_get_no_secrets_backend_the_airflow_processes_do(with_tasks):
    containers = airflow_containers(with_tasks)
    task = containers.pop("task-pod/base")
    assert "AIRFLOW__SECRETS__BACKEND" not in env(task)
    # The failed-pod clean-up lists and deletes pods, it reads no connection or variable (pod_cleanup.py).
    [cleanup] = [containers.pop(name) for name in list(containers) if "pod-cleanup" in name]
    assert "AIRFLOW__SECRETS__BACKEND" not in env(cleanup)
    connections, variables = secret_prefixes("airflow")
    for name, container in containers.items():
        values = env(container)
        assert values["AIRFLOW__SECRETS__BACKEND"]["value"] == SECRET_MANAGER_BACKEND, name
        kwargs = json.loads(values["AIRFLOW__SECRETS__BACKEND_KWARGS"]["value"])
        assert kwargs == {"connections_prefix": connections, "variables_prefix": variables, "config_prefix": None,
                          "sep": "-", "project_id": "my-airflow-project-prod"}, name


def test_secrets_prefix_sets_the_backend_and_the_grant_together():
    capture = run_stack("dev", secretsBackend="secret-manager", secretsPrefix="team-a")
    grant, = secret_grants(capture)
    assert reaches(grant.inputs["condition"]["expression"], "team-a-connections-db")
    assert not reaches(grant.inputs["condition"]["expression"], "airflow-connections-db")
    scheduler = airflow_containers(capture, "dev")["Deployment/airflow/scheduler"]
    assert json.loads(env(scheduler)["AIRFLOW__SECRETS__BACKEND_KWARGS"]["value"])["connections_prefix"] == \
        "team-a-connections"


@pytest.mark.parametrize("prefix, expected", [
    ("ab", "3-40"), ("Team", "3-40"), ("team-connections", "without the words"), ("variables-x", "without the words"),
])
def test_a_prefix_that_could_reach_other_secrets_is_refused(prefix, expected):
    problem = one_problem("secretsPrefix", secretsBackend="secret-manager", secretsPrefix=prefix)
    assert repr(prefix) in problem and expected in problem and "Fix: pulumi config set airflow-gke:secretsPrefix" \
        in problem


def test_a_prefix_without_the_backend_is_refused():
    problem = one_problem("secretsPrefix", secretsPrefix="team-a")
    assert "unset when airflow-gke:secretsBackend is none" in problem


def test_no_two_accepted_prefixes_reach_each_others_secrets():
    """The scope of one stack never includes a secret id of another's: checked over short prefixes built from
    the words that could make one nest in the other."""
    words = ["a", "b", "connections", "variables", "x1"]
    prefixes = {"-".join(p) for n in (1, 2, 3) for p in itertools.product(words, repeat=n)}
    accepted = sorted(p for p in prefixes if len(p) >= 3 and not secrets_prefix_problem(p))
    assert "a-b" in accepted and "a-connections" not in accepted
    for mine, theirs in itertools.permutations(accepted, 2):
        for scope in secret_prefixes(mine):
            for their_scope in secret_prefixes(theirs):
                assert not f"{their_scope}-x".startswith(f"{scope}-"), (mine, theirs)


# --- airflowConfig ----------------------------------------------------------------------------------

def test_airflow_settings_reach_every_airflow_container_task_pods_included(with_tasks):
    containers = airflow_containers(with_tasks)
    assert "task-pod/base" in containers and "Deployment/airflow/scheduler" in containers
    for name, container in containers.items():
        values = env(container)
        assert values["AIRFLOW__CORE__PARALLELISM"]["value"] == "64", name
        assert values["AIRFLOW__SCHEDULER__MAX_DAGRUNS_TO_CREATE_PER_LOOP"]["value"] == "5", name


@pytest.mark.parametrize("stack", ["dev", "prod"])  # git-sync and git-bundle, without and with Secret Manager
def test_every_airflow_setting_the_program_renders_is_owned(stack, request):
    """OWNED is what the program sets: a user value for any of these would be silently overridden or clash."""
    rendered = set()
    for container in airflow_containers(request.getfixturevalue(stack)).values():
        rendered |= {name for name in env(container) if name.startswith("AIRFLOW__")}
    owned_env = {env_name(key) for key in OWNED}
    assert rendered - owned_env == set()


def test_every_owned_key_is_a_real_option():
    assert set(OWNED) - set(known_options()) == set()


@pytest.mark.parametrize("key, value, expected", [
    ("core.executor", "CeleryExecutor", "KubernetesExecutor"),
    ("database.sql_alchemy_conn", "postgresql://x", "Cloud SQL"),
    ("database.sql_alchemy_conn_cmd", "cat /x", "Cloud SQL"),
    ("secrets.backend", "x", "airflow-gke:secretsBackend"),
    ("api.base_url", "https://x", "airflow-gke:baseUrl"),
    ("dag_processor.dag_bundle_config_list", "[]", "airflow-gke:dagSource"),
])
def test_a_setting_the_program_owns_is_refused_with_the_key_to_use(key, value, expected):
    problem = one_problem(f'airflowConfig["{key}"]', airflowConfig=json.dumps({key: value}))
    assert expected in problem and "does not set itself" in problem
    assert f"Fix: pulumi config rm --path 'airflow-gke:airflowConfig[\"{key}\"]'" in problem


def test_an_unknown_setting_is_refused_with_the_nearest_known_one():
    problem = one_problem("airflowConfig.core.paralelism", airflowConfig=json.dumps({"core": {"paralelism": 8}}))
    assert "did you mean core.parallelism?" in problem and "Airflow 3.3.2" in problem
    assert "pulumi config set --path airflow-gke:airflowConfig.core.parallelism" in problem
    moved = one_problem('airflowConfig["scheduler.parsing_processes"]',
                        airflowConfig=json.dumps({"scheduler.parsing_processes": 2}))
    assert "did you mean dag_processor.parsing_processes?" in moved


def test_a_value_of_the_wrong_type_is_refused():
    problem = one_problem("airflowConfig.core.parallelism", airflowConfig=json.dumps({"core": {"parallelism": "lots"}}))
    assert "a whole number" in problem
    assert owner_of("core.parallelism") is None
