"""What tasks may reach: project roles of the tasks' Google identity (`workerRoles`), extra task identities a
task selects with pod_override (`taskIdentities`), and connections/variables from Secret Manager
(`secretsBackend`, `secretsPrefix`). docs/task-access.md says who gets what and why."""

from __future__ import annotations

import re
from typing import Optional

from .reader import _parse_list, _Reader

SECRETS_BACKENDS = ("none", "secret-manager")
# Roles a task must never hold: basic roles, roles that administer IAM or let their holder act as another
# account (a task could then grant itself anything, or become the Airflow or node account), and project-wide
# roles that undo the stack's own scoping (every secret past the prefix, the cluster, its nodes, sign-in).
# https://cloud.google.com/iam/docs/roles-overview#basic, https://cloud.google.com/iam/docs/service-account-permissions
REFUSED_ROLES = {
    "roles/owner": "a basic role (thousands of permissions)",
    "roles/editor": "a basic role (thousands of permissions)",
    "roles/viewer": "a basic role (reads every resource of the project)",
    "roles/resourcemanager.projectIamAdmin": "an IAM administrator role",
    "roles/iam.securityAdmin": "an IAM administrator role",
    "roles/iam.roleAdmin": "an IAM administrator role",
    "roles/iam.serviceAccountAdmin": "an IAM administrator role",
    "roles/iam.serviceAccountKeyAdmin": "a role that creates service-account keys",
    "roles/iam.serviceAccountTokenCreator": "a role that acts as other service accounts",
    "roles/iam.serviceAccountUser": "a role that acts as other service accounts",
    "roles/iam.workloadIdentityUser": "a role that acts as other service accounts",
    # Mints ID tokens for any service account: IAP would accept them as the CI caller in uiAccess
    # (https://cloud.google.com/iam/docs/service-account-permissions#id-tokens,
    # https://cloud.google.com/iap/docs/authentication-howto).
    "roles/iam.serviceAccountOpenIdTokenCreator": "a role that acts as other service accounts",
    # Project-wide Secret Manager roles read or overwrite every secret, past the prefix-scoped grant
    # (https://cloud.google.com/secret-manager/docs/access-control).
    "roles/secretmanager.admin": "a role over every secret of the project (grant "
                                 "roles/secretmanager.secretAccessor on the one secret instead)",
    "roles/secretmanager.secretAccessor": "a role that reads every secret of the project (grant it on the one "
                                          "secret instead, or store it under the stack's secretsPrefix)",
    "roles/secretmanager.secretVersionManager": "a role that rewrites every secret of the project",
    "roles/secretmanager.secretVersionAdder": "a role that rewrites every secret of the project",
    # Kubernetes API rights on the cluster: a pod run as any Kubernetes service account is its Google
    # identity too (https://cloud.google.com/kubernetes-engine/docs/how-to/iam#predefined).
    "roles/container.admin": "a role that runs pods as any Kubernetes (and so Google) account of the cluster",
    "roles/container.clusterAdmin": "a role that changes the cluster and its node pools' service account",
    "roles/container.developer": "a role that runs pods as any Kubernetes (and so Google) account of the cluster",
    # SSH into the nodes (instance metadata keys, OS Login admin): every pod's token is on them
    # (https://cloud.google.com/compute/docs/access/iam#predefinedroles).
    "roles/compute.admin": "a role that reaches the cluster's nodes (and every pod's credentials on them)",
    "roles/compute.instanceAdmin": "a role that reaches the cluster's nodes (and every pod's credentials on them)",
    "roles/compute.instanceAdmin.v1": "a role that reaches the cluster's nodes (and every pod's credentials "
                                      "on them)",
    "roles/compute.osAdminLogin": "a role that reaches the cluster's nodes as root",
    # Who may sign in and the metadata database are the stack's own, not a task's to change.
    "roles/iap.admin": "a role that changes who may sign in to Airflow",
    "roles/iap.settingsAdmin": "a role that changes how Airflow's sign-in works",
    "roles/cloudsql.admin": "a role that administers the Airflow metadata database's instance",
    # Builds run as the Cloud Build service account, a wider identity (https://cloud.google.com/build/docs/
    # cloud-build-service-account).
    "roles/cloudbuild.builds.editor": "a role that runs builds as the (wider) Cloud Build service account",
}
_PREDEFINED_ROLE = re.compile(r"^roles/[a-z][a-zA-Z0-9]*\.[a-zA-Z][a-zA-Z0-9_.]*$")
# Custom role ids: letters, digits, '_' and '.', at most 64 (https://cloud.google.com/iam/docs/creating-custom-roles).
_CUSTOM_ROLE = re.compile(r"^projects/([a-z][a-z0-9-]{4,28}[a-z0-9])/roles/[a-zA-Z0-9_.]{3,64}$")
_IDENTITY_NAME = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
_SECRETS_PREFIX = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
# The words the program appends: a prefix holding one could nest another stack's secrets inside its scope.
_SECRET_KINDS = ("connections", "variables")
SECRET_SEP = "-"  # the backend's `sep` between a prefix and the connection id or variable key
ACCOUNT_ID_MAX = 30  # service account ids are 6-30 characters
TASK_ACCOUNT_INFIX = "-task-"
TASK_KSA_PREFIX = "task-"


def task_account_id(name_prefix: str, identity: str) -> str:
    return f"{name_prefix}{TASK_ACCOUNT_INFIX}{identity}"


def task_ksa(identity: str) -> str:
    """The Kubernetes service account a task names in pod_override (`service_account_name`)."""
    return f"{TASK_KSA_PREFIX}{identity}"


def role_problem(role, project: str) -> Optional[str]:
    """Why a role may not be granted to a task identity, or None."""
    if not isinstance(role, str):
        return "a role name string"
    if role in REFUSED_ROLES:
        return f"a role a task may hold ({role} is {REFUSED_ROLES[role]}; grant the narrow roles the task needs)"
    custom = _CUSTOM_ROLE.match(role)
    if custom:
        if custom[1] != project:
            return f"a custom role of this project (projects/{project}/roles/ID): a project's custom roles " \
                   "can be granted only in that project"
        return None
    if not _PREDEFINED_ROLE.match(role):
        return "a predefined role roles/SERVICE.ROLE (e.g. roles/bigquery.dataViewer) or a custom role " \
               f"projects/{project}/roles/ID"
    return None


def _roles(reader: _Reader, path: str, raw, project: str) -> tuple[str, ...]:
    if not isinstance(raw, list):
        reader.fail(path, raw, "a list of role names", fix=reader.path_fix(f"{path}[0]", "roles/bigquery.dataViewer"))
        return ()
    roles = []
    for index, role in enumerate(raw):
        problem = role_problem(role, project)
        if problem:
            reader.fail(f"{path}[{index}]", role, problem, fix=reader.path_fix(f"{path}[{index}]", "roles/bigquery.dataViewer"))
        elif role not in roles:
            roles.append(role)
    return tuple(roles)


def read_worker_roles(reader: _Reader, project: str) -> tuple[str, ...]:
    raw = reader.parsed("workerRoles", [], _parse_list, "a JSON list of role names", "",
                        fix=reader.path_fix("workerRoles[0]", "roles/bigquery.dataViewer"))
    return _roles(reader, "workerRoles", raw, project)


def read_task_identities(reader: _Reader, project: str, name_prefix: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    identities = reader.json_object("taskIdentities")
    longest = ACCOUNT_ID_MAX - len(task_account_id(name_prefix, ""))
    result = []
    for name, roles in sorted(identities.items()):
        path = f"taskIdentities.{name}"
        if not _IDENTITY_NAME.match(name) or len(name) > longest:
            reader.fail(path, roles, f"a name of 1-{longest} lowercase letters, digits or '-' (the account id "
                        f"{task_account_id(name_prefix, '<name>')} is at most {ACCOUNT_ID_MAX} characters)",
                        fix=f"{reader.path_fix(path, verb='rm')} && "
                            f"{reader.path_fix('taskIdentities.reader[0]', 'roles/bigquery.dataViewer')}")
            continue
        result.append((name, _roles(reader, path, roles, project)))
    return tuple(result)


def secret_prefixes(prefix: str) -> tuple[str, str]:
    """The backend's connections_prefix and variables_prefix for a secretsPrefix."""
    connections, variables = (f"{prefix}{SECRET_SEP}{kind}" for kind in _SECRET_KINDS)
    return connections, variables


def secrets_prefix_problem(prefix: str) -> Optional[str]:
    if not _SECRETS_PREFIX.match(prefix):
        return "3-40 lowercase letters, digits or '-', starting with a letter (secret ids start with it)"
    words = prefix.split("-")
    if any(kind in words for kind in _SECRET_KINDS):
        return (f"a prefix without the words {' or '.join(_SECRET_KINDS)}: the program appends them, and a prefix "
                "holding one would let another stack's scope (or this one) include the other's secrets")
    return None


def read_secrets(reader: _Reader, environment: str, name_prefix: str) -> tuple[str, str]:
    """(backend, prefix): Secret Manager on prod unless set; the prefix defaults to the namePrefix."""
    backend = reader.string("secretsBackend", "secret-manager" if environment == "prod" else "none",
                            choices=SECRETS_BACKENDS)
    raw_prefix = reader.raw("secretsPrefix")
    if backend == "none":
        if raw_prefix is not None:
            reader.fail("secretsPrefix", raw_prefix, "unset when airflow-gke:secretsBackend is none",
                        fix=f"pulumi config rm {reader.full_key('secretsPrefix')}")
        return backend, ""
    prefix = name_prefix if raw_prefix is None else raw_prefix
    problem = secrets_prefix_problem(prefix)
    if problem:
        reader.fail("secretsPrefix", prefix, problem, example=name_prefix if raw_prefix is not None else "airflow-team")
    return backend, prefix
