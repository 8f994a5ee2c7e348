"""The stacks a reader gets by typing the documented setup commands (the README's short deploy steps,
docs/deploy.md's full ones, docs/ci.md's bootstrap): `pulumi stack init` and `pulumi config set` lines are read
from a page's fenced shell blocks and applied, as the CLI would, to a copy of the committed stack file, so the
conformance suite checks the stack people actually deploy."""

from __future__ import annotations

import copy
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .pulumi_cli import load_yaml

_FENCE = re.compile(r"^\s*```(?:sh|bash|shell)\s*\n(.*?)^\s*```", re.S | re.M)


@dataclass
class ReadmeStack:
    project_dir: Path
    name: str
    raw: dict = field(default_factory=dict)  # the stack file as the CLI would leave it
    commands: list[str] = field(default_factory=list)


def section(page: str, heading: str, name: str = "README") -> str:
    """The text under `## heading` up to the next second-level heading."""
    match = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", page, re.S | re.M)
    if not match:
        raise ValueError(f"{name} has no '## {heading}' section")
    return match.group(1)


def _project_name(project_dir: Path) -> str:
    return load_yaml(project_dir / "Pulumi.yaml")["name"]


def _config_set(stack: ReadmeStack, args: list[str]) -> None:
    """`pulumi config set [--secret|--plaintext] KEY VALUE` (pkg/cmd/pulumi/config/config.go): a bare KEY
    takes the project's namespace; without --path the value is stored as a string."""
    flags = [a for a in args if a.startswith("-")]
    positional = [a for a in args if not a.startswith("-")]
    if set(flags) - {"--secret", "--plaintext"} or len(positional) != 2:
        raise ValueError(f"cannot apply `pulumi config set {' '.join(args)}`; keep documented steps to "
                         "`pulumi config set [--secret] KEY VALUE`")
    key, value = positional
    key = key if ":" in key else f"{_project_name(stack.project_dir)}:{key}"
    stack.raw.setdefault("config", {})[key] = {"secure": "<encrypted>"} if "--secret" in flags else value


def stacks_from_steps(block: str, root: Path) -> list[ReadmeStack]:
    """Apply one fenced block's commands in order; `cd DIR` moves to another project."""
    cwd, stacks, current = root, [], None
    for line in block.splitlines():
        for command in (c.strip() for c in line.split("&&")):
            words = shlex.split(command, comments=True)
            if words[:1] == ["cd"]:
                cwd = (cwd / words[1]).resolve()
            elif words[:3] == ["pulumi", "stack", "init"]:
                name = words[3]
                committed = cwd / f"Pulumi.{name}.yaml"
                raw = copy.deepcopy(load_yaml(committed) or {}) if committed.exists() else {}
                current = ReadmeStack(cwd, name, raw, [command])
                stacks.append(current)
            elif words[:3] == ["pulumi", "config", "set"]:
                if current is None:
                    raise ValueError(f"`{command}` comes before any `pulumi stack init`")
                _config_set(current, words[3:])
                current.commands.append(command)
    return stacks


def _project_root(page: Path) -> Path:
    """Commands start in the repository's root (the folder with Pulumi.yaml), wherever the page lives."""
    return next((d for d in page.resolve().parents if (d / "Pulumi.yaml").exists()), page.parent)


def readme_stacks(page: Path, heading: str) -> list[ReadmeStack]:
    """Every stack the fenced shell blocks of one section of a page (README.md, docs/*.md) create."""
    text = section(page.read_text(), heading, page.name)
    return [stack for block in _FENCE.findall(text) if "pulumi stack init" in block
            for stack in stacks_from_steps(block, _project_root(page))]
