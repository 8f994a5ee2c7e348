"""Typed, validated stack configuration: the only place that reads `pulumi.Config`.

Every value is parsed and checked before any resource is declared. All problems are
collected and raised together as one `ConfigError` whose lines each name the key, the
value, what is allowed and the `pulumi config set` command that fixes it.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Mapping, Optional

import pulumi

from . import config_rules as rules
from .config_network import read_private_services_range
from . import git_sync_liveness
from .connection_budget import (DEFAULT_MAX_OVERFLOW, DEFAULT_POOL_SIZE, SUPERUSER_RESERVED_CONNECTIONS,
                                connection_budget, max_connections)
from .run_mode import is_deploying

PROJECT = "airflow-gke"

# Airflow 3 release pinned by the default image, the integration tests and image/Dockerfile.
AIRFLOW_VERSION = "3.3.2"
DEFAULT_AIRFLOW_IMAGE = f"apache/airflow:{AIRFLOW_VERSION}-python3.12"
GIT_SYNC_IMAGE = "registry.k8s.io/git-sync/git-sync:v4.7.1"
CLOUD_SQL_PROXY_IMAGE = "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.25.3"

ENVIRONMENTS = ("dev", "staging", "prod")
CLUSTER_MODES = ("standard", "autopilot")
RELEASE_CHANNELS = ("RAPID", "REGULAR", "STABLE", "EXTENDED")
POSTGRES_VERSIONS = ("POSTGRES_16", "POSTGRES_17")
SERVICE_TYPES = ("ClusterIP", "LoadBalancer", "InternalLoadBalancer")
# Where DAG files come from: a git-sync sidecar (tasks clone the branch head) or Airflow's versioned
# GitDagBundle (tasks fetch the commit the dag-processor parsed). README "DAG source" says which and why.
DAG_SOURCES = ("git-sync", "git-bundle")
GIT_SYNC_ONLY_KEYS = ("gitSyncPeriod", "gitSyncMaxFailures")
MIN_KUBERNETES_MINOR = rules.MIN_KUBERNETES_MINOR
# The one Kubernetes version the rendered manifests are validated against (kubernetes-validate, in the unit
# and integration tests) when no kubernetesVersion is pinned: the minor the channels serve today.
KUBERNETES_SCHEMA_VERSION = "1.33"

_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
_PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_K8S_VERSION = re.compile(r"^1\.(\d+)(\.\d+)?$")
_DB_TIER = re.compile(r"^db-(f1-micro|g1-small|custom-\d+-\d+|perf-optimized-n-\d+|[a-z0-9]+(-[a-z0-9]+)+)$")
_MACHINE_TYPE = re.compile(r"^[a-z0-9]+-[a-z0-9-]+$")
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_CPU = re.compile(r"^(\d+m|\d+(\.\d+)?)$")
_MEMORY = re.compile(r"^\d+(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_GIT_REF = re.compile(r"^(?!.*\.\.)(?!/)(?!.*//)[A-Za-z0-9._/-]{1,200}(?<!/)(?<!\.lock)$")
_IMAGE = re.compile(
    r"^(?P<name>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+(?=/))?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
_GIT_SSH_SCP = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._/~-]+$")


class ConfigError(pulumi.RunError):
    """Raised before any resource is declared when stack configuration is invalid."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        header = "Invalid stack configuration:" if len(problems) > 1 else "Invalid stack configuration."
        super().__init__("\n".join([header, *("  - " + p for p in problems)]))


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
    private_services_range: str  # fixed CIDR (components/config_network.py)


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


@dataclass(frozen=True)
class RegistrySettings(_ComponentArgs):
    repository_id: str
    keep_versions: int


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
    "api-server": ContainerResources("250m", "768Mi", "1", "1Gi"),
    "dag-processor": ContainerResources("250m", "512Mi", "1", "1Gi"),
    "triggerer": ContainerResources("250m", "384Mi", "500m", "768Mi"),
    "maintenance": ContainerResources("10m", "64Mi", "100m", "512Mi"),
    "cloud-sql-proxy": ContainerResources("50m", "64Mi", "250m", "128Mi"),
    "git-sync": ContainerResources("20m", "64Mi", "200m", "256Mi"),
    "migrations": ContainerResources("250m", "512Mi", "1", "1Gi"),
    "worker": ContainerResources("250m", "512Mi", "1", "1Gi"),
}


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
    secrets_version: int = 1  # bump to regenerate the JWT secret, API secret key and admin password
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

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"


# A source answers `get(namespace, key)` with the raw string value or None; secrets with `get_secret`.
class PulumiConfigSource:
    def __init__(self) -> None:
        self._configs = {ns: pulumi.Config(ns) for ns in (PROJECT, "gcp")}

    def get(self, namespace: str, key: str) -> Optional[str]:
        return self._configs[namespace].get(key)

    def get_secret(self, namespace: str, key: str) -> Optional[pulumi.Output[str]]:
        return self._configs[namespace].get_secret(key)


class _Reader:
    """Parses raw config strings and collects every problem instead of stopping at the first."""

    def __init__(self, source) -> None:
        self.source = source
        self.problems: list[str] = []
        self._empty_reported: set[str] = set()

    @staticmethod
    def full_key(key: str) -> str:
        return key if ":" in key else f"{PROJECT}:{key}"

    def raw(self, key: str) -> Optional[str]:
        """The value as set, or None when unset. An empty string is a mistake (`pulumi config set KEY ""`),
        not "unset": it is reported once and the key then reads as unset."""
        full_key = self.full_key(key)
        namespace, _, name = full_key.partition(":")
        value = self.source.get(namespace, name)
        if isinstance(value, str) and value.strip() == "":
            if full_key not in self._empty_reported:
                self._empty_reported.add(full_key)
                self.problems.append(f"{full_key} is set to an empty string, which is not a value (an unset key "
                                     f"takes its default). Fix: pulumi config set {full_key} <value>, or "
                                     f"pulumi config rm {full_key}")
            return None
        return value

    def fail(self, key: str, value: Any, allowed: str, example: str = "<value>", fix: Optional[str] = None) -> None:
        key = self.full_key(key)
        fix = fix or f"pulumi config set {key} {example}"
        self.problems.append(f"{key} = {value!r} is not allowed: {allowed}. Fix: {fix}")

    @classmethod
    def path_fix(cls, path: str, example: str = "", verb: str = "set") -> str:
        """`pulumi config set --path KEY[0] VALUE` (or `rm --path`) for a value inside a list or object key."""
        command = f"pulumi config {verb} --path {shlex.quote(cls.full_key(path))}"
        return f"{command} {example}" if example else command

    def missing(self, key: str, example: str) -> None:
        key = self.full_key(key)
        if key in self._empty_reported:
            return  # already reported as an empty string
        self.problems.append(f"{key} is required but not set. Fix: pulumi config set {key} {example}")

    def parsed(self, key: str, default: Any, parse: Callable[[str], Any], allowed: str, example: str,
               fix: Optional[str] = None) -> Any:
        raw = self.raw(key)
        if raw is None:
            return default
        try:
            return parse(raw)
        except (ValueError, TypeError):
            self.fail(key, raw, allowed, example, fix)
            return default

    def required_string(self, key: str, pattern: re.Pattern, allowed: str, example: str) -> str:
        raw = self.raw(key)
        if raw is None:
            self.missing(key, example)
            return ""
        if not pattern.match(raw):
            self.fail(key, raw, allowed, example)
        return raw

    def string(self, key: str, default: str, pattern: Optional[re.Pattern] = None,
               choices: Optional[tuple[str, ...]] = None, allowed: str = "", example: str = "<value>") -> str:
        raw = self.raw(key)
        if raw is None:
            return default
        if choices is not None and raw not in choices:
            self.fail(key, raw, f"one of {', '.join(choices)}", choices[0])
        elif pattern is not None and not pattern.match(raw):
            self.fail(key, raw, allowed, example)
        return raw

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        allowed = f"a whole number from {low} to {high}"
        value = self.parsed(key, default, _parse_int, allowed, str(default))
        if not low <= value <= high:
            self.fail(key, self.raw(key), allowed, str(default))
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        return self.parsed(key, default, _parse_bool, "true or false", str(default).lower())

    def cidr(self, key: str, default: str) -> str:
        allowed = "an IPv4 CIDR block such as 10.0.0.0/20"
        return self.parsed(key, default, lambda raw: str(_parse_cidr(raw)), allowed, default)

    def cidr_list(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        allowed = "a JSON list of IPv4 CIDR blocks, e.g. [\"203.0.113.0/24\"]"
        return self.parsed(key, default, lambda raw: tuple(str(_parse_cidr(c)) for c in _parse_list(raw)),
                           allowed, "", fix=self.path_fix(f"{key}[0]", "203.0.113.0/24"))

    def duration(self, key: str, default: int, low: int, high: int) -> int:
        allowed = f"a duration such as 30s, 2m or 1m30s, from {low}s to {high}s"
        value = self.parsed(key, default, _parse_duration, allowed, f"{default}s")
        if not low <= value <= high:
            self.fail(key, self.raw(key), allowed, f"{default}s")
            return default
        return value

    def json_object(self, key: str) -> dict:
        return self.parsed(key, {}, _parse_object, "a JSON object", "",
                           fix=self.path_fix(f"{key}.<name>", "<value>"))

    def secret(self, key: str) -> Optional[pulumi.Output[str]]:
        namespace, _, name = self.full_key(key).partition(":")
        getter = getattr(self.source, "get_secret", None)
        return getter(namespace, name) if getter else None


def _parse_int(raw: str) -> int:
    if isinstance(raw, bool) or not re.fullmatch(r"-?\d+", str(raw).strip()):
        raise ValueError(raw)
    return int(raw)


def _parse_bool(raw: str) -> bool:
    lowered = str(raw).strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError(raw)
    return lowered == "true"


def _parse_cidr(raw: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(str(raw).strip(), strict=True)


def _parse_list(raw: str) -> list:
    value = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(value, list):
        raise ValueError(raw)
    return value


def _parse_object(raw: str) -> dict:
    value = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(value, dict):
        raise ValueError(raw)
    return value


def _parse_duration(raw: str) -> int:
    text = str(raw).strip()
    if text.isdigit():
        return int(text)
    match = _DURATION.match(text)
    if not text or not match:
        raise ValueError(raw)
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def is_valid_git_url(url: str) -> bool:
    return url.startswith(("https://", "ssh://")) or bool(_GIT_SSH_SCP.match(url))


def image_problem(image: str) -> Optional[str]:
    """Why an image reference is unusable, or None when it is a pinned, well-formed reference."""
    match = _IMAGE.match(image)
    if not match:
        return "a container image reference such as REGION-docker.pkg.dev/PROJECT/REPO/airflow:1.0"
    if not match.group("tag") and not match.group("digest"):
        return "an image pinned to a tag or digest (no implicit latest)"
    if match.group("tag") == "latest" and not match.group("digest"):
        return "an image pinned to a release tag or digest, not :latest"
    return None


def _read_resources(reader: _Reader, maintenance_cpu_limit: str) -> dict[str, ContainerResources]:
    overrides = reader.json_object("containerResources")
    resources = dict(DEFAULT_RESOURCES)
    for container, fields in overrides.items():
        base = resources.get(container)
        if base is None or not isinstance(fields, dict):
            reader.fail(f"containerResources.{container}", fields,
                        f"an object keyed by one of {', '.join(DEFAULT_RESOURCES)}",
                        fix=reader.path_fix(f"containerResources.{container}", verb="rm"))
            continue
        values = {"cpu": base.cpu, "memory": base.memory, "cpuLimit": base.cpu_limit, "memoryLimit": base.memory_limit}
        for name, value in fields.items():
            pattern = _CPU if name.startswith("cpu") else _MEMORY
            if name not in values or not pattern.match(str(value)):
                reader.fail(f"containerResources.{container}.{name}", value,
                            "cpu/cpuLimit like 500m or 1, memory/memoryLimit like 512Mi or 1Gi",
                            fix=reader.path_fix(f"containerResources.{container}.{name}",
                                                ("500m" if name.startswith("cpu") else "512Mi") if name in values else "",
                                                "set" if name in values else "rm"))
                continue
            values[name] = str(value)
        for request, limit in (("cpu", "cpuLimit"), ("memory", "memoryLimit")):
            if _quantity(values[request]) > _quantity(values[limit]):
                reader.fail(f"containerResources.{container}.{request}", values[request],
                            f"at most the limit {limit} ({values[limit]})",
                            fix=reader.path_fix(f"containerResources.{container}.{request}", values[limit]))
        resources[container] = ContainerResources(values["cpu"], values["memory"], values["cpuLimit"], values["memoryLimit"])
    maintenance = resources["maintenance"]
    explicit_limit = reader.raw("maintenanceCpuLimit") is not None
    if explicit_limit and "cpuLimit" in (overrides.get("maintenance") or {}):
        reader.fail("containerResources.maintenance.cpuLimit", overrides["maintenance"]["cpuLimit"],
                    "unset while airflow-gke:maintenanceCpuLimit is set (one place for one value)",
                    fix=reader.path_fix("containerResources.maintenance.cpuLimit", verb="rm"))
    if explicit_limit or "cpuLimit" not in (overrides.get("maintenance") or {}):
        resources["maintenance"] = ContainerResources(maintenance.cpu, maintenance.memory, maintenance_cpu_limit,
                                                      maintenance.memory_limit)
    return resources


_QUANTITY_SUFFIXES = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
                      "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def _quantity(text: str) -> float:
    """A Kubernetes quantity (500m, 1, 512Mi, 1Gi) as a number, to compare requests with limits."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?", text)
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _QUANTITY_SUFFIXES.get(match.group(2) or "", 1)


def _read_airflow(reader: _Reader, environment: str) -> AirflowSettings:
    namespace = reader.string("namespace", "airflow", pattern=_DNS_LABEL,
                              allowed="a DNS label: lowercase letters, digits and '-', at most 63 characters",
                              example="airflow")
    image = reader.string("airflowImage", DEFAULT_AIRFLOW_IMAGE)
    problem = image_problem(image)
    if problem:
        reader.fail("airflowImage", image, problem, DEFAULT_AIRFLOW_IMAGE)

    dags_repo = reader.raw("dagsRepo")
    if dags_repo is None:
        reader.missing("dagsRepo", "https://github.com/<org>/<dags-repo>.git")
        dags_repo = ""
    elif not is_valid_git_url(dags_repo):
        reader.fail("dagsRepo", dags_repo, "a git URL over https:// or ssh (ssh://… or git@host:org/repo.git)",
                    "https://github.com/<org>/<dags-repo>.git")

    dags_ref = reader.string("dagsRef", "main", pattern=_GIT_REF,
                             allowed="a branch, tag or commit (letters, digits, . _ / -; no '..' or spaces)",
                             example="main")
    dags_subpath = reader.string("dagsSubpath", "", pattern=re.compile(r"^(?!/)(?!.*\.\.)[A-Za-z0-9._/-]*$"),
                                 allowed="a relative path inside the repo without '..'", example="dags")

    service_type = reader.string("serviceType", "ClusterIP", choices=SERVICE_TYPES)
    source_ranges = reader.cidr_list("loadBalancerSourceRanges", ())
    allow_public_ui = reader.boolean("allowPublicUi", False)
    if service_type in ("LoadBalancer", "InternalLoadBalancer") and not allow_public_ui:
        if not source_ranges:
            reader.fail("loadBalancerSourceRanges", [], f"a non-empty list of CIDRs when serviceType is {service_type} "
                        "(or set airflow-gke:allowPublicUi true)",
                        fix=reader.path_fix("loadBalancerSourceRanges[0]", "203.0.113.0/24"))
        elif any(c.endswith("/0") for c in source_ranges):
            reader.fail("loadBalancerSourceRanges", list(source_ranges),
                        "ranges narrower than /0 (set airflow-gke:allowPublicUi true to open the UI to the world)",
                        fix=reader.path_fix("loadBalancerSourceRanges[0]", "203.0.113.0/24"))

    maintenance_cpu_limit = reader.string("maintenanceCpuLimit", "100m", pattern=_CPU,
                                          allowed="a CPU quantity such as 100m or 1", example="100m")

    git_token = reader.secret("dagsGitToken")
    git_ssh_key = reader.secret("dagsSshKey")
    if git_token is not None and git_ssh_key is not None:
        reader.fail("dagsSshKey", "[secret]", "only one of airflow-gke:dagsGitToken and airflow-gke:dagsSshKey",
                    "--secret < ~/.ssh/dags_deploy_key  (after: pulumi config rm airflow-gke:dagsGitToken)")
    credentials_kind = "ssh" if git_ssh_key is not None else "token" if git_token is not None else "none"
    if credentials_kind == "ssh" and dags_repo.startswith("https://"):
        reader.fail("dagsRepo", dags_repo, "an ssh URL when airflow-gke:dagsSshKey is set", "git@github.com:<org>/<repo>.git")
    known_hosts = reader.raw("dagsSshKnownHosts") or ""
    if known_hosts and credentials_kind != "ssh":
        reader.fail("dagsSshKnownHosts", known_hosts[:40], "set only together with airflow-gke:dagsSshKey",
                    fix="pulumi config rm airflow-gke:dagsSshKnownHosts")
    elif known_hosts and not all(len(line.split()) >= 3 for line in known_hosts.strip().splitlines()):
        reader.fail("dagsSshKnownHosts", known_hosts[:40], "known_hosts lines: HOST KEYTYPE KEY (ssh-keyscan output)",
                    fix='pulumi config set airflow-gke:dagsSshKnownHosts "$(ssh-keyscan github.com)"')

    dag_source = _read_dag_source(reader, environment)
    git_sync_period = reader.duration("gitSyncPeriod", 30, 5, 3600)
    git_sync_max_failures = reader.integer("gitSyncMaxFailures", 10, -1, 1000)
    if dag_source == "git-sync":
        _check_git_sync_stall_detection(reader, git_sync_period, git_sync_max_failures)

    return AirflowSettings(
        namespace=namespace,
        image=image,
        replicas=reader.integer("replicas", 2 if environment == "prod" else 1, 1, 10),
        dags_repo=dags_repo,
        dags_ref=dags_ref,
        dags_subpath=dags_subpath.strip("/"),
        git_sync_period_seconds=git_sync_period,
        git_sync_max_failures=git_sync_max_failures,
        dag_refresh_seconds=reader.duration("dagRefreshInterval", 10, 5, 3600),
        dag_reparse_seconds=reader.duration("dagReparseInterval", 120, 5, 86400),
        service_type=service_type,
        load_balancer_source_ranges=source_ranges,
        allow_public_ui=allow_public_ui,
        admin_username=reader.string("adminUsername", "admin", pattern=re.compile(r"^[A-Za-z0-9._@-]{1,64}$"),
                                     allowed="1-64 letters, digits or . _ @ -", example="admin"),
        admin_email=reader.string("adminEmail", "admin@example.com", pattern=re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
                                  allowed="an e-mail address", example="you@example.com"),
        admin_password=reader.secret("adminPassword"),
        git_credentials=git_ssh_key if git_ssh_key is not None else git_token,
        git_credentials_kind=credentials_kind,
        git_ssh_known_hosts=known_hosts.strip(),
        secrets_version=reader.integer("secretsVersion", 1, 1, 1_000_000),
        metadata_retention_days=reader.integer("metadataRetentionDays", 90, 0, 3650),
        resources=_read_resources(reader, maintenance_cpu_limit),
        db_pool_size=reader.integer("dbPoolSize", DEFAULT_POOL_SIZE, 1, 50),
        db_pool_max_overflow=reader.integer("dbPoolMaxOverflow", DEFAULT_MAX_OVERFLOW, 0, 50),
        base_url=reader.string("baseUrl", "", pattern=re.compile(r"^https?://[^\s/]+(/[^\s]*)?$"),
                               allowed="the http(s) URL users open the UI at", example="https://airflow.example.com"),
        dag_source=dag_source,
    )


def _check_connection_budget(reader: _Reader, database: DatabaseSettings, airflow: AirflowSettings) -> None:
    """Every pool full, every probe running, a rollout and both Jobs at once must fit max_connections."""
    limit = max_connections(database.tier, dict(database.flags))
    budget = connection_budget(airflow.replicas, airflow.db_pool_size, airflow.db_pool_max_overflow,
                               jobs=2 if airflow.metadata_retention_days > 0 else 1,
                               separate_dag_processor=airflow.dag_source == "git-bundle")
    if limit is not None and budget.total > limit - SUPERUSER_RESERVED_CONNECTIONS:
        reader.fail("dbPoolSize", airflow.db_pool_size,
                    f"a pool that fits airflow-gke:dbTier {database.tier}: {budget.describe(limit)}; lower "
                    "dbPoolSize, dbPoolMaxOverflow or replicas, pick a larger dbTier, or raise max_connections",
                    fix=reader.path_fix("dbFlags.max_connections", str(budget.total + SUPERUSER_RESERVED_CONNECTIONS)))


def _safe_json(raw: Optional[str]) -> Any:
    try:
        return json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None  # reported where the key is read


def _check_git_sync_stall_detection(reader: _Reader, period_seconds: int, max_failures: int) -> None:
    """git-sync's own `/` probe cannot see a later stall; its bounded retries can (git_sync_liveness.py)."""
    problem = git_sync_liveness.stall_problem(period_seconds, max_failures)
    if problem:
        key, why, value = problem
        effective = {"gitSyncMaxFailures": str(max_failures), "gitSyncPeriod": f"{period_seconds}s"}[key]
        reader.fail(key, reader.raw(key) if reader.raw(key) is not None else effective, why, value)


def _read_dag_source(reader: _Reader, environment: str) -> str:
    """dagSource, default git-bundle on prod (runs pinned to the parsed commit) and git-sync elsewhere
    (a cleared task picks up the newest push); keys of the other mode are refused, not ignored."""
    dag_source = reader.string("dagSource", "git-bundle" if environment == "prod" else "git-sync",
                               choices=DAG_SOURCES)
    if dag_source == "git-bundle":
        for key in GIT_SYNC_ONLY_KEYS:
            if reader.raw(key) is not None:
                reader.fail(key, reader.raw(key), "unset when airflow-gke:dagSource is git-bundle (no git-sync runs; "
                            "airflow-gke:dagRefreshInterval sets how often the bundle is fetched)",
                            fix=f"pulumi config rm {reader.full_key(key)}")
        resources = _safe_json(reader.raw("containerResources"))
        if isinstance(resources, dict) and "git-sync" in resources:
            reader.fail("containerResources.git-sync", "{...}", "unset when airflow-gke:dagSource is git-bundle",
                        fix=reader.path_fix("containerResources.git-sync", verb="rm"))
    return dag_source


def load_stack_config(source=None, deploying: Optional[bool] = None) -> StackConfig:
    """Read and validate the whole stack configuration, or raise ConfigError listing every problem.

    `deploying` (default: whether this run is `pulumi up`, components/run_mode.py) turns the values that
    only warn in a preview, such as documentation IP ranges, into errors."""
    reader = _Reader(source if source is not None else PulumiConfigSource())
    deploying = is_deploying() if deploying is None else deploying

    project = reader.required_string("gcp:project", _PROJECT_ID,
                                     "a GCP project id: 6-30 lowercase letters, digits or '-'", "<your-gcp-project-id>")
    region = reader.required_string("gcp:region", _REGION, "a GCP region such as us-central1 or europe-west4",
                                    "us-central1")
    environment = reader.string("environment", "dev", choices=ENVIRONMENTS)
    is_prod = environment == "prod"
    name_prefix = reader.string("namePrefix", "airflow", pattern=re.compile(r"^[a-z][a-z0-9-]{1,14}[a-z0-9]$"),
                                allowed="3-16 lowercase letters, digits or '-', starting with a letter",
                                example="airflow")

    network = NetworkSettings(
        subnet_cidr=reader.cidr("subnetCidr", "10.10.0.0/20"),
        pods_cidr=reader.cidr("podsCidr", "10.20.0.0/16"),
        services_cidr=reader.cidr("servicesCidr", "10.30.0.0/20"),
        master_cidr=reader.cidr("masterCidr", "172.16.0.16/28"),
        private_services_range="",
    )
    if network.master_cidr.split("/")[1] != "28":
        reader.fail("masterCidr", network.master_cidr, "a /28 block (GKE requires a /28 for the control plane)",
                    "172.16.0.16/28")
    ranges = {k: ipaddress.IPv4Network(v) for k, v in
              (("subnetCidr", network.subnet_cidr), ("podsCidr", network.pods_cidr),
               ("servicesCidr", network.services_cidr), ("masterCidr", network.master_cidr))}
    names = list(ranges)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            if ranges[first].overlaps(ranges[second]):
                reader.fail(second, str(ranges[second]), f"a range that does not overlap airflow-gke:{first} "
                            f"({ranges[first]})", "<non-overlapping CIDR>")
    network = replace(network, private_services_range=read_private_services_range(reader, ranges))

    mode = reader.string("clusterMode", "standard", choices=CLUSTER_MODES)
    regional = reader.boolean("clusterRegional", is_prod)
    zone_pattern = re.compile(r"^[a-z]+-[a-z]+[0-9]+-[a-z]$")
    zone = reader.string("zone", f"{region}-a" if region else "", pattern=zone_pattern,
                         allowed="a zone of gcp:region such as us-central1-a", example=f"{region or 'us-central1'}-a")
    if zone and region and zone_pattern.match(zone) and not zone.startswith(region + "-"):
        reader.fail("zone", zone, f"a zone inside gcp:region ({region})", f"{region}-a")
    # Unset: the release channel chooses (a pinned minor is rejected once it leaves the channel,
    # terraform-google-modules/terraform-google-kubernetes-engine#2177).
    kubernetes_version = reader.string("kubernetesVersion", "", pattern=_K8S_VERSION,
                                       allowed="a Kubernetes minor version such as 1.33", example="1.33")
    rules.check_kubernetes_version(reader, kubernetes_version)
    control_plane_access = reader.string("controlPlaneAccess", "dns", choices=rules.CONTROL_PLANE_ACCESS)
    master_authorized_networks = reader.cidr_list("masterAuthorizedNetworks", ())
    rules.check_control_plane(reader, control_plane_access, master_authorized_networks, deploying)
    node_min = reader.integer("nodeMinCount", 1, 0, 100)
    node_max = reader.integer("nodeMaxCount", 3, 1, 100)
    if node_max < node_min:
        reader.fail("nodeMaxCount", node_max, f"at least airflow-gke:nodeMinCount ({node_min})", str(node_min))
    cluster = ClusterSettings(
        mode=mode,
        regional=regional,
        location=region if (regional or mode == "autopilot") else zone,
        release_channel=reader.string("releaseChannel", "REGULAR", choices=RELEASE_CHANNELS),
        kubernetes_version=kubernetes_version,
        control_plane_access=control_plane_access,
        master_authorized_networks=master_authorized_networks,
        node_machine_type=reader.string("nodeMachineType", "e2-standard-2", pattern=_MACHINE_TYPE,
                                        allowed="a Compute Engine machine type such as e2-standard-2",
                                        example="e2-standard-2"),
        node_min_count=node_min,
        node_max_count=node_max,
        node_disk_size_gb=reader.integer("nodeDiskSizeGb", 50, 20, 2000),
        spot_pool=reader.boolean("spotPool", False),
        spot_machine_type=reader.string("spotMachineType", "e2-standard-4", pattern=_MACHINE_TYPE,
                                        allowed="a Compute Engine machine type such as e2-standard-4",
                                        example="e2-standard-4"),
        spot_max_count=reader.integer("spotMaxCount", 5, 1, 100),
        deletion_protection=reader.boolean("clusterDeletionProtection", True),
    )

    flags = reader.json_object("dbFlags")
    database = DatabaseSettings(
        version=reader.string("dbVersion", "POSTGRES_16", choices=POSTGRES_VERSIONS),
        tier=reader.string("dbTier", "db-custom-1-3840", pattern=_DB_TIER,
                           allowed="a Cloud SQL tier such as db-custom-1-3840 or db-g1-small",
                           example="db-custom-1-3840"),
        high_availability=reader.boolean("dbHighAvailability", is_prod),
        disk_size_gb=reader.integer("dbDiskSizeGb", 20, 10, 65536),
        backup_retention_count=reader.integer("dbBackupRetentionCount", 14 if is_prod else 7, 1, 365),
        log_retention_days=reader.integer("dbLogRetentionDays", 7, 1, 7),
        maintenance_day=reader.integer("dbMaintenanceDay", 7, 1, 7),
        maintenance_hour=reader.integer("dbMaintenanceHour", 3, 0, 23),
        flags=tuple(sorted((str(k), str(v)) for k, v in flags.items())),
        deletion_protection=reader.boolean("dbDeletionProtection", True),
        pulumi_protect=reader.boolean("dbPulumiProtect", is_prod),
        password_version=reader.integer("dbPasswordVersion", 1, 1, 1_000_000),
    )
    rules.check_database(reader, database.backup_retention_count, database.log_retention_days, database.tier)
    log_retention_days = reader.integer("logRetentionDays", 30, 1, 3650)
    logs_force_destroy = reader.boolean("logsForceDestroy", False)
    if is_prod:
        for key, on in (("dbDeletionProtection", database.deletion_protection),
                        ("dbPulumiProtect", database.pulumi_protect),
                        ("clusterDeletionProtection", cluster.deletion_protection)):
            if not on:
                reader.fail(key, "false", "true on a prod stack (the metadata database must not be deletable)", "true")
        if logs_force_destroy:
            reader.fail("logsForceDestroy", "true", "false on a prod stack (task logs must not be deleted with the stack)",
                        "false")

    registry = RegistrySettings(
        repository_id=reader.string("registryRepository", "airflow", pattern=re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"),
                                    allowed="lowercase letters, digits and '-', starting with a letter",
                                    example="airflow"),
        keep_versions=reader.integer("registryKeepVersions", 10, 1, 1000),
    )
    airflow = _read_airflow(reader, environment)
    _check_connection_budget(reader, database, airflow)

    if reader.problems:
        raise ConfigError(reader.problems)
    return StackConfig(
        project=project,
        region=region,
        environment=environment,
        name_prefix=name_prefix,
        network=network,
        cluster=cluster,
        database=database,
        registry=registry,
        log_retention_days=log_retention_days,
        logs_force_destroy=logs_force_destroy,
        airflow=airflow,
        labels={"app": "airflow", "environment": environment, "managed-by": "pulumi"},
    )
