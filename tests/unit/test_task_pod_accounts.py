"""Which service accounts a task pod may run as (components/airflow/task_pod_accounts.py, docs/task-access.md).

The ValidatingAdmissionPolicy the program renders is run here the way the API server runs it
(https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/): its matchConstraints,
then its matchConditions, its variables and its validations, each CEL expression evaluated by a real CEL
interpreter (cel-python), against the task pod the program itself renders (the ConfigMap's pod template)
changed the way a DAG author's `pod_override` changes it."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass

import kubernetes_validate
import pytest
import yaml

from components.airflow.workload_spec import AIRFLOW_KSA, WORKER_KSA
from components.config import MIN_KUBERNETES_MINOR, ConfigError
from components.config.task_access import task_ksa
from preview.harness import Capture
from tests.conftest import kubernetes_schema_version, run_stack, stack_settings
from tests.unit.test_ci_identity import cel

POLICY = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
BINDING = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
DOC = "docs/task-access.md"
REPLICASET_CONTROLLER = "system:serviceaccount:kube-system:replicaset-controller"
JOB_CONTROLLER = "system:serviceaccount:kube-system:job-controller"


# --- the API server's side, as documented ----------------------------------------------------------

@dataclass
class Decision:
    matched: bool
    allowed: bool
    messages: list[str]


def admit(policy: dict, pod: dict, username: str, namespace: str, operation: str = "CREATE") -> Decision:
    """One admission request for `pod` through `policy` (a policy with no params)."""
    spec = policy["spec"]
    constraints = spec["matchConstraints"]
    namespace_labels = {"kubernetes.io/metadata.name": namespace}  # the API server sets it on every namespace
    in_rules = any(rule["apiGroups"] == [""] and "v1" in rule["apiVersions"] and "pods" in rule["resources"]
                   and operation in rule["operations"] for rule in constraints["resourceRules"])
    selected = all(namespace_labels.get(k) == v
                   for k, v in constraints.get("namespaceSelector", {}).get("matchLabels", {}).items())
    if not (in_rules and selected):
        return Decision(False, True, [])
    request = {"operation": operation, "namespace": namespace, "userInfo": {"username": username},
               "kind": {"group": "", "version": "v1", "kind": "Pod"},
               "resource": {"group": "", "version": "v1", "resource": "pods"}}
    # cel() raises on an evaluation error: failurePolicy Fail refuses then, and the tests want to see it
    activation = {"object": pod, "oldObject": None, "request": request}
    if not all(cel(c["expression"], activation) for c in spec.get("matchConditions", [])):
        return Decision(False, True, [])
    variables = {}
    for variable in spec.get("variables", []):  # in order: each may read the ones before it
        variables[variable["name"]] = cel(variable["expression"], {**activation, "variables": variables})
    activation["variables"] = variables
    messages = []
    for validation in spec["validations"]:
        if not cel(validation["expression"], activation):
            expression = validation.get("messageExpression")
            messages.append(str(cel(expression, activation)) if expression else validation["message"])
    return Decision(True, not messages, messages)


# --- what the program renders ----------------------------------------------------------------------

def one(capture: Capture, type_: str) -> dict:
    (manifest,) = [m for r, m in capture.kubernetes_objects() if r.type == type_]
    return manifest


def task_pod(capture: Capture) -> dict:
    """The executor's pod: the rendered template with the name and namespace it fills in."""
    (config_map,) = [m for _, m in capture.kubernetes_objects()
                     if m["kind"] == "ConfigMap" and "pod_template_file.yaml" in m.get("data", {})]
    pod = yaml.safe_load(config_map["data"]["pod_template_file.yaml"])
    pod["metadata"]["name"] = "example-dag-query-3kd9s0ab"
    return pod


def overridden(pod: dict, **spec) -> dict:
    """What pod_override does to the template: the fields it sets win, the rest is kept; None removes."""
    pod = copy.deepcopy(pod)
    for key, value in spec.items():
        if value is None:
            pod["spec"].pop(key, None)
        else:
            pod["spec"][key] = value
    return pod


def scheduler(namespace: str) -> str:
    return f"system:serviceaccount:{namespace}:{AIRFLOW_KSA}"


@pytest.fixture(scope="module")
def rendered(dev) -> tuple[dict, dict, str]:
    """dev's policy, task pod and namespace (dev declares the task identity `analytics`)."""
    return one(dev, POLICY), task_pod(dev), stack_settings("dev").airflow.namespace


# --- the decisions -----------------------------------------------------------------------------------

def test_the_scheduler_may_launch_the_rendered_task_pod(rendered):
    policy, pod, namespace = rendered
    assert pod["spec"]["serviceAccountName"] == WORKER_KSA
    decision = admit(policy, pod, scheduler(namespace), namespace)
    assert decision.matched and decision.allowed, decision.messages


def test_a_declared_task_identity_is_allowed(rendered):
    policy, pod, namespace = rendered
    decision = admit(policy, overridden(pod, serviceAccountName=task_ksa("analytics")), scheduler(namespace),
                     namespace)
    assert decision.matched and decision.allowed, decision.messages


@pytest.mark.parametrize("account", [AIRFLOW_KSA, "default", task_ksa("loader"), "airflow-worker-2", None])
def test_any_other_account_is_refused_with_the_allowed_ones_named(rendered, account):
    policy, pod, namespace = rendered
    decision = admit(policy, overridden(pod, serviceAccountName=account), scheduler(namespace), namespace)
    assert decision.matched and not decision.allowed
    (message,) = decision.messages
    assert f"service account {account or 'default'} is not allowed in namespace {namespace}" in message
    assert f"{WORKER_KSA}, {task_ksa('analytics')}" in message and DOC in message


@pytest.mark.parametrize("automount", [True, None])
def test_a_worker_pod_must_not_mount_a_kubernetes_token(rendered, automount):
    policy, pod, namespace = rendered
    decision = admit(policy, overridden(pod, automountServiceAccountToken=automount), scheduler(namespace),
                     namespace)
    assert not decision.allowed
    (message,) = decision.messages
    assert f"running as {WORKER_KSA} must set automountServiceAccountToken: false" in message and DOC in message


def test_a_task_identity_may_mount_its_own_token(rendered):
    """docs/operations.md: a task that must use Kubernetes runs as its own identity, with a Role bound to it."""
    policy, pod, namespace = rendered
    decision = admit(policy, overridden(pod, serviceAccountName=task_ksa("analytics"),
                                        automountServiceAccountToken=True), scheduler(namespace), namespace)
    assert decision.allowed, decision.messages


def test_the_controllers_creating_the_airflow_pods_are_not_matched(dev, rendered):
    """The Deployment's pods run as `airflow` and the ReplicaSet controller creates them; the migration Job's
    pod likewise by the Job controller. The policy must leave both alone."""
    policy, _, namespace = rendered
    deployment = next(m for r, m in dev.kubernetes_objects()
                      if r.type == DEPLOYMENT and m["metadata"]["name"] == "airflow")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "airflow-7d9f-x2"},
           **copy.deepcopy(deployment["spec"]["template"])}
    assert pod["spec"]["serviceAccountName"] == AIRFLOW_KSA
    for controller in (REPLICASET_CONTROLLER, JOB_CONTROLLER):
        assert admit(policy, pod, controller, namespace) == Decision(False, True, [])
    # The same pod from the scheduler is refused: the condition, not the pod, lets the controllers through.
    assert not admit(policy, pod, scheduler(namespace), namespace).allowed


def test_without_its_match_condition_the_policy_would_stop_airflow_itself(dev, rendered):
    """The evaluator is not vacuous: drop the condition and the ReplicaSet's `airflow` pod is refused."""
    policy, _, namespace = rendered
    loose = copy.deepcopy(policy)
    loose["spec"].pop("matchConditions")
    deployment = next(m for r, m in dev.kubernetes_objects() if r.type == DEPLOYMENT)
    pod = {"metadata": {"name": "airflow-7d9f-x2"}, "spec": deployment["spec"]["template"]["spec"]}
    assert not admit(loose, pod, REPLICASET_CONTROLLER, namespace).allowed


def test_only_pod_creation_in_its_own_namespace_is_checked(rendered):
    policy, pod, namespace = rendered
    bad = overridden(pod, serviceAccountName=AIRFLOW_KSA)
    assert not admit(policy, bad, scheduler(namespace), "other-team").matched
    # serviceAccountName cannot change after creation, so an update needs no check.
    assert not admit(policy, bad, scheduler(namespace), namespace, operation="UPDATE").matched
    # Another namespace's scheduler is another user: not this policy's business.
    assert not admit(policy, bad, scheduler("other-team"), namespace).matched


# --- what is rendered --------------------------------------------------------------------------------

TASKS = {"analytics": ["roles/bigquery.jobUser"], "loader": ["roles/storage.objectViewer"]}


@pytest.fixture(scope="module")
def with_tasks() -> Capture:
    return run_stack("dev", namespace="orchestration", taskIdentities=json.dumps(TASKS))


def test_the_configured_task_identities_are_the_allowed_accounts(with_tasks):
    policy = one(with_tasks, POLICY)
    pod = task_pod(with_tasks)
    allowed = [WORKER_KSA, task_ksa("analytics"), task_ksa("loader")]
    assert policy["spec"]["validations"][0]["expression"] == f"variables.serviceAccount in {allowed!r}"
    assert ", ".join(allowed) in policy["spec"]["validations"][0]["message"]
    assert policy["spec"]["matchConditions"][0]["expression"] == \
        "request.userInfo.username == 'system:serviceaccount:orchestration:airflow'"
    for account in allowed:
        assert admit(policy, overridden(pod, serviceAccountName=account), scheduler("orchestration"),
                     "orchestration").allowed
    assert not admit(policy, overridden(pod, serviceAccountName=AIRFLOW_KSA), scheduler("orchestration"),
                     "orchestration").allowed


def test_names_carry_the_namespace_and_the_binding_denies(dev, with_tasks):
    """Cluster-scoped: two workloads in one cluster, each in its own namespace, declare different objects."""
    names = set()
    for capture, namespace in ((dev, "airflow"), (with_tasks, "orchestration")):
        policy, binding = one(capture, POLICY), one(capture, BINDING)
        assert policy["metadata"]["name"] == binding["metadata"]["name"] == f"airflow-gke-task-accounts-{namespace}"
        assert "namespace" not in policy["metadata"] and "namespace" not in binding["metadata"]
        assert binding["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]}
        assert policy["spec"]["failurePolicy"] == "Fail"
        names.add(policy["metadata"]["name"])
    assert len(names) == 2


def test_the_scheduler_starts_only_once_the_binding_exists(dev):
    (policy,) = dev.of_type(POLICY)
    (binding,) = dev.of_type(BINDING)
    deployment = next(r for r in dev.of_type(DEPLOYMENT) if r.inputs["metadata"]["name"] == "airflow")
    assert binding.urn in deployment.dependencies and policy.urn in binding.dependencies


@pytest.mark.parametrize("version", [f"1.{MIN_KUBERNETES_MINOR}.0", None])
def test_policy_and_binding_are_valid_kubernetes_objects(dev, version):
    version = version or kubernetes_schema_version("dev")
    for type_ in (POLICY, BINDING):
        kubernetes_validate.validate(one(dev, type_), version, strict=True)


def test_the_minimum_kubernetes_version_serves_the_v1_api(dev):
    """admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy is GA in 1.30 and absent before; a pin below it
    is refused at preview."""
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(one(dev, POLICY), f"1.{MIN_KUBERNETES_MINOR - 1}.0", strict=True)
    assert MIN_KUBERNETES_MINOR >= 30
    with pytest.raises(ConfigError) as info:
        stack_settings("dev", kubernetesVersion=f"1.{MIN_KUBERNETES_MINOR - 1}")
    (problem,) = info.value.problems
    assert f"1.{MIN_KUBERNETES_MINOR} or newer" in problem and "ValidatingAdmissionPolicy" in problem
