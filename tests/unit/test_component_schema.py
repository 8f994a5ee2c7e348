"""The plugin in provider/ as the Pulumi CLI meets it: started like a plugin (its port on stdout), asked for its
schema over the ResourceProvider gRPC service; then the consumer programs in examples/consumers/ checked
against that schema the way `pulumi preview` would check their resources' inputs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import grpc
import pytest
import yaml
from pulumi.provider.experimental.util import camel_case
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from components.common import PACKAGE
from components.package import COMPONENTS
from conformance.pulumi_cli import validate_project_schema

ROOT = Path(__file__).resolve().parents[2]
CONSUMERS = sorted((ROOT / "examples" / "consumers").glob("*/Pulumi.yaml"))
REFERENCE = re.compile(r"\$\{([A-Za-z0-9_-]+)\.([A-Za-z0-9_]+)\}")


@pytest.fixture(scope="module")
def schema() -> dict:
    # The language host runs `python provider/ ENGINE`; the engine is not needed for GetSchema.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    plugin = subprocess.Popen([sys.executable, str(ROOT / "provider"), "127.0.0.1:1"], cwd=ROOT / "provider",
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        port = plugin.stdout.readline().decode().strip()
        assert port.isdigit(), plugin.stderr.read().decode()[-3000:]
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            response = provider_pb2_grpc.ResourceProviderStub(channel).GetSchema(
                provider_pb2.GetSchemaRequest(version=0), timeout=60)
        return json.loads(response.schema)
    finally:
        plugin.terminate()
        plugin.wait(timeout=30)
        plugin.stdout.close()
        plugin.stderr.close()


def _args_type(component: type) -> type:
    return typing.get_type_hints(component.__init__)["args"]


def test_schema_names_the_package_and_every_component(schema):
    assert schema["name"] == PACKAGE
    assert set(schema["resources"]) == {f"{PACKAGE}:index:{c.__name__}" for c in COMPONENTS}
    assert all(r["isComponent"] for r in schema["resources"].values())


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.__name__)
def test_schema_inputs_are_the_args_with_types_and_descriptions(schema, component):
    resource = schema["resources"][f"{PACKAGE}:index:{component.__name__}"]
    args = _args_type(component)
    assert set(resource["inputProperties"]) == {camel_case(k) for k in args.__annotations__}
    assert set(resource.get("requiredInputs", [])) == {camel_case(k) for k in args.__required_keys__}
    for name, prop in resource["inputProperties"].items():
        assert prop.get("description"), f"{component.__name__}.{name} has no description"
        assert "type" in prop or "$ref" in prop, f"{component.__name__}.{name} has no type"


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.__name__)
def test_schema_outputs_are_the_annotated_attributes(schema, component):
    resource = schema["resources"][f"{PACKAGE}:index:{component.__name__}"]
    annotated = {camel_case(k) for k in inspect_annotations(component) if not k.startswith("_")}
    assert set(resource.get("properties", {})) == annotated
    assert all("type" in p or "$ref" in p for p in resource.get("properties", {}).values())


def inspect_annotations(component: type) -> dict:
    return {k: v for cls in reversed(component.__mro__) if cls.__module__.startswith("components")
            for k, v in vars(cls).get("__annotations__", {}).items()}


def test_schema_types_are_documented(schema):
    assert schema["types"], "the nested args (settings, node pools, aliases) are schema types"
    for token, typ in schema["types"].items():
        assert token.startswith(f"{PACKAGE}:index:")
        for name, prop in typ["properties"].items():
            assert prop.get("description"), f"{token}.{name} has no description"


def check_properties(schema: dict, where: str, given: dict, inputs: dict, required: list) -> list[str]:
    """Missing required inputs, unknown inputs, and the same inside object-typed inputs (settings, ...)."""
    problems = [f"{where}: missing required input {name!r}" for name in required if name not in given]
    for name, value in given.items():
        prop = inputs.get(name)
        if prop is None:
            problems.append(f"{where}: unknown input {name!r} (known: {sorted(inputs)})")
            continue
        problems += check_value(schema, f"{where}.{name}", value, prop)
    return problems


def check_value(schema: dict, where: str, value, prop: dict) -> list[str]:
    if isinstance(value, str) and value.startswith("${"):
        return []  # an expression: its output's type is checked by test_consumer_references_name_outputs
    ref = prop.get("$ref", "")
    if ref.startswith(f"#/types/{PACKAGE}:"):
        typ = schema["types"][ref.removeprefix("#/types/")]
        if not isinstance(value, dict):
            return [f"{where}: expected an object of {ref}, got {value!r}"]
        return check_properties(schema, where, value, typ["properties"], typ.get("required", []))
    expected = prop.get("type")
    if expected == "array":
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {value!r}"]
        return [p for i, item in enumerate(value) for p in check_value(schema, f"{where}[{i}]", item, prop["items"])]
    if expected == "object" and "additionalProperties" in prop:
        if not isinstance(value, dict):
            return [f"{where}: expected a map, got {value!r}"]
        return [p for k, item in value.items()
                for p in check_value(schema, f"{where}.{k}", item, prop["additionalProperties"])]
    python = {"string": str, "integer": int, "number": (int, float), "boolean": bool}.get(expected)
    if python and (not isinstance(value, python) or (expected == "integer" and isinstance(value, bool))):
        return [f"{where}: expected {expected}, got {value!r}"]
    return []


def consumer_problems(schema: dict, program: dict) -> list[str]:
    problems = []
    for name, resource in (program.get("resources") or {}).items():
        token = resource["type"]
        if not token.startswith(f"{PACKAGE}:"):
            continue
        if token not in schema["resources"]:
            problems.append(f"{name}: {token} is not in the package")
            continue
        definition = schema["resources"][token]
        problems += check_properties(schema, name, resource.get("properties") or {},
                                     definition["inputProperties"], definition.get("requiredInputs", []))
    return problems


def reference_problems(schema: dict, program: dict) -> list[str]:
    resources = program.get("resources") or {}
    problems = []
    for name, resource_name, output in ((n, r, o) for n, res in resources.items()
                                        for r, o in REFERENCE.findall(json.dumps(res))):
        token = resources.get(resource_name, {}).get("type", "")
        if token in schema["resources"] and output not in schema["resources"][token].get("properties", {}):
            problems.append(f"{name}: {resource_name} ({token}) has no output {output!r}")
    return problems


@pytest.mark.parametrize("path", CONSUMERS, ids=lambda p: p.parent.name)
def test_consumer_program_fits_the_schema(schema, path):
    program = yaml.safe_load(path.read_text())
    assert validate_project_schema(program) == []
    assert any(r["type"].startswith(f"{PACKAGE}:") for r in program["resources"].values())
    assert consumer_problems(schema, program) == []
    assert reference_problems(schema, program) == []
    (source,) = program["packages"].values()
    assert re.fullmatch(r"github\.com/[^/]+/airflow-gke\.git/provider@v\d+\.\d+\.\d+", source)


def test_consumer_check_catches_mistakes(schema):
    program = yaml.safe_load(CONSUMERS[0].read_text())
    network = program["resources"]["network"]["properties"]
    del network["subnetCidr"]
    network["subnetRange"] = "10.0.0.0/20"
    program["resources"]["airflow"]["properties"]["settings"]["replicas"] = "two"
    program["resources"]["airflow"]["properties"]["databaseName"] = "${database.dbName}"
    assert consumer_problems(schema, program) == [
        "network: missing required input 'subnetCidr'",
        f"network: unknown input 'subnetRange' (known: {sorted(schema['resources'][f'{PACKAGE}:index:Network']['inputProperties'])})",
        "airflow.settings.replicas: expected integer, got 'two'",
    ]
    assert reference_problems(schema, program) == [
        f"airflow: database ({PACKAGE}:index:Database) has no output 'dbName'"]
