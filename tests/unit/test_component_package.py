"""The components as a Pulumi component package (docs/reuse.md): Pulumi's own schema analyzer accepts every
component alone and all together, every input is documented, and type tokens carry the package name."""

# No `from __future__ import annotations` here: the analyzer cannot read postponed annotations, and the
# components below that break its rules must fail for those rules.
import ast
import dataclasses
import importlib
import inspect
import pkgutil
import textwrap
from typing import Optional, TypedDict

import pulumi
import pytest
from pulumi.provider.experimental.analyzer import Analyzer, InvalidMapTypeError

import components
from components.common import PACKAGE, type_token
from components.package import COMPONENTS

# Written out, so that dropping a component from the package is a visible change of this list.
EXPECTED = {"Network", "Database", "Cluster", "Registry", "Identity", "WorkloadIdentityBindings", "LogsBucket",
            "ProjectServices", "CiIdentity", "FrontDoor", "ActiveHoursSchedule", "AirflowWorkload", "UiAccess",
            "Monitoring"}


def undocumented(result) -> list[str]:
    """Inputs and input-type fields without a description: the generated SDKs' docs would be empty."""
    missing = [f"{c.name}.{p}" for c in result["component_definitions"].values()
               for p, prop in c.inputs.items() if not prop.description]
    return missing + [f"{t.name}.{p}" for t in result["type_definitions"].values()
                      for p, prop in t.properties.items() if not prop.description and not t.enum]


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.__name__)
def test_each_component_passes_the_analyzer_alone(component):
    result = Analyzer(PACKAGE).analyze([component])
    definition = result["component_definitions"][component.__name__]
    assert definition.inputs, "no inputs found: is the args parameter named `args` and annotated?"
    assert undocumented(result) == []


def test_all_components_pass_the_analyzer_together():
    result = Analyzer(PACKAGE).analyze(list(COMPONENTS))
    assert set(result["component_definitions"]) == EXPECTED
    assert undocumented(result) == []
    # Only the Google and Kubernetes providers' schemas are referenced (resource outputs), never an unversioned one.
    assert {(d.name, bool(d.version)) for d in result["dependencies"]} <= {("gcp", True), ("kubernetes", True)}


def _component_classes() -> dict[str, type]:
    found = {}
    for info in pkgutil.walk_packages(components.__path__, "components."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (inspect.isclass(value) and issubclass(value, pulumi.ComponentResource)
                    and value.__module__ == module.__name__):
                found[value.__name__] = value
    return found


def test_every_component_in_the_repository_is_in_the_package():
    assert set(_component_classes()) == {c.__name__ for c in COMPONENTS}


def _registered_tokens(cls: type) -> list[str]:
    """The type_token("...") names a component's own __init__ registers with."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls.__init__)))
    return [node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "type_token"]


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.__name__)
def test_type_token_is_package_index_class(component):
    # The host builds `<name>:index:<Class>` from the class name; a component registering under another token
    # would be constructed under one URN and looked up under another.
    assert _registered_tokens(component) == [component.__name__]
    assert type_token(component.__name__) == f"{PACKAGE}:index:{component.__name__}"


# --- the analyzer's rules, shown on components that break them ------------------------------------------------

class BareDictArgs(TypedDict):
    labels: dict
    """Labels."""


class BareDict(pulumi.ComponentResource):
    def __init__(self, name: str, args: BareDictArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("BareDict"), name, {}, opts)


class UndocumentedArgs(TypedDict):
    project: str
    """GCP project id."""
    region: str


class Undocumented(pulumi.ComponentResource):
    def __init__(self, name: str, args: UndocumentedArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("Undocumented"), name, {}, opts)


def test_a_bare_dict_arg_fails_the_analyzer():
    with pytest.raises(InvalidMapTypeError, match="BareDictArgs.labels"):
        Analyzer(PACKAGE).analyze([BareDict])


def test_an_undocumented_arg_is_reported():
    assert undocumented(Analyzer(PACKAGE).analyze([Undocumented])) == ["Undocumented.region"]


# --- the Airflow workload's settings: plain args in, the same validated dataclass out ---------------------------

def test_airflow_settings_args_cover_every_setting():
    from components.airflow.workload_args import AirflowSettingsArgs
    from components.config import AirflowSettings
    assert set(AirflowSettingsArgs.__annotations__) == {f.name for f in dataclasses.fields(AirflowSettings)}


def test_airflow_settings_round_trip_through_args():
    from components.airflow.workload_args import settings_args, settings_from_args
    from components.config import DEFAULT_RESOURCES, AirflowSettings
    from components.config.settings import ContainerResources, FrontDoorSettings
    password, token, client_secret = (pulumi.Output.secret(v) for v in ("pw", "tok", "cs"))
    settings = AirflowSettings(
        namespace="ns", image="img:1", replicas=3, dags_repo="git@example.com:d.git", dags_ref="v1", dags_subpath="",
        git_sync_period_seconds=7, git_sync_max_failures=2, dag_refresh_seconds=9, service_type="LoadBalancer",
        load_balancer_source_ranges=("10.0.0.0/8",), allow_public_ui=True, admin_username="root",
        admin_email="r@example.com", git_credentials_kind="ssh",
        resources={**DEFAULT_RESOURCES, "worker": ContainerResources("1", "2Gi", "2", "4Gi")},
        metadata_retention_days=0, fernet_key_version=2, secrets_version=4, admin_password=password, git_credentials=token,
        git_ssh_known_hosts="example.com ssh-ed25519 AAAA", db_pool_size=11, db_pool_max_overflow=12,
        base_url="https://airflow.example.com", dag_reparse_seconds=30, dag_source="git-bundle",
        git_bundle_refresh_seconds=45, failed_pod_retention_hours=6,
        front_door=FrontDoorSettings("airflow.example.com", "zone"), worker_roles=("roles/bigquery.jobUser",),
        task_identities=(("analytics", ("roles/bigquery.dataViewer",)), ("loader", ())),
        secrets_backend="secret-manager", secrets_prefix="af", secrets_project="p",
        airflow_config=(("core.parallelism", "64"), ("scheduler.min_file_process_interval", "30")),
        ui_access=(("Viewer", ("group:all@example.com",)), ("Admin", ("user:a@example.com",))),
        iap_client_id="1-a.apps.googleusercontent.com", iap_client_secret=client_secret,
        ui_backend_service_id="4242424242")
    assert {f.name for f in dataclasses.fields(settings)
            if getattr(settings, f.name) == f.default} == set(), "every field differs from its default"
    assert settings_from_args(settings_args(settings)) == settings


def test_airflow_settings_args_refuse_unknown_keys():
    from components.airflow.workload_args import settings_from_args
    with pytest.raises(ValueError, match="dag_repo"):
        settings_from_args({"dag_repo": "x"})


def test_plain_secret_strings_become_outputs():
    # A program in another language passes a plain (secret) string; the builders apply() it.
    from components.airflow.workload_args import settings_from_args
    from tests.unit.test_reuse import SETTINGS
    settings = settings_from_args({**SETTINGS, "admin_password": "pw", "git_credentials": "tok"})
    assert isinstance(settings.admin_password, pulumi.Output) and isinstance(settings.git_credentials, pulumi.Output)
