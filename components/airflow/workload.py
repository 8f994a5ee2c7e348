"""`AirflowWorkload`: declares the manifests the builders of this package return, on any Kubernetes provider."""

import hashlib
import re
from typing import NotRequired, Optional, TypedDict
from urllib.parse import quote

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from ..common import child_options, type_token
from . import access, scraping, task_pod_accounts
from .config_map import config_map
from .dag_processor import dag_processor_deployment
from .front_door import OBJECTS as FRONT_DOOR_OBJECTS
from .front_door import FrontDoorNames, front_door_objects
from .fernet import KEY_BYTES, fernet_key_value, fernet_keys
from .deployment import deployment
from .jobs import admin_checksum, db_cleanup_cronjob, migration_job
from .pod_cleanup import pod_cleanup_cronjob
from .workload_args import AirflowSettingsArgs, settings_from_args
from .pod import git_bundle, iap_sign_in
from .workload_spec import (ADMIN_PASSWORD_KEY, AIRFLOW_KSA, GIT_KNOWN_HOSTS_PATH, GIT_SECRET_NAME, GIT_SSH_KEY_PATH,
                            SECRET_KEYS, SECRET_NAME, UI_SERVICE_NAME, WORKER_KSA, WorkloadSpec, execution_api_url,
                            metadata)

# Which top-level manifest fields each kind carries, and its Pulumi class.
KINDS = {
    "Namespace": (k8s.core.v1.Namespace, ("metadata",)),
    "ServiceAccount": (k8s.core.v1.ServiceAccount, ("metadata", "automountServiceAccountToken")),
    "ConfigMap": (k8s.core.v1.ConfigMap, ("metadata", "data")),
    "Service": (k8s.core.v1.Service, ("metadata", "spec")),
    "Role": (k8s.rbac.v1.Role, ("metadata", "rules")),
    "RoleBinding": (k8s.rbac.v1.RoleBinding, ("metadata", "roleRef", "subjects")),
    "NetworkPolicy": (k8s.networking.v1.NetworkPolicy, ("metadata", "spec")),
    "PodDisruptionBudget": (k8s.policy.v1.PodDisruptionBudget, ("metadata", "spec")),
    "Deployment": (k8s.apps.v1.Deployment, ("metadata", "spec")),
    "Job": (k8s.batch.v1.Job, ("metadata", "spec")),
    "CronJob": (k8s.batch.v1.CronJob, ("metadata", "spec")),
    # Cluster-scoped (task_pod_accounts.py): what the scheduler's task pods may run as.
    "ValidatingAdmissionPolicy": (k8s.admissionregistration.v1.ValidatingAdmissionPolicy, ("metadata", "spec")),
    "ValidatingAdmissionPolicyBinding": (k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding,
                                         ("metadata", "spec")),
    # Managed Service for Prometheus's CRD (scraping.py); GKE installs it with managed collection.
    "PodMonitoring": (k8s.apiextensions.CustomResource, ("metadata", "spec")),
}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def sql_alchemy_conn(user: str, password: str, database: str) -> str:
    """Connection to the Cloud SQL Auth Proxy sidecar, which listens on the pod's loopback."""
    return f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:5432/{quote(database, safe='')}"


class FrontDoorNamesArgs(TypedDict):
    """The Google Cloud objects the Gateway refers to by name (outputs of the FrontDoor component)."""
    address_name: pulumi.Input[str]
    """Name of the reserved global address."""
    certificate_map_name: pulumi.Input[str]
    """Name of the Certificate Manager map."""


class AirflowWorkloadArgs(TypedDict):
    settings: AirflowSettingsArgs
    """Airflow settings (image, replicas, DAG repo, Service, resources...); this stack's come validated from
    its config (`settings_args`)."""
    database_connection_name: pulumi.Input[str]
    """Cloud SQL instance connection name PROJECT:REGION:INSTANCE, served by the proxy sidecar."""
    database_name: pulumi.Input[str]
    """Database of the Airflow metadata."""
    database_user: pulumi.Input[str]
    """Database user."""
    database_password: pulumi.Input[str]
    """Database password (a secret)."""
    airflow_service_account: pulumi.Input[str]
    """Google service account e-mail of the Airflow pods (Workload Identity)."""
    worker_service_account: pulumi.Input[str]
    """Google service account e-mail of the task pods (Workload Identity)."""
    logs_bucket_url: pulumi.Input[str]
    """gs://bucket that receives remote task logs."""
    task_service_accounts: NotRequired[dict[str, pulumi.Input[str]]]
    """Kubernetes service account -> Google account e-mail of each extra task identity (Workload Identity)."""
    instance: NotRequired[str]
    """Value of the app.kubernetes.io/instance label (default: the component name)."""
    front_door: NotRequired[FrontDoorNamesArgs]
    """With settings.front_door.ui_host set: the FrontDoor component's Google Cloud objects."""
    protect_fernet_key: NotRequired[bool]
    """Pulumi `protect` on the fernet keys Airflow reads (default False): on wherever the database is
    protected, since the database is unreadable without them."""


class AirflowWorkload(pulumi.ComponentResource):
    """Apache Airflow 3 on a Kubernetes cluster: KubernetesExecutor, the Cloud SQL Auth Proxy, DAGs from git."""
    namespace: str
    """The namespace every object is in."""
    ui_service_name: str
    """The UI's Service (kubectl port-forward svc/NAME)."""
    admin_password: pulumi.Output[str]
    """The admin's password (a secret)."""
    execution_api_url: str
    """Where task pods reach the execution API."""

    def __init__(self, name: str, args: AirflowWorkloadArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("AirflowWorkload"), name, {}, opts)
        settings = settings_from_args(args["settings"])

        # Generated once, kept in Pulumi state: stable across `pulumi up` (every process and every
        # replica signs and verifies with the same JWT secret). The fernet keys: fernet.py.
        read_keys = []
        for key in fernet_keys(name, settings.fernet_key_version, args.get("protect_fernet_key", False)):
            resource = random.RandomId(key.resource_name, byte_length=KEY_BYTES,
                                       opts=child_options(self, opts, protect=key.protect))
            if key.read:
                read_keys.append(resource.b64_url)
        # Rotation is a config change: bumping secretsVersion changes the keepers, so new values.
        keepers = {"version": str(settings.secrets_version)}
        jwt_secret = random.RandomPassword(f"{name}-jwt-secret", length=64, special=False, keepers=keepers,
                                           opts=child_options(self, opts))
        api_secret_key = random.RandomPassword(f"{name}-api-secret-key", length=64, special=False, keepers=keepers,
                                               opts=child_options(self, opts))
        if settings.admin_password is not None:
            admin_password = pulumi.Output.secret(settings.admin_password)
        else:
            admin_password = random.RandomPassword(f"{name}-admin-password", length=24, special=False,
                                                   keepers=keepers, opts=child_options(self, opts)).result

        secret_values = {
            SECRET_KEYS["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]: pulumi.Output.all(
                args["database_user"], args["database_password"], args["database_name"]).apply(
                lambda v: sql_alchemy_conn(*v)),
            SECRET_KEYS["AIRFLOW__CORE__FERNET_KEY"]: pulumi.Output.all(*read_keys).apply(fernet_key_value),
            SECRET_KEYS["AIRFLOW__API_AUTH__JWT_SECRET"]: jwt_secret.result,
            SECRET_KEYS["AIRFLOW__API__SECRET_KEY"]: api_secret_key.result,
            ADMIN_PASSWORD_KEY: admin_password,
        }
        # A digest (not secret) of every credential, so that rotating one rolls the pods.
        secrets_checksum = pulumi.Output.unsecret(pulumi.Output.all(
            *secret_values.values(), *([settings.git_credentials] if settings.git_credentials is not None else [])
        ).apply(lambda values: hashlib.sha256("\0".join(values).encode()).hexdigest()))
        # Names the migration Job (not secret: a digest): a new admin password re-runs the admin step.
        admin_digest = pulumi.Output.unsecret(pulumi.Output.from_input(admin_password).apply(
            lambda password: admin_checksum(settings.admin_username, settings.admin_email, password)))
        task_accounts = dict(args.get("task_service_accounts", {}))
        spec = pulumi.Output.all(
            args["database_connection_name"], args["airflow_service_account"], args["worker_service_account"],
            args["logs_bucket_url"], secrets_checksum, admin_digest, *task_accounts.values(),
        ).apply(lambda values: WorkloadSpec(
            settings=settings, database_connection_name=values[0], airflow_service_account=values[1],
            worker_service_account=values[2], remote_log_folder=f"{values[3].rstrip('/')}/logs",
            instance=args.get("instance", name), secrets_checksum=values[4], admin_checksum=values[5],
            task_service_accounts=tuple(zip(task_accounts, values[6:]))))

        namespace = self._declare(f"{name}-namespace", "Namespace", spec.apply(access.namespace), opts)
        after_namespace = [namespace]
        for ksa in (AIRFLOW_KSA, WORKER_KSA, *task_accounts):
            self._declare(f"{name}-sa-{ksa}", "ServiceAccount",
                          spec.apply(lambda s, k=ksa: next(m for m in access.service_accounts(s)
                                                           if m["metadata"]["name"] == k)), opts, after_namespace)

        secret = k8s.core.v1.Secret(
            f"{name}-secrets", metadata=spec.apply(lambda s: metadata(s, SECRET_NAME, "secrets")),
            type="Opaque", string_data=pulumi.Output.secret(secret_values),
            opts=child_options(self, opts, depends_on=after_namespace))
        workload_inputs = [secret]
        if settings.git_credentials is not None:
            git_data = ({"ssh-key": settings.git_credentials} if settings.git_credentials_kind == "ssh"
                        else {"username": "git", "token": settings.git_credentials})
            if settings.git_ssh_known_hosts:
                git_data["known_hosts"] = settings.git_ssh_known_hosts
            if git_bundle.is_git_bundle(settings) and settings.git_credentials_kind == "token":
                git_data[git_bundle.GIT_CONN_SECRET_KEY] = settings.git_credentials.apply(
                    lambda token: git_bundle.git_connection(settings, GIT_SSH_KEY_PATH,
                                                            GIT_KNOWN_HOSTS_PATH, token=token))
            workload_inputs.append(k8s.core.v1.Secret(
                f"{name}-git-credentials",
                metadata=spec.apply(lambda s: metadata(s, GIT_SECRET_NAME, "git-sync")),
                type="Opaque", string_data=pulumi.Output.secret(git_data),
                opts=child_options(self, opts, depends_on=after_namespace)))

        front_door_inputs = list(after_namespace)
        if iap_sign_in.uses_custom_oauth_client(settings):
            # Read by GKE's Gateway controller (named in the GCPBackendPolicy), not mounted by any pod.
            front_door_inputs.append(k8s.core.v1.Secret(
                f"{name}-iap-oauth-client",
                metadata=spec.apply(lambda s: metadata(s, iap_sign_in.OAUTH_SECRET_NAME, "ui")), type="Opaque",
                string_data=pulumi.Output.secret(settings.iap_client_secret.apply(
                    lambda secret: {iap_sign_in.OAUTH_SECRET_KEY: secret})),
                opts=child_options(self, opts, depends_on=after_namespace)))
        workload_inputs.append(self._declare(f"{name}-config", "ConfigMap", spec.apply(config_map),
                                             opts, after_namespace))
        self._declare(f"{name}-pod-launcher", "Role", spec.apply(access.pod_launcher_role), opts, after_namespace)
        self._declare(f"{name}-pod-launcher", "RoleBinding", spec.apply(access.pod_launcher_binding), opts,
                      after_namespace)
        # Before the scheduler runs (the Deployment waits for the binding): no task pod ever escapes it.
        task_account_policy = self._declare(f"{name}-task-accounts", "ValidatingAdmissionPolicy",
                                            spec.apply(task_pod_accounts.policy), opts)
        scheduler_inputs = [self._declare(f"{name}-task-accounts", "ValidatingAdmissionPolicyBinding",
                                          spec.apply(task_pod_accounts.binding), opts, [task_account_policy])]
        for index, policy_name in enumerate(access.NETWORK_POLICY_NAMES):
            self._declare(f"{name}-netpol-{policy_name}", "NetworkPolicy",
                          spec.apply(lambda s, i=index: access.network_policies(s)[i]), opts, after_namespace)

        migrations = self._declare(f"{name}-migrations", "Job", spec.apply(migration_job), opts,
                                   after_namespace + workload_inputs)
        # Not after the Job: their pods wait for the migrated schema themselves (migrations_wait.py), so the
        # rollout overlaps the migration.
        self._declare(f"{name}-deployment", "Deployment", spec.apply(deployment), opts,
                      after_namespace + workload_inputs + scheduler_inputs)
        if git_bundle.is_git_bundle(settings):
            self._declare(f"{name}-dag-processor", "Deployment", spec.apply(dag_processor_deployment), opts,
                          after_namespace + workload_inputs)
        self._declare(f"{name}-ui", "Service", spec.apply(access.ui_service), opts, after_namespace)
        self._declare(f"{name}-api", "Service", spec.apply(access.api_service), opts, after_namespace)
        self._declare(f"{name}-statsd", "Service", spec.apply(access.statsd_service), opts, after_namespace)
        self._declare(f"{name}-pod-monitoring", "PodMonitoring", spec.apply(scraping.pod_monitoring), opts,
                      after_namespace)
        if settings.front_door.enabled:
            self._declare_front_door(name, spec, args["front_door"], opts, front_door_inputs)
        if settings.metadata_retention_days > 0:
            self._declare(f"{name}-db-cleanup", "CronJob", spec.apply(db_cleanup_cronjob), opts,
                          after_namespace + workload_inputs + [migrations])
        if settings.failed_pod_retention_hours > 0:
            self._declare(f"{name}-pod-cleanup", "CronJob", spec.apply(pod_cleanup_cronjob), opts,
                          after_namespace + workload_inputs)
        if settings.replicas > 1:
            self._declare(f"{name}-pdb", "PodDisruptionBudget", spec.apply(access.pod_disruption_budget), opts,
                          after_namespace)

        self.namespace = settings.namespace
        self.ui_service_name = UI_SERVICE_NAME
        self.execution_api_url = execution_api_url(settings.namespace)
        self.admin_password = pulumi.Output.secret(admin_password)
        self.register_outputs({
            "namespace": self.namespace,
            "ui_service_name": self.ui_service_name,
            "execution_api_url": self.execution_api_url,
            "admin_password": self.admin_password,
        })

    def _declare_front_door(self, name: str, spec: pulumi.Output[WorkloadSpec], names: FrontDoorNamesArgs,
                            opts: Optional[pulumi.ResourceOptions], depends_on: list) -> None:
        """Gateway API and GKE policy objects: custom resources, whose CRDs GKE installs with the Gateway API."""
        objects = pulumi.Output.all(spec, names["address_name"], names["certificate_map_name"]).apply(
            lambda v: front_door_objects(v[0], FrontDoorNames(v[1], v[2])))
        for index, (api_version, kind, object_name) in enumerate(FRONT_DOOR_OBJECTS):
            manifest = objects.apply(lambda o, i=index: o[i])
            k8s.apiextensions.CustomResource(
                f"{name}-{kind.lower()}-{object_name}", api_version=api_version, kind=kind,
                metadata=manifest["metadata"], spec=manifest["spec"],
                opts=child_options(self, opts, depends_on=depends_on))

    def _declare(self, resource_name: str, kind: str, manifest: pulumi.Output[dict],
                 opts: Optional[pulumi.ResourceOptions], depends_on: Optional[list] = None) -> pulumi.CustomResource:
        cls, fields = KINDS[kind]
        # A custom resource's type token is built from these two, so they must be plain strings.
        custom = ({"api_version": scraping.API_VERSION, "kind": kind}
                  if cls is k8s.apiextensions.CustomResource else {})
        return cls(resource_name, **custom, **{_snake(f): manifest[f] for f in fields},
                   opts=child_options(self, opts, depends_on=depends_on or []))
