"""The keys `Pulumi.yaml` declares, read at run time from the file the Pulumi CLI itself loads next to
`__main__.py`: one source of truth for what a stack may set, with nothing generated to drift.

Pulumi.yaml gives every optional key a `default` (the CLI requires a declared project key that has neither
`default` nor `value` in every stack: mergeConfig in pkg/workspace/config.go, pulumi/pulumi@1b59498). A key
whose default the program works out (from `environment`, the region, or the DAG source) declares
`default: ""`, the "unset" marker: the CLI hands the program "" for it, which reads as unset."""

from __future__ import annotations

import difflib
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

import yaml

ROOT = Path(__file__).resolve().parents[2]
UNSET = ""  # the declared default that means "the program decides"


@lru_cache(maxsize=None)
def declarations(project_dir: Path = ROOT) -> Mapping[str, dict]:
    """Full key (`<project>:<key>`) -> its declaration in `<project_dir>/Pulumi.yaml`."""
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())
    name = project["name"]
    return {key if ":" in key else f"{name}:{key}": (decl if isinstance(decl, dict) else {"default": decl})
            for key, decl in (project.get("config") or {}).items()}


def unset_marker_keys(project_dir: Path = ROOT) -> frozenset[str]:
    return frozenset(k for k, decl in declarations(project_dir).items() if decl.get("default") == UNSET)


def unknown_key_problems(namespace: str, set_keys: Iterable[str], known: Iterable[str],
                         handled: Iterable[str] = ()) -> list[str]:
    """One problem per key set in `namespace` that the project does not declare (a typo the CLI passes on
    silently), naming the nearest declared key and the fix. `handled`: undeclared keys the program
    reports itself (retired keys with their migration message)."""
    prefix = namespace + ":"
    names = sorted(k[len(prefix):] for k in known if k.startswith(prefix))
    problems = []
    for key in sorted(set(set_keys) - set(known) - set(handled)):
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        nearest = difflib.get_close_matches(name, names, n=1)
        if nearest:
            problems.append(f"{key} is not a setting of {namespace} (did you mean {prefix}{nearest[0]}?). "
                            f"Fix: pulumi config rm {key} && pulumi config set {prefix}{nearest[0]} <value>")
        else:
            problems.append(f"{key} is not a setting of {namespace} (Pulumi.yaml declares every setting). "
                            f"Fix: pulumi config rm {key}")
    return problems
