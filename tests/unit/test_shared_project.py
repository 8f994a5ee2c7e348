"""Two stacks of the program in one GCP project: dev next to e2e's disposable copy (derived from dev exactly as
.github/workflows/e2e.yml derives it) and next to a staging stack with its own namePrefix.

Each resource is reduced to the identity GCP knows it by, in the scope where GCP keeps it unique (the
provider's id format, hashicorp/terraform-provider-google website/docs/r/*.html.markdown at
e03b7622a26cf4e878f90bdccaca6aa3d03a7999). Two stacks declaring one identity either fail on create (409) or,
for non-authoritative grants, share it: the first destroy removes it from under the other. Sharing is only
allowed where a destroy leaves the thing alone.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Callable, Optional

import pytest
import yaml

from preview.harness import Capture, Resource, load_stack_file, run_program

ROOT = Path(__file__).resolve().parents[2]
E2E_WORKFLOW = ROOT / ".github" / "workflows" / "e2e.yml"
E2E_CONFIG_STEP = "Disposable stack from dev's config, unprotected"
RUN_NUMBER = "42"

Identity = tuple


def _physical_name(r: Resource) -> str:
    # Without `name`, Pulumi auto-names: the logical name plus a random suffix
    # (https://www.pulumi.com/docs/iac/concepts/resources/names/#autonaming). Taking the logical name alone
    # is stricter: two stacks must differ even before the suffix.
    return r.inputs.get("name") or r.name


def _location(r: Resource) -> str:
    return r.inputs.get("location") or r.inputs.get("region") or ""


def _wi_principal(member: str) -> Optional[str]:
    return member if ".svc.id.goog[" in member else None


# Type -> identity in its uniqueness scope, from the provider's documented id format (`id` attribute) or
# naming scope. None: the thing lives inside another resource of the same stack (a subnet's VPC, a cluster,
# an instance), whose own identity is checked.
IDENTITIES: dict[str, Callable[[Resource, str], Optional[Identity]]] = {
    # projects/{project}/serviceAccounts/{account_id}@{project}.iam.gserviceaccount.com; account_id "is
    # unique within a project" (google_service_account).
    "gcp:serviceaccount/account:Account": lambda r, p: ("service account", p, r.inputs["accountId"]),
    # projects/{project}/locations/{location}/repositories/{repository_id} (artifact_registry_repository).
    "gcp:artifactregistry/repository:Repository":
        lambda r, p: ("registry repository", p, _location(r), r.inputs["repositoryId"]),
    # Bucket names are one global namespace (https://cloud.google.com/storage/docs/buckets#naming).
    "gcp:storage/bucket:Bucket": lambda r, p: ("bucket", "global", _physical_name(r)),
    # Instance names are per project (not per region) and held for up to a week after deletion
    # (sql_database_instance `name`; https://cloud.google.com/sql/docs/delete-instance).
    "gcp:sql/databaseInstance:DatabaseInstance": lambda r, p: ("cloud sql instance", p, _physical_name(r)),
    "gcp:compute/network:Network": lambda r, p: ("vpc", p, _physical_name(r)),  # projects/P/global/networks/N
    "gcp:compute/subnetwork:Subnetwork":  # projects/P/regions/R/subnetworks/N
        lambda r, p: ("subnetwork", p, _location(r), _physical_name(r)),
    "gcp:compute/router:Router": lambda r, p: ("router", p, _location(r), _physical_name(r)),  # regions/R/routers/N
    "gcp:compute/globalAddress:GlobalAddress": lambda r, p: ("global address", p, _physical_name(r)),
    # projects/{project}/locations/{location}/certificates/{name} and .../certificateMaps/{name}
    # (certificate_manager_certificate, certificate_manager_certificate_map; location "global" unless set).
    "gcp:certificatemanager/certificate:Certificate":
        lambda r, p: ("certificate", p, r.inputs.get("location") or "global", _physical_name(r)),
    "gcp:certificatemanager/certificateMap:CertificateMap": lambda r, p: ("certificate map", p, _physical_name(r)),
    # projects/{project}/managedZones/{zone}/rrsets/{name}/{type} (dns_record_set): the host is the user's, so
    # two stacks with one uiHost collide here (as they would at the load balancer).
    "gcp:dns/recordSet:RecordSet":
        lambda r, p: ("dns record", p, r.inputs["managedZone"], r.inputs["name"], r.inputs["type"]),
    # "unique within the project and location" (container_cluster `name`).
    "gcp:container/cluster:Cluster": lambda r, p: ("gke cluster", p, _location(r), _physical_name(r)),
    # google_project_iam_member is non-authoritative: the member is granted and, on delete, revoked,
    # whoever else declared it (google_project_iam.html.markdown).
    "gcp:projects/iAMMember:IAMMember":
        lambda r, p: ("project iam member", r.inputs.get("project") or p, r.inputs["role"], r.inputs["member"]),
    # Non-authoritative like the project member, on projects/P/iap_web/compute (iam_iap_web_type_compute.go):
    # two stacks granting one member in one project share the grant, and destroying one revokes it.
    "gcp:iap/webTypeComputeIamMember:WebTypeComputeIamMember":
        lambda r, p: ("iap web compute member", r.inputs.get("project") or p, r.inputs["role"], r.inputs["member"],
                      str(r.inputs.get("condition"))),
    # {project}/{service} (google_project_service).
    "gcp:projects/service:Service": lambda r, p: ("api", r.inputs.get("project") or p, r.inputs["service"]),
    "gcp:projects/serviceIdentity:ServiceIdentity":
        lambda r, p: ("service agent", r.inputs.get("project") or p, r.inputs["service"]),
    # Not created by the main program (bootstrap/), listed so a future use is judged the same way:
    # projects/P/locations/global/workloadIdentityPools/{id} (iam_workload_identity_pool).
    "gcp:iam/workloadIdentityPool:WorkloadIdentityPool":
        lambda r, p: ("workload identity pool", p, r.inputs["workloadIdentityPoolId"]),
    "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider":
        lambda r, p: ("workload identity provider", p, r.inputs["workloadIdentityPoolId"],
                      r.inputs["workloadIdentityPoolProviderId"]),
    # Every cluster of a project shares the pool PROJECT.svc.id.goog, where the principal is NAMESPACE/KSA
    # ("identity sameness", https://cloud.google.com/kubernetes-engine/docs/concepts/workload-identity): two
    # stacks binding the same principal let either cluster's pods act as the other's Google accounts.
    "gcp:serviceaccount/iAMMember:IAMMember":
        lambda r, p: ("workload identity principal", principal) if (principal := _wi_principal(r.inputs["member"]))
        else None,
    # projects/{project}/roles/{role_id}; a deleted role id stays taken for 7-37 days
    # (google_project_iam_custom_role; https://cloud.google.com/iam/docs/creating-custom-roles#deleting-custom-role).
    "gcp:projects/iAMCustomRole:IAMCustomRole": lambda r, p: ("custom role", p, r.inputs["roleId"]),
    # projects/{project}/locations/{region}/workflows/{name} (workflows_workflow).
    "gcp:workflows/workflow:Workflow": lambda r, p: ("workflow", p, _location(r), _physical_name(r)),
    # projects/{project}/locations/{region}/jobs/{name} (cloud_scheduler_job).
    "gcp:cloudscheduler/job:Job": lambda r, p: ("scheduler job", p, _location(r), _physical_name(r)),
    # Inside a resource of the stack: {project}/{region}/{router}/{name} (router_nat), a node pool in its
    # cluster, databases and users in their instance, {network}:{service} (service_networking_connection),
    # grants on the stack's own repository, bucket and accounts.
    "gcp:compute/routerNat:RouterNat": lambda r, p: None,
    # Monitoring objects get server-assigned ids (projects/P/alertPolicies/ID, dashboards/ID,
    # notificationChannels/ID): two stacks never collide, whatever their display names.
    "gcp:monitoring/alertPolicy:AlertPolicy": lambda r, p: None,
    "gcp:monitoring/dashboard:Dashboard": lambda r, p: None,
    "gcp:monitoring/notificationChannel:NotificationChannel": lambda r, p: None,
    "gcp:certificatemanager/certificateMapEntry:CertificateMapEntry": lambda r, p: None,  # inside its map
    "gcp:container/nodePool:NodePool": lambda r, p: None,
    "gcp:sql/database:Database": lambda r, p: None,
    "gcp:sql/user:User": lambda r, p: None,
    "gcp:servicenetworking/connection:Connection": lambda r, p: None,
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember": lambda r, p: None,
    "gcp:storage/bucketIAMMember:BucketIAMMember": lambda r, p: None,
}


def project_identities(capture: Capture, project: str) -> dict[Identity, Resource]:
    """Every project- or globally-unique identity the stack declares. Kubernetes objects live in the stack's
    own cluster; random values and sleeps exist only in the state."""
    found: dict[Identity, Resource] = {}
    for r in capture.resources:
        if not r.custom or r.type.startswith(("kubernetes:", "random:", "time:", "pulumi:providers:")):
            continue
        if r.type not in IDENTITIES:
            raise AssertionError(f"{r.type} ({r.name}) has no identity rule here: add its id format and scope")
        identity = IDENTITIES[r.type](r, project)
        if identity is not None:
            found[identity] = r
    return found


def destroy_leaves_it(r: Resource) -> bool:
    """Whether deleting the resource from one stack leaves the shared thing in place for the others."""
    if r.retain_on_delete:  # https://www.pulumi.com/docs/iac/concepts/resources/options/retainondelete/
        return True
    if r.type == "gcp:projects/service:Service":
        # "If false or unset, the service will be left enabled" (google_project_service, disable_on_destroy).
        return r.inputs.get("disableOnDestroy") is False
    if r.type == "gcp:projects/serviceIdentity:ServiceIdentity":
        # "Once created, this resource cannot be updated or destroyed. These actions are a no-op."
        # (project_service_identity.html.markdown)
        return True
    return False


def collisions(a: Capture, b: Capture, project: str) -> list[str]:
    mine, theirs = project_identities(a, project), project_identities(b, project)
    return sorted(f"{identity}: {a.stack} {mine[identity].name} / {b.stack} {theirs[identity].name}"
                  for identity in mine.keys() & theirs.keys()
                  if not (destroy_leaves_it(mine[identity]) and destroy_leaves_it(theirs[identity])))


# ---------------------------------------------------------------------------------------------
# The stacks


def _pulumi_calls_of_the_e2e_config_step() -> list[list[str]]:
    """Runs the workflow's own step in bash with `pulumi` replaced by a recorder: the config e2e gets is
    whatever those lines do, not a copy of them kept here."""
    workflow = yaml.safe_load(E2E_WORKFLOW.read_text())
    step, = [s for s in workflow["jobs"]["e2e"]["steps"] if s.get("name") == E2E_CONFIG_STEP]
    recorder = 'pulumi() { local a; for a in "$@"; do printf "%s\\037" "$a"; done; printf "\\n"; }\n'
    env = {"PATH": os.environ["PATH"], "STACK": "e2e-test", "BASE_STACK": "dev", "GITHUB_RUN_NUMBER": RUN_NUMBER,
           "PULUMI_BACKEND_URL": ""}
    done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", recorder + step["run"]],
                          capture_output=True, text=True, env=env, check=True)
    return [line.split("\x1f")[:-1] for line in done.stdout.splitlines()]


def _project_defaults(tmp: Path) -> dict[str, str]:
    (tmp / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp / "Pulumi.none.yaml").write_text("config: {}\n")
    return load_stack_file("none", tmp)[0]


def e2e_config(tmp: Path) -> dict[str, str]:
    """dev's stack config, then the workflow's `pulumi config set/rm` lines; Pulumi.yaml defaults under it."""
    values: dict[str, str] = {}
    for call in _pulumi_calls_of_the_e2e_config_step():
        if call[:2] == ["stack", "init"]:
            base = call[call.index("--copy-config-from") + 1]
            assert base == "dev"
            dev = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
            values = {k: load_value(v) for k, v in dev.items()}
        elif call[:2] == ["config", "set"]:
            args = [a for a in call[2:] if not a.startswith("--stack") and a != "e2e-test"]
            assert not any(a.startswith("--") for a in args), f"unmodelled flag in {call}"
            key, value = args
            values[key] = value
        elif call[:2] == ["config", "rm"]:
            # A key that is not set is no error: `delete(m, k)` (sdk/go/common/resource/config/map.go, Remove).
            values.pop(call[-1], None)
        else:
            assert call[0] == "login", f"unexpected pulumi call {call}"
    return {**_project_defaults(tmp), **values}


def load_value(value) -> str:
    import json
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


@pytest.fixture(scope="module")
def stacks(tmp_path_factory) -> dict[str, Capture]:
    dev_config, _ = load_stack_file("dev")
    staging_config = {**dev_config, "airflow-gke:namePrefix": "staging", "airflow-gke:environment": "staging"}
    e2e = e2e_config(tmp_path_factory.mktemp("e2e"))
    return {"dev": run_program("dev", dev_config), "e2e": run_program(f"e2e-{RUN_NUMBER}", e2e),
            "staging": run_program("staging", staging_config)}


# ---------------------------------------------------------------------------------------------
# Tests


def test_e2e_is_dev_in_the_same_project_under_its_own_prefix(stacks):
    dev, e2e = stacks["dev"], stacks["e2e"]
    project = load_stack_file("dev")[0]["gcp:project"]
    for capture in (dev, e2e):
        assert {r.inputs.get("project") for r in capture.of_type("gcp:serviceaccount/account:Account")} == {project}
    instance = e2e.one("gcp:sql/databaseInstance:DatabaseInstance")
    assert instance.name.startswith(f"e2e-{RUN_NUMBER}-") and instance.inputs["deletionProtection"] is False


@pytest.mark.parametrize("other", ["e2e", "staging"])
def test_two_stacks_in_one_project_share_nothing_a_destroy_would_take(stacks, other):
    project = load_stack_file("dev")[0]["gcp:project"]
    assert collisions(stacks["dev"], stacks[other], project) == []


def test_two_paused_stacks_share_no_schedule_role_or_account():
    """The pause's workflow, jobs, custom role and accounts are named from namePrefix."""
    project = load_stack_file("dev")[0]["gcp:project"]
    dev_config, _ = load_stack_file("dev")
    hours = {"airflow-gke:activeHours": "Mon-Fri 08:00-18:00 Europe/Berlin"}
    dev = run_program("dev", {**dev_config, **hours})
    staging = run_program("staging", {**dev_config, **hours, "airflow-gke:namePrefix": "staging",
                                      "airflow-gke:environment": "staging"})
    assert dev.of_type("gcp:workflows/workflow:Workflow") and dev.of_type("gcp:projects/iAMCustomRole:IAMCustomRole")
    assert collisions(dev, staging, project) == []


def test_what_they_do_share_is_left_alone_by_a_destroy(stacks):
    """The project-wide things both stacks declare are exactly these, and each is safe to declare twice."""
    project = load_stack_file("dev")[0]["gcp:project"]
    dev, e2e = project_identities(stacks["dev"], project), project_identities(stacks["e2e"], project)
    shared = {identity[0] for identity in dev.keys() & e2e.keys()}
    assert shared == {"api", "service agent", "project iam member"}
    agent_role, = [r for identity, r in dev.items() if identity in e2e and identity[0] == "project iam member"]
    assert agent_role.inputs["role"] == "roles/servicenetworking.serviceAgent" and agent_role.retain_on_delete
    for r in stacks["dev"].of_type("gcp:projects/service:Service"):
        assert r.inputs["disableOnDestroy"] is False, r.name


def test_the_comparison_catches_a_shared_name_and_a_shared_grant(stacks):
    """The check itself: the same registry id in both stacks, and an unretained agent role, are reported."""
    project = load_stack_file("dev")[0]["gcp:project"]
    dev_config, _ = load_stack_file("dev")
    same_repo = run_program("other", {**dev_config, "airflow-gke:namePrefix": "other",
                                      "airflow-gke:registryRepository": "airflow"})
    found = collisions(stacks["dev"], same_repo, project)
    assert any("'registry repository'" in c and "'airflow')" in c for c in found), found
    unretained = [Resource(**{**r.__dict__, "retain_on_delete": False}) if "agent-role" in r.name else r
                  for r in same_repo.resources]
    found = collisions(stacks["dev"], Capture("other", unretained, {}, set(), []), project)
    assert any("roles/servicenetworking.serviceAgent" in c for c in found), found


def test_the_default_prefix_keeps_the_names_existing_stacks_have(stacks):
    """An existing dev stack (namePrefix airflow, no registryRepository or namespace set) is not replaced."""
    dev = stacks["dev"]
    assert dev.one("gcp:artifactregistry/repository:Repository").inputs["repositoryId"] == "airflow"
    assert dev.outputs["airflow_namespace"] == "airflow"
    staging = stacks["staging"]
    assert staging.one("gcp:artifactregistry/repository:Repository").inputs["repositoryId"] == "staging"
    assert staging.outputs["airflow_namespace"] == "staging"


def test_an_explicit_registry_repository_is_kept():
    dev_config, _ = load_stack_file("dev")
    capture = run_program("x", {**dev_config, "airflow-gke:namePrefix": "other",
                                "airflow-gke:registryRepository": "images"})
    assert capture.one("gcp:artifactregistry/repository:Repository").inputs["repositoryId"] == "images"


# ---------------------------------------------------------------------------------------------
# e2e's `pulumi up` runs the policy pack with policy/e2e-config.json

E2E_POLICY_CONFIG = ROOT / "policy" / "e2e-config.json"
# apitype.EnforcementLevel.IsValid (sdk/go/common/apitype/policy.go, pulumi/pulumi 1b5949891b3c).
ENFORCEMENT_LEVELS = ("advisory", "mandatory", "remediate", "disabled")


def policy_config_levels(path: Path) -> dict[str, str]:
    """The enforcement levels a `--policy-pack-config` FILE sets, read as the CLI reads it
    (pkg/resource/analyzer/config.go parsePolicyPackConfig, pulumi/pulumi 1b5949891b3c): a JSON object keyed by
    policy name, each value a level or an object whose `enforcementLevel` is one; `environments` is not a
    policy; an empty file is no config."""
    import json
    text = path.read_text()
    if not text.strip():
        return {}
    config = json.loads(text)
    config.pop("environments", None)
    levels = {}
    for name, value in config.items():
        level = value if isinstance(value, str) else value.get("enforcementLevel", "")
        assert level in ENFORCEMENT_LEVELS or (isinstance(value, dict) and not level), f"{name}: {value!r}"
        if level:
            levels[name] = level
    return levels


def mandatory_findings(resources: list[Resource], levels: dict[str, str]) -> list[str]:
    """Policies that stop `pulumi up` on these resources: the pack's analyzer servicer (what PolicyPack serves,
    built as policy/__main__.py builds it) configured as the CLI configures it, then Analyze. Only mandatory
    diagnostics fail the update (`if d.EnforcementLevel == apitype.Mandatory { sawError... }`,
    pkg/resource/deploy/step_generator.go); advisory ones are printed."""
    import json

    from google.protobuf import json_format, struct_pb2
    from pulumi.runtime.proto import analyzer_pb2
    from pulumi_policy import EnforcementLevel
    from pulumi_policy import policy as sdk

    from policy import rules

    servicer_class = getattr(sdk, "_PolicyAnalyzerServicer", None)
    if servicer_class is None:  # private API of pulumi-policy 1.21.0
        pytest.skip("pulumi_policy internals changed")
    servicer = servicer_class(rules.PACK_NAME, "0.0.1", rules.ALL_POLICIES, EnforcementLevel.MANDATORY)
    servicer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={
        name: analyzer_pb2.PolicyConfig(enforcementLevel=analyzer_pb2.EnforcementLevel.Value(level.upper()))
        for name, level in levels.items()}), None)
    found = []
    for r in resources:
        if not r.custom:
            continue
        properties = struct_pb2.Struct()
        json_format.ParseDict(json.loads(json.dumps(r.inputs)), properties)
        response = servicer.Analyze(analyzer_pb2.AnalyzeRequest(type=r.type, properties=properties, name=r.name,
                                                                urn=r.urn), None)
        found += [f"{d.policyName} on {r.name}" for d in response.diagnostics
                  if d.enforcementLevel == analyzer_pb2.EnforcementLevel.Value("MANDATORY")]
    return sorted(set(found))


def test_the_policy_pack_admits_e2e_only_with_its_config_file(stacks):
    e2e = stacks["e2e"]
    refused = mandatory_findings(e2e.resources, {})
    assert refused == [f"cloudsql-deletion-protection on e2e-{RUN_NUMBER}-pg"]  # the DB it leaves unprotected
    assert mandatory_findings(e2e.resources, policy_config_levels(E2E_POLICY_CONFIG)) == []


def test_the_e2e_policy_config_relaxes_only_what_e2e_needs(stacks):
    from policy import rules

    levels = policy_config_levels(E2E_POLICY_CONFIG)
    needed = {finding.split(" on ")[0] for finding in mandatory_findings(stacks["e2e"].resources, {})}
    assert set(levels) == needed and set(levels) <= set(rules.policy_names())
    assert all(level in ("advisory", "disabled") for level in levels.values())
    # The relaxed rule still guards every other stack: dev with dbDeletionProtection false is refused.
    dev_config, _ = load_stack_file("dev")
    unprotected_dev = run_program("dev", {**dev_config, "airflow-gke:dbDeletionProtection": "false"})
    assert mandatory_findings(unprotected_dev.resources, {}) == ["cloudsql-deletion-protection on airflow-pg"]


def test_e2e_up_passes_the_config_file_with_the_pack():
    import shlex

    workflow = yaml.safe_load(E2E_WORKFLOW.read_text())
    ups = [shlex.split(s["run"]) for s in workflow["jobs"]["e2e"]["steps"]
           if s.get("run", "").startswith("pulumi up ")]
    assert len(ups) == 1
    args = ups[0]

    def values(flag: str) -> list[str]:
        return [args[i + 1] for i, a in enumerate(args) if a == flag]

    # The n-th --policy-pack-config belongs to the n-th --policy-pack (validatePolicyPackConfig,
    # pkg/cmd/pulumi/operations/up.go); the value is a path, read with os.ReadFile.
    assert values("--policy-pack") == ["policy"]
    assert values("--policy-pack-config") == [str(E2E_POLICY_CONFIG.relative_to(ROOT))]


def test_e2e_names_its_own_registry_and_namespace_even_when_dev_sets_them(tmp_path, monkeypatch):
    """A dev stack that pins registryRepository or namespace must not hand them to its e2e copy."""
    pinned = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    pinned["config"].update({"airflow-gke:registryRepository": "images", "airflow-gke:namespace": "data"})
    real_read = Path.read_text

    def read_text(path, *args, **kwargs):
        return yaml.safe_dump(pinned) if path == ROOT / "Pulumi.dev.yaml" else real_read(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    config = e2e_config(tmp_path)
    # Unset, or the Pulumi.yaml default "" (the program then derives both from namePrefix).
    assert config.get("airflow-gke:registryRepository", "") == "" and config.get("airflow-gke:namespace", "") == ""


def test_two_front_doors_in_one_project_collide_only_on_a_shared_host():
    """The front door's address, certificate and map derive from the namePrefix; its DNS record is the host's."""
    project = load_stack_file("dev")[0]["gcp:project"]
    dev_config, _ = load_stack_file("dev")
    def front_door(prefix: str, host: str) -> Capture:
        return run_program(prefix, {**dev_config, "airflow-gke:namePrefix": prefix, "airflow-gke:uiHost": host,
                                    "airflow-gke:uiAccess": '{"Admin": ["user:ana@acme-data.io"]}',
                                    "airflow-gke:uiDnsZone": "acme-public"})
    dev = front_door("airflow", "airflow.acme-data.io")
    assert dev.of_type("gcp:certificatemanager/certificate:Certificate")
    assert collisions(dev, front_door("staging", "staging.acme-data.io"), project) == []
    found = collisions(dev, front_door("staging", "airflow.acme-data.io"), project)
    # the host's A record, and each member's IAP grant (its condition is the host: request.host == HOST)
    assert found and all("'dns record'" in c or "airflow.acme-data.io" in c for c in found), found
    assert any("'dns record'" in c for c in found), found
