"""The declared resource graph, as `make preview` writes it (build/<stack>/resources.json).

Pulumi semantics kept here: a resource waits for its `dependencies` and for its provider resource;
a dependency on a component means a dependency on all the component's custom descendants
(components are logical, done when their children are); a parent is not a dependency.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterable, Optional

# Packages whose resources are real (custom) resources; used when the JSON predates the `custom` field.
CUSTOM_PACKAGES = ("gcp", "kubernetes", "random", "time", "pulumi")


@dataclass
class Node:
    urn: str
    type: str
    name: str
    parent: Optional[str]
    dependencies: list[str]
    protect: bool
    custom: bool
    provider: Optional[str]
    inputs: dict = field(default_factory=dict)
    # Resource options (absent in JSON written before they were recorded: read as not set).
    ignore_changes: tuple[str, ...] = ()
    replace_on_changes: tuple[str, ...] = ()
    delete_before_replace: Optional[bool] = None
    retain_on_delete: bool = False
    aliases: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, item: dict) -> "Node":
        custom = item.get("custom")
        if custom is None:
            custom = item["type"].split(":", 1)[0] in CUSTOM_PACKAGES
        return cls(urn=item["urn"], type=item["type"], name=item["name"], parent=item.get("parent"),
                   dependencies=list(item.get("dependencies") or []), protect=bool(item.get("protect")),
                   custom=bool(custom), provider=item.get("provider"), inputs=dict(item.get("inputs") or {}),
                   ignore_changes=tuple(item.get("ignoreChanges") or ()),
                   replace_on_changes=tuple(item.get("replaceOnChanges") or ()),
                   delete_before_replace=item.get("deleteBeforeReplace"),
                   retain_on_delete=bool(item.get("retainOnDelete")), aliases=tuple(item.get("aliases") or ()))

    @property
    def label(self) -> str:
        return f"{self.type.rsplit(':', 1)[-1]} {self.name}"


class Graph:
    def __init__(self, nodes: Iterable[Node]) -> None:
        self.nodes: dict[str, Node] = {}
        for node in nodes:
            if node.urn in self.nodes:
                raise ValueError(f"duplicate URN {node.urn}")
            self.nodes[node.urn] = node

    @classmethod
    def from_json(cls, items: list[dict]) -> "Graph":
        return cls(Node.from_json(item) for item in items)

    @classmethod
    def load(cls, path: Path) -> "Graph":
        return cls.from_json(json.loads(Path(path).read_text()))

    @classmethod
    def from_capture(cls, capture) -> "Graph":
        """From an in-process run (preview.harness.Capture), via the same JSON the preview writes."""
        return cls.from_json([r.to_json() for r in capture.resources])

    # -- structure -----------------------------------------------------------------------------
    def custom(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.custom]

    def of_type(self, resource_type: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.type == resource_type]

    @cached_property
    def children(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for node in self.nodes.values():
            if node.parent:
                found.setdefault(node.parent, []).append(node.urn)
        return found

    def custom_descendants(self, urn: str) -> set[str]:
        found: set[str] = set()
        for child in self.children.get(urn, []):
            if self.nodes[child].custom:
                found.add(child)
            found |= self.custom_descendants(child)
        return found

    def _resolve(self, urn: str) -> set[str]:
        node = self.nodes.get(urn)
        if node is None:
            return set()  # outside the graph (e.g. a default provider): nothing to wait for here
        return {urn} if node.custom else self.custom_descendants(urn)

    @cached_property
    def waits_for(self) -> dict[str, frozenset[str]]:
        """Direct prerequisites of each custom resource, as the engine schedules them."""
        result = {}
        for node in self.custom():
            direct = set(node.dependencies) | ({node.provider} if node.provider else set())
            resolved: set[str] = set()
            for urn in direct:
                resolved |= self._resolve(urn)
            resolved.discard(node.urn)
            result[node.urn] = frozenset(resolved)
        return result

    @cached_property
    def dependents(self) -> dict[str, frozenset[str]]:
        found: dict[str, set[str]] = {urn: set() for urn in self.waits_for}
        for urn, prerequisites in self.waits_for.items():
            for prerequisite in prerequisites:
                found[prerequisite].add(urn)
        return {urn: frozenset(v) for urn, v in found.items()}

    @cached_property
    def _ancestors(self) -> dict[str, frozenset[str]]:
        memo: dict[str, frozenset[str]] = {}
        for urn in self.topological_order():
            found: set[str] = set()
            for prerequisite in self.waits_for[urn]:
                found.add(prerequisite)
                found |= memo[prerequisite]
            memo[urn] = frozenset(found)
        return memo

    def ancestors(self, urn: str) -> frozenset[str]:
        """Every custom resource `urn` transitively waits for."""
        return self._ancestors[urn]

    def depends_on(self, urn: str, other: str) -> bool:
        return other in self._ancestors[urn]

    def topological_order(self, finish_after: Optional[dict[str, Iterable[str]]] = None) -> list[str]:
        """Prerequisites first; `finish_after` adds orderings that are not dependencies (readiness waits)."""
        remaining = {urn: set(prerequisites) | set((finish_after or {}).get(urn, ()))
                     for urn, prerequisites in self.waits_for.items()}
        dependents = {urn: set(found) for urn, found in self.dependents.items()}
        for urn, others in (finish_after or {}).items():
            for other in others:
                dependents[other].add(urn)
        order: list[str] = []
        ready = sorted(urn for urn, prerequisites in remaining.items() if not prerequisites)
        while ready:
            urn = ready.pop(0)
            order.append(urn)
            for dependent in sorted(dependents[urn]):
                remaining[dependent].discard(urn)
                if not remaining[dependent] and dependent not in order and dependent not in ready:
                    ready.append(dependent)
            remaining.pop(urn, None)
        if len(order) != len(self.waits_for):
            cycle = sorted(self.nodes[u].name for u in self.waits_for if u not in order)
            raise ValueError(f"dependency cycle among: {', '.join(cycle)}")
        return order
