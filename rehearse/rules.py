"""The rehearsal's data: durations per resource type and the ordering rules, from gcp_rules.yaml."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

RULES_FILE = Path(__file__).resolve().parent / "gcp_rules.yaml"
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")


class RulesError(ValueError):
    """The data file is malformed or a resource type has no documented duration."""


def parse_duration(text: Any) -> float:
    """Seconds from "1h2m3s", "90s", "2m" (Go / time-provider style) or a bare number of seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    found = _DURATION.match(str(text).strip())
    if not str(text).strip() or not found:
        raise RulesError(f"bad duration {text!r}: write it like 90s, 2m or 1m30s")
    hours, minutes, seconds = found.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


def input_at(inputs: dict, path: str) -> Any:
    """The value at a dotted path in a resource's inputs, or None."""
    value: Any = inputs
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _matches(inputs: dict, conditions: dict) -> bool:
    for path, expected in conditions.items():
        actual = input_at(inputs, path)
        if isinstance(expected, str) and expected.startswith("~"):
            if not isinstance(actual, str) or not re.search(expected[1:], actual):
                return False
        elif actual != expected:
            return False
    return True


@dataclass(frozen=True)
class DurationEntry:
    type: str
    create: Any
    delete: Any
    source: str
    match: dict = field(default_factory=dict)
    taken: str = ""
    basis: str = "observed"

    def seconds(self, phase: str, inputs: dict) -> float:
        value = self.create if phase == "up" else self.delete
        if isinstance(value, str) and value.startswith("input:"):
            configured = input_at(inputs, value.split(":", 1)[1])
            return parse_duration(configured) if configured not in (None, "") else 0.0
        return parse_duration(value)


@dataclass(frozen=True)
class Rule:
    id: str
    phase: str
    applies_to: tuple[str, ...]
    description: str
    source: str
    kind: str = "violation"  # or "protection": a refusal by design, reported but not a failure

    def applies(self, resource_type: str) -> bool:
        return any(fnmatch.fnmatchcase(resource_type, pattern) for pattern in self.applies_to)


@dataclass(frozen=True)
class ApiModel:
    min_guaranteed_wait: float
    wait_source: str
    prerequisites: tuple[str, ...]
    prerequisites_source: str
    by_type: dict

    def api_of(self, resource_type: str) -> Optional[str]:
        exact = self.by_type.get(resource_type)
        if exact:
            return exact
        for pattern, api in self.by_type.items():
            if fnmatch.fnmatchcase(resource_type, pattern):
                return api
        return None


@dataclass(frozen=True)
class ReadinessWait:
    """A resource whose await cannot finish before another one, though it does not depend on it: it is
    created with its own prerequisites, and is done no earlier than `waits_for`'s end plus `then`."""
    id: str
    type: str
    waits_for: str
    then: Any
    source: str
    description: str = ""
    taken: str = ""
    basis: str = "observed"

    @property
    def seconds(self) -> float:
        return parse_duration(self.then)


@dataclass(frozen=True)
class RuleSet:
    durations: tuple[DurationEntry, ...]
    rules: tuple[Rule, ...]
    apis: ApiModel
    readiness_waits: tuple[ReadinessWait, ...] = ()

    def duration_entry(self, resource_type: str, inputs: dict) -> DurationEntry:
        for entry in self.durations:
            if fnmatch.fnmatchcase(resource_type, entry.type) and _matches(inputs, entry.match):
                return entry
        raise RulesError(f"no duration for {resource_type} in {RULES_FILE.name}: add an entry with its public source")

    def duration(self, resource_type: str, inputs: dict, phase: str) -> float:
        return self.duration_entry(resource_type, inputs).seconds(phase, inputs)

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)


def _require(entry: dict, keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if not str(entry.get(k) or "").strip()]
    if missing:
        raise RulesError(f"{RULES_FILE.name}: {where} lacks {', '.join(missing)} (every entry needs a public source)")


def load_rules(path: Path = RULES_FILE) -> RuleSet:
    data = yaml.safe_load(path.read_text())
    durations = []
    for entry in data["durations"]:
        _require(entry, ("type", "create", "delete", "source"), f"duration {entry.get('type')}")
        durations.append(DurationEntry(**entry))
        for phase in ("up", "destroy"):
            value = entry["create" if phase == "up" else "delete"]
            if not (isinstance(value, str) and value.startswith("input:")):
                parse_duration(value)
    rules = []
    for entry in data["rules"]:
        _require(entry, ("id", "phase", "applies_to", "description", "source"), f"rule {entry.get('id')}")
        rules.append(Rule(**{**entry, "applies_to": tuple(entry["applies_to"])}))
    waits = []
    for entry in data.get("readiness_waits") or []:
        _require(entry, ("id", "type", "waits_for", "then", "source"), f"readiness wait {entry.get('id')}")
        waits.append(ReadinessWait(**entry))
        parse_duration(entry["then"])
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise RulesError(f"{path.name}: duplicate rule ids")
    apis = data["apis"]
    _require(apis, ("wait_source", "prerequisites_source"), "apis")
    return RuleSet(tuple(durations), tuple(rules), ApiModel(
        min_guaranteed_wait=parse_duration(apis["min_guaranteed_wait"]), wait_source=apis["wait_source"],
        prerequisites=tuple(apis["prerequisites"]), prerequisites_source=apis["prerequisites_source"],
        by_type=dict(apis["by_type"])), tuple(waits))
