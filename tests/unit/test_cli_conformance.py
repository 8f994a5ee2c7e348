"""The Pulumi CLI's own pre-program checks (conformance/, ported from pulumi/pulumi's Go source) applied to
both projects, every committed stack, the stacks the README's steps produce, and the policy pack: what a real
`pulumi preview` would refuse before `__main__.py` runs fails here instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from components.config import PROJECT, load_stack_config
from conformance import policy_pack
from conformance.pulumi_cli import (StackValue, check_stack, config_value_from_yaml, load_project, load_stack,
                                    load_yaml, merge_and_validate, validate_project_schema)
from conformance.readme_steps import readme_stacks
from policy.rules import policy_names
from preview.harness import load_stack_file

ROOT = Path(__file__).resolve().parents[2]
PROJECT_DIRS = [ROOT, ROOT / "bootstrap"]
STACK_FILES = [path for d in PROJECT_DIRS for path in sorted(d.glob("Pulumi.*.yaml"))]
# Each documented section (page, heading) whose fenced shell block creates a stack a reader deploys.
README_SECTIONS = [("README.md", "Deploy for real"), ("docs/deploy.md", "Steps"),
                   ("docs/ci.md", "CI/CD on your own repository")]


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _stack_name(path: Path) -> str:
    return path.name[len("Pulumi."):-len(".yaml")]


# --- the rules themselves fail where the CLI fails (cases from pulumi/pulumi's own tests) --------------

def _project(text: str, tmp_path: Path):
    (tmp_path / "Pulumi.yaml").write_text(text)
    return load_project(tmp_path / "Pulumi.yaml")


def test_missing_typed_keys_without_default_are_refused_as_upstream(tmp_path):
    # pkg/workspace/config_project_test.go TestStackConfigErrorsWhenMissingTwoStackValueForConfigTypeWithNoDefault
    project = _project("name: test\nruntime: dotnet\nconfig:\n  another:\n    type: string\n"
                       "  values:\n    type: array\n    items:\n      type: string\n", tmp_path)
    assert check_stack(project, "dev", {}) == ["Stack 'dev' is missing configuration values 'another' and 'values'"]


def test_untyped_declaration_without_default_is_required_too(tmp_path):
    # mergeConfig: the missing-key test is `!foundOnStack && !hasValue && !hasDefault`; the type plays no part.
    project = _project("name: test\nruntime: python\nconfig:\n  note:\n    description: untyped\n", tmp_path)
    assert check_stack(project, "dev", {}) == ["Stack 'dev' is missing configuration value 'note'"]
    optional = _project("name: test\nruntime: python\nconfig:\n  note:\n    default: ''\n", tmp_path)
    assert check_stack(optional, "dev", {}) == []


@pytest.mark.parametrize("decl, value, ok", [
    ("type: integer", 3, True), ("type: integer", "3", True), ("type: integer", 1.5, False),
    ("type: integer", "x", False), ("type: boolean", True, True), ("type: boolean", "yes", False),
    ("type: boolean", "on", False),  # yaml.v3 reads `on` as a string, unlike YAML 1.1
    ("{type: array, items: {type: string}}", ["a"], True), ("{type: array, items: {type: integer}}", ["a"], False),
    ("type: object", {"a": 1}, True), ("type: object", "a", False), ("type: string", 5, True),
])
def test_stack_values_are_type_checked_as_the_cli_reads_yaml(tmp_path, decl, value, ok):
    decl = decl if decl.startswith("{") else "{" + decl + "}"
    project = _project(f"name: test\nruntime: python\nconfig:\n  k: {decl}\n", tmp_path)
    stack = load_yaml_text(tmp_path, f"config:\n  test:k: {json.dumps(value) if not isinstance(value, str) else value}\n")
    assert (check_stack(project, "dev", stack) == []) is ok


def load_yaml_text(tmp_path: Path, text: str):
    (tmp_path / "Pulumi.dev.yaml").write_text(text)
    return load_yaml(tmp_path / "Pulumi.dev.yaml")


def test_secret_typed_key_must_be_secure_in_the_stack(tmp_path):
    # TestStackConfigSecretIsValidated-style: `secret: true` on a typed key; plain value refused.
    project = _project("name: test\nruntime: python\nconfig:\n  pw:\n    type: string\n    secret: true\n", tmp_path)
    assert check_stack(project, "dev", {"config": {"test:pw": "plain"}}) == [
        "Stack 'dev' with configuration key 'pw' must be encrypted as it's secret"]
    assert check_stack(project, "dev", {"config": {"test:pw": {"secure": "v1:abc"}}}) == []


@pytest.mark.parametrize("text, fragment", [
    ("name: test\nruntime: python\nconfig:\n  xs:\n    type: array\n", "does not specify the underlying type"),
    ("name: test\nruntime: python\nconfig:\n  n:\n    type: integer\n    default: abc\n", "not of the expected type"),
    ("name: test\nruntime: python\nconfig:\n  gcp:region:\n    type: string\n", "not namespaced by the project"),
    ("name: test\nruntime: python\nconfig:\n  n:\n    type: number\n", "#/config/n"),  # schema enum
    ("name: test\nruntime: python\nconfig:\n  n:\n    typo: 1\n", "#/config/n"),  # schema additionalProperties
    ("runtime: python\n", "missing a 'name'"),
])
def test_project_rules_refuse_what_the_cli_refuses(tmp_path, text, fragment):
    assert any(fragment in p for p in _project(text, tmp_path).problems)


def test_yaml_scalars_reach_the_cli_as_strings():
    assert config_value_from_yaml(True) == StackValue("true")
    assert config_value_from_yaml(30) == StackValue("30")
    assert config_value_from_yaml(["a"]) == StackValue('["a"]', object=True)
    assert config_value_from_yaml({"secure": "v1:x"}).secure


# --- the repository ------------------------------------------------------------------------------------

@pytest.mark.parametrize("project_dir", PROJECT_DIRS, ids=_id)
def test_pulumi_yaml_is_valid_against_the_published_schema(project_dir):
    assert validate_project_schema(load_yaml(project_dir / "Pulumi.yaml")) == []


@pytest.mark.parametrize("project_dir", PROJECT_DIRS, ids=_id)
def test_pulumi_yaml_passes_project_validate(project_dir):
    assert load_project(project_dir / "Pulumi.yaml").problems == []


@pytest.mark.parametrize("project_dir", PROJECT_DIRS, ids=_id)
def test_a_stack_with_only_the_truly_required_keys_is_accepted(project_dir):
    """Every declared key but the required ones (no default: dagsRepo, repository) is optional to the CLI."""
    project = load_project(project_dir / "Pulumi.yaml")
    required = {k for k, d in project.declarations.items() if d.get("default") is None and d.get("value") is None}
    assert required == {f"{project.name}:{k}" for k in ({"dagsRepo"} if project.name == PROJECT else {"repository"})}
    assert check_stack(project, "minimal", {"config": {k: "x" for k in required}}) == []


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=_id)
def test_committed_stack_passes_the_cli_checks(stack_file):
    project = load_project(stack_file.parent / "Pulumi.yaml")
    assert check_stack(project, _stack_name(stack_file), load_yaml(stack_file)) == []


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=_id)
def test_committed_stack_sets_only_declared_project_keys(stack_file):
    """The CLI passes undeclared `<project>:key`s to the program unchecked (mergeConfig only walks the
    project's declarations); the program refuses them (components/config/declared.py). Same rule here."""
    project = load_project(stack_file.parent / "Pulumi.yaml")
    stack, _ = load_stack(project, load_yaml(stack_file))
    own = {k for k in stack if k.startswith(project.name + ":")}
    assert own - set(project.declarations) == set()


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=_id)
def test_secret_keys_are_stored_encrypted(stack_file):
    """OUR rule for untyped `secret: true` keys (optional secrets cannot be typed: the CLI would demand the
    injected default be encrypted); the CLI enforces it on typed keys only (validateStackConfigValue)."""
    project = load_project(stack_file.parent / "Pulumi.yaml")
    stack, _ = load_stack(project, load_yaml(stack_file))
    assert [k for k, d in project.declarations.items() if d.get("secret") and k in stack and not stack[k].secure] == []


@pytest.mark.parametrize("stack_file", [p for p in STACK_FILES if p.parent == ROOT], ids=_id)
def test_harness_gives_the_program_what_the_cli_gives_it(stack_file):
    """preview/harness.py merges Pulumi.yaml defaults itself; the program must read the same settings from it
    as from the CLI's merge (mergeConfig), or offline previews describe a different stack."""
    project = load_project(ROOT / "Pulumi.yaml")
    stack, _ = load_stack(project, load_yaml(stack_file))
    merged, problems = merge_and_validate(_stack_name(stack_file), project, stack)
    assert problems == []
    cli = {k: v.text for k, v in merged.items() if not v.secure}
    harness, _ = load_stack_file(_stack_name(stack_file))
    assert load_stack_config(_Source(cli), deploying=False) == load_stack_config(_Source(harness), deploying=False)


class _Source:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, namespace: str, key: str):
        return self.values.get(f"{namespace}:{key}")

    def get_secret(self, namespace: str, key: str):
        return None

    def keys(self):
        return set(self.values)


# --- the README's steps ----------------------------------------------------------------------------------

@pytest.mark.parametrize("page, heading", README_SECTIONS)
def test_readme_steps_produce_a_stack_the_cli_accepts(page, heading):
    stacks = readme_stacks(ROOT / page, heading)
    assert stacks, f"{page} '{heading}' has no fenced block with `pulumi stack init`"
    for stack in stacks:
        project = load_project(stack.project_dir / "Pulumi.yaml")
        assert check_stack(project, stack.name, stack.raw) == [], stack.commands


def test_readme_deploy_steps_are_the_ones_applied():
    """The parser really reads the README: the deploy block's config set lands in the stack."""
    (stack,) = readme_stacks(ROOT / "README.md", "Deploy for real")
    committed = yaml.safe_load((ROOT / f"Pulumi.{stack.name}.yaml").read_text())["config"]
    assert stack.raw["config"]["gcp:project"] != committed["gcp:project"]
    assert any(c.startswith("pulumi config set") for c in stack.commands)


def test_readme_short_steps_make_the_same_stack_as_the_deploy_page():
    """The front page's short version and docs/deploy.md's full steps must not drift apart."""
    (short,) = readme_stacks(ROOT / "README.md", "Deploy for real")
    (full,) = readme_stacks(ROOT / "docs" / "deploy.md", "Steps")
    assert (short.name, short.raw) == (full.name, full.raw), (short.commands, full.commands)


# --- the policy pack ---------------------------------------------------------------------------------------

def test_policy_pack_project_loads():
    assert policy_pack.check_policy_pack_project(ROOT / "policy" / "PulumiPolicy.yaml") == []


@pytest.mark.parametrize("text, fragment", [
    ("runtime: ''\n", "missing a 'runtime'"), ("description: x\n", "missing a 'runtime'"),
    ("runtime: {name: python, options: 3}\n", "runtime section"), ("runtime: python\nversion: [1]\n", "version"),
])
def test_policy_pack_project_rules_fail(tmp_path, text, fragment):
    (tmp_path / "PulumiPolicy.yaml").write_text(text)
    assert any(fragment in p for p in policy_pack.check_policy_pack_project(tmp_path / "PulumiPolicy.yaml"))


def test_policy_pack_config_files_parse_and_name_real_policies():
    """Every `policy/*.json` is a file for `pulumi preview --policy-pack-config` (none yet is fine)."""
    for config_file in sorted((ROOT / "policy").glob("*.json")):
        assert policy_pack.check_policy_pack_config(config_file, policy_names()) == [], config_file.name


@pytest.mark.parametrize("config, fragment", [
    ({"x": "warn"}, "not a valid enforcement level"), ({"x": {"enforcementLevel": 1}}, "must be a string"),
    ({"x": 3}, "must be a string or object"), ({"environments": "e"}, "environments"),
    ({"no-such-policy": "advisory"}, "not a policy in the pack"),
])
def test_policy_pack_config_rules_fail(tmp_path, config, fragment):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config))
    assert any(fragment in p for p in policy_pack.check_policy_pack_config(path, ["x"]))


def test_policy_pack_config_accepts_the_cli_forms(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"all": "mandatory", "x": {"enforcementLevel": "disabled", "limit": 3},
                                "y": "advisory", "environments": ["org/env"]}))
    assert policy_pack.check_policy_pack_config(path, ["x", "y"]) == []
