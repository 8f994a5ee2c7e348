"""The `airflow-gke-security` policy pack (policy/): it passes on every stack we declare, and each rule
catches a resource that breaks it. The pack itself (`PolicyPack`) is never built here: it starts a gRPC
server and blocks; the rules are plain callables run through `rules.evaluate` / `rules.check`."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from pulumi_policy import ResourceValidationPolicy
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UNKNOWN_STRING_VALUE

from policy import rules
from tests.conftest import run_stack

ROOT = Path(__file__).resolve().parents[2]
BAD = "bad-resource"  # logical name of every crafted violating resource: messages must name it

SQL = rules.SQL_INSTANCE
GKE = rules.GKE_CLUSTER
POOL = rules.GKE_NODE_POOL
BUCKET = rules.BUCKET
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
PROJECT_BINDING = "gcp:projects/iAMBinding:IAMBinding"
BUCKET_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
REPO_MEMBER = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
SA_MEMBER = "gcp:serviceaccount/iAMMember:IAMMember"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
JOB = "kubernetes:batch/v1:Job"
CRONJOB = "kubernetes:batch/v1:CronJob"
POD = "kubernetes:core/v1:Pod"
CONFIGMAP = rules.K8S_CONFIG_MAP
SERVICE = rules.K8S_SERVICE


# ---------------------------------------------------------------------------------------------
# Compliant Kubernetes objects (the shape the Airflow workload is expected to have)


def container(name: str, image: str = "europe-west4-docker.pkg.dev/p/airflow/airflow:3.1.7-1") -> dict:
    return {
        "name": name,
        "image": image,
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "readOnlyRootFilesystem": True},
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"},
                      "limits": {"cpu": "1", "memory": "1Gi"}},
    }


def pod_spec() -> dict:
    sidecar = container("cloud-sql-proxy", "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.0")
    sidecar["restartPolicy"] = "Always"  # native sidecar
    return {
        "serviceAccountName": "airflow",
        "securityContext": {"runAsNonRoot": True, "runAsUser": 50000, "fsGroup": 0,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [container("wait-for-migrations"), sidecar],
        "containers": [container("scheduler"),
                       container("git-sync", "registry.k8s.io/git-sync/git-sync@sha256:" + "a" * 64)],
        "volumes": [{"name": "dags", "emptyDir": {}}, {"name": "config", "configMap": {"name": "airflow"}}],
    }


def deployment() -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"namespace": "airflow"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "airflow"}},
                     "template": {"metadata": {"labels": {"app": "airflow"}}, "spec": pod_spec()}}}


def cronjob() -> dict:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"namespace": "airflow"},
            "spec": {"schedule": "0 0 * * 0",
                     "jobTemplate": {"spec": {"template": {"spec": {**pod_spec(), "restartPolicy": "Never"}}}}}}


def job() -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job",
            "spec": {"template": {"spec": {**pod_spec(), "restartPolicy": "Never"}}}}


def statefulset() -> dict:
    return {**deployment(), "kind": "StatefulSet"}


def pod() -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "spec": pod_spec()}


def worker_template(**overrides: Any) -> dict:
    """Airflow's KubernetesExecutor pod template: one container `base`, image set by Airflow."""
    base = container("base")
    del base["image"]
    spec = {**pod_spec(), "containers": [base], "restartPolicy": "Never"}
    spec.update(overrides)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "placeholder"}, "spec": spec}


def pod_template_configmap(template: Optional[dict] = None) -> dict:
    import yaml

    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "airflow"},
            "data": {"airflow.cfg": "[core]\nexecutor = KubernetesExecutor\n",
                     "pod_template_file.yaml": yaml.safe_dump(template or worker_template())}}


def lb_service(ranges: Optional[list] = None) -> dict:
    spec: dict = {"type": "LoadBalancer", "selector": {"app": "airflow"}, "ports": [{"port": 443, "targetPort": 8080}]}
    if ranges is not None:
        spec["loadBalancerSourceRanges"] = ranges
    return {"apiVersion": "v1", "kind": "Service", "spec": spec}


KUBERNETES_BASES: dict[str, Callable[[], dict]] = {
    DEPLOYMENT: deployment, STATEFULSET: statefulset, JOB: job, CRONJOB: cronjob, POD: pod,
    CONFIGMAP: pod_template_configmap, SERVICE: lambda: lb_service(["203.0.113.0/24"]),
}


# ---------------------------------------------------------------------------------------------
# Violating cases: a compliant base (from a stack capture, or crafted) with one property broken


@dataclass
class Case:
    id: str
    policy: str
    type: str
    breaks: Callable[[dict], Any]
    """Mutates a deep copy of the compliant base in place (or returns `Replace(props)`)."""
    mentions: str
    """A word of the expected message that names the problem."""
    base: str = "dev"
    """`dev`, `prod`, `autopilot` (inputs of that capture's resource of `type`), `k8s` (KUBERNETES_BASES),
    or `none` (start from {})."""


def at(*path: Any) -> Callable[[dict], Any]:
    """A getter for a nested path, used to write cases tersely."""
    def get(obj: dict) -> Any:
        for key in path:
            obj = obj[key]
        return obj
    return get


sql_ip = at("settings", "ipConfiguration")
sql_backup = at("settings", "backupConfiguration")
deploy_pod = at("spec", "template", "spec")
cron_pod = at("spec", "jobTemplate", "spec", "template", "spec")


def set_(getter: Callable[[dict], dict], key: str, value: Any) -> Callable[[dict], None]:
    return lambda props: getter(props).__setitem__(key, value)


def drop(getter: Callable[[dict], dict], key: str) -> Callable[[dict], None]:
    return lambda props: getter(props).pop(key)


def first(field: str, getter: Callable[[dict], dict] = deploy_pod) -> Callable[[dict], dict]:
    return lambda props: getter(props)[field][0]


def context_of(field: str, getter: Callable[[dict], dict] = deploy_pod) -> Callable[[dict], dict]:
    return lambda props: first(field, getter)(props)["securityContext"]


@dataclass
class Replace:
    """Returned by a `breaks` function that builds the violating props itself."""
    props: dict


def break_template(mutate: Callable[[dict], None]) -> Callable[[dict], Replace]:
    """A ConfigMap whose pod template (KubernetesExecutor pod_template_file.yaml) is broken by `mutate`."""
    def breaks(_: dict) -> Replace:
        template = worker_template()
        mutate(template["spec"])
        return Replace(pod_template_configmap(template))
    return breaks


CASES = [
    # Cloud SQL
    Case("sql-ipv4-enabled", "cloudsql-no-public-ip", SQL, set_(sql_ip, "ipv4Enabled", True), "ipv4Enabled"),
    Case("sql-ipv4-unset", "cloudsql-no-public-ip", SQL, drop(sql_ip, "ipv4Enabled"), "ipv4Enabled"),
    Case("sql-no-ip-configuration", "cloudsql-no-public-ip", SQL, drop(at("settings"), "ipConfiguration"),
         "public IPv4"),
    Case("sql-open-authorized-network", "cloudsql-no-open-authorized-networks", SQL,
         set_(sql_ip, "authorizedNetworks", [{"name": "office", "value": "198.51.100.0/24"},
                                             {"name": "anywhere", "value": "0.0.0.0/0"}]), "0.0.0.0/0"),
    Case("sql-backups-off", "cloudsql-backups-and-pitr", SQL, set_(sql_backup, "enabled", False),
         "backupConfiguration.enabled"),
    Case("sql-no-backup-configuration", "cloudsql-backups-and-pitr", SQL,
         drop(at("settings"), "backupConfiguration"), "automated backups off"),
    Case("sql-pitr-off", "cloudsql-backups-and-pitr", SQL, set_(sql_backup, "pointInTimeRecoveryEnabled", False),
         "pointInTimeRecoveryEnabled", base="prod"),
    Case("sql-deletion-protection-off", "cloudsql-deletion-protection", SQL,
         set_(at(), "deletionProtection", False), "deletionProtection=true"),
    Case("sql-api-deletion-protection-off", "cloudsql-deletion-protection", SQL,
         set_(at("settings"), "deletionProtectionEnabled", False), "settings.deletionProtectionEnabled"),
    # GKE
    Case("gke-public-nodes", "gke-private-nodes", GKE, set_(at("privateClusterConfig"), "enablePrivateNodes", False),
         "enablePrivateNodes"),
    Case("gke-no-private-cluster-config", "gke-private-nodes", GKE, drop(at(), "privateClusterConfig"),
         "private nodes", base="autopilot"),
    Case("gke-no-workload-identity", "gke-workload-identity", GKE, drop(at(), "workloadIdentityConfig"),
         "workloadPool"),
    Case("gke-legacy-abac", "gke-no-legacy-abac", GKE, set_(at(), "enableLegacyAbac", True), "enableLegacyAbac"),
    Case("gke-basic-auth", "gke-no-basic-auth", GKE,
         set_(at("masterAuth"), "username", "admin"), "basic authentication"),
    Case("gke-client-certificate", "gke-no-client-certificate", GKE,
         set_(at("masterAuth", "clientCertificateConfig"), "issueClientCertificate", True), "issueClientCertificate"),
    Case("gke-unshielded-nodes", "gke-shielded-nodes", GKE, set_(at(), "enableShieldedNodes", False),
         "enableShieldedNodes"),
    Case("gke-default-compute-sa", "gke-no-default-node-service-account", GKE,
         set_(at("nodeConfig"), "serviceAccount", "123456789012-compute@developer.gserviceaccount.com"),
         "default compute service account"),
    Case("gke-node-sa-unset", "gke-no-default-node-service-account", GKE,
         drop(at("nodeConfig"), "serviceAccount"), "nodeConfig.serviceAccount is unset"),
    Case("node-pool-default-sa", "gke-no-default-node-service-account", POOL,
         set_(at("nodeConfig"), "serviceAccount", "default"), "nodeConfig.serviceAccount is 'default'"),
    Case("autopilot-default-sa", "gke-no-default-node-service-account", GKE,
         drop(at("clusterAutoscaling", "autoProvisioningDefaults"), "serviceAccount"),
         "autoProvisioningDefaults.serviceAccount", base="autopilot"),
    Case("gke-no-dataplane-v2", "gke-network-policy", GKE, drop(at(), "datapathProvider"), "NetworkPolicy"),
    Case("gke-legacy-datapath-policy-off", "gke-network-policy", GKE,
         lambda p: p.update(datapathProvider="LEGACY_DATAPATH", networkPolicy={"enabled": False}), "ADVANCED_DATAPATH"),
    # IAM
    Case("service-account-key", "iam-no-service-account-keys", "gcp:serviceaccount/key:Key",
         lambda p: p.update(serviceAccountId="projects/p/serviceAccounts/ci@p.iam.gserviceaccount.com"),
         "key", base="none"),
    Case("project-member-owner", "iam-no-primitive-roles", PROJECT_MEMBER, set_(at(), "role", "roles/owner"),
         "roles/owner"),
    Case("project-binding-editor", "iam-no-primitive-roles", PROJECT_BINDING,
         lambda p: p.update(project="p", role="roles/editor", members=["group:devs@example.com"]), "roles/editor",
         base="none"),
    Case("project-policy-owner", "iam-no-primitive-roles", "gcp:projects/iAMPolicy:IAMPolicy",
         lambda p: p.update(project="p", policyData=json.dumps(
             {"bindings": [{"role": "roles/owner", "members": ["user:a@example.com"]}]})), "roles/owner", base="none"),
    Case("bucket-member-viewer", "iam-no-primitive-roles", BUCKET_MEMBER, set_(at(), "role", "roles/viewer"),
         "roles/viewer"),
    Case("repository-member-editor", "iam-no-primitive-roles", REPO_MEMBER, set_(at(), "role", "roles/editor"),
         "roles/editor"),
    Case("service-account-member-owner", "iam-no-primitive-roles", SA_MEMBER, set_(at(), "role", "roles/owner"),
         "roles/owner"),
    # Cloud Storage
    Case("bucket-pap-inherited", "storage-public-access-prevention", BUCKET,
         set_(at(), "publicAccessPrevention", "inherited"), "publicAccessPrevention"),
    Case("bucket-pap-unset", "storage-public-access-prevention", BUCKET, drop(at(), "publicAccessPrevention"),
         "unset"),
    Case("bucket-acls", "storage-uniform-bucket-level-access", BUCKET,
         set_(at(), "uniformBucketLevelAccess", False), "uniformBucketLevelAccess"),
    # Kubernetes workloads
    Case("no-run-as-non-root", "k8s-run-as-non-root", DEPLOYMENT,
         drop(at("spec", "template", "spec", "securityContext"), "runAsNonRoot"), "runAsNonRoot", base="k8s"),
    Case("container-run-as-root", "k8s-run-as-non-root", DEPLOYMENT,
         set_(context_of("containers"), "runAsUser", 0), "runAsUser=0", base="k8s"),
    Case("init-container-not-non-root", "k8s-run-as-non-root", DEPLOYMENT,
         set_(context_of("initContainers"), "runAsNonRoot", False), "init container 'wait-for-migrations'", base="k8s"),
    Case("privilege-escalation", "k8s-no-privilege-escalation", DEPLOYMENT,
         set_(context_of("containers"), "allowPrivilegeEscalation", True), "allowPrivilegeEscalation", base="k8s"),
    Case("init-privilege-escalation-unset", "k8s-no-privilege-escalation", STATEFULSET,
         drop(context_of("initContainers"), "allowPrivilegeEscalation"), "init container", base="k8s"),
    Case("privileged", "k8s-no-privileged-containers", DEPLOYMENT,
         set_(context_of("containers"), "privileged", True), "privileged=true", base="k8s"),
    Case("cronjob-privileged", "k8s-no-privileged-containers", CRONJOB,
         set_(context_of("containers", cron_pod), "privileged", True), "privileged=true", base="k8s"),
    Case("host-path", "k8s-no-host-path-volumes", DEPLOYMENT,
         lambda p: deploy_pod(p)["volumes"].append({"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}),
         "hostPath", base="k8s"),
    Case("host-network", "k8s-no-host-namespaces", DEPLOYMENT, set_(deploy_pod, "hostNetwork", True),
         "hostNetwork", base="k8s"),
    Case("host-pid", "k8s-no-host-namespaces", POD, set_(at("spec"), "hostPID", True), "hostPID", base="k8s"),
    Case("host-ipc", "k8s-no-host-namespaces", JOB, set_(at("spec", "template", "spec"), "hostIPC", True),
         "hostIPC", base="k8s"),
    Case("no-memory-limit", "k8s-resource-requests-and-limits", DEPLOYMENT,
         lambda p: first("containers")(p)["resources"]["limits"].pop("memory"), "limits.memory", base="k8s"),
    Case("init-no-requests", "k8s-resource-requests-and-limits", DEPLOYMENT,
         lambda p: first("initContainers")(p)["resources"].pop("requests"), "requests.cpu", base="k8s"),
    Case("latest-image", "k8s-pinned-images", DEPLOYMENT,
         set_(first("containers"), "image", "apache/airflow:latest"), ":latest", base="k8s"),
    Case("untagged-image", "k8s-pinned-images", CRONJOB,
         set_(first("initContainers", cron_pod), "image", "localhost:5000/airflow"), "without a tag", base="k8s"),
    Case("no-image", "k8s-pinned-images", DEPLOYMENT, drop(first("containers"), "image"), "no image", base="k8s"),
    Case("template-latest-image", "k8s-pinned-images", CONFIGMAP,
         break_template(lambda spec: spec["containers"][0].update(image="apache/airflow:latest")),
         "pod_template_file.yaml", base="k8s"),
    Case("template-runs-as-root", "k8s-run-as-non-root", CONFIGMAP,
         break_template(lambda spec: spec["securityContext"].pop("runAsNonRoot")), "container 'base'", base="k8s"),
    Case("template-no-limits", "k8s-resource-requests-and-limits", CONFIGMAP,
         break_template(lambda spec: spec["containers"][0]["resources"].pop("limits")), "limits.cpu", base="k8s"),
    Case("lb-without-source-ranges", "k8s-loadbalancer-source-ranges", SERVICE,
         drop(at("spec"), "loadBalancerSourceRanges"), "loadBalancerSourceRanges", base="k8s"),
    Case("lb-open-to-internet", "k8s-loadbalancer-source-ranges", SERVICE,
         set_(at("spec"), "loadBalancerSourceRanges", ["10.0.0.0/8", "0.0.0.0/0"]), "0.0.0.0/0", base="k8s"),
    # the whole internet in two halves: no single entry is /0
    Case("lb-open-in-two-halves", "k8s-loadbalancer-source-ranges", SERVICE,
         set_(at("spec"), "loadBalancerSourceRanges", ["0.0.0.0/1", "128.0.0.0/1"]), "128.0.0.0/1", base="k8s"),
]


def compliant_base(case: Case, captures: dict) -> dict:
    if case.base == "none":
        return {}
    if case.base == "k8s":
        return KUBERNETES_BASES[case.type]()
    return copy.deepcopy(next(r for r in captures[case.base].resources if r.type == case.type).inputs)


@pytest.fixture(scope="module")
def captures(dev, prod, autopilot) -> dict:
    return {"dev": dev, "prod": prod, "autopilot": autopilot}


# ---------------------------------------------------------------------------------------------
# The pack


def test_pack_shape():
    names = rules.policy_names()
    assert len(names) == len(set(names)), "policy names must be unique"
    assert all(isinstance(p, ResourceValidationPolicy) and p.description for p in rules.ALL_POLICIES)
    assert 20 <= len(names) <= 25  # CrossGuard has documented a 25-policies-per-pack limit


def test_pack_files():
    import yaml

    project = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text())
    assert project["runtime"] == "python" and project["description"]
    requirements = (ROOT / "policy" / "requirements.txt").read_text().split()
    assert "pulumi-policy==1.21.0" in requirements and "pulumi==3.272.0" in requirements


def test_entry_point_imports_rules_from_any_directory(tmp_path):
    """Load policy/__main__.py the way the engine does (runpy) from another directory, without
    building the pack (run_name is not __main__, so PolicyPack is not constructed)."""
    script = ("import runpy, sys; g = runpy.run_path(sys.argv[1], run_name='pack_under_test'); "
              "print(g['PACK_NAME'], len(g['ALL_POLICIES']))")
    for target in (ROOT / "policy", ROOT / "policy" / "__main__.py"):
        result = subprocess.run([sys.executable, "-c", script, str(target)], cwd=tmp_path,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["airflow-gke-security", str(len(rules.ALL_POLICIES))]


# ---------------------------------------------------------------------------------------------
# (a) Our stacks comply


@pytest.mark.parametrize("stack", ["dev", "prod", "autopilot"])
def test_every_resource_of_the_stack_passes_every_rule(stack, captures):
    capture = captures[stack]
    violations = {f"{r.type} {r.name}": found for r in capture.resources
                  if (found := rules.evaluate(r.type, r.inputs, r.name))}
    assert violations == {}
    types = {r.type for r in capture.resources}
    assert {SQL, GKE, BUCKET, PROJECT_MEMBER} <= types  # the rules really ran on the resources they guard


def analyze_like_the_engine(resource_type: str, props: dict, name: str) -> list:
    """Run the pack's analyzer servicer (what `PolicyPack` serves over gRPC, without the server) on
    props serialized as the engine sends them (protobuf Struct: every number a float)."""
    from google.protobuf import json_format, struct_pb2
    from pulumi.runtime.proto import analyzer_pb2
    from pulumi_policy import EnforcementLevel
    from pulumi_policy import policy as sdk

    servicer_class = getattr(sdk, "_PolicyAnalyzerServicer", None)
    if servicer_class is None:  # private API of pulumi-policy 1.21.0
        pytest.skip("pulumi_policy internals changed")
    servicer = servicer_class(rules.PACK_NAME, "0.0.1", rules.ALL_POLICIES, EnforcementLevel.MANDATORY)
    properties = struct_pb2.Struct()
    json_format.ParseDict(json.loads(json.dumps(props)), properties)
    request = analyzer_pb2.AnalyzeRequest(type=resource_type, properties=properties, name=name,
                                          urn=f"urn:pulumi:dev::airflow-gke::{resource_type}::{name}")
    return list(servicer.Analyze(request, None).diagnostics)


@pytest.mark.parametrize("stack", ["dev", "prod", "autopilot"])
def test_the_engine_path_agrees(stack, captures):
    diagnostics = {f"{r.type} {r.name}": [d.message for d in found] for r in captures[stack].resources
                   if (found := analyze_like_the_engine(r.type, r.inputs, r.name))}
    assert diagnostics == {}


def test_the_engine_path_reports_violations():
    broken = deployment()
    context_of("containers")(broken)["runAsUser"] = 0
    diagnostics = analyze_like_the_engine(DEPLOYMENT, broken, BAD)
    assert [d.policyName for d in diagnostics] == ["k8s-run-as-non-root"]
    assert "runAsUser=0" in diagnostics[0].message and f"'{BAD}'" in diagnostics[0].message


def test_the_workload_pod_specs_are_found(captures):
    """Every pod-carrying Kubernetes resource of the stacks (components/airflow) exposes its containers
    to the rules, and a ConfigMap holding the KubernetesExecutor pod template is inspected too."""
    from pulumi_policy import ResourceValidationArgs

    for capture in captures.values():
        for r in capture.resources:
            args = ResourceValidationArgs(r.type, r.inputs, r.urn, r.name, None, None)
            if r.type.startswith("kubernetes:") and rules._kind(r.type) in rules.POD_SPEC_PATHS:
                specs = rules.pod_specs(args)
                assert specs and all(list(s.containers()) for s in specs), f"{r.name}: no containers found"
            if r.type == CONFIGMAP and "pod_template_file.yaml" in (r.inputs.get("data") or {}):
                assert rules.pod_specs(args), f"{r.name}: pod template not found"


@pytest.mark.parametrize("kind", sorted(KUBERNETES_BASES))
def test_compliant_kubernetes_objects_pass(kind):
    assert rules.check(kind, KUBERNETES_BASES[kind](), "airflow") == []


@pytest.mark.parametrize("props", [
    {"spec": {"type": "ClusterIP", "ports": [{"port": 8080}]}},
    {"spec": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["203.0.113.0/24", "198.51.100.7/32"]}},
], ids=["cluster-ip", "restricted-lb"])
def test_services_that_pass(props):
    assert rules.check(SERVICE, props, "airflow-api") == []


def test_pod_level_non_root_and_digest_images_pass():
    props = deployment()
    for c in deploy_pod(props)["containers"]:
        c["securityContext"].pop("runAsNonRoot", None)
        c["image"] = "apache/airflow@sha256:" + "b" * 64
    assert rules.check(DEPLOYMENT, props, "airflow") == []


def test_configmaps_without_pod_templates_pass():
    props = {"data": {"airflow.cfg": "[core]\ncontainers = not yaml: [", "webserver_config.py": "x = 1"}}
    assert rules.check(CONFIGMAP, props, "airflow-config") == []


def test_mysql_pitr_uses_binary_logging(captures):
    props = copy.deepcopy(captures["dev"].one(SQL).inputs)
    props["databaseVersion"] = "MYSQL_8_0"
    props["settings"]["backupConfiguration"].pop("pointInTimeRecoveryEnabled")
    props["settings"]["backupConfiguration"]["binaryLogEnabled"] = True
    assert rules.check(SQL, props, "mysql") == []
    props["settings"]["backupConfiguration"]["binaryLogEnabled"] = False
    assert any("binaryLogEnabled" in m for m in rules.check(SQL, props, "mysql"))


# ---------------------------------------------------------------------------------------------
# (b) Every rule catches what it forbids


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule_reports_the_violation(case: Case, captures):
    base = compliant_base(case, captures)
    if case.base != "none":
        assert rules.check(case.type, base, BAD) == [], "the base must be compliant before it is broken"
    result = case.breaks(base)
    props = result.props if isinstance(result, Replace) else base
    findings = rules.evaluate(case.type, props, BAD)
    messages = [message for name, message in findings if name == case.policy]
    assert messages, f"{case.policy} reported nothing; all findings: {findings}"
    assert any(case.mentions in m for m in messages), messages
    for message in messages:
        assert f"'{BAD}'" in message and "Fix: " in message, message
    assert rules.check(case.type, props, BAD) == [m for _, m in findings]


def test_every_policy_has_a_violating_case():
    covered = {case.policy for case in CASES}
    assert covered >= set(rules.policy_names()), sorted(set(rules.policy_names()) - covered)
    assert covered <= set(rules.policy_names()), sorted(covered - set(rules.policy_names()))


def test_the_pack_blocks_a_real_misconfiguration_of_the_program():
    """End to end: the program with API deletion protection turned off for the database."""
    capture = run_stack("dev", dbDeletionProtection="false")
    instance = capture.one(SQL)
    messages = rules.check(instance.type, instance.inputs, instance.name)
    assert any("deletionProtectionEnabled" in m and instance.name in m for m in messages), messages


def test_the_ui_load_balancer_needs_source_ranges():
    """The program's UI Service as a LoadBalancer: allowed with source ranges; `allowPublicUi` (the
    program's own escape hatch) is still blocked by the mandatory pack."""
    restricted = run_stack("dev", serviceType="LoadBalancer", loadBalancerSourceRanges='["203.0.113.0/24"]')
    services = [r for r in restricted.of_type(SERVICE) if r.inputs["spec"]["type"] == "LoadBalancer"]
    assert services and all(rules.check(r.type, r.inputs, r.name) == [] for r in services)
    public = run_stack("dev", serviceType="LoadBalancer", allowPublicUi="true")
    services = [r for r in public.of_type(SERVICE) if r.inputs["spec"]["type"] == "LoadBalancer"]
    assert services and all(any("loadBalancerSourceRanges" in m for m in rules.check(r.type, r.inputs, r.name))
                            for r in services)


# ---------------------------------------------------------------------------------------------
# Values unknown during preview


def test_unknown_values_defer_only_the_rules_that_read_them(captures):
    """At preview, outputs of other resources are unknown; the engine reports the affected rules as
    advisory ("can't run during preview") and enforces them at `pulumi up`. Rules that do not read the
    unknown value still run."""
    cluster = copy.deepcopy(captures["dev"].one(GKE).inputs)
    cluster["nodeConfig"]["serviceAccount"] = UNKNOWN_STRING_VALUE
    cluster["enableLegacyAbac"] = True
    unknown: list[str] = []
    findings = rules.evaluate(GKE, cluster, BAD, unknown=unknown)
    assert unknown == ["gke-no-default-node-service-account"]
    assert [name for name, _ in findings] == ["gke-no-legacy-abac"]


def test_unknown_values_in_messages_do_not_hide_a_violation():
    props = {"serviceAccountId": UNKNOWN_STRING_VALUE}
    unknown: list[str] = []
    findings = rules.evaluate("gcp:serviceaccount/key:Key", props, BAD, unknown=unknown)
    assert unknown == [] and [name for name, _ in findings] == ["iam-no-service-account-keys"]
    assert rules.check(SQL, {"deletionProtection": UNKNOWN_BOOLEAN_VALUE,
                             "settings": {"deletionProtectionEnabled": True, "ipConfiguration": {"ipv4Enabled": False},
                                          "backupConfiguration": {"enabled": True,
                                                                  "pointInTimeRecoveryEnabled": True}}}, BAD) == []


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "0.0.0.0/1", "128.0.0.0/1", "8.0.0.0/7", "8.0.0.0/8", "10.0.0.0/8",
                                  "172.16.0.0/12", "203.0.113.0/24"])
def test_the_config_and_the_pack_agree_on_what_is_open(cidr):
    """Two copies of one bound (the pack runs in its own venv and imports nothing of the program's): the config
    refuses at preview exactly the source ranges the pack would flag later."""
    from components.config.network import admits_much_of_the_internet
    assert admits_much_of_the_internet(cidr) == rules._is_open_cidr(cidr)
