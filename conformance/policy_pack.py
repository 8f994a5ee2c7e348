"""What the Pulumi CLI checks on a policy pack before running it, ported from its Go source (pulumi/pulumi
at commit 1b5949891b3cefcb9974752b24a5ecef0acc86c8): `PulumiPolicy.yaml` and the JSON file given to
`pulumi preview --policy-pack-config`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from .pulumi_cli import load_yaml

# apitype.EnforcementLevel.IsValid (sdk/go/common/apitype/policy.go).
ENFORCEMENT_LEVELS = ("advisory", "mandatory", "remediate", "disabled")


def check_policy_pack_project(path: Path) -> list[str]:
    """LoadPolicyPack (sdk/go/common/workspace/loaders.go) + PolicyPackProject.Validate (project.go).

    The YAML is decoded non-strictly into the PolicyPackProject struct: unknown attributes are ignored,
    a field of the wrong type is a yaml.TypeError. `runtime` is a string or {name, options}
    (ProjectRuntimeInfo.UnmarshalYAML) and its name must be non-empty."""
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        return [f"{path.name}: expected a mapping"]
    problems = [f"{path.name}: '{key}' must be a string" for key in ("version", "main", "description",
                                                                     "author", "website", "license")
                if raw.get(key) is not None and not isinstance(raw[key], str)]
    runtime = raw.get("runtime")
    if isinstance(runtime, dict):
        name, options = runtime.get("name"), runtime.get("options")
        if not isinstance(name or "", str) or (options is not None and not isinstance(options, dict)):
            problems.append(f"{path.name}: runtime section must be a string or an object with name and options "
                            "attributes")
            name = ""
    else:
        name = runtime if isinstance(runtime, str) else ""
    if not name:
        problems.append(f"{path.name}: project is missing a 'runtime' attribute")
    return problems


def _enforcement_level(name: str, level: Any) -> list[str]:
    if not isinstance(level, str):
        return [f"parsing enforcement level for {name!r}: {level} is not a valid enforcement level; must be a string"]
    if level not in ENFORCEMENT_LEVELS:
        return [f"parsing enforcement level for {name!r}: {level!r} is not a valid enforcement level"]
    return []


def check_policy_pack_config(path: Path, policy_names: Iterable[str]) -> list[str]:
    """parsePolicyPackConfig (pkg/resource/analyzer/config.go): a JSON object (empty file allowed) whose
    optional "environments" is a list of strings, every other entry a policy name mapped to an enforcement
    level string or an object with an optional `enforcementLevel` plus that policy's properties.

    OUR rule, not the CLI's: every name must be a policy in the pack (or "all", which applyConfig spreads
    over every policy). The CLI adds an unknown name to the config without a word (applyConfig), so a
    misspelt policy name would silently leave the real policy at its default level."""
    text = path.read_text()
    if not text.strip():
        return []
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        return [f"{path.name}: {error}"]
    if not isinstance(config, dict):
        return [f"{path.name}: expected a JSON object"]
    problems = []
    environments = config.pop("environments", [])
    if not isinstance(environments, list) or not all(isinstance(e, str) for e in environments):
        problems.append(f'{path.name}: "environments" must be an array of strings')
    known = set(policy_names) | {"all"}
    for name, value in config.items():
        if isinstance(value, str):
            problems += _enforcement_level(name, value)
        elif isinstance(value, dict):
            if "enforcementLevel" in value:
                problems += _enforcement_level(name, value["enforcementLevel"])
        else:
            problems.append(f"parsing {name!r}: {value} is not a valid value; must be a string or object")
        if name not in known:
            problems.append(f"{path.name}: {name!r} is not a policy in the pack (ours: the CLI ignores it)")
    return [p if p.startswith(path.name) else f"{path.name}: {p}" for p in problems]
