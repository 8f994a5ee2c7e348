"""Keyless CI identity: a Workload Identity Federation pool and GitHub OIDC provider that only one
repository can use, and a deployer service account with the roles `pulumi up` of this program needs.

GitHub Actions exchanges its OIDC token (https://token.actions.githubusercontent.com) for a short-lived
Google token through google-github-actions/auth; no service-account key exists anywhere.
https://cloud.google.com/iam/docs/workload-identity-federation-with-deployment-pipelines
"""

from __future__ import annotations

import re
from typing import Mapping, NotRequired, Optional, TypedDict

import pulumi
import pulumi_gcp as gcp

from .common import child_options, type_token
from .identity import AIRFLOW_PROJECT_ROLES, NODE_ROLES

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
_REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_POOL_ID = re.compile(r"^[a-z0-9-]{4,32}$")

# Every project role the deployer holds, and why `pulumi up` of __main__.py needs it. Nothing else.
DEPLOYER_ROLES: Mapping[str, str] = {
    "roles/serviceusage.serviceUsageAdmin": "enable the Google APIs the stack uses (components/services.py)",
    "roles/compute.networkAdmin": "VPC, subnet, Cloud Router, Cloud NAT and the private-services address range",
    "roles/servicenetworking.networksAdmin": "the Private Services Access peering that gives Cloud SQL a private IP",
    "roles/container.admin": "GKE cluster and node pools, and the Kubernetes objects (RBAC included) applied in it",
    "roles/cloudsql.admin": "Cloud SQL instance, database and user",
    "roles/artifactregistry.admin": "the image repository, its cleanup policy and reader bindings; image pushes",
    "roles/storage.admin": "the task-logs bucket and its IAM binding",
    "roles/iam.serviceAccountAdmin": "the node, Airflow and worker service accounts and their Workload Identity bindings",
    "roles/iam.serviceAccountUser": "create node pools that run as the node service account",
    "roles/resourcemanager.projectIamAdmin": "grant the node and Airflow accounts their project roles; an IAM "
                                             "condition limits it to exactly those roles (GRANTABLE_ROLES)",
}
# The only roles the deployer may grant at project level: what components/identity.py grants.
GRANTABLE_ROLES = tuple(sorted({*NODE_ROLES, *AIRFLOW_PROJECT_ROLES}))
STATE_BUCKET_ROLE = "roles/storage.objectAdmin"


def attribute_condition(repository: str, repository_id: Optional[str] = None) -> str:
    """CEL that rejects every token not minted for this repository (and, if given, its immutable id)."""
    condition = f"assertion.repository == '{repository}'"
    if repository_id:
        # A deleted and re-created repository of the same name gets a new id.
        condition += f" && assertion.repository_id == '{repository_id}'"
    return condition


def repository_principal_set(project_number: str, pool_id: str, repository: str) -> str:
    return (f"principalSet://iam.googleapis.com/projects/{project_number}/locations/global/"
            f"workloadIdentityPools/{pool_id}/attribute.repository/{repository}")


def provider_resource_name(project_number: str, pool_id: str, provider_id: str) -> str:
    """What google-github-actions/auth takes as `workload_identity_provider`."""
    return f"projects/{project_number}/locations/global/workloadIdentityPools/{pool_id}/providers/{provider_id}"


def grant_limit_expression(roles: tuple[str, ...]) -> str:
    """IAM condition letting a holder of projectIamAdmin grant or revoke only these roles.
    https://cloud.google.com/iam/docs/setting-limits-on-granting-roles"""
    listed = ", ".join(f"'{role}'" for role in roles)
    return f"api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly([{listed}])"


def check_args(repository: str, pool_id: str) -> list[str]:
    problems = []
    if not _REPOSITORY.match(repository or ""):
        problems.append(f"repository = {repository!r} is not OWNER/REPO. Fix: pulumi config set repository my-org/airflow-gke")
    if not _POOL_ID.match(pool_id):
        problems.append(f"poolId = {pool_id!r} must be 4-32 lowercase letters, digits or '-'. Fix: pulumi config set poolId github")
    return problems


class CiIdentityArgs(TypedDict):
    project: pulumi.Input[str]
    """GCP project id the stacks deploy into."""
    project_number: pulumi.Input[str]
    """Its number (principal sets and the provider's resource name use the number)."""
    repository: str
    """The one GitHub repository allowed in, OWNER/REPO."""
    repository_id: NotRequired[Optional[str]]
    """Its numeric id (github.repository_id); pins the trust to this repository even after a rename."""
    pool_id: NotRequired[str]
    """Workload identity pool id (default `github`)."""
    provider_id: NotRequired[str]
    """OIDC provider id (default `github-actions`)."""
    deployer_account_id: NotRequired[str]
    """Account id of the deployer service account (default `pulumi-deployer`)."""
    state_bucket: NotRequired[Optional[pulumi.Input[str]]]
    """GCS bucket of the Pulumi state (`pulumi login gs://...`); the deployer may read and write its objects."""


class CiIdentity(pulumi.ComponentResource):
    deployer_email: pulumi.Output[str]
    workload_identity_provider: pulumi.Output[str]
    principal_set: pulumi.Output[str]

    def __init__(self, name: str, args: CiIdentityArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("CiIdentity"), name, {}, opts)
        project, repository = args["project"], args["repository"]
        pool_id = args.get("pool_id", "github")
        provider_id = args.get("provider_id", "github-actions")
        child = lambda: child_options(self, opts)  # noqa: E731

        pool = gcp.iam.WorkloadIdentityPool(
            f"{name}-pool", project=project, workload_identity_pool_id=pool_id,
            display_name="GitHub Actions", description=f"CI of {repository}", opts=child())
        gcp.iam.WorkloadIdentityPoolProvider(
            f"{name}-provider", project=project, workload_identity_pool_id=pool.workload_identity_pool_id,
            workload_identity_pool_provider_id=provider_id, display_name="GitHub OIDC",
            attribute_mapping={
                "google.subject": "assertion.sub",
                "attribute.repository": "assertion.repository",
                "attribute.repository_id": "assertion.repository_id",
                "attribute.ref": "assertion.ref",
            },
            attribute_condition=attribute_condition(repository, args.get("repository_id")),
            oidc=gcp.iam.WorkloadIdentityPoolProviderOidcArgs(issuer_uri=GITHUB_ISSUER),
            opts=child())

        deployer = gcp.serviceaccount.Account(
            f"{name}-deployer", project=project, account_id=args.get("deployer_account_id", "pulumi-deployer"),
            display_name=f"pulumi up from {repository}"[:100], opts=child())
        member = deployer.email.apply(lambda email: f"serviceAccount:{email}")
        for role in DEPLOYER_ROLES:
            condition = None
            if role == "roles/resourcemanager.projectIamAdmin":
                condition = gcp.projects.IAMMemberConditionArgs(
                    title="only-airflow-gke-roles", description="May grant only the roles airflow-gke grants",
                    expression=grant_limit_expression(GRANTABLE_ROLES))
            gcp.projects.IAMMember(f"{name}-{role.split('/')[1].replace('.', '-')}", project=project, role=role,
                                   member=member, condition=condition, opts=child())
        if args.get("state_bucket"):
            gcp.storage.BucketIAMMember(f"{name}-state", bucket=args["state_bucket"], role=STATE_BUCKET_ROLE,
                                        member=member, opts=child())

        principal_set = pulumi.Output.from_input(args["project_number"]).apply(
            lambda number: repository_principal_set(str(number), pool_id, repository))
        gcp.serviceaccount.IAMMember(f"{name}-github-wif", service_account_id=deployer.name,
                                     role="roles/iam.workloadIdentityUser", member=principal_set, opts=child())

        self.deployer_email = deployer.email
        self.principal_set = principal_set
        self.workload_identity_provider = pulumi.Output.from_input(args["project_number"]).apply(
            lambda number: provider_resource_name(str(number), pool_id, provider_id))
        self.register_outputs({"deployer_email": self.deployer_email, "principal_set": self.principal_set,
                               "workload_identity_provider": self.workload_identity_provider})
