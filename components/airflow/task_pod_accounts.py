"""Which Kubernetes service accounts a task pod may run as, enforced by the API server itself.

The scheduler (KSA `airflow`) creates one pod per task, and a DAG author shapes that pod with
`executor_config={"pod_override": ...}`. Without a check, `serviceAccountName: airflow` would run the task
as the Airflow Google account (Secret Manager, the database) with a token that creates pods. A
ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1, GA in Kubernetes 1.30:
https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/) refuses, for pods the
scheduler's identity creates in this namespace, any account but the worker's and the task identities'
(airflow-gke:taskIdentities), and a worker pod that would mount a Kubernetes API token. The executor fails
the task on the API server's refusal. docs/task-access.md tells the DAG author.

Both objects are cluster-scoped, so their name carries the namespace: two workloads in one cluster (each in
its own namespace) never declare the same object.
"""

from __future__ import annotations

from .workload_spec import AIRFLOW_KSA, WORKER_KSA, WorkloadSpec, labels

API_VERSION = "admissionregistration.k8s.io/v1"
DOC = "docs/task-access.md"


def policy_name(spec: WorkloadSpec) -> str:
    return f"airflow-gke-task-accounts-{spec.settings.namespace}"


def allowed_accounts(spec: WorkloadSpec) -> tuple[str, ...]:
    """The worker's account, then each task identity's (`task-<name>`)."""
    return (WORKER_KSA, *(ksa for ksa, _ in spec.task_service_accounts))


def scheduler_username(spec: WorkloadSpec) -> str:
    """The user a service account's token authenticates as:
    https://kubernetes.io/docs/reference/access-authn-authz/authentication/#service-account-tokens"""
    return f"system:serviceaccount:{spec.settings.namespace}:{AIRFLOW_KSA}"


def _cel_list(values: tuple[str, ...]) -> str:
    # Kubernetes names are DNS labels: no quote or backslash to escape.
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def _metadata(spec: WorkloadSpec) -> dict:
    return {"name": policy_name(spec), "labels": labels(spec, "admission")}


def policy(spec: WorkloadSpec) -> dict:
    allowed = allowed_accounts(spec)
    namespace = spec.settings.namespace
    listed = ", ".join(allowed)
    return {
        "apiVersion": API_VERSION, "kind": "ValidatingAdmissionPolicy", "metadata": _metadata(spec),
        "spec": {
            # An expression that errors refuses the pod (never lets it through).
            "failurePolicy": "Fail",
            # A pod's serviceAccountName cannot be updated (only a few fields can, such as container images:
            # https://kubernetes.io/docs/concepts/workloads/pods/#pod-update-and-replacement), so CREATE is enough.
            "matchConstraints": {
                "resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                                   "resources": ["pods"]}],
                # The API server labels every namespace with its name:
                # https://kubernetes.io/docs/reference/labels-annotations-taints/#kubernetes-io-metadata-name
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            },
            # Only what the scheduler creates: the ReplicaSet and Job controllers create the Airflow pods
            # themselves (as `airflow`) under their own identities, and are not matched.
            "matchConditions": [{"name": "created-by-the-scheduler",
                                 "expression": f"request.userInfo.username == '{scheduler_username(spec)}'"}],
            # The ServiceAccount admission plugin fills an absent name with `default` before validation
            # (https://kubernetes.io/docs/reference/access-authn-authz/admission-controllers/#serviceaccount);
            # should it not have, the pod would still run as `default`: absent is `default`, and refused.
            "variables": [{"name": "serviceAccount",
                           "expression": "has(object.spec.serviceAccountName) ? object.spec.serviceAccountName "
                                         ": 'default'"}],
            "validations": [
                {"expression": f"variables.serviceAccount in {_cel_list(allowed)}",
                 "reason": "Forbidden",
                 "message": f"a task pod in namespace {namespace} may run only as one of the Kubernetes service "
                            f"accounts {listed} (airflow-gke:taskIdentities; see {DOC})",
                 "messageExpression": f"'task pod service account ' + variables.serviceAccount + ' is not allowed "
                                      f"in namespace {namespace}: pick one of {listed} in pod_override "
                                      f"(airflow-gke:taskIdentities declares more; see {DOC})'"},
                # Tasks talk to the execution API, not to Kubernetes: the shared worker account never gets a
                # token (as in the pod template), stated on the pod so it holds whatever the account's own
                # setting becomes. A task identity may mount one: the documented way for one task to use
                # Kubernetes with a Role the operator binds to its account (docs/operations.md).
                {"expression": f"variables.serviceAccount != '{WORKER_KSA}' || "
                               "(has(object.spec.automountServiceAccountToken) && "
                               "object.spec.automountServiceAccountToken == false)",
                 "reason": "Forbidden",
                 "message": f"a task pod running as {WORKER_KSA} must set automountServiceAccountToken: false: the "
                            f"shared worker account gets no Kubernetes API token (a task that needs one runs as "
                            f"its own task identity; see {DOC})"},
            ],
        },
    }


def binding(spec: WorkloadSpec) -> dict:
    return {"apiVersion": API_VERSION, "kind": "ValidatingAdmissionPolicyBinding", "metadata": _metadata(spec),
            "spec": {"policyName": policy_name(spec), "validationActions": ["Deny"]}}
