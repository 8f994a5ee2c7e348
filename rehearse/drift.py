"""The second `pulumi up`: fields the program sets that the platform moves on its own (drift_rules.yaml).

A declared field the platform changes diffs on a later `pulumi up`; the provider then reverts the change or,
for a ForceNew field, replaces the resource. It is safe only when an `ignoreChanges` entry covers it
(the engine then keeps the old input: pulumi/pulumi pkg/resource/deploy/step_generator.go, processIgnoreChanges).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

from .checks import Violation
from .graph import Graph, Node
from .rules import RulesError

DRIFT_FILE = Path(__file__).resolve().parent / "drift_rules.yaml"
UNSET = object()
# Pulumi property paths: name, .name, ["quoted.key"], [0] or [*] (pulumi/pulumi sdk/go/common/resource/properties_path.go).
_SEGMENT = re.compile(r'\["((?:[^"\\]|\\.)*)"\]|\[(\d+|\*)\]|\.?([^.\[\]"]+)')


def parse_path(path: str) -> tuple[str, ...]:
    segments, position = [], 0
    while position < len(path):
        found = _SEGMENT.match(path, position)
        if not found or found.end() == position:
            raise RulesError(f"bad property path {path!r}")
        segments.append(next(g for g in found.groups() if g is not None))
        position = found.end()
    return tuple(segments)


def value_at(inputs: Any, segments: tuple[str, ...]) -> Any:
    """The value at a parsed path, or UNSET when the program does not set it."""
    value = inputs
    for segment in segments:
        if isinstance(value, dict) and segment in value:
            value = value[segment]
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return UNSET
    return UNSET if value is None else value


def covers(ignored: tuple[str, ...], segments: tuple[str, ...]) -> bool:
    """An ignoreChanges path covers a field when it names the field or one of its ancestors."""
    return len(ignored) <= len(segments) and all(i in ("*", s) for i, s in zip(ignored, segments))


@dataclass(frozen=True)
class DriftRule:
    id: str
    type: str
    path: str
    moved_by: str
    fix: str
    source: str
    when: Optional[dict] = None
    targeted_by: Optional[str] = None
    note: str = ""
    # The provider's schema default: a field the program leaves unset still diffs, as this value, against
    # what the platform moved it to (e.g. Cloud SQL settings.activationPolicy, Default "ALWAYS").
    default: Any = None

    @property
    def segments(self) -> tuple[str, ...]:
        return parse_path(self.path)

    def applies(self, resource_type: str) -> bool:
        return fnmatch.fnmatchcase(resource_type, self.type)

    def holds(self, inputs: dict) -> bool:
        """Whether the platform moves the field of a resource with these inputs (`when`)."""
        for path, accepted in (self.when or {}).items():
            value = value_at(inputs, parse_path(path))
            if accepted == "set":
                if value is UNSET:
                    return False
            elif (None if value is UNSET else value) not in accepted:
                return False
        return True


def _expand(text: str, abbreviations: dict) -> str:
    for short, full in abbreviations.items():
        text = re.sub(rf"\b{re.escape(short)}\b", full, text)
    return text


def load_drift_rules(path: Path = DRIFT_FILE) -> tuple[DriftRule, ...]:
    data = yaml.safe_load(path.read_text())
    rules = []
    for entry in data["drift"]:
        entry = {**entry, "source": _expand(str(entry.get("source") or ""), data.get("sources") or {})}
        missing = [k for k in ("id", "type", "path", "moved_by", "fix", "source") if not str(entry.get(k) or "").strip()]
        if missing:
            raise RulesError(f"{path.name}: drift rule {entry.get('id')} lacks {', '.join(missing)}")
        rule = DriftRule(**entry)
        rule.segments  # noqa: B018 -- a bad path fails at load, not mid-check
        for condition, accepted in (rule.when or {}).items():
            parse_path(condition)
            if accepted != "set" and not isinstance(accepted, list):
                raise RulesError(f"{path.name}: {rule.id}: `when` {condition} takes a list of values or \"set\"")
        rules.append(rule)
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise RulesError(f"{path.name}: duplicate drift rule ids")
    return tuple(rules)


def _names_in_source(node: Node, source: str) -> bool:
    """Whether a workflow's source names this resource (its physical name, or its logical one when auto-named)."""
    name = node.inputs.get("name") or node.name
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", source) is not None


def _targeted(graph: Graph, node: Node, target_type: str) -> bool:
    """Whether a resource of `target_type` names this one: an HPA in spec.scaleTargetRef, a workflow
    (the pause schedule, components/pause_workflow.py) in its source."""
    name = (node.inputs.get("metadata") or {}).get("name") or node.name
    namespace = (node.inputs.get("metadata") or {}).get("namespace")
    for other in graph.nodes.values():
        if not fnmatch.fnmatchcase(other.type, target_type):
            continue
        if "sourceContents" in other.inputs:
            if _names_in_source(node, str(other.inputs["sourceContents"])):
                return True
            continue
        ref = (other.inputs.get("spec") or {}).get("scaleTargetRef") or {}
        if (ref.get("kind") == node.type.rsplit(":", 1)[-1] and ref.get("name") == name
                and (other.inputs.get("metadata") or {}).get("namespace") == namespace):
            return True
    return False


def drift_of(graph: Graph, node: Node, rule: DriftRule) -> Optional[str]:
    if not rule.applies(node.type) or not rule.holds(node.inputs):
        return None
    if rule.targeted_by and not _targeted(graph, node, rule.targeted_by):
        return None
    value = value_at(node.inputs, rule.segments)
    if value is UNSET and rule.default is not None:
        value = rule.default
    if value is UNSET or any(covers(parse_path(i), rule.segments) for i in node.ignore_changes):
        return None
    return f"sets {rule.path} = {value!r} without ignoreChanges; {rule.moved_by}. Fix: {rule.fix}"


def check_drift(graph: Graph, rules: tuple[DriftRule, ...]) -> list[Violation]:
    found = []
    for node in sorted(graph.custom(), key=lambda n: (n.type, n.name)):
        for rule in rules:
            missing = drift_of(graph, node, rule)
            if missing:
                found.append(Violation(rule.id, "violation", node.name, node.type, missing, rule.source))
    return found
