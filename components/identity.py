"""Google service accounts with least privilege, bound to Kubernetes service accounts by
Workload Identity. No service-account keys are created anywhere in this project.

`Identity` creates the accounts and their roles; `WorkloadIdentityBindings` binds them to Kubernetes
service accounts once the cluster exists (the pool PROJECT.svc.id.goog is created with the first
cluster that enables Workload Identity: binding earlier fails with "Identity Pool does not exist",
terraform-google-modules/terraform-google-kubernetes-engine#916)."""

from __future__ import annotations

from typing import Mapping, NotRequired, Optional, Sequence, TypedDict

import pulumi
import pulumi_gcp as gcp

from .common import child_options, type_token
from .config.task_access import SECRET_SEP, secret_prefixes

# What GKE nodes need to write logs/metrics; replaces the over-privileged default compute SA.
NODE_ROLES = (
    "roles/container.defaultNodeServiceAccount",
    "roles/serviceusage.serviceUsageConsumer",  # image streaming with a custom node SA
)
AIRFLOW_PROJECT_ROLES = ("roles/cloudsql.client",)
# Airflow's GCS task handler reads, lists, writes and overwrites log objects; overwriting an object
# needs storage.objects.delete, so objectCreator + objectViewer is not enough. objectUser has exactly
# the object verbs and, unlike objectAdmin, no object IAM (get/setIamPolicy):
# https://cloud.google.com/storage/docs/access-control/iam-roles
LOGS_BUCKET_ROLE = "roles/storage.objectUser"
# Reads secret payloads (secretmanager.versions.access) and nothing else:
# https://cloud.google.com/secret-manager/docs/access-control
SECRET_ACCESSOR_ROLE = "roles/secretmanager.secretAccessor"

def secret_scope_expression(project_number: str, prefix: str) -> str:
    """IAM condition limiting a Secret Manager grant to the secrets named with the prefixes. Secret Manager
    names resources by project NUMBER (`projects/NUMBER/secrets/ID`, versions `.../versions/V`), so an id
    prefix is a prefix of the resource name: https://cloud.google.com/secret-manager/docs/access-control
    (IAM conditions), https://cloud.google.com/iam/docs/conditions-resource-attributes#resource-name. The
    separator is part of each prefix: `p-connections-` does not reach `p-connections2-x`."""
    return " || ".join(f"resource.name.startsWith('projects/{project_number}/secrets/{kind_prefix}{SECRET_SEP}')"
                       for kind_prefix in secret_prefixes(prefix))


def role_resource_name(role: str) -> str:
    """A resource-name-safe form of a role: bigquery-dataViewer, custom-myRole for projects/P/roles/myRole."""
    if role.startswith("projects/"):
        return "custom-" + role.rsplit("/", 1)[1].replace(".", "-").replace("_", "-")
    return role.split("/")[1].replace(".", "-")


def workload_identity_member(workload_pool: str, namespace: str, kubernetes_service_account: str) -> str:
    """The IAM member that stands for one Kubernetes service account of the cluster's workload pool."""
    return f"serviceAccount:{workload_pool}[{namespace}/{kubernetes_service_account}]"


class IdentityArgs(TypedDict):
    project: pulumi.Input[str]
    """GCP project id."""
    logs_bucket: pulumi.Input[str]
    """Bucket the Airflow, worker and task accounts may write task logs to."""
    worker_roles: NotRequired[Sequence[str]]
    """Project roles of the worker account (task pods), validated by config/task_access.py."""
    task_identities: NotRequired[Mapping[str, Sequence[str]]]
    """Extra task identities, name -> project roles: one account each, `<name>-task-<identity>`."""
    secrets_prefix: NotRequired[str]
    """When set, the Airflow account may read the secrets `<prefix>-connections-*` and `<prefix>-variables-*`
    (Airflow's secrets backend) and no other secret."""


class Identity(pulumi.ComponentResource):
    node_service_account_email: pulumi.Output[str]
    """The node account's e-mail, resolved only once its project roles are granted: nodes (pools,
    Autopilot defaults) that take it wait for the roles they need to register and pull images."""
    airflow_service_account_email: pulumi.Output[str]
    worker_service_account_email: pulumi.Output[str]
    airflow_service_account_name: pulumi.Output[str]
    worker_service_account_name: pulumi.Output[str]
    task_service_account_emails: dict[str, pulumi.Output[str]]
    task_service_account_names: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: IdentityArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("Identity"), name, {}, opts)
        project = args["project"]

        def account(suffix: str, description: str) -> gcp.serviceaccount.Account:
            return gcp.serviceaccount.Account(
                f"{name}-{suffix}", project=project, account_id=f"{name}-{suffix}"[:30],
                display_name=description, opts=child_options(self, opts))

        def member_of(sa: gcp.serviceaccount.Account) -> pulumi.Output[str]:
            return sa.email.apply(lambda email: f"serviceAccount:{email}")

        nodes = account("nodes", "GKE nodes (least privilege)")
        airflow = account("airflow", "Airflow scheduler, API server and DAG processor")
        worker = account("worker", "Airflow KubernetesExecutor task pods")

        node_grants = [
            gcp.projects.IAMMember(f"{name}-nodes-{role.split('/')[1].replace('.', '-')}", project=project,
                                   role=role, member=member_of(nodes), opts=child_options(self, opts))
            for role in NODE_ROLES]
        def grant(suffix: str, sa: gcp.serviceaccount.Account, role: str,
                  condition: Optional[gcp.projects.IAMMemberConditionArgs] = None) -> None:
            gcp.projects.IAMMember(f"{name}-{suffix}-{role_resource_name(role)}", project=project, role=role,
                                   member=member_of(sa), condition=condition, opts=child_options(self, opts))

        for role in AIRFLOW_PROJECT_ROLES:
            grant("airflow", airflow, role)
        for role in args.get("worker_roles", ()):
            grant("worker", worker, role)
        # Account id `<namePrefix>-task-<identity>` (config/task_access.py task_account_id checks its length).
        tasks = {identity: account(f"task-{identity}", f"Airflow tasks running as task-{identity}")
                 for identity in args.get("task_identities", {})}
        for identity, roles in args.get("task_identities", {}).items():
            for role in roles:
                grant(f"task-{identity}", tasks[identity], role)
        for suffix, sa in (("airflow", airflow), ("worker", worker), *((f"task-{i}", sa) for i, sa in tasks.items())):
            gcp.storage.BucketIAMMember(f"{name}-{suffix}-logs-writer", bucket=args["logs_bucket"],
                                        role=LOGS_BUCKET_ROLE, member=member_of(sa),
                                        opts=child_options(self, opts))
        if args.get("secrets_prefix"):
            # Only the Airflow account: task pods ask the execution API for connections and variables, and the
            # api-server resolves them through the backend (docs/task-access.md).
            number = gcp.organizations.get_project_output(project_id=project).number
            grant("airflow", airflow, SECRET_ACCESSOR_ROLE, gcp.projects.IAMMemberConditionArgs(
                title="airflow-secrets-only", description="Airflow's connections and variables prefixes",
                expression=number.apply(lambda n: secret_scope_expression(str(n), args["secrets_prefix"]))))

        # Nodes created before their account holds these roles fail to register or to pull images.
        self.node_service_account_email = pulumi.Output.all(nodes.email, *(g.id for g in node_grants)) \
            .apply(lambda values: values[0])
        self.airflow_service_account_email = airflow.email
        self.worker_service_account_email = worker.email
        self.airflow_service_account_name = airflow.name
        self.worker_service_account_name = worker.name
        self.task_service_account_emails = {identity: sa.email for identity, sa in tasks.items()}
        self.task_service_account_names = {identity: sa.name for identity, sa in tasks.items()}
        self.register_outputs({
            "node_service_account_email": self.node_service_account_email,
            "airflow_service_account_email": airflow.email,
            "worker_service_account_email": worker.email,
        })


class WorkloadIdentityBindingsArgs(TypedDict):
    workload_pool: pulumi.Input[str]
    """The cluster's pool, from its output `workload_identity_config.workload_pool`, so the bindings
    wait for the cluster that creates the pool."""
    namespace: pulumi.Input[str]
    """Kubernetes namespace of the service accounts."""
    bindings: Mapping[str, pulumi.Input[str]]
    """Kubernetes service account name -> Google service account (`projects/P/serviceAccounts/EMAIL`)."""
    aliases: NotRequired[Mapping[str, Sequence[pulumi.Alias]]]
    """Kubernetes service account name -> earlier names/parents of its binding in existing stacks. Without
    them a moved binding is created anew and then the old one deleted, and deleting it removes the very
    member the new one granted."""


class WorkloadIdentityBindings(pulumi.ComponentResource):
    """Lets each Kubernetes service account NAMESPACE/KSA act as its Google service account."""

    def __init__(self, name: str, args: WorkloadIdentityBindingsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("WorkloadIdentityBindings"), name, {}, opts)
        for kubernetes_service_account, google_service_account in args["bindings"].items():
            member = pulumi.Output.all(args["workload_pool"], args["namespace"]).apply(
                lambda parts, ksa=kubernetes_service_account: workload_identity_member(parts[0], parts[1], ksa))
            aliases = args.get("aliases", {}).get(kubernetes_service_account)
            gcp.serviceaccount.IAMMember(
                f"{name}-{kubernetes_service_account}", service_account_id=google_service_account,
                role="roles/iam.workloadIdentityUser", member=member,
                opts=child_options(self, opts, aliases=list(aliases) if aliases else None))
        self.register_outputs({})
