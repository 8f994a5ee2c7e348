"""Validation of custom resources (kinds kubernetes-validate cannot know) against the CRDs vendored in
tests/crds/: jsonschema on the served version's openAPIV3Schema, made strict the way the API server
treats a structural schema (it prunes unknown fields: https://kubernetes.io/docs/tasks/extend-kubernetes/
custom-resources/custom-resource-definitions/#field-pruning), so a misspelt field is an error here; then the
CRD's CEL rules (x-kubernetes-validations) with cel-python, in tests/crd_cel.py."""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

import jsonschema
import yaml

from tests import crd_cel

CRDS = Path(__file__).resolve().parent / "crds"


@lru_cache(maxsize=None)
def served_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> openAPIV3Schema as vendored, for every served version of every vendored CRD."""
    found = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":  # SOURCES.yaml, empty documents
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    found[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return found


@lru_cache(maxsize=None)
def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> strict JSON schema."""
    return {key: _strict(schema) for key, schema in served_schemas().items()}


def _strict(schema: dict) -> dict:
    schema = copy.deepcopy(schema)

    def walk(node: dict, top: bool) -> None:
        if not isinstance(node, dict):
            return
        props = node.get("properties")
        if props is not None and "additionalProperties" not in node \
                and not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
        for name, child in (props or {}).items():
            if not (top and name == "metadata"):  # ObjectMeta is the API server's, not the CRD's
                walk(child, False)
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                walk(node[key], False)
        # allOf/anyOf/oneOf/not branches are left open: a structural schema declares every field on its
        # spine, outside the junctors, and prunes by the spine alone (https://kubernetes.io/docs/tasks/
        # extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema).
        # Closing a branch would refuse valid objects (the Gateway's addresses[].oneOf lists `type` only).

    walk(schema, True)
    return schema


def is_custom(manifest: dict) -> bool:
    return (manifest.get("apiVersion"), manifest.get("kind")) in crd_schemas()


def validate(manifest: dict) -> None:
    """Raises jsonschema.ValidationError when `manifest` does not fit its CRD's schema, crd_cel.RuleViolation when
    it breaks one of its CEL rules (crd_cel.RuleError when a rule cannot be evaluated here)."""
    key = (manifest["apiVersion"], manifest["kind"])
    jsonschema.validate(manifest, crd_schemas()[key])
    crd_cel.check(manifest, served_schemas()[key])
