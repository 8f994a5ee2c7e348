"""The Airflow workload's settings as plain, schema-friendly args (TypedDicts of strings, numbers, lists and
maps), and the conversion to and from the validated `AirflowSettings` the builders read.

The component takes these rather than the dataclass so that Pulumi's schema analyzer can describe it and a
program in another language can fill it in (docs/reuse.md); this stack converts its validated settings with
`settings_args`, and the component rebuilds exactly the same `AirflowSettings` with `settings_from_args`.
"""

import dataclasses
from typing import Any, Mapping, NotRequired, Sequence, TypedDict

import pulumi

from ..config import DEFAULT_RESOURCES, AirflowSettings
from ..config.settings import ContainerResources, FrontDoorSettings


class ContainerResourcesArgs(TypedDict):
    """Requests and limits of one container kind."""
    cpu: str
    """CPU request, e.g. `250m`."""
    memory: str
    """Memory request, e.g. `512Mi`."""
    cpu_limit: str
    """CPU limit."""
    memory_limit: str
    """Memory limit."""


class UiHostArgs(TypedDict):
    """The UI's public HTTPS entry (the FrontDoor component provides its Google Cloud objects)."""
    ui_host: NotRequired[str]
    """Public host name of the UI; empty: no public endpoint (the UI is reached with kubectl port-forward)."""
    ui_dns_zone: NotRequired[str]
    """Cloud DNS managed zone of the host; empty: the caller writes the A record."""


class AirflowSettingsArgs(TypedDict):
    """What the Airflow workload runs: image, DAG source, Service, sizes, secrets."""
    namespace: str
    """Kubernetes namespace of every object (created by the component)."""
    image: str
    """Airflow 3 image (apache/airflow or one built FROM it)."""
    replicas: int
    """Replicas of the always-on pod (scheduler, API server, DAG processor, triggerer)."""
    dags_repo: str
    """Git repository of the DAGs (https or ssh URL)."""
    dags_ref: str
    """Branch, tag or commit of the DAG repository."""
    dags_subpath: str
    """Folder of the DAGs inside the repository; "" for its root."""
    git_sync_period_seconds: int
    """How often git-sync pulls the DAG repository."""
    git_sync_max_failures: int
    """Consecutive git-sync failures tolerated before its liveness probe fails."""
    dag_refresh_seconds: int
    """How often the DAG processor lists the DAG folder."""
    service_type: str
    """`ClusterIP` (port-forward or the front door) or `LoadBalancer`."""
    load_balancer_source_ranges: Sequence[str]
    """CIDRs allowed through a `LoadBalancer` Service."""
    allow_public_ui: bool
    """Allow a `LoadBalancer` Service without source ranges."""
    admin_username: str
    """User name of the Airflow admin the migration Job creates."""
    admin_email: str
    """E-mail of that admin."""
    git_credentials_kind: str
    """`none` (public repository), `token` or `ssh`."""
    resources: NotRequired[Mapping[str, ContainerResourcesArgs]]
    """Container kind (scheduler, api-server, worker, ...) -> requests and limits; missing kinds keep the
    measured defaults."""
    metadata_retention_days: NotRequired[int]
    """`airflow db clean` keeps this many days of metadata (weekly CronJob); 0: off. Default 90."""
    failed_pod_retention_hours: NotRequired[int]
    """Failed task pods are kept this long, then deleted by an hourly CronJob; 0: deleted at once. Default 72."""
    fernet_key_version: NotRequired[int]
    """Bump to add a new fernet key in front of the old one (rotation); default 1."""
    secrets_version: NotRequired[int]
    """Bump to regenerate the JWT secret, API secret key and admin password. Default 1."""
    admin_password: NotRequired[pulumi.Input[str]]
    """Admin password (a secret); missing: generated and kept in state."""
    git_credentials: NotRequired[pulumi.Input[str]]
    """Token or SSH private key of the DAG repository (a secret); missing: a public repository."""
    git_ssh_known_hosts: NotRequired[str]
    """known_hosts lines of the SSH repository host; empty: the host key is not checked."""
    db_pool_size: NotRequired[int]
    """SQLAlchemy pool size of every Airflow process."""
    db_pool_max_overflow: NotRequired[int]
    """SQLAlchemy pool overflow of every Airflow process."""
    base_url: NotRequired[str]
    """The UI address users open ([api] base_url); empty: the port-forward address."""
    dag_reparse_seconds: NotRequired[int]
    """Unchanged DAG files are re-parsed this often. Default 120."""
    dag_source: NotRequired[str]
    """`git-sync` (default) or `git-bundle`."""
    git_bundle_refresh_seconds: NotRequired[int]
    """git-bundle mode: how often the DAG processor fetches the repository. Default 30."""
    worker_roles: NotRequired[Sequence[str]]
    """Project roles of the task pods' own Google service account (they are granted elsewhere; named here)."""
    task_identities: NotRequired[Mapping[str, Sequence[str]]]
    """Extra task identities: name -> project roles; a task picks one by its Kubernetes service account."""
    secrets_backend: NotRequired[str]
    """`none` (default) or `secret-manager`: Airflow reads connections and variables from Secret Manager."""
    secrets_prefix: NotRequired[str]
    """Secret ids start with <prefix>-connections- and <prefix>-variables-."""
    secrets_project: NotRequired[str]
    """The project whose Secret Manager holds them."""
    airflow_config: NotRequired[Mapping[str, str]]
    """Airflow settings, `section.key` -> value text (e.g. `core.parallelism` -> `64`)."""
    ui_access: NotRequired[Mapping[str, Sequence[str]]]
    """IAP sign-in: Airflow role (Viewer, User, Op, Admin) -> IAM members; missing or empty: passwords only."""
    iap_client_id: NotRequired[str]
    """IAP's own OAuth 2.0 client id (with iap_client_secret); missing: the Google-managed client."""
    iap_client_secret: NotRequired[pulumi.Input[str]]
    """The secret of iap_client_id (stored in a Kubernetes Secret the GCPBackendPolicy names)."""
    ui_backend_service_id: NotRequired[str]
    """The numeric id of the UI's backend service, which IAP's assertions must name as their audience;
    missing or empty: any backend service of the project."""
    front_door: NotRequired[UiHostArgs]
    """The UI's public HTTPS entry; missing: none."""


_NESTED = {"resources", "front_door", "load_balancer_source_ranges", "admin_password", "git_credentials",
           "worker_roles", "task_identities", "airflow_config", "ui_access",
           "iap_client_secret"}

SECRET_FIELDS = ("admin_password", "git_credentials", "iap_client_secret")  # Outputs; left out when unset


def settings_args(settings: AirflowSettings) -> AirflowSettingsArgs:
    """The args that make the component rebuild `settings` exactly (unset secrets are left out)."""
    plain = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings) if f.name not in _NESTED}
    secrets = {key: getattr(settings, key) for key in SECRET_FIELDS
               if getattr(settings, key) is not None}
    return AirflowSettingsArgs(
        **plain, **secrets, load_balancer_source_ranges=list(settings.load_balancer_source_ranges),
        resources={kind: ContainerResourcesArgs(**dataclasses.asdict(r)) for kind, r in settings.resources.items()},
        front_door=UiHostArgs(**dataclasses.asdict(settings.front_door)), worker_roles=list(settings.worker_roles),
        task_identities={name: list(roles) for name, roles in settings.task_identities},
        airflow_config=dict(settings.airflow_config),
        ui_access={role: list(members) for role, members in settings.ui_access})


def settings_from_args(args: Mapping[str, Any]) -> AirflowSettings:
    """The validated-settings dataclass the manifest builders read; defaults for what `args` leaves out."""
    known = {f.name for f in dataclasses.fields(AirflowSettings)}
    unknown = set(args) - known
    if unknown:
        raise ValueError(f"AirflowSettingsArgs: unknown settings {sorted(unknown)}")
    values = {k: v for k, v in args.items() if k not in _NESTED}
    resources = {kind: ContainerResources(**r) for kind, r in (args.get("resources") or {}).items()}
    for secret in SECRET_FIELDS:
        value = args.get(secret)
        if value is not None:  # the builders apply() it: a plain string (from another language) becomes an Output
            values[secret] = value if isinstance(value, pulumi.Output) else pulumi.Output.from_input(value)
    return AirflowSettings(
        **values, load_balancer_source_ranges=tuple(args.get("load_balancer_source_ranges", ())),
        resources={**DEFAULT_RESOURCES, **resources},
        front_door=FrontDoorSettings(**(args.get("front_door") or {})),
        worker_roles=tuple(args.get("worker_roles", ())),
        # Sorted by name, as the stack's config reader returns them.
        task_identities=tuple((name, tuple(roles))
                              for name, roles in sorted((args.get("task_identities") or {}).items())),
        airflow_config=tuple(sorted((args.get("airflow_config") or {}).items())),
        # In the caller's order (the stack's reader: lowest role first); IAP grants are declared in it.
        ui_access=tuple((role, tuple(members)) for role, members in (args.get("ui_access") or {}).items()))
