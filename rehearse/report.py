"""Rehearsal output: text report, JSON timeline, and an SVG Gantt chart a person can read."""

from __future__ import annotations

import json
from typing import Optional
from xml.sax.saxutils import escape, quoteattr

from .simulate import Step, Timeline


def clock(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s"


def _ordered(timeline: Timeline) -> list[Step]:
    return sorted(timeline.steps.values(), key=lambda s: (s.start, s.end, s.node.type, s.node.name))


def timeline_lines(timeline: Timeline) -> list[str]:
    critical = set(timeline.critical_path)
    lines = [f"{timeline.title}: {len(timeline.steps)} resources, total {clock(timeline.total)}",
             "  critical path (" + clock(timeline.total) + "):"]
    for urn in timeline.critical_path:
        step = timeline.steps[urn]
        note = f"  ({'; '.join(step.reasons)})" if step.reasons and step.status == "created" else ""
        lines.append(f"    {clock(step.start):>7} -> {clock(step.end):>7}  {step.node.label}{note}")
    lines.append("  all resources (start -> end, * = on the critical path):")
    for step in _ordered(timeline):
        mark = "*" if step.node.urn in critical else " "
        status = "" if step.status in ("created", "deleted") else f"  [{step.status}: {'; '.join(step.reasons)}]"
        lines.append(f"   {mark}{clock(step.start):>7} -> {clock(step.end):>7}  {step.node.label}{status}")
    return lines


def finding_lines(title: str, findings: list) -> list[str]:
    lines = [f"{title} ({len(findings)}):"]
    for v in findings:
        lines.append(f"  [{v.rule_id}] {v.resource_type} {v.resource}: {v.missing}")
        lines.append(f"      source: {v.source}")
    return lines


def destroy_summary(timeline: Timeline) -> list[str]:
    counts: dict[str, int] = {}
    for step in timeline.steps.values():
        counts[step.status] = counts.get(step.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    if timeline.refusals and not timeline.require_complete:
        verdict = "refused by protection, by design"
    elif timeline.ok and not timeline.remaining:
        verdict = "complete"
    else:
        verdict = "INCOMPLETE" if timeline.require_complete else "stopped"
    return [f"{timeline.title}: {verdict} ({summary}; modelled time {clock(timeline.total)})"]


DRIFT_TITLE = "second pulumi up (fields the platform moves, rehearse/drift_rules.yaml)"


def text_report(stack: str, timelines: list[Timeline], notes: list[str], drift: Optional[list] = None) -> str:
    lines = [f"Deploy rehearsal of stack '{stack}' (a model of the engine and GCP's documented rules, "
             "not the cloud: see docs/rehearsal.md)", ""]
    for timeline in timelines:
        if timeline.phase == "destroy":
            lines += destroy_summary(timeline)
            if timeline.refusals:
                label = "refusals (violations: teardown must complete)" if timeline.require_complete \
                    else "refused by protection, by design"
                lines += finding_lines(f"  {label}", timeline.refusals)
        if timeline.phase == "up" or timeline.critical_path:
            lines += timeline_lines(timeline)
        lines += finding_lines("violations", timeline.violations) if timeline.violations else ["violations: none"]
        lines.append("")
    if drift is not None:
        lines += finding_lines(f"{DRIFT_TITLE}: violations", drift) if drift else [f"{DRIFT_TITLE}: violations: none"]
        lines.append("")
    lines += notes
    failed = [t.title for t in timelines if not t.ok] + (["second pulumi up (drift)"] if drift else [])
    lines.append("Result: " + ("FAILED in " + "; ".join(failed) if failed else "OK, 0 violations"))
    return "\n".join(lines) + "\n"


def timeline_json(timeline: Timeline) -> dict:
    return {
        "phase": timeline.phase, "title": timeline.title, "total_seconds": timeline.total, "ok": timeline.ok,
        "critical_path": [timeline.steps[u].node.name for u in timeline.critical_path],
        "steps": [{"urn": s.node.urn, "type": s.node.type, "name": s.node.name, "start": s.start, "end": s.end,
                   "status": s.status, "reasons": s.reasons} for s in _ordered(timeline)],
        "violations": [v.__dict__ for v in timeline.violations],
        "refusals": [v.__dict__ for v in timeline.refusals],
    }


def write_json(path, timelines: list[Timeline]) -> None:
    path.write_text(json.dumps([timeline_json(t) for t in timelines], indent=2) + "\n")


# ---- SVG Gantt -------------------------------------------------------------------------------------
ROW, LABEL_WIDTH, CHART_WIDTH, TOP, BOTTOM = 18, 420, 760, 70, 50
COLORS = {"created": "#7aa6d8", "deleted": "#7aa6d8", "critical": "#d9534f", "refused": "#f0ad4e",
          "failed": "#8b0000", "blocked": "#bbbbbb", "kept": "#bbbbbb"}


LEGEND = ("Red bars: critical path. Blue: other resources. Grey: kept/blocked. Orange: refused by a protection. "
          "Dark red: failed. Axis: min:s since the start.")


def _tick_step(total: float) -> int:
    for step in (30, 60, 120, 300, 600, 900, 1800):
        if total / step <= 14:
            return step
    return 3600


def gantt_svg(timeline: Timeline, stack: str) -> str:
    steps = _ordered(timeline)
    critical = set(timeline.critical_path)
    total = max(timeline.total, 1.0)
    scale = CHART_WIDTH / total
    height = TOP + ROW * len(steps) + BOTTOM
    width = LABEL_WIDTH + CHART_WIDTH + 90  # room for the last bar's duration label
    heading = f"{timeline.title} - stack {stack}: total {clock(timeline.total)} (modelled)"
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
           f'<text x="10" y="20" font-size="15" font-weight="bold">{escape(heading)}</text>',
           f'<text x="10" y="38">{escape(LEGEND)}</text>']
    axis_y = TOP - 8
    tick = _tick_step(total)
    for t in range(0, int(total) + tick, tick):
        x = LABEL_WIDTH + t * scale
        if x > LABEL_WIDTH + CHART_WIDTH + 1:
            break
        out.append(f'<line x1="{x:.1f}" y1="{axis_y}" x2="{x:.1f}" y2="{height - BOTTOM}" stroke="#e3e3e3"/>')
        out.append(f'<text x="{x:.1f}" y="{axis_y - 4}" text-anchor="middle">{t // 60}:{t % 60:02d}</text>')
    out.append(f'<text x="{LABEL_WIDTH + CHART_WIDTH / 2:.0f}" y="{height - 15}" text-anchor="middle">'
               f'time since start (min:s)</text>')
    for row, step in enumerate(steps):
        y = TOP + row * ROW
        on_path = step.node.urn in critical
        color = COLORS["critical"] if on_path and step.status in ("created", "deleted") else COLORS[step.status]
        weight = ' font-weight="bold"' if on_path else ""
        label = f"{step.node.label}" + ("" if step.status in ("created", "deleted") else f" [{step.status}]")
        out.append(f'<text x="{LABEL_WIDTH - 6}" y="{y + 12}" text-anchor="end"{weight}>{escape(label)}</text>')
        x = LABEL_WIDTH + step.start * scale
        bar = max(step.duration * scale, 2.0)
        tooltip = f"{step.node.type} {step.node.name}: {clock(step.start)} -> {clock(step.end)}"
        out.append(f'<rect class="bar" data-urn={quoteattr(step.node.urn)} x="{x:.1f}" y="{y + 3}" '
                   f'width="{bar:.1f}" height="{ROW - 6}" fill="{color}"><title>{escape(tooltip)}</title></rect>')
        if step.duration >= 1:
            out.append(f'<text x="{x + bar + 4:.1f}" y="{y + 12}" fill="#555">{clock(step.duration)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
