"""Keyless CI identity: a Workload Identity Federation pool and GitHub OIDC provider that only one
repository can use, a read-only preview account, and one deployer per GitHub environment.

GitHub Actions exchanges its OIDC token (https://token.actions.githubusercontent.com) for a short-lived
Google token through google-github-actions/auth; no service-account key exists anywhere.
https://cloud.google.com/iam/docs/workload-identity-federation-with-deployment-pipelines

Who gets what (the mapping and the bindings below; tests/unit/test_ci_identity.py evaluates them with a
CEL interpreter on sample GitHub tokens):
- a `pull_request` job -> the preview account (read-only: it cannot deploy);
- a job that declares `environment: NAME`, runs on `refs/heads/main` from a push or workflow_dispatch
  -> NAME's deployer; the same job on any other ref, or any job without an environment -> no deployer.
GitHub's claims: https://docs.github.com/en/actions/deployment/security-hardening-your-deployments/about-security-hardening-with-openid-connect
(`environment` is present only when the job references an environment; `ref` is the ref the run is on).
"""

from __future__ import annotations

import re
from typing import Mapping, NotRequired, Optional, Sequence, TypedDict

import pulumi
import pulumi_gcp as gcp
import pulumi_random as random

from .common import child_options, type_token
from .config.task_access import role_problem
from .identity import AIRFLOW_PROJECT_ROLES, NODE_ROLES, SECRET_ACCESSOR_ROLE
from .schedule import INVOKER_ROLE, pause_role_id
from .network import SERVICE_NETWORKING_AGENT_ROLE

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
MAIN_REF = "refs/heads/main"
# A deployer is for deployments: `pull_request_target` and other events run on main too but are not one.
DEPLOY_EVENTS = ("push", "workflow_dispatch")
NO_DEPLOYER = "-"  # what attribute.deploy_environment holds for every other token (no environment may be named so)
PREVIEW_EVENT = "pull_request"
PREVIEW_ACCOUNT_ID = "pulumi-preview"
DEPLOYER_ACCOUNT_PREFIX = "pulumi-deploy-"
DEFAULT_ENVIRONMENTS = ("dev", "prod")
# What airflow-gke names its accounts and buckets: `{namePrefix}-nodes`, `{namePrefix}-logs-bucket-…`
# (components/identity.py, components/logs.py); the stacks' default namePrefix `airflow`, e2e.yml's `e2e-N`.
DEFAULT_RESOURCE_PREFIXES = ("airflow-", "e2e-")
# The pool id gets "-" and this many hex digits, so a re-run after a destroy never asks for the id of a
# soft-deleted pool (30 days; re-creating it returns 409: hashicorp/terraform-provider-google#14191,
# pulumi/pulumi-gcp#1149, https://cloud.google.com/iam/docs/manage-workload-identity-pools-providers#delete-pool).
POOL_SUFFIX_BYTES = 3
POOL_BASE_MAX = 32 - 1 - 2 * POOL_SUFFIX_BYTES
_REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
# Pool ids are 4-32 of [a-z0-9-] and may not start with "gcp-"; the suffix takes the rest.
_POOL_ID = re.compile(r"^(?!gcp-)[a-z][a-z0-9-]{3,%d}$" % (POOL_BASE_MAX - 1))
# The environment is part of the deployer's account id (6-30 characters, RFC 1035).
_ENVIRONMENT = re.compile(r"^[a-z][a-z0-9]{0,15}$")
_RESOURCE_PREFIX = re.compile(r"^[a-z][a-z0-9-]*-$")

# Every project role the deployer holds, and why `pulumi up` of __main__.py needs it. Nothing else;
# roles named in DEPLOYER_CONDITIONS hold only on what their condition admits.
DEPLOYER_ROLES: Mapping[str, str] = {
    "roles/serviceusage.serviceUsageAdmin": "enable the Google APIs the stack uses (components/services.py) and "
                                            "create the Service Networking service agent",
    "roles/compute.networkAdmin": "VPC, subnet, Cloud Router, Cloud NAT and the private-services address range",
    "roles/servicenetworking.networksAdmin": "the Private Services Access peering that gives Cloud SQL a private IP",
    "roles/container.admin": "GKE cluster and node pools, and the Kubernetes objects (RBAC included) applied in it",
    "roles/cloudsql.admin": "Cloud SQL instance, database and user",
    "roles/artifactregistry.admin": "the image repository, its cleanup policy and reader bindings; image pushes",
    "roles/storage.admin": "the task-logs bucket and its IAM binding; only buckets named with a managed prefix",
    "roles/iam.serviceAccountCreator": "create the node, Airflow and worker accounts (create only: no act-as, "
                                       "no keys, no IAM on any account)",
    "roles/iam.serviceAccountAdmin": "update and delete those accounts and set their Workload Identity bindings; "
                                     "only accounts whose id has a managed prefix",
    "roles/iam.serviceAccountUser": "create node pools that run as the node account; only accounts whose id has "
                                    "a managed prefix",
    "roles/resourcemanager.projectIamAdmin": "grant the node, Airflow and task accounts and the Service Networking "
                                             "agent their project roles; an IAM condition limits it to exactly "
                                             "those roles (GRANTABLE_ROLES and the stacks' task roles)",
    # A stack with activeHours or paused (components/schedule.py):
    "roles/cloudscheduler.admin": "the pause schedule's Cloud Scheduler jobs (create, update, pause, delete)",
    "roles/workflows.editor": "the pause schedule's workflow (create, update, delete; no IAM on workflows)",
    "roles/iam.roleAdmin": "the pause workflow's custom role, exactly the permissions its calls need",
}
# The preview account's project roles: what `pulumi preview` (no --refresh) of __main__.py reads.
PREVIEW_ROLES: Mapping[str, str] = {
    "roles/container.viewer": "the engine versions the program asks for (get_engine_versions) and the cluster and "
                              "Kubernetes objects the Kubernetes provider reads; a forbidden server-side dry run "
                              "falls back to a client-side preview (pulumi/pulumi-kubernetes "
                              "provider/pkg/provider/provider.go at 94977969, Create and Update on preview)",
}
# The roles the deployer may always grant at project level: what components/identity.py and network.py grant
# whatever the stack config (the secret accessor only under its prefix condition, which the stack sets), and the
# pause schedule's invoker role. The roles a stack gives its tasks (workerRoles, taskIdentities) are added per
# bootstrap run: task_roles, with the pause workflow's custom role (projects/P/roles/<namePrefix>_pause) of each
# committed stack that sleeps (pause_roles_of_stacks).
GRANTABLE_ROLES = tuple(sorted({*NODE_ROLES, *AIRFLOW_PROJECT_ROLES, SERVICE_NETWORKING_AGENT_ROLE,
                                SECRET_ACCESSOR_ROLE, INVOKER_ROLE}))
TASK_ROLE_KEYS = ("airflow-gke:workerRoles", "airflow-gke:taskIdentities")
# Object verbs without object IAM (as LOGS_BUCKET_ROLE in components/identity.py).
STATE_BUCKET_ROLE = "roles/storage.objectUser"
# A preview of a file ("diy") backend reads the checkpoint and writes nothing: no lock (diyBackend.Preview
# takes none; Update does), no snapshot and no history on a dry run (pulumi/pulumi
# pkg/backend/diy/backend.go at 1b594989, lines 1197, 1372, 1456).
STATE_BUCKET_PREVIEW_ROLE = "roles/storage.objectViewer"


def attribute_condition(repository: str, repository_id: Optional[str] = None) -> str:
    """CEL that rejects every token not minted for this repository (and, if given, its immutable id)."""
    condition = f"assertion.repository == '{repository}'"
    if repository_id:
        # A deleted and re-created repository of the same name gets a new id.
        condition += f" && assertion.repository_id == '{repository_id}'"
    return condition


def deploy_environment_mapping() -> str:
    """CEL for attribute.deploy_environment: the job's environment when it may deploy it, else NO_DEPLOYER.

    A principal set matches one attribute, so "this environment AND main AND a deploy event" has to be one
    value. `in` tests the claim's presence: jobs without an environment carry no `environment` claim."""
    events = ", ".join(f"'{event}'" for event in DEPLOY_EVENTS)
    return (f"('environment' in assertion && assertion.ref == '{MAIN_REF}' && assertion.event_name in [{events}])"
            f" ? assertion.environment : '{NO_DEPLOYER}'")


def attribute_mapping() -> dict[str, str]:
    return {
        "google.subject": "assertion.sub",
        "attribute.repository": "assertion.repository",
        "attribute.repository_id": "assertion.repository_id",
        "attribute.ref": "assertion.ref",
        "attribute.event_name": "assertion.event_name",
        "attribute.deploy_environment": deploy_environment_mapping(),
    }


def principal_set(project_number: str, pool_id: str, attribute: str, value: str) -> str:
    return (f"principalSet://iam.googleapis.com/projects/{project_number}/locations/global/"
            f"workloadIdentityPools/{pool_id}/attribute.{attribute}/{value}")


def provider_resource_name(project_number: str, pool_id: str, provider_id: str) -> str:
    """What google-github-actions/auth takes as `workload_identity_provider`."""
    return f"projects/{project_number}/locations/global/workloadIdentityPools/{pool_id}/providers/{provider_id}"


def grant_limit_expression(roles: tuple[str, ...]) -> str:
    """IAM condition letting a holder of projectIamAdmin grant or revoke only these roles.
    https://cloud.google.com/iam/docs/setting-limits-on-granting-roles"""
    listed = ", ".join(f"'{role}'" for role in roles)
    return f"api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly([{listed}])"


def bucket_scope_expression(prefixes: Sequence[str]) -> str:
    """Buckets (and their objects) named with one of the prefixes. Cloud Storage names are
    `projects/_/buckets/B` and `projects/_/buckets/B/objects/O`; bucket creation and listing are checked
    on the project, where storage.admin holds nothing that reaches an existing bucket.
    https://cloud.google.com/iam/docs/conditions-resource-attributes#resource-name"""
    named = " || ".join(f"resource.name.startsWith('projects/_/buckets/{prefix}')" for prefix in prefixes)
    return f"resource.type == 'cloudresourcemanager.googleapis.com/Project' || {named}"


def account_scope_expression(prefixes: Sequence[str]) -> str:
    """Service accounts whose id has one of the prefixes. The account part of
    `projects/P/serviceAccounts/ID@P.iam.gserviceaccount.com` is taken with extract(); a name in the
    unique-id form has no '@', extracts to '' and matches nothing (fails closed).
    https://cloud.google.com/iam/docs/conditions-attribute-reference#extract"""
    account = "resource.name.extract('/serviceAccounts/{account}@')"
    return " || ".join(f"{account}.startsWith('{prefix}')" for prefix in prefixes)


def task_roles_of_stacks(stack_configs: Sequence[Mapping]) -> tuple[str, ...]:
    """Every role the stacks' workerRoles and taskIdentities grant, from their `config:` maps (Pulumi.<stack>.yaml)."""
    roles: set[str] = set()
    for config in stack_configs:
        roles.update(r for r in (config.get(TASK_ROLE_KEYS[0]) or []) if isinstance(r, str))
        for identity_roles in (config.get(TASK_ROLE_KEYS[1]) or {}).values():
            roles.update(r for r in (identity_roles or []) if isinstance(r, str))
    return tuple(sorted(roles))


def pause_roles_of_stacks(stack_configs: Sequence[Mapping], project: str) -> tuple[str, ...]:
    """The pause workflow's custom role of every stack in this project that sleeps (activeHours or paused set):
    the deployer must grant it, and its name holds the stack's namePrefix (components/schedule.py)."""
    roles = set()
    for config in stack_configs:
        pauses = bool(config.get("airflow-gke:activeHours")) or str(config.get("airflow-gke:paused", "")).lower() == "true"
        if pauses and config.get("gcp:project", project) == project:
            prefix = config.get("airflow-gke:namePrefix") or "airflow"
            roles.add(f"projects/{project}/roles/{pause_role_id(prefix)}")
    return tuple(sorted(roles))


def check_task_roles(roles: Sequence[str], project: str) -> list[str]:
    """The stacks' own checks (config/task_access.py), so bootstrap never lets a deployer grant a refused role."""
    return [f"task role {role!r} (workerRoles / taskIdentities of a stack, or taskRoles) is not allowed: {problem}. "
            "Fix: change it in the stack (pulumi config set --path ...) and re-run bootstrap"
            for role in roles if (problem := role_problem(role, project))]


def deployer_conditions(prefixes: Sequence[str], task_roles: Sequence[str] = ()) -> dict[str, tuple[str, str]]:
    """role -> (title, CEL) of every conditional deployer role."""
    accounts = account_scope_expression(prefixes)
    grantable = tuple(sorted({*GRANTABLE_ROLES, *task_roles}))
    return {
        "roles/storage.admin": ("managed-buckets-only", bucket_scope_expression(prefixes)),
        "roles/iam.serviceAccountAdmin": ("managed-accounts-only", accounts),
        "roles/iam.serviceAccountUser": ("managed-accounts-only", accounts),
        "roles/resourcemanager.projectIamAdmin": ("only-airflow-gke-roles", grant_limit_expression(grantable)),
    }


def deployer_account_id(environment: str) -> str:
    return f"{DEPLOYER_ACCOUNT_PREFIX}{environment}"


def check_args(repository: str, pool_id: str, environments: Sequence[str] = DEFAULT_ENVIRONMENTS,
               resource_prefixes: Sequence[str] = DEFAULT_RESOURCE_PREFIXES,
               state_bucket: Optional[str] = None) -> list[str]:
    problems = []
    if not _REPOSITORY.match(repository or ""):
        problems.append(f"repository = {repository!r} is not OWNER/REPO. Fix: pulumi config set repository my-org/airflow-gke")
    if not _POOL_ID.match(pool_id):
        problems.append(f"poolId = {pool_id!r} must be 4-{POOL_BASE_MAX} "
                        "lowercase letters, digits or '-', start with a letter and not with 'gcp-' (a random suffix "
                        "is added). Fix: pulumi config set poolId github")
    bad_envs = [env for env in environments if not _ENVIRONMENT.match(str(env))]
    if not environments or bad_envs or len(set(environments)) != len(environments):
        problems.append(f"environments = {list(environments)!r} must be distinct GitHub environment names of 1-16 "
                        "lowercase letters and digits (each gets a deployer account). "
                        "Fix: pulumi config set --path 'environments[0]' dev")
    own_accounts = [PREVIEW_ACCOUNT_ID, *(deployer_account_id(env) for env in environments)]
    for prefix in resource_prefixes:
        if not _RESOURCE_PREFIX.match(str(prefix)):
            problems.append(f"resourcePrefixes: {prefix!r} must be lowercase letters, digits and '-', ending in '-'. "
                            "Fix: pulumi config set --path 'resourcePrefixes[0]' airflow-")
        elif any(account.startswith(prefix) for account in own_accounts):
            problems.append(f"resourcePrefixes: {prefix!r} would let a deployer administer the CI accounts "
                            f"({', '.join(own_accounts)}). Fix: choose a prefix your stacks' namePrefix starts with")
        elif state_bucket and state_bucket.startswith(prefix):
            problems.append(f"stateBucket {state_bucket!r} starts with resourcePrefixes entry {prefix!r}: every "
                            "deployer would hold storage.admin on the Pulumi state. Fix: name the state bucket "
                            "differently (pulumi config set stateBucket my-org-pulumi-state)")
    if not resource_prefixes:
        problems.append("resourcePrefixes is empty: the deployer could create no bucket or account. "
                        "Fix: pulumi config set --path 'resourcePrefixes[0]' airflow-")
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
    """Base of the workload identity pool id (default `github`); a random suffix is added."""
    provider_id: NotRequired[str]
    """OIDC provider id (default `github-actions`)."""
    environments: NotRequired[Sequence[str]]
    """GitHub environments that get a deployer each (default dev, prod)."""
    resource_prefixes: NotRequired[Sequence[str]]
    """Name prefixes of the buckets and service accounts the stacks create (default airflow-, e2e-)."""
    state_bucket: NotRequired[Optional[pulumi.Input[str]]]
    """GCS bucket of the Pulumi state (`pulumi login gs://...`): deployers read and write its objects,
    the preview account reads them."""
    task_roles: NotRequired[Sequence[str]]
    """Roles the stacks give their tasks (workerRoles, taskIdentities): the deployers may grant these too."""


def _role_resource_name(role: str) -> str:
    return role.split("/")[1].replace(".", "-")


class CiIdentity(pulumi.ComponentResource):
    deployer_emails: pulumi.Output[dict]
    preview_email: pulumi.Output[str]
    workload_identity_provider: pulumi.Output[str]
    pool_id: pulumi.Output[str]

    def __init__(self, name: str, args: CiIdentityArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("CiIdentity"), name, {}, opts)
        project, repository = args["project"], args["repository"]
        base_pool_id = args.get("pool_id", "github")
        provider_id = args.get("provider_id", "github-actions")
        environments = list(args.get("environments", DEFAULT_ENVIRONMENTS))
        prefixes = list(args.get("resource_prefixes", DEFAULT_RESOURCE_PREFIXES))
        child = lambda: child_options(self, opts)  # noqa: E731

        # A new stack (a re-run after destroy) draws a new suffix; changing poolId draws one too.
        suffix = random.RandomId(f"{name}-pool-suffix", byte_length=POOL_SUFFIX_BYTES,
                                 keepers={"pool_id": base_pool_id}, opts=child())
        pool = gcp.iam.WorkloadIdentityPool(
            f"{name}-pool", project=project,
            workload_identity_pool_id=suffix.hex.apply(lambda hex_: f"{base_pool_id}-{hex_}"),
            display_name="GitHub Actions", description=f"CI of {repository}"[:256], opts=child())
        gcp.iam.WorkloadIdentityPoolProvider(
            f"{name}-provider", project=project, workload_identity_pool_id=pool.workload_identity_pool_id,
            workload_identity_pool_provider_id=provider_id, display_name="GitHub OIDC",
            attribute_mapping=attribute_mapping(),
            attribute_condition=attribute_condition(repository, args.get("repository_id")),
            oidc=gcp.iam.WorkloadIdentityPoolProviderOidcArgs(issuer_uri=GITHUB_ISSUER),
            opts=child())

        def principals(attribute: str, value: str) -> pulumi.Output[str]:
            return pulumi.Output.all(args["project_number"], pool.workload_identity_pool_id).apply(
                lambda parts: principal_set(str(parts[0]), parts[1], attribute, value))

        def account(resource_name: str, account_id: str, description: str, attribute: str, value: str,
                    roles: Mapping[str, str], conditions: Mapping[str, tuple[str, str]],
                    state_role: str) -> gcp.serviceaccount.Account:
            sa = gcp.serviceaccount.Account(resource_name, project=project, account_id=account_id,
                                            display_name=description[:100], opts=child())
            member = sa.email.apply(lambda email: f"serviceAccount:{email}")
            for role in roles:
                title_expression = conditions.get(role)
                condition = gcp.projects.IAMMemberConditionArgs(
                    title=title_expression[0], expression=title_expression[1]) if title_expression else None
                gcp.projects.IAMMember(f"{resource_name}-{_role_resource_name(role)}", project=project, role=role,
                                       member=member, condition=condition, opts=child())
            if args.get("state_bucket"):
                gcp.storage.BucketIAMMember(f"{resource_name}-state", bucket=args["state_bucket"], role=state_role,
                                            member=member, opts=child())
            gcp.serviceaccount.IAMMember(f"{resource_name}-github-wif", service_account_id=sa.name,
                                         role="roles/iam.workloadIdentityUser",
                                         member=principals(attribute, value), opts=child())
            return sa

        preview = account(f"{name}-preview", PREVIEW_ACCOUNT_ID, f"pulumi preview from {repository}",
                          "event_name", PREVIEW_EVENT, PREVIEW_ROLES, {}, STATE_BUCKET_PREVIEW_ROLE)
        conditions = deployer_conditions(prefixes, args.get("task_roles", ()))
        deployers = {
            env: account(f"{name}-deployer-{env}", deployer_account_id(env),
                         f"pulumi up of {env} from {repository} (main, environment {env})",
                         "deploy_environment", env, DEPLOYER_ROLES, conditions, STATE_BUCKET_ROLE)
            for env in environments}

        self.pool_id = pool.workload_identity_pool_id
        self.preview_email = preview.email
        self.deployer_emails = pulumi.Output.all(**{env: sa.email for env, sa in deployers.items()})
        self.workload_identity_provider = pulumi.Output.all(args["project_number"], pool.workload_identity_pool_id) \
            .apply(lambda parts: provider_resource_name(str(parts[0]), parts[1], provider_id))
        self.register_outputs({"deployer_emails": self.deployer_emails, "preview_email": self.preview_email,
                               "workload_identity_provider": self.workload_identity_provider,
                               "pool_id": self.pool_id})
