"""`python -m rehearse --stack dev [--resources path/to/resources.json]`: replay `pulumi up` and
`pulumi destroy` over the declared graph against GCP's documented ordering rules and durations.

Without --resources the program is run under mocks first (as `make preview`) and the documented
teardown (docs/operations.md) is rehearsed too. Exit 0: no violation; 1: violations; 2: bad input.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from components.config import ConfigError
from preview.harness import ROOT, run_program
from preview.render import write_outputs

from .checks import Violation
from .drift import DriftRule, check_drift, load_drift_rules
from .graph import Graph
from .report import gantt_svg, text_report, write_json
from .resume import resume_report
from .rules import RuleSet, RulesError, load_rules
from .simulate import Timeline, rehearse_destroy, rehearse_up
from .teardown import run_teardown_config

TEARDOWN_TITLE = "pulumi destroy after the documented teardown (docs/operations.md)"


@dataclass
class Rehearsal:
    up: Timeline
    destroy: Timeline
    teardown: Optional[Timeline] = None
    notes: list[str] = field(default_factory=list)
    drift: list[Violation] = field(default_factory=list)  # what the second `pulumi up` would diff

    @property
    def timelines(self) -> list[Timeline]:
        return [t for t in (self.up, self.destroy, self.teardown) if t is not None]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.timelines) and not self.drift


def rehearse(graph: Graph, rules: RuleSet, teardown_graph: Optional[Graph] = None,
             teardown_refusal: Optional[str] = None, drift_rules: Optional[tuple[DriftRule, ...]] = None) -> Rehearsal:
    result = Rehearsal(rehearse_up(graph, rules), rehearse_destroy(graph, rules, "pulumi destroy (config as committed)"),
                       drift=check_drift(graph, load_drift_rules() if drift_rules is None else drift_rules))
    if teardown_graph is not None:
        result.teardown = rehearse_destroy(teardown_graph, rules, TEARDOWN_TITLE, require_complete=True)
    if teardown_refusal:
        result.notes.append(f"Documented teardown: refused by the program's config checks on this stack, by design "
                            f"({teardown_refusal})")
    return result


def write_outputs_for(result: Rehearsal, stack: str, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "rehearsal.txt", out_dir / "rehearsal.json", out_dir / "rehearsal.svg"]
    written[0].write_text(text_report(stack, result.timelines, result.notes, result.drift))
    write_json(written[1], result.timelines)
    written[2].write_text(gantt_svg(result.up, stack))
    destroy = result.teardown or result.destroy
    if any(s.status == "deleted" for s in destroy.steps.values()):  # a destroy refused up front has no chart
        written.append(out_dir / "rehearsal-destroy.svg")
        written[-1].write_text(gantt_svg(destroy, stack))
    else:
        (out_dir / "rehearsal-destroy.svg").unlink(missing_ok=True)  # no stale chart from an earlier run
    return written


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.resolve().is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default="dev", help="stack name: reads Pulumi.<stack>.yaml (default dev)")
    parser.add_argument("--resources", help="rehearse this resources.json instead of running the program")
    parser.add_argument("--out", default=str(ROOT / "build"), help="output folder (default build/)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", DeprecationWarning)
    out_dir = Path(args.out) / args.stack
    try:
        rules = load_rules()
        teardown_graph, refusal = None, None
        if args.resources:
            graph = Graph.load(Path(args.resources))
        else:
            capture = run_program(args.stack)
            write_outputs(capture, out_dir)
            graph = Graph.from_capture(capture)
            try:
                teardown_graph = Graph.from_capture(run_teardown_config(args.stack))
            except ConfigError as error:
                refusal = "; ".join(getattr(error, "problems", None) or [str(error)])
        result = rehearse(graph, rules, teardown_graph, refusal)
        resume = resume_report(graph)  # None without a pause schedule
    except (ConfigError, FileNotFoundError, RulesError, ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    written = write_outputs_for(result, args.stack, out_dir)
    print(written[0].read_text(), end="")
    if resume:
        print(resume)
    print(f"Wrote {', '.join(_shown(p) for p in written)}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
