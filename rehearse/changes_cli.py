"""`python -m rehearse.changes_cli --stack prod [--base origin/main] [--keys a,b]`: the change plan.

Without --base: for every key declared in Pulumi.yaml, change it from the stack's value to the one in
change_alternates.yaml and predict, per resource, update or replace; writes build/<stack>/changes.{json,txt}.
With --base REF: plan the change from the config committed at REF to the config in the work tree. A plan that
replaces a data-holding resource (changes.DATA_LOSS_TYPES) must be acknowledged in the stack config
(`airflow-gke:acknowledgeReplace: [<key>, ...]`): prod refuses (exit 1), other stacks warn.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Optional

import yaml

from components.config import ConfigError
from preview.harness import PROJECT, ROOT, Capture, _config_value, run_program

from .changes import Plan, Rules, plan

ALTERNATES = Path(__file__).resolve().parent / "change_alternates.yaml"
ACK_KEY = f"{PROJECT}:acknowledgeReplace"
REFUSING_STACKS = {"prod"}


def declared_keys(project_file: Path = ROOT / "Pulumi.yaml") -> list[str]:
    """The project's own keys under `config:` (typed, untyped or a bare default), provider keys left out."""
    config = (yaml.safe_load(project_file.read_text()) or {}).get("config") or {}
    return [key.split(":", 1)[1] if key.startswith(f"{PROJECT}:") else key
            for key in config if ":" not in key or key.startswith(f"{PROJECT}:")]


def load_alternates(path: Path = ALTERNATES) -> dict[str, dict]:
    return yaml.safe_load(path.read_text()) or {}


def alternate(entry: dict, stack: str) -> tuple[Any, dict]:
    value = entry.get(stack, entry.get("value"))
    also = (entry.get("also") or {}).get(stack, {})
    return value, also


def config_from_text(project_text: str, stack_text: str) -> dict[str, str]:
    """Pulumi.yaml defaults overlaid by a stack file, as harness.load_stack_file (secure values left out)."""
    config: dict[str, str] = {}
    for key, schema in ((yaml.safe_load(project_text) or {}).get("config") or {}).items():
        default = schema.get("default") if isinstance(schema, dict) else schema
        if default is not None:
            config[key if ":" in key else f"{PROJECT}:{key}"] = _config_value(default)
    for key, value in ((yaml.safe_load(stack_text) or {}).get("config") or {}).items():
        text = _config_value(value)
        if text is not None:
            config[key] = text
    return config


def _names(plan_: Plan, urns) -> list[str]:
    return [f"{plan_.types[u].split(':')[-1]} {u.split('::')[-1]}" for u in sorted(urns)]


def entry_for(key: str, base: dict, new_config: dict, plan_: Optional[Plan], refused: Optional[str],
              acknowledged: set[str]) -> dict:
    full = f"{PROJECT}:{key}" if ":" not in key else key
    record = {"key": key, "from": _decoded(base.get(full)), "to": _decoded(new_config.get(full))}
    if refused:
        return {**record, "refused": refused, "replaced": [], "updated": [], "data_loss": False,
                "acknowledged": key in acknowledged}
    return {**record,
            "replaced": [{"urn": u, "resource": n, "why": plan_.replaced[u]}
                         for u, n in zip(sorted(plan_.replaced), _names(plan_, plan_.replaced))],
            "updated": [{"urn": u, "resource": n, "paths": plan_.updated[u]}
                        for u, n in zip(sorted(plan_.updated), _names(plan_, plan_.updated))],
            "created": _names(plan_, plan_.created),
            "data_loss": bool(plan_.data_loss), "data_loss_resources": _names(plan_, plan_.data_loss),
            "acknowledged": key in acknowledged}


def _decoded(text: Optional[str]) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def run_capture(stack: str, config: dict) -> tuple[Optional[Capture], Optional[str]]:
    try:
        return run_program(stack, config=dict(config)), None
    except ConfigError as error:
        return None, "; ".join(error.problems)


def plan_key(stack: str, key: str, base_config: dict, base: Capture, rules: Rules,
             alternates: dict) -> tuple[dict, Optional[Plan], Optional[str]]:
    value, also = alternate(alternates[key], stack)
    config = dict(base_config)
    for name, item in {key: value, **also}.items():
        if item is None:
            config.pop(f"{PROJECT}:{name}", None)
        else:
            config[f"{PROJECT}:{name}"] = _config_value(item)
    capture, refused = run_capture(stack, config)
    return config, (plan(base, capture, rules) if capture else None), refused


def _plan_keys_worker(args: tuple) -> list[dict]:
    stack, keys = args
    return plan_all(stack, keys)


def plan_all(stack: str, keys: Optional[list[str]] = None, workers: int = 1) -> list[dict]:
    """One entry per declared key (or `keys`): the plan of changing it alone."""
    warnings.simplefilter("ignore", DeprecationWarning)
    alternates = load_alternates()
    keys = [k for k in (keys or declared_keys()) if not (alternates.get(k) or {}).get("skip")]
    missing = [k for k in keys if k not in alternates]
    if missing:
        raise KeyError(f"no alternate value for {missing} in {ALTERNATES.name}")
    if workers > 1 and len(keys) > workers:
        chunks = [(stack, keys[i::workers]) for i in range(workers)]
        with ProcessPoolExecutor(workers) as pool:
            entries = [e for part in pool.map(_plan_keys_worker, chunks) for e in part]
        return sorted(entries, key=lambda e: keys.index(e["key"]))
    from preview.harness import load_stack_file
    base_config, _ = load_stack_file(stack)
    base = run_program(stack, config=dict(base_config))
    rules = Rules.load()
    acknowledged = acknowledged_keys(base_config)
    entries = []
    for key in keys:
        config, plan_, refused = plan_key(stack, key, base_config, base, rules, alternates)
        entry = entry_for(key, base_config, config, plan_, refused, acknowledged)
        also = alternate(alternates[key], stack)[1]
        entries.append({**entry, "also": also} if also else entry)
    return entries


def acknowledged_keys(config: dict) -> set[str]:
    value = _decoded(config.get(ACK_KEY)) or []
    return {str(v) for v in value} if isinstance(value, list) else {str(value)}


def text_table(stack: str, entries: list[dict]) -> str:
    lines = [f"Change plan, stack {stack}: what changing one key does (R = replaced, U = updated)", ""]
    for e in entries:
        flag = "  DATA LOSS" + (" (acknowledged)" if e["acknowledged"] else "") if e.get("data_loss") else ""
        head = f"{e['key']}: {json.dumps(e['from'])} -> {json.dumps(e['to'])}"
        if e.get("refused"):
            lines.append(f"{head}  refused by the config checks: {e['refused']}")
            continue
        lines.append(f"{head}  {len(e['replaced'])} replaced, {len(e['updated'])} updated{flag}")
        lines += [f"    R {r['resource']}: {r['why']}" for r in e["replaced"]]
        lines += [f"    U {u['resource']}: {', '.join(u['paths'][:4])}{' ...' if len(u['paths']) > 4 else ''}"
                  for u in e["updated"]]
    return "\n".join(lines) + "\n"


def git_text(ref: str, path: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:{path}"], check=True, capture_output=True,
                          text=True).stdout


def check_against_base(stack: str, ref: str) -> tuple[int, str]:
    """Plan the committed change from REF to the work tree; refuse (prod) or warn on unacknowledged data loss."""
    warnings.simplefilter("ignore", DeprecationWarning)
    stack_file = f"Pulumi.{stack}.yaml"
    base_config = config_from_text(git_text(ref, "Pulumi.yaml"), git_text(ref, stack_file))
    new_config = config_from_text((ROOT / "Pulumi.yaml").read_text(), (ROOT / stack_file).read_text())
    return check_change(stack, base_config, new_config, ref)


def check_change(stack: str, base_config: dict, new_config: dict, ref: str = "the base") -> tuple[int, str]:
    """Exit code and message: 1 on prod when the change replaces data-holding resources unacknowledged."""
    stack_file = f"Pulumi.{stack}.yaml"
    changed = sorted(k for k in set(base_config) | set(new_config)
                     if k != ACK_KEY and base_config.get(k) != new_config.get(k))
    if not changed:
        return 0, f"{stack}: no config change since {ref}"
    rules = Rules.load()
    base, refused = run_capture(stack, base_config)
    if base is None:
        return 0, f"{stack}: the config at {ref} is refused by today's checks ({refused}); nothing to compare"
    # Which changed keys replace data on their own; if only their combination does, all of them count.
    culprits = []
    for key in changed:
        single = dict(base_config)
        if key in new_config:
            single[key] = new_config[key]
        else:
            single.pop(key, None)
        capture, _ = run_capture(stack, single)
        if capture is not None and plan(base, capture, rules).data_loss:
            culprits.append(key)
    new, refused = run_capture(stack, new_config)
    if new is None:
        return 1, f"{stack}: the new config is refused: {refused}"
    whole = plan(base, new, rules)
    if whole.data_loss and not culprits:
        culprits = changed
    short = [k.split(":", 1)[1] if k.startswith(f"{PROJECT}:") else k for k in culprits]
    unacknowledged = sorted(set(short) - acknowledged_keys(new_config))
    summary = [f"{stack}: {len(changed)} key(s) changed since {ref}: {', '.join(changed)}",
               f"  {len(whole.replaced)} replaced, {len(whole.updated)} updated"]
    summary += [f"  replaces {n}" for n in _names(whole, whole.data_loss)]
    if not whole.data_loss or not unacknowledged:
        return 0, "\n".join(summary + (["  data loss acknowledged"] if whole.data_loss else []))
    fix = (f"pulumi config set --path '{ACK_KEY}[0]' {unacknowledged[0]}"
           if len(unacknowledged) == 1 else f"list {unacknowledged} under {ACK_KEY} in {stack_file}")
    verdict = "refused" if stack in REFUSING_STACKS else "warning"
    summary.append(f"{verdict}: changing {', '.join(unacknowledged)} replaces data-holding resources (see "
                   f"DATA_LOSS_TYPES, DATA_LOSS_NAMES in rehearse/changes.py). If that is intended: {fix}")
    return (1 if stack in REFUSING_STACKS else 0), "\n".join(summary)


def write(stack: str, entries: list[dict], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "changes.json", out / "changes.txt"]
    paths[0].write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")
    paths[1].write_text(text_table(stack, entries))
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--base", help="git ref: plan the config change since it, refuse unacknowledged data loss")
    parser.add_argument("--keys", help="comma-separated keys (default: every declared key)")
    parser.add_argument("--out", default=str(ROOT / "build"))
    args = parser.parse_args(argv)
    if args.base:
        code, message = check_against_base(args.stack, args.base)
        print(message, file=sys.stderr if code else sys.stdout)
        return code
    entries = plan_all(args.stack, args.keys.split(",") if args.keys else None)
    paths = write(args.stack, entries, Path(args.out) / args.stack)
    print(paths[1].read_text(), end="")
    print(f"Wrote {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
