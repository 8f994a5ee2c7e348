"""Run the real Pulumi program under `pulumi.runtime.set_mocks` and capture what it declares.

This is the one mock implementation of the project: `make preview` and the tests both use it.
Mocked outputs are realistic (ids, endpoints, CA certificates, connection names, private IPs,
service-account emails, random values) so every `apply` in the program really runs.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import runpy
import string
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pulumi
import yaml
from pulumi.runtime import rpc, settings
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components.config import KUBERNETES_SCHEMA_VERSION
from components.config.run_mode import offline_preview

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "airflow-gke"
SECRET_MARKER = rpc._special_sig_key
SECRET_SIG = rpc._special_secret_sig
MOCK_PROJECT_NUMBER = "123456789012"
MASKED = "[secret]"


def _seed(*parts: str) -> bytes:
    return hashlib.sha256("/".join(parts).encode()).digest()


def _deterministic_text(seed: bytes, length: int, alphabet: str) -> str:
    out, counter = [], 0
    while len(out) < length:
        block = hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        out.extend(alphabet[b % len(alphabet)] for b in block)
        counter += 1
    return "".join(out[:length])


def _fake_ca_certificate(seed: bytes) -> str:
    body = base64.b64encode(seed * 8).decode()
    pem = "-----BEGIN CERTIFICATE-----\n" + body + "\n-----END CERTIFICATE-----\n"
    return base64.b64encode(pem.encode()).decode()


def _ip(seed: bytes, prefix: str) -> str:
    return f"{prefix}.{seed[0] % 250 + 2}"


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_MARKER) == SECRET_SIG


def unwrap(value: Any, mask: bool = False) -> Any:
    """Remove Pulumi's secret wrappers; with mask=True replace each secret by "[secret]"."""
    if is_secret(value):
        return MASKED if mask else unwrap(value.get("value"), mask)
    if isinstance(value, dict):
        return {k: unwrap(v, mask) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v, mask) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass
class Resource:
    type: str
    name: str
    urn: str
    parent: Optional[str]
    dependencies: list[str]
    raw_inputs: dict
    custom: bool
    protect: bool
    provider: Optional[str]
    outputs: dict = field(default_factory=dict)
    # Resource options as sent on the wire (RegisterResourceRequest): property paths in the schema's
    # camelCase names, e.g. "settings.diskSize".
    ignore_changes: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)  # URNs this resource had before (moves, renames)
    replace_on_changes: list[str] = field(default_factory=list)
    # None: not set, so the provider's diff decides (create-before-replace unless it asks otherwise).
    delete_before_replace: Optional[bool] = None
    retain_on_delete: bool = False
    # Input name -> URNs its value came from (the engine's propertyDependencies): which inputs a replaced
    # dependency leaves unknown at preview.
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    id: str = ""

    @property
    def inputs(self) -> dict:
        """Inputs with secret values revealed (the mock's own values), floats that are whole made ints."""
        return unwrap(self.raw_inputs)

    @property
    def masked_inputs(self) -> dict:
        return unwrap(self.raw_inputs, mask=True)

    def to_json(self) -> dict:
        return {
            "type": self.type,
            "name": self.name,
            "urn": self.urn,
            "parent": self.parent,
            "dependencies": sorted(self.dependencies),
            "protect": self.protect,
            "custom": self.custom,
            # The provider resource this one is managed by (URN only): the engine waits for it too.
            "provider": self.provider.rsplit("::", 1)[0] if self.provider else None,
            "inputs": self.masked_inputs,
            "ignoreChanges": sorted(self.ignore_changes),
            "replaceOnChanges": sorted(self.replace_on_changes),
            "deleteBeforeReplace": self.delete_before_replace,
            "retainOnDelete": self.retain_on_delete,
            "aliases": sorted(self.aliases),
        }


# What container.getEngineVersions answers (shape of projects.locations.getServerConfig): each channel's
# default version, the regular one at the version the manifests are validated against.
def engine_versions(location: str, project: str) -> dict:
    minor = int(KUBERNETES_SCHEMA_VERSION.split(".")[1])
    defaults = {"RAPID": f"1.{minor + 1}.2-gke.1000000", "REGULAR": f"1.{minor}.5-gke.1200000",
                "STABLE": f"1.{minor - 1}.9-gke.1300000", "EXTENDED": f"1.{minor - 2}.14-gke.1400000"}
    return {"location": location, "project": project, "id": f"{project}/{location}",
            "defaultClusterVersion": defaults["REGULAR"], "latestMasterVersion": defaults["RAPID"],
            "latestNodeVersion": defaults["RAPID"], "releaseChannelDefaultVersion": defaults,
            "releaseChannelLatestVersion": defaults, "releaseChannelUpgradeTargetVersion": defaults,
            "validMasterVersions": sorted(set(defaults.values()), reverse=True),
            "validNodeVersions": sorted(set(defaults.values()), reverse=True)}


class StackMocks(Mocks):
    """Returns realistic outputs for every resource type and invoke the program uses."""

    def __init__(self, project_id: str, region: str) -> None:
        self.project_id = project_id
        self.region = region
        self.pending: dict[tuple[str, str], MockResourceArgs] = {}
        self.lock = threading.Lock()

    def call(self, args: MockCallArgs):
        if args.token == "gcp:organizations/getProject:getProject":
            return {"number": MOCK_PROJECT_NUMBER, "projectId": self.project_id, "name": self.project_id}
        if args.token == "gcp:organizations/getClientConfig:getClientConfig":
            return {"project": self.project_id, "region": self.region, "accessToken": "mock-token"}
        if args.token == "gcp:container/getEngineVersions:getEngineVersions":
            return engine_versions(args.args.get("location") or self.region, args.args.get("project") or self.project_id)
        return {}

    def new_resource(self, args: MockResourceArgs):
        with self.lock:
            key = (args.typ, args.name)
            if key in self.pending:
                raise ValueError(f"duplicate resource {args.typ} named {args.name!r}")
            self.pending[key] = args
        inputs = unwrap(args.inputs)
        # Like the random provider: new keepers, new value.
        seed = _seed(args.typ, args.name, json.dumps(inputs.get("keepers"), sort_keys=True))
        resource_id = f"{args.name}-id"
        outputs = dict(args.inputs)
        physical_name = inputs.get("name") or args.name
        project = inputs.get("project") or self.project_id
        location = inputs.get("location") or inputs.get("region") or self.region
        typ = args.typ

        if typ == "gcp:container/cluster:Cluster":
            endpoints = dict(inputs.get("controlPlaneEndpointsConfig") or {})
            endpoints["dnsEndpointConfig"] = {**endpoints.get("dnsEndpointConfig", {}),
                                              "endpoint": f"gke-{seed[:16].hex()}.{location}.gke.goog"}
            private = inputs.get("privateClusterConfig") or {}
            outputs.update(name=physical_name, location=location, controlPlaneEndpointsConfig=endpoints,
                           # With the private endpoint enforced, `endpoint` is the control plane's internal IP.
                           endpoint=_ip(seed, "172.16.0" if private.get("enablePrivateEndpoint") else "34.118.10"),
                           masterAuth={"clusterCaCertificate": _fake_ca_certificate(seed)},
                           selfLink=f"https://container.googleapis.com/v1/projects/{project}/locations/{location}/clusters/{physical_name}")
            resource_id = f"projects/{project}/locations/{location}/clusters/{physical_name}"
        elif typ == "gcp:sql/databaseInstance:DatabaseInstance":
            outputs.update(name=physical_name, connectionName=f"{project}:{location}:{physical_name}",
                           privateIpAddress=_ip(seed, "10.40.0"), publicIpAddress=None,
                           selfLink=f"https://sqladmin.googleapis.com/sql/v1beta4/projects/{project}/instances/{physical_name}")
            resource_id = physical_name
        elif typ == "gcp:serviceaccount/account:Account":
            email = f"{inputs['accountId']}@{project}.iam.gserviceaccount.com"
            outputs.update(email=email, member=f"serviceAccount:{email}", uniqueId=str(int.from_bytes(seed[:8], "big")),
                           name=f"projects/{project}/serviceAccounts/{email}")
            resource_id = outputs["name"]
        elif typ == "gcp:storage/bucket:Bucket":
            outputs.update(name=physical_name, url=f"gs://{physical_name}",
                           selfLink=f"https://www.googleapis.com/storage/v1/b/{physical_name}")
            resource_id = physical_name
        elif typ == "gcp:artifactregistry/repository:Repository":
            outputs.update(name=inputs["repositoryId"], location=location,
                           registryUri=f"{location}-docker.pkg.dev/{project}/{inputs['repositoryId']}")
            resource_id = f"projects/{project}/locations/{location}/repositories/{inputs['repositoryId']}"
        elif typ in ("gcp:compute/network:Network", "gcp:compute/subnetwork:Subnetwork", "gcp:compute/router:Router",
                     "gcp:compute/globalAddress:GlobalAddress"):
            collection = {"Network": "global/networks", "Subnetwork": f"regions/{location}/subnetworks",
                          "Router": f"regions/{location}/routers", "GlobalAddress": "global/addresses"}[typ.split(":")[-1]]
            resource_id = f"projects/{project}/{collection}/{physical_name}"
            outputs.update(name=physical_name,
                           selfLink=f"https://www.googleapis.com/compute/v1/{resource_id}")
            if typ.endswith("GlobalAddress"):
                # An EXTERNAL address is a public IP Google picks (a documentation range here, RFC 5737).
                external = inputs.get("addressType", "EXTERNAL") == "EXTERNAL"
                outputs.setdefault("address", _ip(seed, "203.0.113") if external else "10.50.0.0")
        elif typ.startswith("gcp:certificatemanager/"):
            # projects/P/locations/global/{certificates,certificateMaps,certificateMaps/M/certificateMapEntries}/N
            collection = {"Certificate": "certificates", "CertificateMap": "certificateMaps"}.get(
                typ.split(":")[-1], f"certificateMaps/{inputs.get('map')}/certificateMapEntries")
            resource_id = f"projects/{project}/locations/{inputs.get('location') or 'global'}/{collection}/{physical_name}"
            outputs.update(name=physical_name)
            if typ.endswith(":Certificate"):
                # Load balancer authorization: PROVISIONING until the host's A record points at the load balancer.
                outputs["managed"] = {**(inputs.get("managed") or {}), "state": "PROVISIONING"}
        elif typ == "gcp:dns/recordSet:RecordSet":
            resource_id = f"projects/{project}/managedZones/{inputs['managedZone']}/rrsets/{inputs['name']}/{inputs['type']}"
        elif typ == "gcp:projects/serviceIdentity:ServiceIdentity":
            agent = inputs["service"].split(".")[0].replace("servicenetworking", "service-networking")
            email = f"service-{MOCK_PROJECT_NUMBER}@{agent}.iam.gserviceaccount.com"
            outputs.update(email=email, member=f"serviceAccount:{email}")
            resource_id = f"projects/{project}/services/{inputs['service']}"
        elif typ in ("gcp:monitoring/alertPolicy:AlertPolicy", "gcp:monitoring/dashboard:Dashboard",
                     "gcp:monitoring/notificationChannel:NotificationChannel"):
            # Server-assigned numeric ids (Monitoring API v3 / dashboards v1).
            collection = {"AlertPolicy": "alertPolicies", "Dashboard": "dashboards",
                          "NotificationChannel": "notificationChannels"}[typ.split(":")[-1]]
            resource_id = f"projects/{project}/{collection}/{int.from_bytes(seed[:6], 'big')}"
            outputs.update(name=resource_id)
        elif typ == "gcp:workflows/workflow:Workflow":
            resource_id = f"projects/{project}/locations/{location}/workflows/{physical_name}"
            outputs.update(name=physical_name, state="ACTIVE", revisionId="000001-abc")
        elif typ == "gcp:cloudscheduler/job:Job":
            resource_id = f"projects/{project}/locations/{location}/jobs/{physical_name}"
            outputs.update(name=physical_name, state="PAUSED" if inputs.get("paused") else "ENABLED")
        elif typ == "gcp:projects/iAMCustomRole:IAMCustomRole":
            resource_id = f"projects/{project}/roles/{inputs['roleId']}"
            outputs.update(name=resource_id, deleted=False, stage=inputs.get("stage", "GA"))
        elif typ == "gcp:iap/webTypeComputeIamMember:WebTypeComputeIamMember":
            # The provider's id: "<resource> <role> <member>" (tpgiamresource/resource_iam_member.go).
            resource_id = f"projects/{project}/iap_web/compute {inputs['role']} {inputs['member']}"
            outputs.update(project=project, etag=f"BwY{seed[:6].hex()}")
        elif typ == "random:index/randomPassword:RandomPassword":
            alphabet = string.ascii_letters + string.digits
            if inputs.get("special", True):
                alphabet += inputs.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?"
            outputs["result"] = _deterministic_text(seed, int(inputs.get("length", 16)), alphabet)
        elif typ == "random:index/randomId:RandomId":
            raw = (seed * 4)[: int(inputs.get("byteLength", 8))]
            outputs.update(hex=raw.hex(), b64Url=base64.urlsafe_b64encode(raw).decode().rstrip("="),
                           b64Std=base64.b64encode(raw).decode(), dec=str(int.from_bytes(raw, "big")))
        elif "name" not in outputs and typ.startswith("gcp:"):
            outputs["name"] = physical_name
        return resource_id, outputs


class RecordingMonitor(MockMonitor):
    """A mock monitor that also records parents, dependencies, resource options and stack outputs."""

    def __init__(self, mocks: StackMocks) -> None:
        super().__init__(mocks)
        self.records: list[Resource] = []
        self.stack_urn: Optional[str] = None

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            self.stack_urn = response.urn
            return response
        args = self.mocks.pending[(request.type, request.name)]
        parent = request.parent or None
        self.records.append(Resource(
            type=request.type, name=request.name, urn=response.urn,
            parent=None if parent == self.stack_urn else parent,
            dependencies=list(request.dependencies), raw_inputs=args.inputs, custom=bool(request.custom),
            protect=bool(request.protect), provider=request.provider or None,
            outputs=self.resources[response.urn].state, ignore_changes=list(request.ignoreChanges),
            aliases=[*request.aliasURNs,
                     *(_alias_urn(a, response.urn, request.type, request.parent) for a in request.aliases)],
            replace_on_changes=list(request.replaceOnChanges), retain_on_delete=bool(request.retainOnDelete),
            delete_before_replace=bool(request.deleteBeforeReplace) if request.deleteBeforeReplaceDefined else None,
            property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
            id=response.id,
        ))
        return response


def _alias_urn(alias, urn: str, typ: str, parent: str) -> str:
    """The URN an alias stands for, as the engine resolves it (urn:pulumi:STACK::PROJECT::TYPES::NAME).

    An empty spec field means "as now": the resource's own name, type or parent."""
    if not alias.HasField("spec"):
        return alias.urn
    spec = alias.spec
    stack, project, _, name = urn.split("::", 3)
    parent_urn = "" if spec.noParent else (spec.parentUrn or parent)
    # Children of the stack carry no stack type in their URNs.
    parent_types = parent_urn.split("::")[2].removeprefix("pulumi:pulumi:Stack").lstrip("$") if parent_urn else ""
    return "::".join([stack, project, (parent_types + "$" if parent_types else "") + (spec.type or typ),
                      spec.name or name])


@dataclass
class Capture:
    stack: str
    resources: list[Resource]
    outputs: dict
    secret_outputs: set[str]
    skipped_secrets: list[str]
    # The config the program ran with (full keys): the cost report reads the pause schedule from it.
    config: dict[str, str] = field(default_factory=dict)

    def of_type(self, typ: str) -> list[Resource]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str, name: Optional[str] = None) -> Resource:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        if len(found) != 1:
            raise AssertionError(f"expected one {typ} {name or ''}, found {[r.name for r in found]}")
        return found[0]

    def by_urn(self, urn: str) -> Resource:
        return next(r for r in self.resources if r.urn == urn)

    def kubernetes_objects(self) -> list[tuple[Resource, dict]]:
        objects = []
        for resource in self.resources:
            if resource.type.startswith("kubernetes:") and resource.custom:
                manifest = resource.inputs
                manifest.setdefault("metadata", {}).setdefault("name", resource.name)
                objects.append((resource, manifest))
        return objects


def _config_value(value: Any) -> Optional[str]:
    if isinstance(value, dict) and set(value) == {"secure"}:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def load_stack_file(stack: str, root: Path = ROOT) -> tuple[dict[str, str], list[str]]:
    """Config as `pulumi` would give the program: Pulumi.yaml defaults overlaid by Pulumi.<stack>.yaml.

    Values stored encrypted (`secure:`) cannot be read without the Pulumi CLI; they are left unset
    and listed, so the program falls back to generated values as on a first deploy.
    """
    project_file = yaml.safe_load((root / "Pulumi.yaml").read_text())
    config: dict[str, str] = {}
    for key, schema in (project_file.get("config") or {}).items():
        full_key = key if ":" in key else f"{PROJECT}:{key}"
        default = schema.get("default") if isinstance(schema, dict) else schema
        if default is not None:
            config[full_key] = _config_value(default)
    stack_file = root / f"Pulumi.{stack}.yaml"
    if not stack_file.exists():
        raise FileNotFoundError(f"no stack file {stack_file.name}; stacks here: "
                                f"{sorted(p.name for p in root.glob('Pulumi.*.yaml'))}")
    skipped = []
    for key, value in ((yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}).items():
        text = _config_value(value)
        if text is None:
            skipped.append(key)
        else:
            config[key] = text
    return config, skipped


def run_program(stack: str = "dev", config: Optional[dict[str, str]] = None, program: Optional[Any] = None,
                secret_keys: Optional[list[str]] = None, deploying: bool = False) -> Capture:
    """Run `__main__.py` (or a callable) under mocks with the given config (default: the stack's files).

    `deploying=True` runs it as `pulumi up` would (values refused only at deploy time are refused);
    by default it is an offline preview, where they only warn."""
    skipped: list[str] = []
    if config is None:
        config, skipped = load_stack_file(stack)
    mocks = StackMocks(config.get("gcp:project", "mock-project"), config.get("gcp:region", "us-central1"))
    monitor = RecordingMonitor(mocks)
    settings.set_root_resource(None)  # a fresh root Stack per run
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(dict(config), secret_keys or [])
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    if program is None:
        main = str(ROOT / "__main__.py")
        program = lambda: runpy.run_path(main, run_name="__main__")  # noqa: E731
    outputs: dict = {}
    secret_outputs: set[str] = set()

    async def run_and_collect_exports() -> None:
        program()
        root = settings.get_root_resource()
        for name, value in getattr(root, "outputs", {}).items():
            output = pulumi.Output.from_input(value)
            outputs[name] = unwrap(await output.future())
            if await output.is_secret():
                secret_outputs.add(name)

    with contextlib.nullcontext() if deploying else offline_preview():
        _sync_await(run_pulumi_func(run_and_collect_exports))
    return Capture(stack=stack, resources=list(monitor.records), outputs=outputs, secret_outputs=secret_outputs,
                   skipped_secrets=skipped, config=dict(config))
