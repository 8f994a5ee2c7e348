"""The Airflow workload as the real program renders it under mocks (dev, prod and config overrides).

These tests tie the manifests to the rest of the capture: the Cloud SQL instance, the logs bucket, the
Google service accounts, the Workload Identity bindings, the random secrets and the stack outputs.
"""

from __future__ import annotations

import base64
import re

import pytest
import yaml

from tests.unit.container_helpers import (command_line, containers, env, env_value, every_container,
                                          init_containers, port_number, relayed_airflow_command)
from preview.harness import Capture, run_program
from tests.conftest import run_stack, stack_config, stack_settings

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
ACCOUNT = "gcp:serviceaccount/account:Account"
WI_MEMBER = "gcp:serviceaccount/iAMMember:IAMMember"
SQL_INSTANCE = "gcp:sql/databaseInstance:DatabaseInstance"
BUCKET = "gcp:storage/bucket:Bucket"
RANDOM_TYPES = ("random:index/randomPassword:RandomPassword", "random:index/randomId:RandomId")

AIRFLOW_UID, GIT_SYNC_UID, PROXY_UID, EXPORTER_UID = 50000, 65533, 65532, 65534
STATSD_EXPORTER_IMAGE = "prom/statsd-exporter:v0.28.0"
SECRET_ENV = ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__FERNET_KEY",
              "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY")
AIRFLOW_CONTAINERS = ("scheduler", "api-server", "dag-processor", "triggerer", "maintenance")
FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
CUSTOM = dict(namespace="orchestration", maintenanceCpuLimit="250m", dagsRef="release-7",
              dagsSubpath="pipelines/dags", gitSyncPeriod="2m", gitSyncMaxFailures="4")


# --- captures with config overrides (each one real program run) ----------------------------------

@pytest.fixture(scope="module")
def custom() -> Capture:
    return run_stack("dev", **CUSTOM)


@pytest.fixture(scope="module")
def load_balancer() -> Capture:
    return run_stack("dev", serviceType="LoadBalancer", loadBalancerSourceRanges='["203.0.113.0/24"]')


@pytest.fixture(scope="module")
def internal_load_balancer() -> Capture:
    return run_stack("dev", serviceType="InternalLoadBalancer", loadBalancerSourceRanges='["10.0.0.0/8"]')


# --- helpers ---------------------------------------------------------------------------------

def settings(capture: Capture, **overrides):
    """The validated stack config the capture was produced from."""
    return stack_settings(capture.stack, **overrides)


def manifests(capture: Capture) -> list[dict]:
    return [manifest for _, manifest in capture.kubernetes_objects()]


def find(capture: Capture, kind: str, name: str) -> dict:
    found = [m for m in manifests(capture) if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def kinds(capture: Capture, kind: str) -> list[dict]:
    return [m for m in manifests(capture) if m["kind"] == kind]


def pod_template(capture: Capture) -> dict:
    return yaml.safe_load(find(capture, "ConfigMap", "airflow-config")["data"]["pod_template_file.yaml"])


def migration_job(capture: Capture) -> dict:
    jobs = kinds(capture, "Job")
    assert len(jobs) == 1
    return jobs[0]


def pod_workloads(capture: Capture) -> list[tuple[str, dict]]:
    dag_processor = [("Deployment", d["spec"]["template"]["spec"]) for d in kinds(capture, "Deployment")
                     if d["metadata"]["name"] == "airflow-dag-processor"]  # git-bundle mode only
    return [("Deployment", find(capture, "Deployment", "airflow")["spec"]["template"]["spec"]), *dag_processor,
            ("Job", migration_job(capture)["spec"]["template"]["spec"]),
            ("CronJob", kinds(capture, "CronJob")[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]),
            ("pod template", pod_template(capture)["spec"])]








def deployment_pod(capture: Capture) -> dict:
    return find(capture, "Deployment", "airflow")["spec"]["template"]["spec"]










def secret_values(capture: Capture) -> dict[str, str]:
    return find(capture, "Secret", "airflow-secrets")["stringData"]


def connection_name(capture: Capture) -> str:
    instances = capture.of_type(SQL_INSTANCE)
    assert len(instances) == 1
    return instances[0].outputs["connectionName"]


def logs_bucket_url(capture: Capture) -> str:
    buckets = [r for r in capture.of_type(BUCKET) if "LogsBucket" in (r.parent or "")]
    assert len(buckets) == 1, [r.name for r in capture.of_type(BUCKET)]
    return buckets[0].outputs["url"]


def google_account(capture: Capture, suffix: str):
    found = [r for r in capture.of_type(ACCOUNT) if r.inputs["accountId"].endswith(f"-{suffix}")]
    assert len(found) == 1, [r.inputs["accountId"] for r in capture.of_type(ACCOUNT)]
    return found[0]


def strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


# --- the Deployment: design containers --------------------------------------------------------------

@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_deployment_has_the_design_containers(request, stack):
    capture = request.getfixturevalue(stack)
    pod = deployment_pod(capture)
    main = containers(pod)
    git_sync = settings(capture).airflow.dag_source == "git-sync"  # git-bundle: Airflow fetches DAGs itself
    if git_sync:
        assert set(main) == {*AIRFLOW_CONTAINERS, "git-sync", "metrics-exporter"}
    else:  # the one dag-processor runs in a Deployment of its own (components/airflow/dag_processor.py)
        assert set(main) == set(AIRFLOW_CONTAINERS) - {"dag-processor"} | {"metrics-exporter"}
        main.update(containers(find(capture, "Deployment", "airflow-dag-processor")["spec"]["template"]["spec"]))
    image = settings(capture).airflow.image
    for name in AIRFLOW_CONTAINERS:
        assert main[name]["image"] == image, name
    assert relayed_airflow_command(main["scheduler"])[:2] == ["airflow", "scheduler"]
    assert relayed_airflow_command(main["api-server"])[:2] == ["airflow", "api-server"]
    assert relayed_airflow_command(main["dag-processor"])[:2] == ["airflow", "dag-processor"]
    assert relayed_airflow_command(main["triggerer"])[:2] == ["airflow", "triggerer"]
    assert command_line(main["maintenance"])[:2] == ["bash", "-c"]  # the log groomer; behaviour: integration


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_only_always_on_pods_are_safe_to_evict_for_the_autoscaler(request, stack):
    """The autoscaler may move the always-on pods (their emptyDirs are caches) to empty a node; a running
    task or migration must block scale-down instead of being killed."""
    capture = request.getfixturevalue(stack)
    key = "cluster-autoscaler.kubernetes.io/safe-to-evict"
    deployments = [m for _, m in capture.kubernetes_objects() if m["kind"] == "Deployment"]
    assert len(deployments) == (1 if settings(capture).airflow.dag_source == "git-sync" else 2)
    for manifest in deployments:
        assert manifest["spec"]["template"]["metadata"]["annotations"][key] == "true", manifest["metadata"]["name"]
    task_template = yaml.safe_load(find(capture, "ConfigMap", "airflow-config")["data"]["pod_template_file.yaml"])
    jobs = [m["spec"]["template"] for _, m in capture.kubernetes_objects() if m["kind"] == "Job"]
    for pod in [task_template, *jobs]:
        assert key not in ((pod.get("metadata") or {}).get("annotations") or {})


def test_api_server_listens_on_8080_with_health_probes(dev):
    api = containers(deployment_pod(dev))["api-server"]
    assert 8080 in [p["containerPort"] for p in api["ports"]]
    line = command_line(api)
    if "--port" in line:
        assert line[line.index("--port") + 1] == "8080"
    for probe, path in (("startupProbe", "/execution/health"), ("livenessProbe", "/execution/health"),
                        ("readinessProbe", "/api/v2/monitor/health")):
        assert api[probe]["httpGet"]["path"] == path, probe
        assert port_number(api, api[probe]["httpGet"]["port"]) == 8080, probe


@pytest.mark.parametrize("name, job_type", [("scheduler", "SchedulerJob"), ("dag-processor", "DagProcessorJob"),
                                            ("triggerer", "TriggererJob")])
def test_job_processes_are_probed_with_jobs_check(dev, name, job_type):
    container = containers(deployment_pod(dev))[name]
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["exec"]["command"] == \
            ["airflow", "jobs", "check", "--job-type", job_type, "--local"], probe


def test_maintenance_cpu_limit_defaults_to_100m(dev):
    assert containers(deployment_pod(dev))["maintenance"]["resources"]["limits"]["cpu"] == "100m"


def test_maintenance_cpu_limit_follows_config(custom):
    assert containers(deployment_pod(custom))["maintenance"]["resources"]["limits"]["cpu"] == "250m"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_cloud_sql_proxy_sidecar_serves_the_instance_of_the_capture(request, stack):
    capture = request.getfixturevalue(stack)
    pod = deployment_pod(capture)
    assert "cloud-sql-proxy" not in containers(pod)
    proxy = init_containers(pod)["cloud-sql-proxy"]
    assert proxy["restartPolicy"] == "Always"
    for flag in ("--private-ip", "--structured-logs", "--health-check", "--http-address=0.0.0.0",
                 "--exit-zero-on-sigterm"):
        assert flag in proxy["args"], flag
    assert proxy["args"][-1] == connection_name(capture)
    http_port = next(int(a.split("=", 1)[1]) for a in proxy["args"] if a.startswith("--http-port="))
    for probe in ("startupProbe", "livenessProbe"):
        assert port_number(proxy, proxy[probe]["httpGet"]["port"]) == http_port, probe


@pytest.mark.parametrize("fixture, overrides", [("dev", {}), ("custom", CUSTOM)])
def test_git_sync_follows_the_config(request, fixture, overrides):
    capture = request.getfixturevalue(fixture)
    cfg = settings(capture, **overrides).airflow
    git_sync = containers(deployment_pod(capture))["git-sync"]
    assert re.fullmatch(r"registry\.k8s\.io/git-sync/git-sync:v4\.[0-9.]+", git_sync["image"])
    assert {k: env_value(git_sync, k) for k in ("GITSYNC_REPO", "GITSYNC_REF", "GITSYNC_PERIOD", "GITSYNC_ROOT",
                                                "GITSYNC_LINK", "GITSYNC_DEPTH", "GITSYNC_MAX_FAILURES")} == {
        "GITSYNC_REPO": cfg.dags_repo, "GITSYNC_REF": cfg.dags_ref, "GITSYNC_PERIOD": f"{cfg.git_sync_period_seconds}s",
        "GITSYNC_ROOT": "/git", "GITSYNC_LINK": "repo", "GITSYNC_DEPTH": "1",
        "GITSYNC_MAX_FAILURES": str(cfg.git_sync_max_failures)}
    if overrides:
        assert env_value(git_sync, "GITSYNC_REF") == "release-7"
        assert env_value(git_sync, "GITSYNC_PERIOD") == "120s"
        assert env_value(git_sync, "GITSYNC_MAX_FAILURES") == "4"


def test_init_order_git_sync_then_proxy_then_migration_wait(dev):
    pod = deployment_pod(dev)
    order = [c["name"] for c in pod["initContainers"]]
    assert order.index("git-sync-init") < order.index("cloud-sql-proxy") < order.index("wait-for-migrations")
    assert env_value(init_containers(pod)["git-sync-init"], "GITSYNC_ONE_TIME") == "true"
    assert command_line(init_containers(pod)["wait-for-migrations"])[:3] == ["airflow", "db", "check-migrations"]


@pytest.mark.parametrize("fixture, overrides", [("dev", {}), ("custom", CUSTOM)])
def test_dags_are_shared_through_one_empty_dir(request, fixture, overrides):
    capture = request.getfixturevalue(fixture)
    cfg = settings(capture, **overrides).airflow
    subpath, image = cfg.dags_subpath, cfg.image
    folder = "/opt/airflow/dags/repo" + (f"/{subpath}" if subpath else "")
    for kind, pod in pod_workloads(capture):
        if kind == "Job":
            continue
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes["dags"], kind
        for container in every_container(pod):
            mounts = [m for m in container.get("volumeMounts", []) if m["name"] == "dags"]
            if container["name"] in ("git-sync", "git-sync-init"):
                assert [m["mountPath"] for m in mounts] == ["/git"], (kind, container["name"])
            elif container["image"] == image:
                assert [(m["mountPath"], m.get("readOnly")) for m in mounts] == [("/opt/airflow/dags", True)], \
                    (kind, container["name"])
                assert env_value(container, "AIRFLOW__CORE__DAGS_FOLDER") == folder, (kind, container["name"])
    if overrides:
        assert folder == "/opt/airflow/dags/repo/pipelines/dags"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_container_is_hardened_and_sized(request, stack):
    capture = request.getfixturevalue(stack)
    image = settings(capture).airflow.image
    seen = set()
    for kind, pod in pod_workloads(capture):
        for container in every_container(pod):
            name = container["name"]
            if container["image"] == image:
                uid = AIRFLOW_UID
            elif "/git-sync/" in container["image"]:
                uid = GIT_SYNC_UID
            elif "/cloud-sql-proxy:" in container["image"]:
                uid = PROXY_UID
            elif container["image"] == STATSD_EXPORTER_IMAGE:
                uid = EXPORTER_UID
            else:
                pytest.fail(f"{kind}/{name}: unexpected image {container['image']}")
            seen.add(uid)
            for section in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][section]), (kind, name, section)
            security = container["securityContext"]
            assert security["runAsUser"] == uid, (kind, name)
            assert security["runAsNonRoot"] is True, (kind, name)
            assert security["allowPrivilegeEscalation"] is False, (kind, name)
            assert security["capabilities"]["drop"] == ["ALL"] and not security["capabilities"].get("add"), (kind, name)
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}, (kind, name)
            assert security["readOnlyRootFilesystem"] is True, (kind, name)
    git_sync = settings(capture).airflow.dag_source == "git-sync"
    assert seen == {AIRFLOW_UID, PROXY_UID, EXPORTER_UID, *([GIT_SYNC_UID] if git_sync else [])}


# --- environment and secrets --------------------------------------------------------------------

@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_airflow_env_settings_and_secret_references(request, stack):
    capture = request.getfixturevalue(stack)
    namespace = settings(capture).airflow.namespace
    url = f"http://airflow-api.{namespace}.svc.cluster.local:8080/execution/"
    secret = find(capture, "Secret", "airflow-secrets")
    image = settings(capture).airflow.image
    checked = 0
    for kind, pod in [w for w in pod_workloads(capture) if w[0] in ("Deployment", "Job")]:
        for container in every_container(pod):
            if container["image"] != image:
                continue
            checked += 1
            variables = env(container)
            assert env_value(container, "AIRFLOW__CORE__EXECUTOR") == "KubernetesExecutor"
            assert env_value(container, "AIRFLOW__CORE__AUTH_MANAGER") == FAB
            assert env_value(container, "AIRFLOW__CORE__EXECUTION_API_SERVER_URL") == url
            assert env_value(container, "AIRFLOW__LOGGING__REMOTE_LOGGING") == "True"
            assert env_value(container, "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER") == f"{logs_bucket_url(capture)}/logs"
            for name in SECRET_ENV:
                if name == "AIRFLOW__API_AUTH__JWT_SECRET" and container["name"] not in ("scheduler", "api-server"):
                    assert name not in variables, (kind, container["name"])  # test_pod_bounds.py
                    continue
                entry = variables[name]
                assert "value" not in entry, (kind, container["name"], name)
                ref = entry["valueFrom"]["secretKeyRef"]
                assert ref["name"] == "airflow-secrets", (kind, container["name"], name)
                assert ref["key"] in secret["stringData"], (kind, container["name"], name)
    assert checked >= 8  # 5 Deployment containers, wait-for-migrations, db-migrate, create-admin-user


def test_sql_alchemy_conn_goes_through_the_local_proxy(dev):
    container = containers(deployment_pod(dev))["scheduler"]
    key = env(container)["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]["valueFrom"]["secretKeyRef"]["key"]
    conn = secret_values(dev)[key]
    assert re.fullmatch(r"postgresql(\+psycopg2)?://[^:@/]+:[^@/]+@127\.0\.0\.1:5432/[^/]+", conn), "[redacted]"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_secret_value_is_inlined_anywhere(request, stack):
    capture = request.getfixturevalue(stack)
    secrets = [v for v in secret_values(capture).values() if v]
    # The database password itself (inside sql-alchemy-conn) must not leak either.
    secrets += [r.outputs["result"] for r in capture.of_type(RANDOM_TYPES[0])]
    assert len(secrets) >= 6
    for kind, pod in pod_workloads(capture):
        for container in every_container(pod):
            for entry in container.get("env", []):
                for secret in secrets:
                    assert secret not in entry.get("value", ""), f"{kind}/{container['name']}: {entry['name']} inlines a secret"
    for manifest in manifests(capture):
        if manifest["kind"] == "Secret":
            continue
        for text in strings(manifest):
            for secret in secrets:
                assert secret not in text, f"{manifest['kind']}/{manifest['metadata']['name']} contains a secret value"


def test_execution_api_service_exists_and_reaches_the_api_server(dev):
    url = env_value(containers(deployment_pod(dev))["scheduler"], "AIRFLOW__CORE__EXECUTION_API_SERVER_URL")
    match = re.fullmatch(r"http://([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:(\d+)/execution/", url)
    assert match, url
    service = find(dev, "Service", match.group(1))
    assert service["metadata"]["namespace"] == match.group(2)
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    deployment = find(dev, "Deployment", "airflow")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    port = next(p for p in service["spec"]["ports"] if p["port"] == int(match.group(3)))
    assert port_number(containers(deployment_pod(dev))["api-server"], port["targetPort"]) == 8080


def test_pod_template_is_mounted_where_airflow_reads_it(dev):
    pod = deployment_pod(dev)
    volume = next(v["name"] for v in pod["volumes"] if v.get("configMap", {}).get("name") == "airflow-config")
    for name in ("scheduler", "maintenance"):
        container = containers(pod)[name]
        path = env_value(container, "AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE")
        mounts = [m for m in container["volumeMounts"] if m["mountPath"] == path]
        assert [(m["name"], m["subPath"]) for m in mounts] == [(volume, "pod_template_file.yaml")], name


@pytest.mark.parametrize("fixture", ["dev", "prod", "custom"])
def test_pod_template_has_dags_logging_api_url_and_no_credentials(request, fixture):
    capture = request.getfixturevalue(fixture)
    template = pod_template(capture)
    pod = template["spec"]
    assert [c["name"] for c in pod["containers"]] == ["base"]
    base = pod["containers"][0]
    assert base["image"] == settings(capture).airflow.image
    if settings(capture).airflow.dag_source == "git-sync":
        assert [c["name"] for c in pod["initContainers"]] == ["git-sync-init"]
        assert env_value(pod["initContainers"][0], "GITSYNC_ONE_TIME") == "true"
    else:  # git-bundle: the base container fetches the pinned commit itself (tests/unit/test_dag_source.py)
        assert "initContainers" not in pod and base["command"][0] == "python"
    assert pod["serviceAccountName"] == "airflow-worker"
    assert find(capture, "ServiceAccount", "airflow-worker")
    deployment_env = containers(deployment_pod(capture))["scheduler"]
    assert env_value(base, "AIRFLOW__CORE__EXECUTION_API_SERVER_URL") == \
        env_value(deployment_env, "AIRFLOW__CORE__EXECUTION_API_SERVER_URL")
    assert env_value(base, "AIRFLOW__LOGGING__REMOTE_LOGGING") == "True"
    assert env_value(base, "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER") == f"{logs_bucket_url(capture)}/logs"
    assert env_value(base, "CONNECTION_CHECK_MAX_COUNT") == "0"
    forbidden_names = ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__FERNET_KEY",
                       "AIRFLOW__API_AUTH__JWT_SECRET")
    secret = secret_values(capture)
    forbidden_keys = {"sql-alchemy-conn", "fernet-key", "jwt-secret"}
    assert forbidden_keys <= set(secret)
    for container in every_container(pod):
        assert "envFrom" not in container, container["name"]
        for entry in container.get("env", []):
            assert not entry["name"].startswith(forbidden_names), entry["name"]
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            assert ref is None or (ref["name"], ref["key"]) not in {("airflow-secrets", k) for k in forbidden_keys}
    text = find(capture, "ConfigMap", "airflow-config")["data"]["pod_template_file.yaml"]
    for key in forbidden_keys:
        assert secret[key] not in text, key
        assert key not in text, key
    # Credentials must not hide in a mounted Secret either.
    assert not [v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == "airflow-secrets"]


# --- Services ------------------------------------------------------------------------------------

def ui_service(capture: Capture) -> dict:
    return find(capture, "Service", capture.outputs["airflow_ui_service"])


def assert_selects_the_api_server(capture: Capture, service: dict) -> None:
    deployment = find(capture, "Deployment", "airflow")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    api = containers(deployment_pod(capture))["api-server"]
    assert [port_number(api, p["targetPort"]) for p in service["spec"]["ports"]] == [8080]


def test_ui_service_is_cluster_ip_by_default(dev):
    service = ui_service(dev)
    assert service["spec"]["type"] == "ClusterIP"
    assert "loadBalancerSourceRanges" not in service["spec"]
    assert_selects_the_api_server(dev, service)


def test_ui_service_load_balancer_with_source_ranges(load_balancer):
    service = ui_service(load_balancer)
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["loadBalancerSourceRanges"] == ["203.0.113.0/24"]
    assert "networking.gke.io/load-balancer-type" not in service["metadata"].get("annotations", {})
    assert_selects_the_api_server(load_balancer, service)


def test_ui_service_internal_load_balancer(internal_load_balancer):
    service = ui_service(internal_load_balancer)
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["metadata"]["annotations"]["networking.gke.io/load-balancer-type"] == "Internal"
    assert service["spec"]["loadBalancerSourceRanges"] == ["10.0.0.0/8"]
    assert_selects_the_api_server(internal_load_balancer, service)


# --- identity ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fixture, overrides", [("dev", {}), ("prod", {}), ("custom", CUSTOM)])
def test_workload_identity_links_ksa_and_google_accounts(request, fixture, overrides):
    capture = request.getfixturevalue(fixture)
    cfg = settings(capture, **overrides)
    namespace = cfg.airflow.namespace
    members = {r.inputs["member"]: r for r in capture.of_type(WI_MEMBER)
               if r.inputs.get("role") == "roles/iam.workloadIdentityUser"}
    for ksa, suffix in (("airflow", "airflow"), ("airflow-worker", "worker")):
        account = google_account(capture, suffix)
        sa = find(capture, "ServiceAccount", ksa)
        assert sa["metadata"]["namespace"] == namespace
        assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == account.outputs["email"]
        member = f"serviceAccount:{cfg.project}.svc.id.goog[{namespace}/{ksa}]"
        assert member in members, sorted(members)
        binding = members[member]
        assert binding.inputs["serviceAccountId"] in (account.outputs["name"], account.outputs["email"],
                                                      account.outputs.get("id"))
        assert account.urn in binding.dependencies
    assert len(members) == 2 + len(cfg.airflow.task_identities)  # task identities: tests/unit/test_task_access.py
    if overrides:
        assert namespace == "orchestration"


def test_rbac_lets_the_airflow_ksa_launch_pods(dev):
    namespace = settings(dev).airflow.namespace
    binding = kinds(dev, "RoleBinding")
    assert len(binding) == 1
    binding = binding[0]
    role = find(dev, "Role", binding["roleRef"]["name"])
    assert binding["roleRef"]["kind"] == "Role"
    rules = {tuple(r["resources"]): set(r["verbs"]) for r in role["rules"]}
    assert rules[("pods",)] >= {"create", "get", "list", "watch", "patch", "delete"}
    assert rules[("pods/log",)] >= {"get"}
    assert rules[("events",)] >= {"list", "watch"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "airflow", "namespace": namespace}]
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == namespace
    assert deployment_pod(dev)["serviceAccountName"] == "airflow"


# --- network ---------------------------------------------------------------------------------

# The exporter's /metrics (9102, GMP's collectors) and StatsD (UDP 9125, the namespace's Airflow pods).
METRICS_PORTS = {("TCP", 9102), ("UDP", 9125)}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_network_policies(request, stack):
    capture = request.getfixturevalue(stack)
    policies = kinds(capture, "NetworkPolicy")
    deny = [p for p in policies if p["spec"]["podSelector"] == {}]
    assert len(deny) == 1
    assert deny[0]["spec"]["policyTypes"] == ["Ingress"] and not deny[0]["spec"].get("ingress")
    pod_labels = find(capture, "Deployment", "airflow")["spec"]["template"]["metadata"]["labels"]
    opened, from_some = set(), set()
    for policy in policies:
        selector = policy["spec"]["podSelector"]
        assert set(selector) <= {"matchLabels", "matchExpressions"}
        expressions_match = all(e["operator"] == "In" and pod_labels.get(e["key"]) in e["values"]
                                for e in selector.get("matchExpressions", []))
        if selector.get("matchLabels", {}).items() <= pod_labels.items() and expressions_match:
            for rule in policy["spec"].get("ingress", []):
                assert rule.get("ports"), f"{policy['metadata']['name']} opens every port of the Airflow pods"
                ports = {(p.get("protocol", "TCP"), p["port"]) for p in rule["ports"]}
                opened |= ports
                if ports & METRICS_PORTS:  # to named sources only: GMP's collectors, the namespace's Airflow pods
                    from_some |= ports
                    assert rule.get("from") and all(f.get("namespaceSelector") or f["podSelector"].get("matchLabels")
                                                    for f in rule["from"]), policy["metadata"]["name"]
    # the API/UI; trigger logs (Airflow pods only: test_pod_bounds); metrics
    assert opened == {("TCP", 8080), ("TCP", 8794)} | METRICS_PORTS
    assert from_some == METRICS_PORTS


# --- availability ----------------------------------------------------------------------------

def test_dev_runs_one_replica_without_pdb(dev):
    assert find(dev, "Deployment", "airflow")["spec"]["replicas"] == 1
    assert kinds(dev, "PodDisruptionBudget") == []


def test_prod_runs_two_replicas_with_pdb_and_safe_rollout(prod):
    deployment = find(prod, "Deployment", "airflow")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pdbs = kinds(prod, "PodDisruptionBudget")
    assert len(pdbs) == 1
    assert pdbs[0]["spec"]["minAvailable"] == 1
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdbs[0]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    zone = [c for c in spread if c["topologyKey"] == "topology.kubernetes.io/zone"]
    assert zone and zone[0]["labelSelector"]["matchLabels"].items() <= pod_labels.items()


# --- the migration Job -----------------------------------------------------------------------------

def test_migration_job_name_changes_with_the_admin_password(dev):
    """The Job's pod template is immutable: only a new name re-runs the admin step after a rotation."""
    name = migration_job(dev)["metadata"]["name"]
    for overrides in ({"secretsVersion": "2"}, {"adminEmail": "ops@example.org"}):
        assert migration_job(run_stack("dev", **overrides))["metadata"]["name"] != name, overrides


def test_migration_job_name_changes_with_the_image_only(dev, custom):
    name = migration_job(dev)["metadata"]["name"]
    assert migration_job(custom)["metadata"]["name"] == name  # many settings changed, not the image
    other = run_stack("dev", airflowImage="apache/airflow:3.3.1-python3.12")
    assert migration_job(other)["metadata"]["name"] != name
    assert containers(deployment_pod(other))["scheduler"]["image"] == "apache/airflow:3.3.1-python3.12"


def test_migration_job_migrates_behind_the_proxy_then_creates_the_admin(dev):
    pod = migration_job(dev)["spec"]["template"]["spec"]
    inits = pod["initContainers"]
    names = [c["name"] for c in inits]
    proxy_index = names.index("cloud-sql-proxy")
    assert inits[proxy_index]["restartPolicy"] == "Always"
    assert inits[proxy_index]["args"][-1] == connection_name(dev)
    migrate = [i for i, c in enumerate(inits) if command_line(c) == ["airflow", "db", "migrate"]]
    assert migrate and migrate[0] > proxy_index
    assert len(pod["containers"]) == 1
    create = pod["containers"][0]
    line = command_line(create)
    assert line[:2] == ["bash", "-c"]
    script = line[2]
    # create if missing, then set the password either way (a rotated password must reach Airflow)
    assert script.index("airflow users create --role Admin ") < script.index("airflow users reset-password ")
    usernames = set(re.findall(r'--username "\$(\w+)"', script))
    assert len(usernames) == 1 and env(create)[usernames.pop()]["value"] == settings(dev).airflow.admin_username
    passwords = set(re.findall(r'--password "\$(\w+)"', script))
    assert len(passwords) == 1 and secret_values(dev)["admin-password"] not in script
    ref = env(create)[passwords.pop()]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == "airflow-secrets" and ref["key"] == "admin-password"


# --- random secrets and outputs ---------------------------------------------------------------

def test_fernet_key_is_32_urlsafe_bytes(dev):
    key = secret_values(dev)["fernet-key"]
    assert len(key) == 44 and key.endswith("=")
    assert len(base64.urlsafe_b64decode(key.encode())) == 32


def randoms(capture: Capture) -> dict:
    return {(r.type, r.name): r.inputs for r in capture.resources if r.type in RANDOM_TYPES}


def test_random_secrets_are_stable_across_runs(dev):
    again = run_program("dev")
    assert randoms(again) == randoms(dev)
    assert {("random:index/randomId:RandomId", "airflow-fernet-key")} <= set(randoms(dev))
    assert secret_values(again) == secret_values(dev)


def test_admin_password_output_is_secret(dev):
    assert "airflow_admin_password" in dev.secret_outputs
    assert dev.outputs["airflow_admin_password"] == secret_values(dev)["admin-password"]


def test_configured_admin_password_replaces_the_random_one(dev):
    assert any(r.name.endswith("admin-password") for r in dev.of_type(RANDOM_TYPES[0]))
    config = stack_config("dev", adminPassword="Correct-Horse-Battery-42")
    capture = run_program("dev", config, secret_keys=["airflow-gke:adminPassword"])
    assert not [r.name for r in capture.of_type(RANDOM_TYPES[0]) if "admin" in r.name]
    assert secret_values(capture)["admin-password"] == "Correct-Horse-Battery-42"
    assert "airflow_admin_password" in capture.secret_outputs
    secret = capture.one("kubernetes:core/v1:Secret")
    assert "Correct-Horse-Battery-42" not in str(secret.masked_inputs)
    # A different credential is a different digest in the pod template: the pods roll to pick it up.
    checksum = deployment_pod_annotations(capture)["checksum/secrets"]
    assert checksum != deployment_pod_annotations(dev)["checksum/secrets"]
    assert len(checksum) == 64 and all(v not in checksum for v in secret_values(capture).values())


def deployment_pod_annotations(capture: Capture) -> dict:
    return find(capture, "Deployment", "airflow")["spec"]["template"]["metadata"]["annotations"]


def test_deployment_pod_annotations_are_plain_and_stable(dev):
    deployment = next(r for r in dev.of_type("kubernetes:apps/v1:Deployment"))
    assert deployment.masked_inputs["spec"]["template"]["metadata"]["annotations"] == deployment_pod_annotations(dev)
    assert deployment_pod_annotations(run_stack("dev")) == deployment_pod_annotations(dev)


# --- namespace and labels -------------------------------------------------------------------------

NAMESPACED = {"ServiceAccount", "ConfigMap", "Secret", "Service", "Role", "RoleBinding", "NetworkPolicy",
              "PodDisruptionBudget", "Deployment", "Job", "CronJob", "PodMonitoring"}
# Cluster-scoped besides the Namespace: their name carries the namespace, so two workloads in one cluster
# (each in its own namespace) never declare the same object.
CLUSTER_SCOPED = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}


@pytest.mark.parametrize("fixture, overrides", [("dev", {}), ("prod", {}), ("custom", CUSTOM)])
def test_namespace_labels_and_placement(request, fixture, overrides):
    capture = request.getfixturevalue(fixture)
    namespace = settings(capture, **overrides).airflow.namespace
    objects = manifests(capture)
    namespaces = [m for m in objects if m["kind"] == "Namespace"]
    assert [n["metadata"]["name"] for n in namespaces] == [namespace]
    assert namespaces[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for manifest in [*objects, pod_template(capture)]:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        assert kind in NAMESPACED | CLUSTER_SCOPED | {"Namespace", "Pod"}, f"unexpected kind {kind}"
        if kind in CLUSTER_SCOPED:
            assert "namespace" not in manifest["metadata"] and name.endswith(f"-{namespace}"), (kind, name)
        elif kind != "Namespace":
            assert manifest["metadata"].get("namespace") == namespace, (kind, name)
        labels = manifest["metadata"].get("labels", {})
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
                    "app.kubernetes.io/managed-by"):
            assert labels.get(key), (kind, name, key)
    assert capture.outputs["airflow_namespace"] == namespace
