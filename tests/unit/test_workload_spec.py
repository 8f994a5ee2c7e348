"""The pure manifest builders of components/airflow/ (one module per object, pod/ per container), fed a
hand-built WorkloadSpec (no Pulumi run).

Values deliberately differ from every default (namespace, repo, ref, periods, users, resources) so a
builder that hard-codes a default instead of reading the spec fails here.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
import yaml

from components.airflow.access import (api_service, namespace, network_policies, pod_disruption_budget,
                                      pod_launcher_binding, pod_launcher_role, service_accounts, ui_service)
from components.airflow.config_map import config_map
from components.airflow.deployment import deployment
from components.airflow.jobs import db_cleanup_cronjob, migration_job
from components.airflow.pod.task_pod import pod_template
from components.airflow.workload_spec import WorkloadSpec
from components.config import DEFAULT_RESOURCES, AirflowSettings, ContainerResources
from tests.unit.container_helpers import (command_line, containers, env, env_value, every_container,
                                          init_containers, port_number, relayed_airflow_command)

NAMESPACE = "orchestration"
IMAGE = "europe-docker.pkg.dev/acme-data/airflow/airflow:3.3.2-acme.4"
CONNECTION_NAME = "acme-data:europe-west4:acme-pg"
AIRFLOW_GSA = "acme-airflow@acme-data.iam.gserviceaccount.com"
WORKER_GSA = "acme-worker@acme-data.iam.gserviceaccount.com"
LOG_FOLDER = "gs://acme-logs-bucket/logs"
DAGS_REPO = "https://git.example.com/acme/dags.git"

AIRFLOW_CONTAINERS = ("scheduler", "api-server", "dag-processor", "triggerer", "maintenance")
SECRET_ENV = ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__FERNET_KEY",
              "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY")
UID = {"git-sync": 65533, "git-sync-init": 65533, "cloud-sql-proxy": 65532, "metrics-exporter": 65534}


def make_spec(**overrides) -> WorkloadSpec:
    """A spec with non-default values; overrides name AirflowSettings or WorkloadSpec fields."""
    resources = dict(DEFAULT_RESOURCES)
    resources["maintenance"] = ContainerResources("10m", "256Mi", "350m", "512Mi")
    settings = dict(
        namespace=NAMESPACE, image=IMAGE, replicas=1,
        dags_repo=DAGS_REPO, dags_ref="release/2024", dags_subpath="pipelines/dags",
        git_sync_period_seconds=45, git_sync_max_failures=7, dag_refresh_seconds=20, git_bundle_refresh_seconds=40,
        service_type="ClusterIP", load_balancer_source_ranges=(), allow_public_ui=False,
        admin_username="ops-admin", admin_email="ops@example.com", git_credentials_kind="none",
        resources=resources)
    resolved = dict(database_connection_name=CONNECTION_NAME, airflow_service_account=AIRFLOW_GSA,
                    worker_service_account=WORKER_GSA, remote_log_folder=LOG_FOLDER, instance="acme")
    settings_fields = {f.name for f in dataclasses.fields(AirflowSettings)}
    for key, value in overrides.items():
        (settings if key in settings_fields else resolved)[key] = value
    return WorkloadSpec(settings=AirflowSettings(**settings), **resolved)


@pytest.fixture
def spec() -> WorkloadSpec:
    return make_spec()


# --- helpers ---------------------------------------------------------------------------------

def pod_spec_of(manifest: dict) -> dict:
    if manifest["kind"] == "Pod":
        return manifest["spec"]
    if manifest["kind"] == "CronJob":
        return manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return manifest["spec"]["template"]["spec"]
















def pod_workloads(spec: WorkloadSpec) -> list[tuple[str, dict]]:
    return [("Deployment", deployment(spec)), ("Job", migration_job(spec)), ("CronJob", db_cleanup_cronjob(spec)),
            ("pod template", pod_template(spec))]


def is_airflow(container: dict, spec: WorkloadSpec) -> bool:
    return container["image"] == spec.settings.image


# --- the Deployment ----------------------------------------------------------------------------

def test_deployment_runs_the_design_containers_with_their_commands(spec):
    rendered = deployment(spec)
    assert rendered["kind"] == "Deployment" and rendered["metadata"]["name"] == "airflow"
    pod = pod_spec_of(rendered)
    main = containers(pod)
    assert set(main) == {*AIRFLOW_CONTAINERS, "git-sync", "metrics-exporter"}
    assert relayed_airflow_command(main["scheduler"])[:2] == ["airflow", "scheduler"]
    assert relayed_airflow_command(main["api-server"])[:2] == ["airflow", "api-server"]
    assert relayed_airflow_command(main["dag-processor"])[:2] == ["airflow", "dag-processor"]
    assert relayed_airflow_command(main["triggerer"])[:2] == ["airflow", "triggerer"]
    assert command_line(main["maintenance"])[:2] == ["bash", "-c"]
    for name in AIRFLOW_CONTAINERS:
        assert main[name]["image"] == IMAGE


def test_api_server_serves_8080_and_probes_the_health_endpoint(spec):
    api = containers(pod_spec_of(deployment(spec)))["api-server"]
    line = command_line(api)
    if "--port" in line:
        assert line[line.index("--port") + 1] == "8080"
    assert [p["containerPort"] for p in api["ports"]] == [8080]
    assert api["ports"][0].get("protocol", "TCP") == "TCP"
    for probe, path in (("startupProbe", "/execution/health"), ("livenessProbe", "/execution/health"),
                        ("readinessProbe", "/api/v2/monitor/health")):
        http = api[probe]["httpGet"]
        assert http["path"] == path, probe
        assert port_number(api, http["port"]) == 8080, probe


@pytest.mark.parametrize("name, job_type", [("scheduler", "SchedulerJob"), ("dag-processor", "DagProcessorJob"),
                                            ("triggerer", "TriggererJob")])
def test_airflow_jobs_are_probed_with_airflow_jobs_check(spec, name, job_type):
    container = containers(pod_spec_of(deployment(spec)))[name]
    expected = ["airflow", "jobs", "check", "--job-type", job_type, "--local"]
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["exec"]["command"] == expected, (name, probe)


def test_maintenance_cpu_limit_comes_from_the_resources(spec):
    maintenance = containers(pod_spec_of(deployment(spec)))["maintenance"]
    assert maintenance["resources"]["limits"]["cpu"] == "350m"
    default = containers(pod_spec_of(deployment(make_spec(resources=dict(DEFAULT_RESOURCES)))))["maintenance"]
    assert default["resources"]["limits"]["cpu"] == "100m"


def test_cloud_sql_proxy_is_a_native_sidecar(spec):
    pod = pod_spec_of(deployment(spec))
    assert "cloud-sql-proxy" not in containers(pod)
    proxy = init_containers(pod)["cloud-sql-proxy"]
    assert proxy["restartPolicy"] == "Always"
    assert proxy["image"].startswith("gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.")
    args = proxy["args"]
    for flag in ("--private-ip", "--structured-logs", "--health-check", "--http-address=0.0.0.0",
                 "--exit-zero-on-sigterm"):
        assert flag in args, flag
    assert args[-1] == CONNECTION_NAME
    assert "--port=5432" in args or not any(a.startswith("--port") for a in args)
    http_port = next(int(a.split("=", 1)[1]) for a in args if a.startswith("--http-port="))
    for probe in ("startupProbe", "livenessProbe"):
        assert port_number(proxy, proxy[probe]["httpGet"]["port"]) == http_port, probe


def test_git_sync_sidecar_follows_the_configured_repo(spec):
    git_sync = containers(pod_spec_of(deployment(spec)))["git-sync"]
    assert re.fullmatch(r"registry\.k8s\.io/git-sync/git-sync:v4\.[0-9.]+", git_sync["image"])
    assert {k: env_value(git_sync, k) for k in ("GITSYNC_REPO", "GITSYNC_REF", "GITSYNC_PERIOD", "GITSYNC_ROOT",
                                                "GITSYNC_LINK", "GITSYNC_DEPTH", "GITSYNC_MAX_FAILURES")} == {
        "GITSYNC_REPO": DAGS_REPO, "GITSYNC_REF": "release/2024", "GITSYNC_PERIOD": "45s", "GITSYNC_ROOT": "/git",
        "GITSYNC_LINK": "repo", "GITSYNC_DEPTH": "1", "GITSYNC_MAX_FAILURES": "7"}
    assert "GITSYNC_ONE_TIME" not in env(git_sync)


def test_init_containers_sync_dags_then_start_the_proxy_then_wait_for_migrations(spec):
    pod = pod_spec_of(deployment(spec))
    order = [c["name"] for c in pod["initContainers"]]
    assert order.index("git-sync-init") < order.index("cloud-sql-proxy") < order.index("wait-for-migrations")
    git_init = init_containers(pod)["git-sync-init"]
    assert env_value(git_init, "GITSYNC_ONE_TIME") == "true"
    assert env_value(git_init, "GITSYNC_REPO") == DAGS_REPO
    assert "restartPolicy" not in git_init  # a real init container: it must finish before the pod starts
    wait = init_containers(pod)["wait-for-migrations"]
    assert command_line(wait)[:3] == ["airflow", "db", "check-migrations"]
    assert "restartPolicy" not in wait


@pytest.mark.parametrize("subpath, folder", [("pipelines/dags", "/opt/airflow/dags/repo/pipelines/dags"),
                                             ("", "/opt/airflow/dags/repo")])
def test_dags_volume_is_shared_and_read_only_for_airflow(subpath, folder):
    spec = make_spec(dags_subpath=subpath)
    for kind, manifest in pod_workloads(spec):
        pod = pod_spec_of(manifest)
        volumes = {v["name"]: v for v in pod["volumes"]}
        if kind == "Job":
            continue  # the migrations need no DAGs (checked below: nothing there mounts them writable)
        assert "emptyDir" in volumes["dags"], kind
        for container in every_container(pod):
            mounts = {m["mountPath"]: m for m in container.get("volumeMounts", []) if m["name"] == "dags"}
            if container["name"].startswith("git-sync"):
                assert list(mounts) == ["/git"], (kind, container["name"])
                assert not mounts["/git"].get("readOnly", False)
            elif is_airflow(container, spec):
                assert list(mounts) == ["/opt/airflow/dags"], (kind, container["name"])
                assert mounts["/opt/airflow/dags"]["readOnly"] is True
                assert env_value(container, "AIRFLOW__CORE__DAGS_FOLDER") == folder
    for container in every_container(pod_spec_of(migration_job(spec))):
        for mount in container.get("volumeMounts", []):
            if mount["name"] == "dags":
                assert mount["readOnly"] is True


@pytest.mark.parametrize("kind", ["Deployment", "Job", "pod template"])
def test_every_container_is_hardened_and_sized(spec, kind):
    pod = pod_spec_of(dict(pod_workloads(spec))[kind])
    for container in every_container(pod):
        name = container["name"]
        resources = container["resources"]
        for section in ("requests", "limits"):
            assert set(resources[section]) >= {"cpu", "memory"}, (kind, name, section)
        security = container["securityContext"]
        expected_uid = 50000 if is_airflow(container, spec) else UID[name]
        assert security["runAsUser"] == expected_uid, (kind, name)
        assert security["runAsNonRoot"] is True, (kind, name)
        assert security["allowPrivilegeEscalation"] is False, (kind, name)
        assert security["capabilities"] == {"drop": ["ALL"]}, (kind, name)
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, (kind, name)
        assert security["readOnlyRootFilesystem"] is True, (kind, name)
        assert security.get("privileged", False) is False, (kind, name)


def test_airflow_env_references_secrets_and_sets_the_executor(spec):
    for kind, manifest in pod_workloads(spec)[:2]:
        for container in every_container(pod_spec_of(manifest)):
            if not is_airflow(container, spec):
                continue
            variables = env(container)
            assert env_value(container, "AIRFLOW__CORE__EXECUTOR") == "KubernetesExecutor"
            assert env_value(container, "AIRFLOW__CORE__AUTH_MANAGER") == \
                "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
            assert env_value(container, "AIRFLOW__CORE__EXECUTION_API_SERVER_URL") == \
                f"http://airflow-api.{NAMESPACE}.svc.cluster.local:8080/execution/"
            assert env_value(container, "AIRFLOW__LOGGING__REMOTE_LOGGING") == "True"
            assert env_value(container, "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER") == LOG_FOLDER
            expected = [n for n in SECRET_ENV if n != "AIRFLOW__API_AUTH__JWT_SECRET"
                        or container["name"] in ("scheduler", "api-server")]  # test_pod_bounds.py
            for name in expected:
                assert "value" not in variables[name], (kind, container["name"], name)
                assert variables[name]["valueFrom"]["secretKeyRef"]["name"] == "airflow-secrets"
            keys = [variables[name]["valueFrom"]["secretKeyRef"]["key"] for name in expected]
            assert len(set(keys)) == len(keys)


def test_execution_api_service_matches_the_url(spec):
    url = spec.execution_api_url
    match = re.fullmatch(r"http://([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:(\d+)/execution/", url)
    assert match, url
    service = api_service(spec)
    assert (service["metadata"]["name"], service["metadata"]["namespace"]) == (match.group(1), match.group(2))
    assert service["spec"]["type"] == "ClusterIP"
    rendered = deployment(spec)
    pod_labels = rendered["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    port = next(p for p in service["spec"]["ports"] if p["port"] == int(match.group(3)))
    api = containers(pod_spec_of(rendered))["api-server"]
    assert port_number(api, port["targetPort"]) == 8080


# --- the pod template of task pods -----------------------------------------------------------------

def test_pod_template_runs_one_base_container_without_credentials(spec):
    template = pod_template(spec)
    pod = template["spec"]
    assert [c["name"] for c in pod["containers"]] == ["base"]
    base = pod["containers"][0]
    assert base["image"] == IMAGE
    assert [c["name"] for c in pod["initContainers"]] == ["git-sync-init"]
    assert env_value(pod["initContainers"][0], "GITSYNC_ONE_TIME") == "true"
    assert pod["serviceAccountName"] == "airflow-worker"
    assert env_value(base, "AIRFLOW__CORE__EXECUTION_API_SERVER_URL") == spec.execution_api_url
    assert env_value(base, "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER") == LOG_FOLDER
    assert env_value(base, "AIRFLOW__LOGGING__REMOTE_LOGGING") == "True"
    assert env_value(base, "CONNECTION_CHECK_MAX_COUNT") == "0"
    forbidden = ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET")
    for container in every_container(pod):
        assert "envFrom" not in container
        for entry in container.get("env", []):
            assert not entry["name"].startswith(forbidden), entry
            assert "valueFrom" not in entry or entry["valueFrom"]["secretKeyRef"]["name"] != "airflow-secrets", entry
    assert "airflow-secrets" not in yaml.safe_dump(template)


def test_config_map_carries_the_pod_template_mounted_where_airflow_looks(spec):
    config = config_map(spec)
    assert config["metadata"]["name"] == "airflow-config"
    assert yaml.safe_load(config["data"]["pod_template_file.yaml"]) == pod_template(spec)
    pod = pod_spec_of(deployment(spec))
    volume = next(v["name"] for v in pod["volumes"] if v.get("configMap", {}).get("name") == "airflow-config")
    for name in ("scheduler", "maintenance"):
        container = containers(pod)[name]
        path = env_value(container, "AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE")
        mount = next(m for m in container["volumeMounts"] if m["mountPath"] == path)
        assert (mount["name"], mount["subPath"]) == (volume, "pod_template_file.yaml")


# --- Services ------------------------------------------------------------------------------------

def test_ui_service_defaults_to_cluster_ip(spec):
    service = ui_service(spec)
    assert service["spec"]["type"] == "ClusterIP"
    assert "loadBalancerSourceRanges" not in service["spec"]
    assert "networking.gke.io/load-balancer-type" not in service["metadata"].get("annotations", {})
    rendered = deployment(spec)
    assert service["spec"]["selector"].items() <= rendered["spec"]["template"]["metadata"]["labels"].items()
    api = containers(pod_spec_of(rendered))["api-server"]
    assert [port_number(api, p["targetPort"]) for p in service["spec"]["ports"]] == [8080]


def test_ui_service_load_balancer_keeps_source_ranges():
    service = ui_service(make_spec(service_type="LoadBalancer",
                                     load_balancer_source_ranges=("203.0.113.0/24", "198.51.100.7/32")))
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["loadBalancerSourceRanges"] == ["203.0.113.0/24", "198.51.100.7/32"]
    assert "networking.gke.io/load-balancer-type" not in service["metadata"].get("annotations", {})


def test_ui_service_internal_load_balancer_is_annotated():
    service = ui_service(make_spec(service_type="InternalLoadBalancer", load_balancer_source_ranges=("10.0.0.0/8",)))
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["metadata"]["annotations"]["networking.gke.io/load-balancer-type"] == "Internal"
    assert service["spec"]["loadBalancerSourceRanges"] == ["10.0.0.0/8"]


# --- identities, RBAC, network -------------------------------------------------------------------

def test_service_accounts_carry_the_workload_identity_annotation(spec):
    accounts = {a["metadata"]["name"]: a for a in service_accounts(spec)}
    assert accounts["airflow"]["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == AIRFLOW_GSA
    assert accounts["airflow-worker"]["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == WORKER_GSA
    assert pod_spec_of(deployment(spec))["serviceAccountName"] == "airflow"


def test_pod_launcher_role_and_binding(spec):
    role = pod_launcher_role(spec)
    rules = {tuple(r["resources"]): set(r["verbs"]) for r in role["rules"]}
    assert all(r["apiGroups"] == [""] for r in role["rules"])
    assert rules == {("pods",): {"create", "get", "list", "watch", "patch", "delete"},
                     ("pods/log",): {"get"}, ("events",): {"list", "watch"}}
    binding = pod_launcher_binding(spec)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "airflow", "namespace": NAMESPACE}]
    assert binding["metadata"]["namespace"] == role["metadata"]["namespace"] == NAMESPACE


# The exporter's /metrics (9102, GMP's collectors) and StatsD (UDP 9125, the namespace's Airflow pods).
METRICS_PORTS = {("TCP", 9102), ("UDP", 9125)}


def selects(policy: dict, pod_labels: dict) -> bool:
    selector = policy["spec"]["podSelector"]
    assert set(selector) <= {"matchLabels", "matchExpressions"}
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", "only In expressions are evaluated by this test"
        if pod_labels.get(expression["key"]) not in expression["values"]:
            return False
    return selector.get("matchLabels", {}).items() <= pod_labels.items()


def test_network_policies_deny_by_default_and_open_only_8080_and_trigger_logs_to_airflow(spec):
    policies = network_policies(spec)
    deny = [p for p in policies if p["spec"]["podSelector"] == {}]
    assert len(deny) == 1 and deny[0]["spec"]["policyTypes"] == ["Ingress"] and not deny[0]["spec"].get("ingress")
    pod_labels = deployment(spec)["spec"]["template"]["metadata"]["labels"]
    opened, from_some = set(), set()
    for policy in policies:
        if selects(policy, pod_labels):
            assert "Ingress" in policy["spec"]["policyTypes"]
            for rule in policy["spec"].get("ingress", []):
                assert rule.get("ports"), f"{policy['metadata']['name']} opens every port"
                ports = {(p.get("protocol", "TCP"), p["port"]) for p in rule["ports"]}
                opened |= ports
                if any(p["port"] == 8794 for p in rule["ports"]):  # trigger logs: Airflow pods only
                    assert all(selects({"spec": f}, pod_labels) and set(f) == {"podSelector"}
                               for f in rule["from"]), policy["metadata"]["name"]
                if ports & METRICS_PORTS:  # metrics: GMP's collectors or named Airflow pods, never everyone
                    assert rule.get("from") and all(f.get("namespaceSelector") or f["podSelector"].get("matchLabels")
                                                    for f in rule["from"]), policy["metadata"]["name"]
    assert opened == {("TCP", 8080), ("TCP", 8794)} | METRICS_PORTS


def test_replicas_pdb_and_rollout():
    single = make_spec(replicas=1)
    assert deployment(single)["spec"]["replicas"] == 1
    assert pod_disruption_budget(single) is None
    spec = make_spec(replicas=2)
    rendered = deployment(spec)
    assert rendered["spec"]["replicas"] == 2
    assert rendered["spec"]["strategy"]["type"] == "RollingUpdate"
    assert rendered["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pdb = pod_disruption_budget(spec)
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= rendered["spec"]["template"]["metadata"]["labels"].items()
    keys = {c["topologyKey"] for c in pod_spec_of(rendered)["topologySpreadConstraints"]}
    assert "topology.kubernetes.io/zone" in keys


# --- the migration Job ----------------------------------------------------------------------------

def test_migration_job_name_follows_the_image_only(spec):
    name = migration_job(spec)["metadata"]["name"]
    assert migration_job(make_spec(image=IMAGE.replace("acme.4", "acme.5")))["metadata"]["name"] != name
    unrelated = make_spec(replicas=3, dags_ref="other", admin_username="someone", namespace="elsewhere",
                          database_connection_name="p:r:other")
    assert migration_job(unrelated)["metadata"]["name"] == name
    rotated = make_spec(admin_checksum="new-admin-password-digest")
    assert migration_job(rotated)["metadata"]["name"] != name
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63


def test_migration_job_migrates_behind_the_proxy_then_creates_the_admin(spec):
    job = migration_job(spec)
    pod = pod_spec_of(job)
    inits = [c["name"] for c in pod["initContainers"]]
    assert inits == ["cloud-sql-proxy", "db-migrate"]
    proxy, migrate = pod["initContainers"]
    assert proxy["restartPolicy"] == "Always" and proxy["args"][-1] == CONNECTION_NAME
    assert command_line(migrate) == ["airflow", "db", "migrate"]
    assert len(pod["containers"]) == 1
    create = pod["containers"][0]
    line = command_line(create)
    assert line[:2] == ["bash", "-c"]
    words = line[2].split()
    assert words[:4] == ["set", "-e", "airflow", "users"] and "reset-password" in words
    username = re.fullmatch(r'"\$(\w+)"', words[words.index("--username") + 1])
    assert username and env(create)[username.group(1)]["value"] == "ops-admin"
    assert words[words.index("--email") + 1] == "ops@example.com"
    assert words[words.index("--role") + 1] == "Admin"
    passwords = {words[i + 1] for i, w in enumerate(words) if w == "--password"}
    variable = re.fullmatch(r'"\$(\w+)"', passwords.pop())
    assert variable and not passwords, "one password, expanded from env, not inlined"
    reference = env(create)[variable.group(1)]
    assert reference["valueFrom"]["secretKeyRef"]["name"] == "airflow-secrets"
    assert pod["restartPolicy"] in ("OnFailure", "Never")


# --- labels and namespace ------------------------------------------------------------------------

def all_objects(spec: WorkloadSpec) -> list[dict]:
    objects = [namespace(spec), *service_accounts(spec), config_map(spec), pod_launcher_role(spec),
               pod_launcher_binding(spec), *network_policies(spec), migration_job(spec), deployment(spec),
               ui_service(spec), api_service(spec), pod_template(spec)]
    pdb = pod_disruption_budget(spec)
    return objects + ([pdb] if pdb else [])


def test_every_object_is_labelled_and_namespaced():
    spec = make_spec(replicas=2)
    objects = all_objects(spec)
    assert "PodDisruptionBudget" in {o["kind"] for o in objects}
    for obj in objects:
        labels = obj["metadata"]["labels"]
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
                    "app.kubernetes.io/managed-by"):
            assert labels.get(key), (obj["kind"], obj["metadata"]["name"], key)
        assert labels["app.kubernetes.io/instance"] == "acme"
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE, (obj["kind"], obj["metadata"]["name"])
    rendered = namespace(spec)
    assert rendered["metadata"]["name"] == NAMESPACE
    assert rendered["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"



def pod_annotations(spec: WorkloadSpec) -> dict:
    return deployment(spec)["spec"]["template"]["metadata"]["annotations"]


def test_config_checksum_rolls_pods_only_when_the_config_map_changes():
    base = pod_annotations(make_spec())["checksum/config"]
    assert pod_annotations(make_spec())["checksum/config"] == base
    assert pod_annotations(make_spec(dags_ref="release/2025"))["checksum/config"] != base  # pod template changed
    assert pod_annotations(make_spec(replicas=3))["checksum/config"] == base  # ConfigMap untouched


def test_secrets_checksum_is_carried_into_the_pod_template():
    assert pod_annotations(make_spec(secrets_checksum="abc123"))["checksum/secrets"] == "abc123"
    assert pod_annotations(make_spec(secrets_checksum="abc123")) != pod_annotations(make_spec(secrets_checksum="def"))
