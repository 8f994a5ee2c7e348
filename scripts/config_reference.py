"""Write docs/configuration.md, the configuration reference, from Pulumi.yaml: every key with its type, default
and description, in the file's order. Pulumi.yaml is the one source (the CLI and the program read it), so the
page is generated, never edited; tests/unit/test_config_reference.py fails when the two differ.

    .venv/bin/python -m scripts.config_reference     (or: make docs)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "configuration.md"
REGENERATE = "make docs"
# Keys without `type` (the CLI would check their "" default against it) name it as their description's first word.
TYPE_WORDS = {"Boolean.": "boolean", "Integer.": "integer", "String.": "string"}

HEADER = """# Configuration reference

<!-- Generated from Pulumi.yaml by `{regenerate}`. Do not edit: a test fails when this page differs. -->

Every key a stack can set, from `Pulumi.yaml`, in its order. Set one with
`pulumi config set {project}:<key> <value>` (add `--secret` for a secret, `--path` for an item of a list or
map, e.g. `pulumi config set --path '{project}:masterAuthorizedNetworks[0]' 203.0.113.7/32`); the stack file
`Pulumi.<stack>.yaml` keeps it. Bad values are refused before any resource is declared, with the key and the
fix; any other `{project}:` key is refused too (what the Pulumi CLI itself checks:
[cli-conformance.md](cli-conformance.md)).

- **Required**: the provider's `gcp:project` and `gcp:region` (not declared in `Pulumi.yaml`; set them in
  every stack) and the keys below whose default reads *required*.
- **unset: the program decides**: the key is declared with `default: ""`. Left unset, the program works the
  value out, usually from `environment` (prod gets the HA and protected choices), the region or the DAG
  source; the description says how. `pulumi config rm` returns a key to unset.
- **secret**: set it with `pulumi config set --secret`; the stack file holds it encrypted.

| Key | Type | Default | Description |
|---|---|---|---|
"""


def _type(decl: dict) -> tuple[str, str]:
    """(type, description without the type word it started with)."""
    description = " ".join(str(decl.get("description", "")).split())
    kind = decl.get("type")
    first, _, rest = description.partition(" ")
    if not kind and first in TYPE_WORDS:
        kind, description = TYPE_WORDS[first], rest
    if kind == "array":
        kind = f"list of {(decl.get('items') or {}).get('type', 'string')}"
    if kind == "object":
        kind = "map"
    return (kind or "string") + (", secret" if decl.get("secret") else ""), description


def _default(decl: dict) -> str:
    if "default" not in decl and "value" not in decl:
        return "*required*"
    value = decl.get("default", decl.get("value"))
    if value == "":
        return "*unset: the program decides*"
    return f"`{json.dumps(value) if not isinstance(value, str) else value}`"


def _cell(text: str) -> str:
    # GitHub would take <region> for an HTML tag and hide it (code spans show text as is); `|` would end the cell.
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts).replace("|", "\\|")


def reference(project_yaml: str) -> str:
    project = yaml.safe_load(project_yaml)
    name = project["name"]
    rows = []
    for key, decl in (project.get("config") or {}).items():
        decl = decl if isinstance(decl, dict) else {"default": decl}
        kind, description = _type(decl)
        rows.append(f"| `{key}` | {kind} | {_cell(_default(decl))} | {_cell(description)} |")
    return HEADER.format(project=name, regenerate=REGENERATE) + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(OUT), help="where to write (default docs/configuration.md)")
    args = parser.parse_args(argv)
    Path(args.out).write_text(reference((ROOT / "Pulumi.yaml").read_text()))
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
