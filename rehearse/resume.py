"""The resume timeline: from the "resume" job firing to a healthy UI and a scheduled task running, modelled
from the stack's own workflow source (its resume steps, in order) and sourced durations
(rehearse/resume_rules.yaml). Printed by `make rehearse` for a stack with a pause schedule."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml

from .graph import Graph
from .rules import RulesError

RESUME_FILE = Path(__file__).resolve().parent / "resume_rules.yaml"
WORKFLOW_TYPE = "gcp:workflows/workflow:Workflow"


@dataclass(frozen=True)
class Stage:
    what: str
    seconds: int
    source: str


def load_resume_rules(path: Path = RESUME_FILE) -> dict:
    data = yaml.safe_load(path.read_text())
    for entry in [data["trigger"], *data["calls"], *data["after"]]:
        if not str(entry.get("source") or "").strip() or not isinstance(entry.get("seconds"), int):
            raise RulesError(f"{path.name}: every duration needs whole `seconds` and a `source`: {entry}")
    return data


def _body_value(body: dict, dotted: str):
    value = body
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _call_rule(rules: dict, call: str, body: dict) -> dict:
    for rule in rules["calls"]:
        if rule["call"] == call and all(_body_value(body, k) == v for k, v in (rule.get("when_body") or {}).items()):
            return rule
    raise RulesError(f"no resume duration for {call} with body {body} (add one to {RESUME_FILE.name})")


def resume_stages(source: str, rules: Optional[dict] = None) -> list[Stage]:
    rules = rules or load_resume_rules()
    main = yaml.safe_load(source)["main"]["steps"]
    resume = next(step["resume"]["steps"] for step in main if "resume" in step)
    stages = [Stage("Cloud Scheduler starts the workflow", rules["trigger"]["seconds"], rules["trigger"]["source"])]
    for step in resume:
        (name, body), = step.items()
        if "call" in body:
            rule = _call_rule(rules, body["call"], body.get("args", {}).get("body") or {})
            stages.append(Stage(f"{name} ({body['call'].rsplit('.', 1)[-1]})", rule["seconds"], rule["source"]))
    stages += [Stage(entry["step"], entry["seconds"], entry["source"]) for entry in rules["after"]]
    return stages


def resume_report(graph: Graph, rules: Optional[dict] = None) -> Optional[str]:
    """The timeline as text, or None for a stack without a pause schedule."""
    workflows = [n for n in graph.custom() if n.type == WORKFLOW_TYPE]
    if not workflows:
        return None
    rules = rules or load_resume_rules()
    stages = resume_stages(workflows[0].inputs["sourceContents"], rules)
    total, lines = 0, ["Resume (activeHours / paused): job fires -> healthy UI and a scheduled task running"]
    for stage in stages:
        total += stage.seconds
        lines.append(f"  +{stage.seconds:>4}s  t={total:>4}s  {stage.what}  [{stage.source}]")
    goal = rules["goal_seconds"]
    lines.append(f"  total {total // 60}m{total % 60:02d}s (goal <= {goal // 60}m): {'ok' if total <= goal else 'OVER'}")
    return "\n".join(lines)
