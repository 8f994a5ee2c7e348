"""docs/configuration.md is what Pulumi.yaml generates: every key, its type, default and description."""

from __future__ import annotations

from pathlib import Path

import yaml

from scripts.config_reference import OUT, REGENERATE, reference

ROOT = Path(__file__).resolve().parents[2]
PROJECT = (ROOT / "Pulumi.yaml").read_text()


def test_committed_reference_is_what_pulumi_yaml_generates():
    assert OUT.exists(), f"docs/configuration.md is missing; generate it: {REGENERATE}"
    assert OUT.read_text() == reference(PROJECT), (
        f"docs/configuration.md differs from what Pulumi.yaml generates; regenerate and commit it: {REGENERATE}")


def rows(text: str) -> dict[str, list[str]]:
    found = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            found[cells[0].strip("`")] = cells[1:]
    return found


def test_every_declared_key_has_one_row_in_file_order():
    declared = list(yaml.safe_load(PROJECT)["config"])
    assert list(rows(reference(PROJECT))) == declared


def test_types_defaults_and_secrets():
    table = rows(reference(PROJECT))
    assert table["dagsRepo"][1] == "*required*"
    assert table["environment"][:2] == ["string", "`dev`"]
    assert table["masterAuthorizedNetworks"][:2] == ["list of string", "`[]`"]
    # A key with the unset marker and no `type` takes the type its description starts with.
    assert table["replicas"][:2] == ["integer", "*unset: the program decides*"]
    assert not table["replicas"][2].startswith("Integer.")
    assert table["adminPassword"][0] == "string, secret"


def test_a_new_key_shows_up_and_markup_is_escaped():
    project = yaml.safe_load(PROJECT)
    project["config"]["zzNew"] = {"type": "string", "default": "", "description": "Zone <region>-b | c, `a|b`."}
    (kind, default, description) = rows(reference(yaml.safe_dump(project, sort_keys=False)))["zzNew"]
    assert (kind, default) == ("string", "*unset: the program decides*")
    assert description == "Zone &lt;region&gt;-b \\| c, `a\\|b`."
