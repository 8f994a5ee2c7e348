"""Reading and checking the Airflow workload keys: image, DAG repository and source, UI exposure, git
credentials, container resources, and git-sync's stall detection."""

from __future__ import annotations

import json
import re
from typing import Any, Optional

from ..airflow.pod import git_sync_liveness
from .connection_budget import DEFAULT_MAX_OVERFLOW, DEFAULT_POOL_SIZE
from .front_door import front_door_base_url, read_front_door
from .network import admits_much_of_the_internet
from .reader import UP_REFUSES, _Reader
from .settings import DEFAULT_AIRFLOW_IMAGE, DEFAULT_RESOURCES, AirflowSettings, ContainerResources
from .ui_access import read_iap_oauth_client, read_ui_access, read_ui_backend_service_id

SERVICE_TYPES = ("ClusterIP", "LoadBalancer", "InternalLoadBalancer")
# Where DAG files come from: a git-sync sidecar (tasks clone the branch head) or Airflow's versioned
# GitDagBundle (tasks fetch the commit the dag-processor parsed). docs/dags.md "DAG source" says which and why.
DAG_SOURCES = ("git-sync", "git-bundle")
GIT_SYNC_ONLY_KEYS = ("gitSyncPeriod", "gitSyncMaxFailures")
GIT_BUNDLE_ONLY_KEYS = ("gitBundleRefreshInterval",)
# A remote fetch every 30 s, as git-sync's default period: GitDagBundle's own default is [dag_processor]
# refresh_interval, 300 s (3.3.2 dag_processing/bundles/base.py BaseDagBundle.__init__, config.yml), too slow
# for the 45 s push-to-visible goal; dagRefreshInterval (10 s, the local re-listing) would fetch 8,640 times
# a day per stack. Worst case push-to-visible: 30 + bundle_refresh_check_interval + parse, under 45 s.
GIT_BUNDLE_REFRESH_DEFAULT = 30

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_CPU = re.compile(r"^(\d+m|\d+(\.\d+)?)$")
_MEMORY = re.compile(r"^\d+(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_GIT_REF = re.compile(r"^(?!.*\.\.)(?!/)(?!.*//)[A-Za-z0-9._/-]{1,200}(?<!/)(?<!\.lock)$")
_IMAGE = re.compile(
    r"^(?P<name>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+(?=/))?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
_GIT_SSH_SCP = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._/~-]+$")
# The committed stacks name the fork a newcomer deploys from with a placeholder owner, like gcp:project.
_PLACEHOLDER_REPO = re.compile(r"YOUR-ORG|<[^>]*>", re.IGNORECASE)
DAGS_REPO_EXAMPLE = "https://github.com/<you>/airflow-gke.git"
# Prod pulls from Artifact Registry: unauthenticated Docker Hub pulls are limited per IPv4 address (10 an
# hour, https://docs.docker.com/docker-hub/usage/) and every private node leaves through the one Cloud NAT
# address; GKE image streaming needs the image in Artifact Registry
# (https://cloud.google.com/kubernetes-engine/docs/how-to/image-streaming#requirements).
_ARTIFACT_REGISTRY_IMAGE = re.compile(r"^[a-z0-9-]+-docker\.pkg\.dev/[a-z0-9-]+/[a-z0-9._-]+/")
AR_IMAGE_EXAMPLE = "REGION-docker.pkg.dev/PROJECT/REPOSITORY/airflow:TAG"
# The committed prod stack's placeholders: a YOUR-... tag, and a host under a name reserved for
# documentation (RFC 2606 / RFC 6761: example.com/.net/.org, .example, .test, .invalid, localhost).
_PLACEHOLDER_IMAGE = re.compile(r"YOUR-|<[^>]*>")
_RESERVED_HOST = re.compile(r"(^|\.)(example\.(com|net|org)|example|test|invalid|localhost)$", re.IGNORECASE)
BASE_URL_EXAMPLE = "https://airflow.<your-domain>"


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


def _check_dags_repo_placeholder(reader: _Reader, dags_repo: str, deploying: bool) -> None:
    """A placeholder previews (the offline preview parses nothing) but must not reach the cluster, where
    git-sync or the bundle would retry a repository that does not exist."""
    if not _PLACEHOLDER_REPO.search(dags_repo):
        return
    allowed = "your fork of this repository (or your DAG repository), not the committed placeholder"
    fix = f"pulumi config set airflow-gke:dagsRepo {DAGS_REPO_EXAMPLE.replace('<you>', '<your-github-user>')}"
    reader.refuse_or_warn("dagsRepo", dags_repo, allowed, fix, deploying, warn_note=UP_REFUSES)


def base_url_host(base_url: str) -> str:
    return base_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]


def _check_production_endpoints(reader: _Reader, environment: str, image: str, base_url: str,
                                deploying: bool) -> None:
    """Prod refuses (other stacks warn) a UI without its public address and an image outside Artifact
    Registry; the committed prod stack's placeholders preview but are refused at `pulumi up`."""
    is_prod = environment == "prod"
    if not base_url:
        reader.refuse_or_warn("baseUrl", "", "the https URL users open the UI at: unset, every link in an "
                        "e-mail or a callback and the login redirect point at http://localhost:8080",
                        f"pulumi config set {reader.full_key('baseUrl')} {BASE_URL_EXAMPLE}", is_prod)
    elif _RESERVED_HOST.search(base_url_host(base_url)):
        reader.refuse_or_warn("baseUrl", base_url, "your UI's real address, not a placeholder or reserved "
                        "documentation domain (`pulumi up` refuses it)",
                        f"pulumi config set {reader.full_key('baseUrl')} {BASE_URL_EXAMPLE}", deploying)
    image_fix = f"pulumi config set {reader.full_key('airflowImage')} {AR_IMAGE_EXAMPLE}"
    if not _ARTIFACT_REGISTRY_IMAGE.match(image):
        reader.refuse_or_warn("airflowImage", image, "an image in Artifact Registry "
                        "(REGION-docker.pkg.dev/...): Docker Hub limits pulls per NAT address and GKE image "
                        "streaming needs Artifact Registry; build and push one with image/", image_fix, is_prod)
    elif _PLACEHOLDER_IMAGE.search(image):
        reader.refuse_or_warn("airflowImage", image, "the image you pushed, not the committed placeholder "
                        "(`pulumi up` refuses it)", image_fix, deploying)


def _read_airflow(reader: _Reader, environment: str, deploying: bool = False,
                  name_prefix: str = "airflow") -> AirflowSettings:
    # Every cluster of a project shares one workload pool (PROJECT.svc.id.goog), where NAMESPACE/KSA is the
    # identity: two stacks with one namespace could each act as the other's Google accounts. The default,
    # the namePrefix, keeps `airflow` for the default prefix (existing stacks) and differs per stack.
    namespace = reader.string("namespace", name_prefix, pattern=_DNS_LABEL,
                              allowed="a DNS label: lowercase letters, digits and '-', at most 63 characters",
                              example="airflow")
    image = reader.string("airflowImage", DEFAULT_AIRFLOW_IMAGE)
    problem = image_problem(image)
    if problem:
        reader.fail("airflowImage", image, problem, DEFAULT_AIRFLOW_IMAGE)
    problems_before = len(reader.problems)
    base_url = reader.string("baseUrl", "", pattern=re.compile(r"^https?://[^\s/]+(/[^\s]*)?$"),
                             allowed="the http(s) URL users open the UI at", example=BASE_URL_EXAMPLE)
    endpoints_readable = not problem and len(reader.problems) == problems_before

    dags_repo = reader.raw("dagsRepo")
    if dags_repo is None:
        reader.missing("dagsRepo", "https://github.com/<org>/<dags-repo>.git")
        dags_repo = ""
    elif not is_valid_git_url(dags_repo):
        reader.fail("dagsRepo", dags_repo, "a git URL over https:// or ssh (ssh://… or git@host:org/repo.git)",
                    "https://github.com/<org>/<dags-repo>.git")
    else:
        _check_dags_repo_placeholder(reader, dags_repo, deploying)

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
        elif any(admits_much_of_the_internet(c) for c in source_ranges):
            reader.fail("loadBalancerSourceRanges", list(source_ranges),
                        "client ranges: no /0 and no public range wider than /8 (0.0.0.0/1 + 128.0.0.0/1 is "
                        "the whole internet; set airflow-gke:allowPublicUi true to open the UI to the world)",
                        fix=reader.path_fix("loadBalancerSourceRanges[0]", "203.0.113.0/24"))

    front_door = read_front_door(reader, service_type, deploying)
    if front_door.enabled:
        base_url = front_door_base_url(reader, base_url, front_door.ui_host)
    if endpoints_readable:
        _check_production_endpoints(reader, environment, image, base_url, deploying)
    ui_access = read_ui_access(reader, front_door.enabled)
    iap_client_id, iap_client_secret = read_iap_oauth_client(reader, any(ui_access.values()))
    ui_backend_service_id = read_ui_backend_service_id(reader, any(ui_access.values()))
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
        fernet_key_version=reader.integer("fernetKeyVersion", 1, 1, 1_000_000),
        metadata_retention_days=reader.integer("metadataRetentionDays", 90, 0, 3650),
        failed_pod_retention_hours=reader.integer("failedPodRetentionHours", 72, 0, 8760),
        resources=_read_resources(reader, maintenance_cpu_limit),
        db_pool_size=reader.integer("dbPoolSize", DEFAULT_POOL_SIZE, 1, 50),
        db_pool_max_overflow=reader.integer("dbPoolMaxOverflow", DEFAULT_MAX_OVERFLOW, 0, 50),
        base_url=base_url,
        dag_source=dag_source,
        git_bundle_refresh_seconds=reader.duration("gitBundleRefreshInterval", GIT_BUNDLE_REFRESH_DEFAULT, 5, 3600),
        ui_access=tuple(ui_access.items()),
        iap_client_id=iap_client_id,
        iap_client_secret=iap_client_secret,
        ui_backend_service_id=ui_backend_service_id,
        front_door=front_door,
    )


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
    if dag_source != "git-bundle":
        for key in GIT_BUNDLE_ONLY_KEYS:
            if reader.raw(key) is not None:
                reader.fail(key, reader.raw(key), "unset when airflow-gke:dagSource is git-sync (git-sync fetches "
                            "every airflow-gke:gitSyncPeriod)", fix=f"pulumi config rm {reader.full_key(key)}")
    if dag_source == "git-bundle":
        for key in GIT_SYNC_ONLY_KEYS:
            if reader.raw(key) is not None:
                reader.fail(key, reader.raw(key), "unset when airflow-gke:dagSource is git-bundle (no git-sync runs; "
                            "airflow-gke:gitBundleRefreshInterval sets how often the bundle is fetched)",
                            fix=f"pulumi config rm {reader.full_key(key)}")
        resources = _safe_json(reader.raw("containerResources"))
        if isinstance(resources, dict) and "git-sync" in resources:
            reader.fail("containerResources.git-sync", "{...}", "unset when airflow-gke:dagSource is git-bundle",
                        fix=reader.path_fix("containerResources.git-sync", verb="rm"))
    return dag_source
