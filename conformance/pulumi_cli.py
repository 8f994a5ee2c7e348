"""The checks the Pulumi CLI runs on `Pulumi.yaml` and `Pulumi.<stack>.yaml` before the program starts,
ported from its Go source so that `make unit` fails where a real `pulumi preview` would.

Every function names the Go function it ports. All paths are in https://github.com/pulumi/pulumi at
commit 1b5949891b3cefcb9974752b24a5ecef0acc86c8 (SCHEMA_COMMIT). Where the CLI stops at the first error,
these functions collect every problem, so one test run shows them all.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import jsonschema
import yaml

SCHEMA_COMMIT = "1b5949891b3cefcb9974752b24a5ecef0acc86c8"
SCHEMA_PATH = Path(__file__).parent / "vendor" / "pulumi-project.schema.json"

# sdk/go/common/workspace/project.go, the *TypeName constants.
SIMPLE_TYPES = ("string", "integer", "boolean", "array", "object")
_INT64 = (-(2**63), 2**63 - 1)


class CliYamlLoader(yaml.SafeLoader):
    """YAML as the CLI reads it: gopkg.in/yaml.v3 (sdk/go/common/encoding/marshal.go) decodes into `any`
    with YAML 1.2 booleans (only true/false in any case form), so `yes`/`on` stay strings, and timestamps
    stay strings. PyYAML's SafeLoader follows YAML 1.1, which would turn `on` into True."""


CliYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
CliYamlLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                    list("tTfF"))


def load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8-sig"), Loader=CliYamlLoader)


# --- Pulumi.yaml ---------------------------------------------------------------------------------------

def validate_project_schema(raw: Any) -> list[str]:
    """ValidateProject (project.go): a non-empty string `name`, then the published JSON schema."""
    if not isinstance(raw, dict):
        return [f"expected project to be an object, was {type(raw).__name__}"]
    if "name" not in raw:
        return ["project is missing a 'name' attribute"]
    if not isinstance(raw["name"], str) or raw["name"] == "":
        return ["project is missing a non-empty string 'name' attribute"]
    schema = json.loads(SCHEMA_PATH.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    return [f"#/{'/'.join(map(str, error.absolute_path))}: {error.message}"
            for error in sorted(validator.iter_errors(raw), key=lambda e: list(map(str, e.absolute_path)))]


def namespaced_by_project(project_name: str, key: str) -> bool:
    """configKeyIsNamespacedByProject (project.go)."""
    return ":" not in key or key.startswith(project_name + ":")


def rewrite_shorthand(project_name: str, config: dict) -> dict:
    """RewriteShorthandConfigValues (project.go): `key: 3` declares a default for a project key and a
    value for another namespace's key. Go's isPrimitiveValue is string|int|bool (floats are not)."""
    declarations = {}
    for key, value in (config or {}).items():
        if isinstance(value, (str, int, bool, list)) and not isinstance(value, float):
            value = {"default" if namespaced_by_project(project_name, key) else "value": value}
        declarations[key] = value
    return declarations


def validate_config_value(type_name: Optional[str], items: Optional[dict], value: Any) -> bool:
    """ValidateConfigValue (project.go). Stack values reach it as strings (a YAML `3` or `true` in a stack
    file is stored as the string "3"/"true", see config_value_from_yaml), arrays/objects JSON-decoded."""
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int):
            return True
        if isinstance(value, float):  # YAML/JSON numbers arrive as float64; whole ones are accepted
            return math.isfinite(value) and value == math.trunc(value)
        if isinstance(value, str):  # strconv.Atoi: optional sign, decimal digits, int64 range
            return bool(re.fullmatch(r"[+-]?[0-9]+", value)) and _INT64[0] <= int(value) <= _INT64[1]
        return False
    if type_name == "boolean":
        return value in ("true", "false") or isinstance(value, bool)
    if type_name == "object":
        return isinstance(value, dict)
    if not isinstance(value, list) or items is None:
        return False
    return all(validate_config_value(items.get("type"), items.get("items"), item) for item in value)


def full_type_name(type_name: Optional[str], items: Optional[dict]) -> str:
    """InferFullTypeName (project.go)."""
    if items is not None:
        return f"array<{full_type_name(items.get('type'), items.get('items'))}>"
    return type_name or ""


def validate_project(project_name: str, declarations: dict) -> list[str]:
    """Project.Validate (project.go ~line 837), on the declarations after rewrite_shorthand."""
    problems = []
    for key, decl in declarations.items():
        decl = decl or {}
        type_name, items, typed = decl.get("type"), decl.get("items"), "type" in decl
        if decl.get("default") is not None and decl.get("value") is not None:
            problems.append(f"project config '{key}' cannot have both a 'default' and 'value' attribute")
        if namespaced_by_project(project_name, key):
            if typed and type_name == "array" and items is None:
                problems.append(f"The configuration key '{key}' declares an array but does not specify the "
                                "underlying type via the 'items' attribute")
            if typed and decl.get("default") is not None and not validate_config_value(type_name, items,
                                                                                        decl["default"]):
                problems.append(f"The default value specified for configuration key '{key}' is not of the "
                                f"expected type '{full_type_name(type_name, items)}'")
        elif typed:
            problems.append(f"Configuration key '{key}' is not namespaced by the project and should not define "
                            "a type")
        elif decl.get("default") is not None:
            problems.append(f"Configuration key '{key}' is not namespaced by the project and should not define "
                            "a default value. Did you mean to use the 'value' attribute instead of 'default'?")
        elif decl.get("value") is None:
            problems.append(f"Configuration key '{key}' is namespaced and must provide an attribute 'value'")
    return problems


@dataclass
class Project:
    name: str
    declarations: dict  # full key -> declaration (after the shorthand rewrite)
    problems: list[str] = field(default_factory=list)


def load_project(path: Path) -> Project:
    """LoadProjectBytes (sdk/go/common/workspace/loaders.go): schema, shorthand rewrite, Project.Validate."""
    raw = load_yaml(path)
    problems = validate_project_schema(raw)
    if problems:
        return Project(str((raw or {}).get("name", "")), {}, problems)
    config = raw.get("config")
    declarations = rewrite_shorthand(raw["name"], config if isinstance(config, dict) else {})
    problems = validate_project(raw["name"], declarations)
    return Project(raw["name"], {parse_key(raw["name"], k): d or {} for k, d in declarations.items()}, problems)


# --- Pulumi.<stack>.yaml ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class StackValue:
    """config.Value (sdk/go/common/resource/config/value.go): a string, secure or not, object or not."""
    text: str
    secure: bool = False
    object: bool = False

    def content(self) -> Any:
        """What validateStackConfigValue (pkg/workspace/config.go) type-checks: the string, or JSON-decoded."""
        return json.loads(self.text) if self.object else self.text


def _go_json(value: Any) -> Any:
    """A YAML value as Go's json.Marshal renders it inside an object value (whole floats print bare)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, dict):
        return {str(k): _go_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_go_json(v) for v in value]
    return value


def _is_secure(value: Any) -> bool:
    """isSecureValue (sdk/go/common/resource/config/object.go): a one-entry map {secure: <string>}."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("secure"), str)


def config_value_from_yaml(value: Any) -> StackValue:
    """object.MarshalString (config/object.go): scalars become their string form ("true", "3"), null
    becomes "" (loaders.go checkForEmptyConfig warns), maps and lists become JSON objects."""
    if _is_secure(value):
        return StackValue(value["secure"], secure=True)
    if value is None:
        return StackValue("")
    if isinstance(value, bool):
        return StackValue("true" if value else "false")
    if isinstance(value, (int, float)):
        return StackValue(json.dumps(_go_json(value)))
    if isinstance(value, str):
        return StackValue(value)
    # A nested {secure: ...} makes the whole object secure (object.Secure()).
    return StackValue(json.dumps(_go_json(value), separators=(",", ":"), sort_keys=True),
                      secure=_has_nested_secure(value), object=True)


def _has_nested_secure(value: Any) -> bool:
    if _is_secure(value):
        return True
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return any(_has_nested_secure(child) for child in children)


def parse_key(project_name: str, key: str) -> str:
    """parseConfigKey (pkg/workspace/config.go) / stackConfigNamespacedWithProject (loaders.go)."""
    return key if ":" in key else f"{project_name}:{key}"


def load_stack(project: Project, raw: Any) -> tuple[dict[str, StackValue], list[str]]:
    """LoadProjectStackBytes (loaders.go): bare keys get the project namespace; null values warn."""
    config = (raw or {}).get("config") or {}
    warnings = [f"No value for configuration key \"{k}\" (treated as \"\")" for k, v in config.items() if v is None]
    return {parse_key(project.name, k): config_value_from_yaml(v) for k, v in config.items()}, warnings


def _default_as_value(default: Any) -> StackValue:
    """createConfigValue (pkg/workspace/config.go): string|int|bool via fmt %v, anything else as JSON."""
    if isinstance(default, bool):
        return StackValue("true" if default else "false")
    if isinstance(default, (str, int)):
        return StackValue(str(default))
    return StackValue(json.dumps(_go_json(default), separators=(",", ":"), sort_keys=True), object=True)


def merge_and_validate(stack_name: str, project: Project,
                       stack: dict[str, StackValue]) -> tuple[dict[str, StackValue], list[str]]:
    """mergeConfig with validate=true (ValidateStackConfigAndApplyProjectConfig, pkg/workspace/config.go).

    A declared key in the project's namespace with neither `default` nor `value` must be set in the stack,
    typed or not (`IsExplicitlyTyped` plays no part in this check). Declared defaults are then merged in:
    they reach the program as if set. Only explicitly typed keys are type-checked, and only they get the
    `secret: true` => `secure:` check (validateStackConfigValue). Keys the project does not declare are
    neither required nor checked: the CLI passes an undeclared `airflow-gke:typo` to the program as is."""
    merged, problems = dict(stack), []
    missing = sorted(k.partition(":")[2] if k.startswith(project.name + ":") else k
                     for k, d in project.declarations.items()
                     if k not in stack and d.get("default") is None and d.get("value") is None
                     and k.partition(":")[0] == project.name)
    if missing:
        # formatMissingKeys: 'a', 'b' and 'c'
        names = " and ".join(filter(None, [", ".join(f"'{m}'" for m in missing[:-1]), f"'{missing[-1]}'"]))
        problems.append(f"Stack '{stack_name}' is missing configuration value{'s' if len(missing) > 1 else ''} "
                        f"{names}")
    for key, decl in project.declarations.items():
        if key not in merged and (decl.get("default") is not None or decl.get("value") is not None):
            merged[key] = _default_as_value(decl["default"] if decl.get("default") is not None else decl["value"])
    if problems:
        return merged, problems  # the CLI returns the missing-keys error before type-checking
    for key in sorted(project.declarations):
        decl, value = project.declarations[key], merged.get(key, StackValue(""))
        short = key.partition(":")[2] if key.startswith(project.name + ":") else key
        if "type" not in decl:
            continue
        if decl.get("secret") and not value.secure:
            problems.append(f"Stack '{stack_name}' with configuration key '{short}' must be encrypted as it's secret")
        elif not value.secure and not validate_config_value(decl["type"], decl.get("items"), value.content()):
            # A secure value is checked on its plaintext, which needs the stack's secrets provider.
            problems.append(f"Stack '{stack_name}' with configuration key '{short}' must be of type "
                            f"'{full_type_name(decl['type'], decl.get('items'))}'")
    return merged, problems


def check_stack(project: Project, stack_name: str, raw: Any) -> list[str]:
    """Everything `pulumi preview` checks on a stack before the program runs: the project's own problems,
    then the stack's (the first failing CLI step ends a real run; all are listed here)."""
    stack, _warnings = load_stack(project, raw)
    return [*project.problems, *merge_and_validate(stack_name, project, stack)[1]]
