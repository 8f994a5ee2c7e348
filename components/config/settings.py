"""The typed, frozen settings a validated stack config is made of, the pinned images and the default
container resources."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Mapping, Optional

import pulumi

from .connection_budget import DEFAULT_MAX_OVERFLOW, DEFAULT_POOL_SIZE, max_connections
from .schedule import ActiveHours

# Airflow 3 release pinned by the default image, the integration tests and image/Dockerfile.
AIRFLOW_VERSION = "3.3.2"
DEFAULT_AIRFLOW_IMAGE = f"apache/airflow:{AIRFLOW_VERSION}-python3.12"
GIT_SYNC_IMAGE = "registry.k8s.io/git-sync/git-sync:v4.7.1"
CLOUD_SQL_PROXY_IMAGE = "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.25.3"
# Turns Airflow's StatsD lines into Prometheus metrics (components/airflow/pod/metrics_exporter.py); the
# image runs as `nobody` (prometheus/statsd_exporter Dockerfile: USER nobody).
STATSD_EXPORTER_IMAGE = "prom/statsd-exporter:v0.28.0"

# The one Kubernetes version the rendered manifests are validated against (kubernetes-validate, in the unit
# and integration tests) when no kubernetesVersion is pinned: the minor the channels serve today.
KUBERNETES_SCHEMA_VERSION = "1.33"


class _ComponentArgs:
    """Settings whose fields are named like the args of the component they configure."""

    _not_args: tuple[str, ...] = ()

    def as_args(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in self._not_args}


@dataclass(frozen=True)
class NetworkSettings(_ComponentArgs):
    _not_args = ("master_cidr",)
    subnet_cidr: str
    pods_cidr: str
    services_cidr: str
    master_cidr: str
    private_services_range: str  # fixed CIDR (network.py)


@dataclass(frozen=True)
class ClusterSettings(_ComponentArgs):
    _not_args = ("regional",)
    mode: str
    regional: bool
    location: str
    release_channel: str
    kubernetes_version: str  # "" = the release channel chooses
    control_plane_access: str
    master_authorized_networks: tuple[str, ...]
    node_machine_type: str
    node_min_count: int
    node_max_count: int
    node_disk_size_gb: int
    spot_pool: bool
    spot_machine_type: str
    spot_max_count: int
    deletion_protection: bool

    @property
    def schema_version(self) -> str:
        """Kubernetes minor (e.g. "1.33") to validate the manifests against: the pinned one, else the default."""
        return ".".join((self.kubernetes_version or KUBERNETES_SCHEMA_VERSION).split(".")[:2])


@dataclass(frozen=True)
class DatabaseSettings(_ComponentArgs):
    _not_args = ("pulumi_protect",)  # a resource option, not an arg
    version: str
    tier: str
    high_availability: bool
    disk_size_gb: int
    backup_retention_count: int
    log_retention_days: int
    maintenance_day: int
    maintenance_hour: int
    flags: tuple[tuple[str, str], ...]
    deletion_protection: bool
    pulumi_protect: bool
    password_version: int = 1  # bump to generate a new database password

    def as_args(self) -> dict:
        # The component takes a name -> value map (a schema-friendly type); the settings keep hashable pairs.
        return {**super().as_args(), "flags": dict(self.flags)}

    @property
    def max_connections(self) -> Optional[int]:
        """The instance's max_connections (flag or the tier's default); None for an unknown tier."""
        return max_connections(self.tier, dict(self.flags))


@dataclass(frozen=True)
class RegistrySettings(_ComponentArgs):
    repository_id: str
    keep_versions: int
    keep_tag_prefixes: tuple[str, ...]


@dataclass(frozen=True)
class ContainerResources:
    cpu: str
    memory: str
    cpu_limit: str
    memory_limit: str

    def to_k8s(self) -> dict:
        return {
            "requests": {"cpu": self.cpu, "memory": self.memory},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


# Airflow containers: from the peak memory (PSS of the process tree) measured on 3.3.2 by
# tests/integration/test_soak_dev_tier.py / `make bench`, see docs/benchmarks.md: limit >= 1.25 x
# (peak + one `airflow jobs check` probe, which runs inside the same limit); request near the peak.
DEFAULT_RESOURCES: Mapping[str, ContainerResources] = {
    "scheduler": ContainerResources("300m", "512Mi", "1", "1Gi"),
    # One uvicorn worker (API_SERVER_WORKERS): ~350 MiB at 1,000 DAGs (preview/measured.yaml), limit 2x that.
    "api-server": ContainerResources("250m", "512Mi", "1", "768Mi"),
    "dag-processor": ContainerResources("250m", "512Mi", "1", "1Gi"),
    "triggerer": ContainerResources("250m", "384Mi", "500m", "768Mi"),
    "maintenance": ContainerResources("10m", "64Mi", "100m", "512Mi"),
    "cloud-sql-proxy": ContainerResources("50m", "64Mi", "250m", "128Mi"),
    "git-sync": ContainerResources("20m", "64Mi", "200m", "256Mi"),
    # A Go process holding a few hundred series: tens of MiB (docs/operations.md, "Metrics").
    "metrics-exporter": ContainerResources("10m", "32Mi", "100m", "64Mi"),
    "migrations": ContainerResources("250m", "512Mi", "1", "1Gi"),
    "worker": ContainerResources("250m", "512Mi", "1", "1Gi"),
}


@dataclass(frozen=True)
class FrontDoorSettings:
    """The UI's public HTTPS entry (components/frontdoor.py, components/airflow/front_door.py)."""
    ui_host: str = ""  # empty: no public endpoint; the UI is reached with kubectl port-forward
    ui_dns_zone: str = ""  # empty: the user creates the A record (stack output ui_dns_record)

    @property
    def enabled(self) -> bool:
        return bool(self.ui_host)


@dataclass(frozen=True)
class AirflowSettings:
    namespace: str
    image: str
    replicas: int
    dags_repo: str
    dags_ref: str
    dags_subpath: str
    git_sync_period_seconds: int
    git_sync_max_failures: int
    dag_refresh_seconds: int
    service_type: str
    load_balancer_source_ranges: tuple[str, ...]
    allow_public_ui: bool
    admin_username: str
    admin_email: str
    git_credentials_kind: str  # "none", "token" or "ssh"
    resources: Mapping[str, ContainerResources]
    metadata_retention_days: int = 90  # `airflow db clean` weekly; 0 = off
    # Failed task pods are kept this long for debugging, then deleted hourly (airflow/pod_cleanup.py); 0:
    # the executor deletes them at once.
    failed_pod_retention_hours: int = 72
    secrets_version: int = 1  # bump to regenerate the JWT secret, API secret key and admin password
    fernet_key_version: int = 1  # bump to add a new fernet key before the old one (airflow/fernet.py)
    # Secrets from `pulumi config set --secret`; None: generated (admin password) or public repo.
    admin_password: Optional[pulumi.Output[str]] = None
    git_credentials: Optional[pulumi.Output[str]] = None
    git_ssh_known_hosts: str = ""  # known_hosts lines for the ssh repo host; empty: host key not checked
    # SQLAlchemy pool of every Airflow process: sized so the worst case fits the tier (connection_budget.py).
    db_pool_size: int = DEFAULT_POOL_SIZE
    db_pool_max_overflow: int = DEFAULT_MAX_OVERFLOW
    base_url: str = ""  # the UI address users open ([api] base_url); empty: the port-forward address
    # Unchanged DAG files are re-parsed this often; changed ones (newer mtime) are parsed at the next listing.
    dag_reparse_seconds: int = 120
    dag_source: str = "git-sync"  # one of DAG_SOURCES
    # git-bundle mode: how often the dag-processor fetches the repository (GitDagBundle refresh_interval).
    git_bundle_refresh_seconds: int = 30
    # What tasks reach (config/task_access.py): project roles of the worker account, extra task identities
    # (name -> roles), and Secret Manager as the connections/variables backend ("none" or "secret-manager").
    worker_roles: tuple[str, ...] = ()
    task_identities: tuple[tuple[str, tuple[str, ...]], ...] = ()
    secrets_backend: str = "none"
    secrets_prefix: str = ""  # secret ids start with <prefix>-connections- / <prefix>-variables-
    secrets_project: str = ""  # the project whose Secret Manager holds them (the stack's)
    # Airflow settings without forking (config/airflow_overrides.py): (section.key, value), sorted.
    airflow_config: tuple[tuple[str, str], ...] = ()
    front_door: FrontDoorSettings = FrontDoorSettings()
    # uiAccess (ui_access.py): (Airflow role, IAM members) pairs; empty = no IAP sign-in, FAB passwords only.
    ui_access: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # iapOAuthClientId/-Secret (ui_access.py): IAP's own OAuth client; empty/None: the Google-managed one.
    iap_client_id: str = ""
    iap_client_secret: Optional[pulumi.Output[str]] = None
    # uiBackendServiceId (ui_access.py): the id IAP's assertion must name as its audience; "": any backend
    # service of the project (known only after the first `pulumi up`, when GKE has created it).
    ui_backend_service_id: str = ""


@dataclass(frozen=True)
class PauseSettings:
    """When the stack sleeps (components/schedule.py): `active_hours` (None: always on) and `paused`."""
    active_hours: Optional[ActiveHours] = None
    paused: bool = False
    drain_minutes: int = 30

    @property
    def enabled(self) -> bool:
        """Whether a pause schedule exists: the workflow then owns node pool sizes and the database's activation."""
        return self.active_hours is not None or self.paused


@dataclass(frozen=True)
class StackConfig:
    project: str
    region: str
    environment: str
    name_prefix: str
    network: NetworkSettings
    cluster: ClusterSettings
    database: DatabaseSettings
    registry: RegistrySettings
    log_retention_days: int
    logs_force_destroy: bool
    airflow: AirflowSettings
    labels: Mapping[str, str] = field(default_factory=dict)
    alert_emails: tuple[str, ...] = ()  # who the alert policies notify; empty: nobody (the preview warns)
    pause: PauseSettings = field(default_factory=PauseSettings)

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"
