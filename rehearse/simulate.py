"""Replay `pulumi up` and `pulumi destroy` over the declared graph with documented durations.

Up: the engine starts a resource as soon as everything it waits for (dependencies and provider)
has finished, with unlimited parallelism; it lasts the typical duration of its type. The rules'
preconditions are checked at its start. Destroy: the reverse order; a resource is deleted once every
resource that waits for it is gone. A refusal or failure keeps the resource, and so everything it
depends on (they are "blocked"). Unlike the real engine, the rehearsal carries on past a failure so
one run reports every problem.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Optional

from .checks import Context, Violation, check_destroy, check_plan, check_up
from .graph import Graph, Node
from .readiness import FINDERS
from .rules import RuleSet


@dataclass
class Step:
    node: Node
    start: float
    end: float
    status: str = "created"  # up: created; destroy: deleted | refused | failed | blocked | kept
    reasons: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class Timeline:
    phase: str  # "up" or "destroy"
    title: str
    steps: dict[str, Step]
    critical_path: list[str]
    violations: list[Violation]
    refusals: list[Violation]  # protections: refusals by design, not failures
    require_complete: bool = False

    @property
    def total(self) -> float:
        return max((s.end for s in self.steps.values()), default=0.0)

    @property
    def remaining(self) -> list[Step]:
        return [s for s in self.steps.values() if self.phase == "destroy" and s.status != "deleted"]

    @property
    def ok(self) -> bool:
        return not self.violations and not (self.require_complete and (self.remaining or self.refusals))


def _critical_path(graph: Graph, steps: dict[str, Step], upstream: dict[str, frozenset[str]]) -> list[str]:
    """Walk back from the last step to finish through the predecessor that released it."""
    if not steps:
        return []
    current: Optional[str] = max(steps, key=lambda u: (steps[u].end, graph.nodes[u].name))
    path = []
    while current is not None:
        path.append(current)
        before = [u for u in upstream[current] if u in steps]
        current = max(before, key=lambda u: (steps[u].end, graph.nodes[u].name)) if before else None
    return list(reversed(path))


def readiness_waits(graph: Graph, rules: RuleSet) -> dict[str, dict[str, float]]:
    """For each resource, the resources whose end (plus the entry's seconds) its own end cannot precede."""
    found: dict[str, dict[str, float]] = {}
    for node in graph.custom():
        for wait in rules.readiness_waits:
            if fnmatch.fnmatchcase(node.type, wait.type):
                for other in FINDERS[wait.id](graph, node):
                    if fnmatch.fnmatchcase(graph.nodes[other].type, wait.waits_for):
                        found.setdefault(node.urn, {})[other] = wait.seconds
    return found


def rehearse_up(graph: Graph, rules: RuleSet, title: str = "pulumi up") -> Timeline:
    steps: dict[str, Step] = {}
    context = Context(graph, rules, steps)
    waits = readiness_waits(graph, rules)
    order = graph.topological_order(waits)
    for urn in order:
        node = graph.nodes[urn]
        start = max((steps[p].end for p in graph.waits_for[urn]), default=0.0)
        step = steps[urn] = Step(node, start, start + rules.duration(node.type, node.inputs, "up"))
        for other, seconds in sorted(waits.get(urn, {}).items()):
            if steps[other].end + seconds > step.end:
                step.end = steps[other].end + seconds
                step.reasons = [f"ready {seconds:.0f}s after {steps[other].node.label} (readiness wait)"]
    # Checked once the whole schedule is known, so messages can say when the missing thing finishes.
    violations = [v for urn in order for v in check_up(context, graph.nodes[urn])]
    upstream = {urn: graph.waits_for[urn] | frozenset(waits.get(urn, ())) for urn in graph.waits_for}
    return Timeline("up", title, steps, _critical_path(graph, steps, upstream), violations, [])


def rehearse_destroy(graph: Graph, rules: RuleSet, title: str = "pulumi destroy",
                     require_complete: bool = False) -> Timeline:
    steps: dict[str, Step] = {}
    context = Context(graph, rules, steps)
    refusals = [v for n in sorted(graph.custom(), key=lambda n: n.name) for v in check_plan(context, n)]
    if refusals:
        # The engine refuses the whole destroy before deleting anything.
        for urn in graph.waits_for:
            steps[urn] = Step(graph.nodes[urn], 0.0, 0.0, "kept", ["destroy refused: protected resources"])
        return Timeline("destroy", title, steps, [], [], refusals, require_complete)

    violations: list[Violation] = []
    for urn in reversed(graph.topological_order()):
        node = graph.nodes[urn]
        after = [steps[d] for d in graph.dependents[urn]]
        start = max((s.end for s in after), default=0.0)
        kept = sorted(s.node.name for s in after if s.status != "deleted")
        if kept:
            steps[urn] = Step(node, start, start, "blocked", [f"still used by {', '.join(kept)}"])
            continue
        found = check_destroy(context, node, start)
        refused = [v for v in found if v.kind == "protection"]
        failed = [v for v in found if v.kind != "protection"]
        refusals += refused
        violations += failed
        if found:
            status = "failed" if failed else "refused"
            steps[urn] = Step(node, start, start, status, [v.missing for v in found])
        else:
            steps[urn] = Step(node, start, start + rules.duration(node.type, node.inputs, "destroy"), "deleted")
    deleted = {u: s for u, s in steps.items() if s.status == "deleted"}
    path = _critical_path(graph, deleted, graph.dependents)
    return Timeline("destroy", title, steps, path, violations, refusals, require_complete)
